"""The `keras-sage` command.

```
keras-sage teacher register MODEL.keras --probe PROBE.npz [--layers a,b,c] -o teacher.h5
keras-sage teacher show teacher.h5             # RDMs, similarities and matchings it supports, ceilings
keras-sage report POOL.jsonl [--out DIR]       # does the teacher help? predictivity, α, replay
keras-sage report PROJECT_DIR [--out DIR]      # a finished search: trials, cost, best so far
keras-sage report SEARCHES.jsonl [--out DIR]   # searches with and without the teacher, paired by seed
keras-sage search CONFIG.toml [--workers N]    # a whole search from a TOML config (keras_sage.search_config)
keras-sage worker CONFIG.toml --chief HOST:PORT
keras-sage probe CONFIG.toml -o PROBE.npz      # the probe set of the config's data, to register a teacher
keras-sage dashboard PROJECT_DIR [--port N]    # watch a search in optuna-dashboard, read-only
keras-sage export PROJECT_DIR -o trials.csv    # every trial, its hyperparameters and metrics (or .jsonl)
```

A probe file is an `.npz` with an array `images` (`(n, H, W, C)`, `uint8` or float) and, optionally, an
integer array `labels` (`(n,)`). Errors in the input (a missing file, a bad teacher file, an unknown
layer) are reported on one line on stderr with exit status 2. TensorFlow is imported only by the
commands that run a model.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from keras_sage._errors import first_line
from keras_sage._version import __version__
from keras_sage.cli import dashboard, search
from keras_sage.cli.probe_file import PROBE_IMAGES_KEY, PROBE_LABELS_KEY, load_probe

if TYPE_CHECKING:
    from keras_sage.teachers import TeacherStore


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the `keras-sage` command.

    Args:
        argv: The arguments after the program name; defaults to `sys.argv[1:]`.

    Returns:
        The exit status: 0 on success, 1 when a search stopped because its trials kept failing, 2 on
        bad input.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], None] | None = getattr(args, "handler", None)
    if handler is None:
        args.help_parser.print_help(sys.stderr)
        return 2
    try:
        handler(args)
    except Exception as error:
        if _is_search_stop(error):
            print(f"keras-sage: error: {first_line(error)}", file=sys.stderr)
            return 1
        if not isinstance(error, _input_errors()):
            raise
        print(f"keras-sage: error: {first_line(error)}", file=sys.stderr)
        return 2
    return 0


def run() -> None:
    """The `keras-sage` console command: `main()`, then exit with its status.

    Before the interpreter shuts down, every object is moved out of the garbage collector's reach
    (`gc.freeze`): the process is ending, and the final collection of a search's TensorFlow heap is what
    kept a finished chief alive for seconds (measured after a tiny 3-trial search: 4.3 s from the last
    line to the exit, 0.8 s with the freeze).
    """
    status = main()
    gc.freeze()
    sys.exit(status)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `keras-sage` and its subcommands."""
    from keras_sage.rsa import DEFAULT_MAX_FEATURES, LEVELS, METRICS
    from keras_sage.teachers.register import DEFAULT_BATCH_SIZE

    parser = argparse.ArgumentParser(
        prog="keras-sage", description="Teacher-guided neural architecture search (TG-SAGE) for Keras."
    )
    parser.add_argument("--version", action="version", version=f"keras-sage {__version__}")
    parser.set_defaults(help_parser=parser)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    teacher = commands.add_parser("teacher", help="register and inspect teacher files")
    teacher.set_defaults(help_parser=teacher)
    teacher_commands = teacher.add_subparsers(title="teacher commands", metavar="COMMAND")

    register = teacher_commands.add_parser(
        "register",
        help="store the RDMs of a trained Keras model's layers on a probe set",
        description="Runs the probe images through layers of a saved Keras model and stores one RDM per "
        "layer in a teacher file (added to the file if it already holds the same probe set).",
    )
    register.add_argument("model", metavar="MODEL", help="a Keras model saved as .keras")
    register.add_argument(
        "--probe",
        required=True,
        metavar="PROBE.npz",
        help=f"probe set: an .npz with array '{PROBE_IMAGES_KEY}' (n, H, W, C) and optional "
        f"integer array '{PROBE_LABELS_KEY}' (n,)",
    )
    register.add_argument(
        "--layers",
        type=_comma_separated,
        metavar="A,B,C",
        help="layer names, comma-separated (default: the model's representation endpoints, or the last "
        "layer of each spatial resolution and the last flat layer before the classifier)",
    )
    register.add_argument("-o", "--output", required=True, metavar="TEACHER.h5", help="teacher file to write")
    register.add_argument("--metric", choices=METRICS, default="correlation", help="RDM distance")
    register.add_argument("--level", choices=LEVELS, default="image", help="compare images or categories")
    register.add_argument(
        "--max-features",
        type=_max_features,
        default=DEFAULT_MAX_FEATURES,
        metavar="N",
        help=f"features kept per layer, a fixed random subsample; 'all' keeps all "
        f"(default: {DEFAULT_MAX_FEATURES})",
    )
    register.add_argument(
        "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help=f"default: {DEFAULT_BATCH_SIZE}"
    )
    register.add_argument("--seed", type=int, default=0, help="seed of the feature subsample (default: 0)")
    register.add_argument(
        "--overwrite", action="store_true", help="replace RDMs of the same names already in the file"
    )
    register.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    register.set_defaults(handler=_teacher_register)

    show = teacher_commands.add_parser("show", help="summarize a teacher file")
    show.add_argument("teacher", metavar="TEACHER.h5", help="a teacher file")
    show.set_defaults(handler=_teacher_show)

    report = commands.add_parser(
        "report",
        help="write the markdown report (and figures) of a pool, a finished search or searches compared",
        description="POOL.jsonl (a pool built by keras_sage.analysis.build_pool): whether the teacher "
        "predicts mature accuracy beyond P and the controls, with bootstrap intervals, the calibrated α, "
        "replayed searches and the paper's figures. PROJECT_DIR (a search's project directory): the "
        "trials, the cost and the best score so far. SEARCHES.jsonl (search_summary rows with their seeds): "
        "each guided α against α = 0, paired by seed. Prints the report and writes report.md and figures.",
    )
    report.add_argument(
        "source",
        metavar="POOL.jsonl|PROJECT_DIR|SEARCHES.jsonl",
        help="a pool file, a project directory or a search comparison's rows",
    )
    report.add_argument(
        "--out", metavar="DIR", help="folder for report.md and figures (default: SOURCE-report beside it)"
    )
    report.add_argument("--title", help="the report's title (default: the source's name)")
    report.add_argument(
        "--resamples",
        "--n-boot",
        dest="n_resamples",
        type=int,
        default=2000,
        help="resamples of the architectures behind each interval (default: 2000)",
    )
    report.add_argument("--seed", type=int, default=0, help="seed of the resamples (default: 0)")
    report.set_defaults(handler=_report)
    search.add_commands(commands)
    dashboard.add_commands(commands)
    return parser


