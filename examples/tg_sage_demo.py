"""`make demo`: does the teacher help? Measured on a small pool, then used in guided searches, offline.

1. Trains a small CIFAR-style ResNet teacher on scikit-learn's digits (16×16), cached in the output folder,
   and registers its three stacks (L1-L3) with the real command line, `keras-sage teacher register`;
   registers two control teachers on the same probe images: an untrained copy of the teacher
   (`TG_untrained`) and the RDM of the one-hot labels (`TG_labels`).
2. Builds a small pool: random candidates of the paper's CNN space, each trained once to maturity and
   scored by P and TG at budgets on the way (`keras_sage.analysis.build_pool`), and prints how well each
   premature score predicts mature accuracy, with bootstrap intervals and the controls, and the α that
   predicts best at the search's budget (`calibrate_alpha`).
3. Runs the same TPE search over the CNN space twice at that budget: guided by P alone (α = 0) and by
   P + α·TG with the calibrated α (the paper's α = 1 if the calibration picks 0). Both start from the
   same random candidates; after them, each arm's score steers where it samples next.
4. Trains each arm's best candidates longer (the paper's reranking step) and prints one table: trials,
   best P, best TG, the mature accuracy of each arm's winner, and the examples processed (M1·E1 + M2·E2),
   then one sentence on what the numbers say.
5. Writes the pool report (markdown and figures) and a plot of both searches to the output folder.

Run: `python examples/tg_sage_demo.py` (a few minutes on 2 CPU cores); `--help` for the settings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from nasbench201_science import pool_files, searches_file

from keras_sage.analysis import (
    build_pool,
    calibrate_alpha,
    describe_comparisons,
    format_table,
    labels_teacher,
    plot_search,
    pool_report,
    predictivity,
    read_pool,
    search_summary,
    trial_records,
)
from keras_sage.analysis.predictors import combined_predictor_name
from keras_sage.analysis.proxy_table import proxy_markdown, read_proxy_rows
from keras_sage.datasets import digits
from keras_sage.hypermodels import CNNSearchSpace, resnet_cifar
from keras_sage.teachers import register_teacher as register_model_teacher
from keras_sage.tuners import TPEOracle
from keras_sage.tuners.sage_tuner import DEFAULT_MAX_CONSECUTIVE_FAILED_TRIALS, SCORE_OBJECTIVE, SageTuner

TEACHER_LAYERS = ("L1", "L2", "L3")


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
PROXY_ROWS = BENCHMARKS / "results" / "nb201-proxies-cifar10-32px-seed0.jsonl"
POOLS = BENCHMARKS / "pools"


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("demo-output"), help="working folder")
    parser.add_argument("--trials", type=int, default=10, help="trials per arm (M1)")
    parser.add_argument("--pool-size", type=int, default=12, help="architectures in the pool")
    parser.add_argument("--pool-max-layers", type=int, default=5, help="N_L of the pool's CNN space")
    parser.add_argument("--premature-steps", type=int, default=30, help="SGD steps per candidate")
    parser.add_argument(
        "--oracle",
        choices=("tpe", "random"),
        default="tpe",
        help="search algorithm (random: same candidates)",
    )
    parser.add_argument("--startup-trials", type=int, default=4, help="random trials before TPE starts")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-layers", type=int, default=10, help="N_L of the CNN space")
    parser.add_argument("--top-k", type=int, default=1, help="candidates per arm trained longer (M2)")
    parser.add_argument("--mature-epochs", type=int, default=4, help="epochs of the longer training")
    parser.add_argument("--teacher-depth", type=int, default=8, help="ResNet depth, 6n + 2")
    parser.add_argument("--teacher-epochs", type=int, default=15)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def train_teacher(data, arguments: argparse.Namespace, path: Path) -> None:
    """Trains the ResNet teacher once; later runs reuse the saved model."""
    if path.exists():
        print(f"teacher: reusing {path}")
        return
    keras.utils.set_random_seed(arguments.seed)
    teacher = resnet_cifar(
        depth=arguments.teacher_depth, num_classes=data.num_classes, input_shape=data.x_train.shape[1:]
    )
    teacher.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    teacher.fit(
        data.x_train,
        data.y_train,
        batch_size=arguments.batch_size,
        epochs=arguments.teacher_epochs,
        verbose=0,
    )
    accuracy = teacher.evaluate(data.x_val, data.y_val, verbose=0, return_dict=True)["accuracy"]
    print(f"teacher: {teacher.name}, validation accuracy {accuracy:.4f}, saved to {path}")
    teacher.save(path)


def register_teacher(data, model_path: Path, output: Path) -> Path:
    """Registers the teacher's stacks with the `keras-sage` command line."""
    probe_path = output / "probe.npz"
    np.savez(probe_path, images=data.x_probe, labels=data.y_probe)
    teacher_path = output / "teacher.h5"
    command = [
        sys.executable, "-m", "keras_sage.cli", "teacher", "register", str(model_path),
        "--probe", str(probe_path), "--layers", ",".join(TEACHER_LAYERS), "-o", str(teacher_path),
        "--overwrite", "--quiet",
    ]  # fmt: skip
    print("$", " ".join(["keras-sage", *command[3:]]))
    subprocess.run(command, check=True)
    return teacher_path


