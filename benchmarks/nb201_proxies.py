"""The field's zero-cost proxies on NAS-Bench-201, validated against their published correlations.

For cells drawn uniformly (seeded, without replacement) from the 15,625 of NAS-Bench-201, each network is
built by `keras_sage.NASBench201SearchSpace` at 32×32 on CIFAR-10 (the shared JPEGs, per-image
standardized as the students see them) and scored at initialisation by every proxy of
`keras_sage.proxies` (params, flops, synflow, snip and grad_norm on 64 training images as Abdelfattah et
al. use, naswot on 128 as Mellor et al. use). The mature accuracy is looked up in the table of
`keras_sage.nasbench201` (no training at all). One row per cell is appended as it is scored, so a killed
run resumes where it stopped:

    python benchmarks/nb201_proxies.py --cells 1000             # scores (hours on 2 cores; resumable)
    python benchmarks/nb201_proxies.py --teacher-guidance       # TG at initialisation of the same cells
    python benchmarks/nb201_proxies.py --report                 # Spearman ρ with 95% intervals

`--teacher-guidance` adds TG at initialisation (DisWOT's regime: the untrained student's representations
against the teacher's) to the same cells, built with the same seeds, in a rows file of its own: the
NAS-Bench-201 pool's teacher (`examples/nasbench201_science.py --scale cpu`, its committed weights) and its
500 probe images, scored as the pool scores TG (`TeacherGuidedScorer`, the tuner's settings).

The report puts each proxy's Spearman ρ with the mature accuracy, with a 95% percentile interval from
resampling the cells, beside its published NAS-Bench-201 CIFAR-10 value; a proxy more than 0.05 from it is
a bug until shown otherwise. The conv count 9·#3×3 + #1×1 is a control computed from the arch string.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from cifar10_science import DEFAULT_ARCHIVE, DEFAULT_CACHE, cifar10_arrays, standardized
from nasbench201_science import pool_files

from keras_sage import contract, nasbench201
from keras_sage._atomic import write_atomically
from keras_sage.analysis.pool import append_rows, read_pool
from keras_sage.analysis.predictors import PROXY_COLUMNS
from keras_sage.analysis.proxy_table import (
    CONV_COUNT,
    conv_count,
    proxy_markdown,
    read_proxy_rows,
    teacher_guidance_rows_path,
)
from keras_sage.hypermodels import NASBench201SearchSpace
from keras_sage.proxies import naswot, zero_cost_proxies

RESULTS = Path(__file__).resolve().parent / "results"
POOLS = Path(__file__).resolve().parent / "pools"
# Abdelfattah et al. score on one batch of 64 images; Mellor et al. on 128 for NAS-Bench-201.
GRADIENT_BATCH = 64
NASWOT_BATCH = 128
GRADIENT_PROXIES = (contract.PARAMS, contract.FLOPS, contract.SYNFLOW, contract.SNIP, contract.GRAD_NORM)


def score_cells(arguments: argparse.Namespace) -> None:
    arrays = cifar10_arrays(arguments.archive, arguments.cache, 32)
    rng = np.random.default_rng(arguments.seed)
    batch = rng.choice(len(arrays["labels"]), NASWOT_BATCH, replace=False)
    images, labels = standardized(arrays["images"][batch]), arrays["labels"][batch]
    space = NASBench201SearchSpace(num_classes=10, input_shape=(32, 32, 3))
    path = arguments.out
    done = {row["arch_string"] for row in read_pool(path)} if path.exists() else set()
    cells = nasbench201.sample_arch_strings(arguments.cells, arguments.seed)
    started, scored = time.perf_counter(), 0
    for index, arch_string in enumerate(cells):
        if arch_string in done:
            continue
        cell_started = time.perf_counter()
        keras.utils.set_random_seed(arguments.seed + index)
        model = space.model_from_arch_string(arch_string)
        scores = zero_cost_proxies(
            model, images[:GRADIENT_BATCH], labels[:GRADIENT_BATCH], names=GRADIENT_PROXIES
        )
        scores[contract.NASWOT] = naswot(model, images)
        row = {
            "index": index,
            "arch_string": arch_string,
            "seed": arguments.seed + index,
            **{name: float(value) for name, value in scores.items()},
            CONV_COUNT: conv_count(arch_string),
            contract.MATURE_ACCURACY: nasbench201.mature_accuracy(arch_string),
            "mature_accuracy_source": nasbench201.MATURE_ACCURACY_SOURCE,
            "seconds": round(time.perf_counter() - cell_started, 2),
        }
        append_rows(path, [row])
        keras.backend.clear_session(free_memory=True)
        scored += 1
        elapsed = time.perf_counter() - started
        remaining = elapsed / scored * (len(cells) - len(done) - scored)
        print(
            f"cell {index + 1}/{len(cells)}: {row['seconds']:.1f} s · ETA {remaining / 60:.0f} min",
            file=sys.stderr,
            flush=True,
        )


def score_teacher_guidance(arguments: argparse.Namespace) -> None:
    """TG at initialisation of every cell of the proxies' rows, appended one row per cell (resumable)."""
    from nasbench201_science import SCALES, split, teacher_files, teacher_model

    from keras_sage.objective import TeacherGuidedScorer, teacher_guidance
    from keras_sage.score import ScoringConfig

    scale = SCALES["cpu"]
    splits = split(cifar10_arrays(arguments.archive, arguments.cache, 32), scale, arguments.seed)
    teacher, record = teacher_model(splits, scale, POOLS, arguments.seed)
    teacher_path, _ = teacher_files(
        teacher, record["weights_fingerprint"], splits, scale, arguments.cache, arguments.seed
    )
    scorer = TeacherGuidedScorer(teacher_path, ScoringConfig(seed=arguments.seed))
    space = NASBench201SearchSpace(num_classes=10, input_shape=(32, 32, 3))
    path = teacher_guidance_rows_path(arguments.out)
    done = {row["arch_string"] for row in read_pool(path)} if path.exists() else set()
    cells = read_pool(arguments.out)
    started, scored = time.perf_counter(), 0
    for cell in cells:
        if cell["arch_string"] in done:
            continue
        keras.utils.set_random_seed(cell["seed"])  # the network whose proxies the cell's row holds
        model = space.model_from_arch_string(cell["arch_string"])
        similarities, _ = scorer.similarities(model)
        row = {
            "index": cell["index"],
            "arch_string": cell["arch_string"],
            "seed": cell["seed"],
            contract.TEACHER_GUIDANCE: teacher_guidance(list(similarities.values())),
            **{contract.similarity_metric_name(name): value for name, value in similarities.items()},
            contract.MATURE_ACCURACY: cell[contract.MATURE_ACCURACY],
            "teacher": f"{teacher_path.name} (validation accuracy {record['validation_accuracy']:.3f})",
        }
        append_rows(path, [row])
        keras.backend.clear_session(free_memory=True)
        scored += 1
        remaining = (time.perf_counter() - started) / scored * (len(cells) - len(done) - scored)
        print(
            f"TG of cell {cell['index'] + 1}/{len(cells)} · ETA {remaining / 60:.0f} min",
            file=sys.stderr,
            flush=True,
        )