def _teacher_register(args: argparse.Namespace) -> None:
    images, labels = load_probe(args.probe)
    search.import_tensorflow_quietly()
    from keras_sage.teachers import register_teacher

    store = register_teacher(
        args.model,
        images,
        labels,
        layers=args.layers,
        path=args.output,
        metric=args.metric,
        level=args.level,
        max_features=args.max_features,
        batch_size=args.batch_size,
        seed=args.seed,
        overwrite=args.overwrite,
        verbose=0 if args.quiet else 1,
    )
    print(f"wrote {store.path}: {', '.join(store.layer_names)}")


def _teacher_show(args: argparse.Namespace) -> None:
    from keras_sage.analysis.tables import format_table
    from keras_sage.teachers import TeacherStore

    store = TeacherStore.open(args.teacher)
    images = store.probe_images
    labels = "no labels" if store.probe_labels is None else f"{len(np.unique(store.probe_labels))} categories"
    print(
        f"{store.path}: {store.n_images} probe images, shape {tuple(images.shape[1:])}, {images.dtype}, "
        f"{labels}, fingerprint {store.fingerprint[:12]}"
    )
    rows = []
    for name in store.layer_names:
        info = store.layer_info(name)
        rows.append(
            {
                "name": name,
                "kind": info["kind"],
                "n": info["n"],
                "metric": info["metric"],
                "level": info["level"],
                "features used/total": f"{info['n_features_used']}/{info['n_features']}",
                "source": info["source"],
            }
        )
    print(format_table(rows) if rows else "(no RDMs)")
    if rows:
        _print_search_refusal(store)
        _print_scoring_choices(store)
    if len(store.versions) > 1:
        _print_versions(store)


def _print_versions(store: TeacherStore) -> None:
    """The teacher versions a bootstrapped search added (`keras_sage.Bootstrap`), oldest first."""
    from keras_sage.analysis.tables import format_table

    rows = []
    for version in store.versions:
        info = store.version_info(version)
        accuracy = info["validation_accuracy"]
        rows.append(
            {
                "version": version,
                "validation accuracy": "-" if accuracy is None else f"{accuracy:.4f}",
                "replaces": info.get("parent_version", "-"),
                "trial": info.get("trial_id") or "-",
                "layers": len(info["layers"]),
                "created": info["created"],
            }
        )
    latest = store.latest_version
    print(f"\nteacher versions ({latest} scores the trials after it; version 0's RDMs are above):")
    print(format_table(rows))