def control_teachers(data, arguments: argparse.Namespace, output: Path) -> dict[str, str]:
    """The control teachers on the teacher's probe images: an untrained copy, and the labels' RDM."""
    untrained_path, labels_path = output / "untrained.h5", output / "labels.h5"
    if not untrained_path.exists():
        keras.utils.set_random_seed(arguments.seed + 1)
        untrained = resnet_cifar(
            depth=arguments.teacher_depth, num_classes=data.num_classes, input_shape=data.x_train.shape[1:]
        )
        register_model_teacher(
            untrained, data.x_probe, data.y_probe, layers=TEACHER_LAYERS, path=untrained_path, verbose=0
        )
    if not labels_path.exists():
        labels_teacher(labels_path, data.x_probe, data.y_probe)
    return {"TG_untrained": str(untrained_path), "TG_labels": str(labels_path)}


def measure_pool(data, teacher_path: Path, arguments: argparse.Namespace) -> tuple[float, str]:
    """Builds the pool, prints its predictivity at the search's budget; the calibrated α and the verdict."""
    steps_per_epoch = -(-len(data.x_train) // arguments.batch_size)
    # The search's budget is the shortest past initialisation, so the report's first paragraph is about it.
    budgets = sorted({0, arguments.premature_steps, steps_per_epoch})
    pool = build_pool(
        CNNSearchSpace(
            max_layers=arguments.pool_max_layers,
            num_classes=data.num_classes,
            input_shape=data.x_train.shape[1:],
        ),
        teacher_path,
        data,
        n=arguments.pool_size,
        budgets=budgets,
        mature_epochs=arguments.mature_epochs,
        controls=control_teachers(data, arguments, arguments.output),
        path=arguments.output / "pool.jsonl",
        batch_size=arguments.batch_size,
        seed=arguments.seed,
    )
    calibration = calibrate_alpha(pool, arguments.premature_steps)
    shown = ("P", "TG", combined_predictor_name(calibration.alpha), "TG_untrained", "TG_labels", "depth")
    rows = [
        {key: row[key] for key in ("predictor", "r", "ci_low", "ci_high", "delta", "delta_ci_low")}
        for row in predictivity(pool)
        if row["budget"] == arguments.premature_steps and row["predictor"] in shown
    ]
    print(
        f"\npool: {arguments.pool_size} architectures; Spearman ρ with mature accuracy at "
        f"{arguments.premature_steps} steps (95% resampling CI; delta = ρ − ρ(P), paired):"
    )
    print(format_table(rows))
    low, high = calibration.out_of_sample_interval
    print(
        f"α chosen out of sample = {calibration.alpha:g} (on half the architectures, measured on the other: "
        f"ρ(P + α·TG) − ρ(P) = {calibration.out_of_sample_delta:+.3f} [{low:+.3f}, {high:+.3f}] over "
        f"{calibration.splits} splits); in sample α = {calibration.in_sample_alpha:g} (ρ = "
        f"{calibration.in_sample_r:.3f})"
    )
    report = pool_report(pool, arguments.output / "pool-report", title="Digits pool (make demo)")
    print(f"pool report: {arguments.output / 'pool-report' / 'report.md'}")
    return calibration.alpha, report.split("\n")[2]


def make_oracle(arguments: argparse.Namespace) -> TPEOracle | None:
    """TPE with fewer random start-up trials than the paper's 20, to fit the demo's 10 trials."""
    if arguments.oracle == "random":
        return None
    return TPEOracle(
        objective=SCORE_OBJECTIVE,
        max_trials=arguments.trials,
        n_startup_trials=arguments.startup_trials,
        seed=arguments.seed,
        max_consecutive_failed_trials=DEFAULT_MAX_CONSECUTIVE_FAILED_TRIALS,
    )


def run_arm(name: str, alpha: float, data, teacher_path: Path, arguments: argparse.Namespace) -> dict:
    """One search and its reranking; returns the row of the summary table."""
    tuner = SageTuner(
        CNNSearchSpace(
            max_layers=arguments.max_layers, num_classes=data.num_classes, input_shape=data.x_train.shape[1:]
        ),
        teacher=teacher_path,
        alpha=alpha,
        premature_steps=arguments.premature_steps,
        oracle=make_oracle(arguments),
        max_trials=arguments.trials,
        seed=arguments.seed,
        probe=(data.x_probe, data.y_probe),
        directory=arguments.output,
        project_name=name,
        overwrite=True,
    )
    started = time.perf_counter()
    tuner.search(
        data.x_train,
        data.y_train,
        validation_data=(data.x_val, data.y_val),
        batch_size=arguments.batch_size,
        verbose=0,
    )
    search_seconds = time.perf_counter() - started
    reranked = tuner.rerank(
        arguments.top_k,
        arguments.mature_epochs,
        data.x_train,
        data.y_train,
        validation_data=(data.x_val, data.y_val),
        batch_size=arguments.batch_size,
    )
    row = search_summary(name, tuner, reranked)
    completed = row["trials"] - row["failed"]
    print(
        f"{name}: {completed}/{row['trials']} trials completed in {search_seconds:.0f} s; "
        f"winner trial {row['winner']} (mature accuracy {row['winner mature acc']:.4f})"
    )
    return {"row": row, "records": trial_records(tuner)}


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    arguments.output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data = digits(image_size=arguments.image_size, probe_size=100, seed=arguments.seed)
    print(
        f"digits {arguments.image_size}×{arguments.image_size}: {len(data.x_train)} training, "
        f"{len(data.x_val)} validation, {len(data.x_probe)} probe images"
    )
    model_path = arguments.output / f"teacher_resnet{arguments.teacher_depth}.keras"
    train_teacher(data, arguments, model_path)
    teacher_path = register_teacher(data, model_path, arguments.output)
    print(f"teacher trained and registered in {time.perf_counter() - started:.0f} s")

    pool_started = time.perf_counter()
    alpha, answer = measure_pool(data, teacher_path, arguments)
    print(f"pool built and analysed in {time.perf_counter() - pool_started:.0f} s")
    guided_alpha = alpha if alpha > 0 else 1.0
    arms = [
        run_arm("performance", 0.0, data, teacher_path, arguments),
        run_arm("tg_sage", guided_alpha, data, teacher_path, arguments),
    ]
    print()
    print(format_table([arm["row"] for arm in arms]))
    plot_path = plot_search(
        {"P (α=0)": arms[0]["records"], f"P+TG (α={guided_alpha:g})": arms[1]["records"]},
        arguments.output / "search.png",
    )
    print(f"\nplot: {plot_path}")
    print(f"\nWhat it means: {_meaning(alpha, guided_alpha, answer, arms)}")
    print_committed_nasbench201(arguments.output)
    print(f"total time: {time.perf_counter() - started:.0f} s")


def print_committed_nasbench201(output: Path) -> None:
    """The field's common ground, from the rows committed in benchmarks/ (no training, seconds): the
    proxies against their published NAS-Bench-201 correlations, the NAS-Bench-201 pool's verdict, and its
    searches' so far."""
    print("\nOn NAS-Bench-201 (CIFAR-10 32×32, mature accuracies looked up; rows committed in benchmarks/):")
    if PROXY_ROWS.exists():
        print(proxy_markdown(read_proxy_rows(PROXY_ROWS)))
    else:
        print(f"no proxy rows yet ({PROXY_ROWS}: `python benchmarks/nb201_proxies.py` makes them)")
    pools = pool_files(POOLS)
    if not pools:
        print("no NAS-Bench-201 pool yet (`python examples/nasbench201_science.py --stage pool` builds it)")
        return
    rows = read_pool(pools[-1])
    cells = len({row["arch_id"] for row in rows})
    description = pools[-1].with_suffix(".json")
    planned = json.loads(description.read_text())["scale"]["architectures"] if description.exists() else cells
    if cells >= planned:
        print(f"The NAS-Bench-201 pool: {cells} cells, complete.")
    else:
        print(f"The NAS-Bench-201 pool so far: {cells} of {planned} cells (it resumes; a weak verdict yet).")
    title = f"NAS-Bench-201 pool ({pools[-1].name})"
    report = pool_report(rows, output / "nasbench201-pool-report", title=title)
    print(report.split("\n")[2])
    searches = searches_file(pools[-1])
    if searches.exists():
        search_rows = read_pool(searches)
        arms = {row["arm"] for row in search_rows}
        comparison = describe_comparisons(search_rows) or ["not every arm has run a seed yet."]
        print(f"Its searches so far ({len(search_rows)} searches, {len(arms)} arms): " + " ".join(comparison))


def _meaning(alpha: float, guided_alpha: float, answer: str, arms: list[dict]) -> str:
    """One sentence: what the pool says about the teacher, and what the two searches found."""
    performance, guided = (arm["row"]["winner mature acc"] for arm in arms)
    verdict = answer.split("**")[1].rstrip(".") if "**" in answer else answer
    calibration = (
        f"calibrated α = {alpha:g}" if alpha > 0 else "calibrated α = 0, so the guided arm used α = 1"
    )
    return (
        f"{verdict} ({calibration}). The two searches, one seed each at equal cost, found winners of mature "
        f"accuracy {performance:.3f} (P) and {guided:.3f} (P + {guided_alpha:g}·TG): a single pair of "
        "searches is an anecdote; the pool's intervals above are the evidence."
    )


if __name__ == "__main__":
    main()