def report(path: Path, n_resamples: int, seed: int) -> str:
    """The Spearman ρ of each proxy with the mature accuracy, with its interval, as markdown."""
    rows = read_proxy_rows(path)
    seconds = [row["seconds"] for row in rows]
    return "\n".join(
        [
            f"# Zero-cost proxies on NAS-Bench-201 (CIFAR-10, 32×32): {len(rows)} cells",
            "",
            f"Rows: `{path.name}`, made by `python benchmarks/nb201_proxies.py --cells N` (2 CPU cores, no "
            f"GPU); seconds per cell (every proxy) median {np.median(seconds):.1f}, max {max(seconds):.1f}. "
            f"Mature accuracy: {nasbench201.MATURE_ACCURACY_SOURCE}, another 200-epoch training of the "
            "cells than the published figures used.",
            "",
            proxy_markdown(rows, n_resamples=n_resamples, seed=seed),
            *teacher_guidance_note(path),
            *pool_agreement(rows, seed),
        ]
    )


def teacher_guidance_note(path: Path) -> list[str]:
    """What the `teacher_guidance` row of the table is, where it has been scored."""
    if not teacher_guidance_rows_path(path).exists():
        return []
    rows = read_pool(teacher_guidance_rows_path(path))
    return [
        f"`teacher_guidance` is TG at initialisation (DisWOT's regime: the untrained cell against a trained "
        f"teacher), scored by `--teacher-guidance` on the first {len(rows)} cells with the same seeds; "
        f"teacher {rows[0]['teacher']}. No published NAS-Bench-201 CIFAR-10 value is set beside it.",
        "",
    ]


def pool_agreement(rows: list[dict], seed: int) -> list[str]:
    """How the NAS-Bench-201 pool's proxy columns (its first 64 training images; naswot on those 64 too)
    rank the cells it shares with these rows (a random batch of 64; naswot on 128)."""
    by_cell = {row["arch_string"]: row for row in rows}
    lines = []
    for pool_path in pool_files(POOLS, f"nasbench201-cifar10-32px-*-seed{seed}-teacher*.jsonl"):
        pool = {row["arch_string"]: row for row in read_pool(pool_path) if row.get("arch_string") in by_cell}
        cells = [
            cell for cell, row in pool.items() if all(np.isfinite(row.get(p, np.nan)) for p in PROXY_COLUMNS)
        ]
        if len(cells) < 3:
            continue
        agreement = []
        for name in PROXY_COLUMNS:
            rho = stats.spearmanr([pool[c][name] for c in cells], [by_cell[c][name] for c in cells])[0]
            agreement.append(f"{name} {rho:.3f}")
        lines += [
            f"The pool `{pool_path.name}` scores the same {len(cells)} cells on another batch (its first 64 "
            f"training images, naswot on those 64): Spearman ρ between its values and these, "
            f"{', '.join(agreement)}.",
        ]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=1000, help="cells to score (default: 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", action="store_true", help="write the report of the rows so far")
    parser.add_argument(
        "--teacher-guidance", action="store_true", help="score TG at initialisation of the rows' cells"
    )
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--archive", type=Path, default=DEFAULT_ARCHIVE)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=None, help="the rows file (JSON Lines)")
    arguments = parser.parse_args(argv)
    if arguments.out is None:
        arguments.out = RESULTS / f"nb201-proxies-cifar10-32px-seed{arguments.seed}.jsonl"
    if arguments.report:
        markdown = report(arguments.out, arguments.resamples, arguments.seed)
        write_atomically(arguments.out.with_suffix(".md"), lambda file: file.write(markdown.encode()))
        print(markdown)
        return
    if arguments.teacher_guidance:
        score_teacher_guidance(arguments)
        return
    score_cells(arguments)


if __name__ == "__main__":
    main()