def _print_search_refusal(store: TeacherStore) -> None:
    """What `search` would refuse in the file's RDMs (NaN, out of range, constant), if anything."""
    from keras_sage.scoring_checks import check_teacher_rdms

    try:
        check_teacher_rdms(store.path, store.rdms())
    except ValueError as error:
        print(f"\nnot usable for a search: {first_line(error)}")


def _print_scoring_choices(store: TeacherStore) -> None:
    """What a teacher file can be scored with: the similarities, the layer matchings, the noise ceilings."""
    from keras_sage.analysis.tables import format_table
    from keras_sage.score import CKA, LAYER_MATCHES, SIMILARITIES
    from keras_sage.scoring_checks import check_cka_teacher

    try:
        check_cka_teacher(store)
        cka_note = ""
    except ValueError:
        cka_note = f" ({CKA} needs image-level euclidean RDMs)"
    similarities = [name for name in SIMILARITIES if name != CKA or not cka_note]
    print(f"\nsimilarities: {', '.join(similarities)}{cka_note}")
    matchings = [
        f"{match} (layer_mapping: {', '.join(store.layer_names)} → student endpoints)"
        if match == "fixed"
        else match
        for match in LAYER_MATCHES
    ]
    print(f"layer matchings: {', '.join(matchings)}")
    ceilings = store.noise_ceilings()
    if not ceilings:
        print("noise ceilings: none stored (normalise_by_ceiling unavailable)")
        return
    methods = sorted({ceiling.method for ceiling in ceilings.values()})
    every = len(ceilings) == len(store.layer_names) and len(methods) == 1
    usable = (
        f"with similarity {methods[0]!r}" if every else "unavailable: not every RDM has one of one method"
    )
    print(f"noise ceilings (ceiling = √reliability; normalise_by_ceiling {usable}):")
    print(
        format_table(
            [
                {
                    "region": name,
                    "ceiling": ceiling.ceiling,
                    "reliability": ceiling.reliability,
                    "± std": ceiling.reliability_std,
                    "splits": len(ceiling.split_reliabilities),
                    "repeats": ceiling.n_repeats,
                    "lower": ceiling.lower,
                    "upper": ceiling.upper,
                    "method": ceiling.method,
                }
                for name, ceiling in ceilings.items()
            ],
            float_format="{:.3f}",
        )
    )


def _comma_separated(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected layer names separated by commas")
    return names


def _max_features(text: str) -> int | None:
    if text.lower() == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text!r}")
    return value


def _report(args: argparse.Namespace) -> None:
    from keras_sage.analysis.pool import read_pool
    from keras_sage.analysis.report import pool_report, project_report, searches_report
    from keras_sage.analysis.search_comparison import is_search_comparison

    source = Path(args.source)
    if not source.exists():
        raise FileNotFoundError(f"no pool file or project directory at {source}")
    out = Path(args.out) if args.out else source.with_name(f"{source.stem}-report")
    if source.is_dir():
        markdown = project_report(source, out)
    else:
        rows = read_pool(source)
        if not rows:
            raise ValueError(f"{source}: the pool holds no rows")
        if is_search_comparison(rows):
            markdown = searches_report(rows, out, title=args.title or source.stem)
        else:
            markdown = pool_report(
                rows, out, title=args.title or source.stem, n_resamples=args.n_resamples, seed=args.seed
            )
    print(markdown)
    print(f"\nwritten to {out}", file=sys.stderr)


def _is_search_stop(error: Exception) -> bool:
    """Whether the error stopped a search that had started: too many failed trials in a row, or one of
    KerasTuner's fatal errors (a lost chief, ...), other than bad values (imported once a search ran)."""
    tuners = sys.modules.get("keras_sage.tuners.failures")
    if tuners is not None and isinstance(error, tuners.SearchStoppedError):
        return True
    keras_tuner = sys.modules.get("keras_tuner")
    return (
        keras_tuner is not None
        and isinstance(error, keras_tuner.errors.FatalError)
        and not isinstance(error, ValueError)
    )


def _input_errors() -> tuple[type[Exception], ...]:
    """The errors that mean bad input (reported in one line), not a bug (reported with a traceback)."""
    from keras_sage.teachers import TeacherFileError

    return (TeacherFileError, ValueError, OSError)
