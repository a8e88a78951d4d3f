"""Teacher bootstrapping (paper §5) against a fixed weak teacher, on digits.

Does replacing a weak teacher by the best candidate found so far give a better best-after-N than keeping
the weak teacher? For each seed, three TPE searches of N trials over the same CNN space, on scikit-learn's
digits (real data, no download):

- `bootstrap`: α = 1, teacher = a ResNet-8 trained 1 epoch (weak), with
  `Bootstrap(every=K, mature_epochs=E)`: every K completed trials the best candidate so far is trained for
  E epochs and replaces the teacher if its validation accuracy is higher;
- `fixed`: α = 1, the same weak teacher throughout;
- `alpha0`: α = 0 (P only), the reference.

Each search's best candidate (by its search score) is then trained from scratch for `--mature-epochs`
epochs (`rerank(1, ...)`) and its validation accuracy is the arm's best-after-N. One JSON line per
(arm, seed) is appended to `--out` as it finishes, so a killed run resumes; the table (mean and 95% CI
over seeds, Student's t; and the per-seed paired difference bootstrap − fixed) prints at the end.

`--dataset cifar10` runs the same on a class-balanced subset of CIFAR-10's training images at 16×16
(`--train-size` for training, `--val-size` for validation, 100 probe images, each image standardized), from
the JPEG archive in `../shared/data/cifar10-jpeg.tar.gz`, decoded once and cached as
`examples/cifar10_science.py` does.

Run: `nice .venv/bin/python benchmarks/bench_bootstrap.py [--seeds 1 2 3] [--trials 20] [--every 5]`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from _teacher import resnet8_teacher
from scipy import stats

from keras_sage.datasets import ImageSplits, digits, standardize
from keras_sage.hypermodels import CNNSearchSpace
from keras_sage.tuners import Bootstrap, SageTuner, TPEOracle
from keras_sage.tuners.sage_tuner import SCORE_OBJECTIVE

ARMS = ("bootstrap", "fixed", "alpha0")
BATCH_SIZE = 32


def cifar10_subset(train_size: int, val_size: int, probe_size: int = 100, seed: int = 0) -> ImageSplits:
    """A class-balanced subset of CIFAR-10's training images at 16×16, standardized, as disjoint splits."""
    examples = Path(__file__).resolve().parents[1] / "examples"
    sys.path.insert(0, str(examples))
    from cifar10_science import CIFAR10_CLASSES, DEFAULT_ARCHIVE, DEFAULT_CACHE, cifar10_arrays

    arrays = cifar10_arrays(DEFAULT_ARCHIVE, DEFAULT_CACHE, 16)
    rng = np.random.default_rng(seed)
    sizes = {"probe": probe_size // 10, "val": val_size // 10, "train": train_size // 10}
    chosen: dict[str, list[np.ndarray]] = {name: [] for name in sizes}
    for label in range(10):
        indices = rng.permutation(np.flatnonzero(arrays["labels"] == label))
        start = 0
        for name, size in sizes.items():
            chosen[name].append(indices[start : start + size])
            start += size
    split = {name: rng.permutation(np.concatenate(parts)) for name, parts in chosen.items()}

    def images(name: str) -> np.ndarray:
        return np.asarray(standardize(arrays["images"][split[name]].astype(np.float32)))

    return ImageSplits(
        x_train=images("train"),
        y_train=arrays["labels"][split["train"]],
        x_val=images("val"),
        y_val=arrays["labels"][split["val"]],
        x_probe=images("probe"),
        y_probe=arrays["labels"][split["probe"]],
        class_names=tuple(CIFAR10_CLASSES),
    )


def weak_teacher(data, folder: Path, epochs: int) -> tuple[Path, float]:
    """A ResNet-8 trained `epochs` epochs on the training split, registered with its accuracy."""
    path, accuracy = resnet8_teacher(data, folder / f"teacher-e{epochs}.h5", epochs, BATCH_SIZE)
    if accuracy is None:
        raise SystemExit(f"{path} records no validation accuracy; delete it to retrain the teacher")
    return path, accuracy


def run_arm(arm: str, seed: int, data, teacher: Path, arguments) -> dict:
    space = CNNSearchSpace(
        max_layers=arguments.max_layers, num_classes=10, input_shape=data.x_train.shape[1:]
    )
    oracle = TPEOracle(
        objective=SCORE_OBJECTIVE, max_trials=arguments.trials, seed=seed, n_startup_trials=arguments.startup
    )
    schedule = (
        Bootstrap(every=arguments.every, mature_epochs=arguments.bootstrap_epochs)
        if arm == "bootstrap"
        else None
    )
    with tempfile.TemporaryDirectory() as folder:
        tuner = SageTuner(
            space,
            teacher=teacher,
            alpha=0.0 if arm == "alpha0" else arguments.alpha,
            premature_epochs=1,
            oracle=oracle,
            teacher_schedule=schedule,
            directory=folder,
            project_name=arm,
            overwrite=True,
        )
        started = time.perf_counter()
        tuner.search(
            data.x_train,
            data.y_train,
            validation_data=(data.x_val, data.y_val),
            batch_size=BATCH_SIZE,
            verbose=0,
        )
        search_seconds = time.perf_counter() - started
        (best,) = tuner.rerank(
            1,
            arguments.mature_epochs,
            data.x_train,
            data.y_train,
            validation_data=(data.x_val, data.y_val),
            batch_size=BATCH_SIZE,
        )
        trials = list(tuner.oracle.trials.values())
        completed = [trial for trial in trials if trial.status == "COMPLETED"]
        return {
            "arm": arm,
            "seed": seed,
            "trials": len(trials),
            "completed": len(completed),
            "best_trial": best.trial_id,
            "best_premature_accuracy": completed
            and max(trial.metrics.get_last_value("premature_accuracy") for trial in completed),
            "best_mature_accuracy": best.mature_accuracy,
            "steps": [
                {
                    "step": step.step,
                    "trial_id": step.trial_id,
                    "mature_accuracy": None if math.isnan(step.mature_accuracy) else step.mature_accuracy,
                    "accepted": step.accepted,
                    "version": step.version,
                }
                for step in (schedule.steps if schedule is not None else [])
            ],
            "final_teacher_version": tuner.scorer.teacher.version,
            "search_examples": tuner.search_examples,
            "bootstrap_examples": tuner.bootstrap_examples,
            "rerank_examples": tuner.rerank_examples,
            "search_seconds": round(search_seconds, 1),
            "seconds": round(time.perf_counter() - started, 1),
        }


def mean_ci(values: list[float]) -> tuple[float, float]:
    """The mean and the half-width of its 95% confidence interval (Student's t; NaN for one value)."""
    mean = statistics.mean(values)
    if len(values) < 2:
        return mean, math.nan
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, float(half)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--startup", type=int, default=5)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--bootstrap-epochs", type=int, default=6)
    parser.add_argument("--mature-epochs", type=int, default=6)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--image-size", type=int, default=8)
    parser.add_argument("--max-layers", type=int, default=5)
    parser.add_argument("--teacher-epochs", type=int, default=1)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    parser.add_argument("--dataset", default="digits", choices=("digits", "cifar10"))
    parser.add_argument("--train-size", type=int, default=4000, help="cifar10 only")
    parser.add_argument("--val-size", type=int, default=1000, help="cifar10 only")
    parser.add_argument("--out", type=Path, default=Path("bench-bootstrap.jsonl"))
    arguments = parser.parse_args()

    if arguments.dataset == "cifar10":
        data = cifar10_subset(arguments.train_size, arguments.val_size)
        name = f"cifar10-{arguments.train_size}"
    else:
        data = digits(image_size=arguments.image_size, probe_size=100, seed=0)
        name = f"digits-{arguments.image_size}px"
    print(
        f"data: {name}, {len(data.x_train)} training, {len(data.x_val)} validation, {len(data.x_probe)} probe"
    )
    cache = Path(tempfile.gettempdir()) / f"keras-sage-bench-bootstrap-{name}"
    cache.mkdir(exist_ok=True)
    teacher, teacher_accuracy = weak_teacher(data, cache, arguments.teacher_epochs)
    print(
        f"weak teacher: ResNet-8, {arguments.teacher_epochs} epoch(s), "
        f"validation accuracy {teacher_accuracy:.4f}"
    )
    rows = (
        [json.loads(line) for line in arguments.out.read_text().splitlines()]
        if arguments.out.exists()
        else []
    )
    done = {(row["arm"], row["seed"]) for row in rows}
    for seed in arguments.seeds:
        for arm in arguments.arms:
            if (arm, seed) in done:
                continue
            row = {**run_arm(arm, seed, data, teacher, arguments), "teacher_accuracy": teacher_accuracy}
            rows.append(row)
            with arguments.out.open("a") as file:
                file.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)

    print(
        f"\narm        seeds  best-after-{arguments.trials} mature accuracy (mean ± 95% CI)"
        "  accepted steps  seconds"
    )
    by_arm = {arm: {row["seed"]: row for row in rows if row["arm"] == arm} for arm in ARMS}
    for arm in ARMS:
        chosen = list(by_arm[arm].values())
        if not chosen:
            continue
        mean, half = mean_ci([row["best_mature_accuracy"] for row in chosen])
        accepted = statistics.mean(sum(step["accepted"] for step in row["steps"]) for row in chosen)
        seconds = statistics.mean(row["seconds"] for row in chosen)
        print(
            f"{arm:9s}  {len(chosen):5d}  {mean:.4f} ± {half:.4f}{'':24s}  {accepted:14.1f}  {seconds:7.0f}"
        )
    for other in ("fixed", "alpha0"):
        seeds = sorted(set(by_arm["bootstrap"]) & set(by_arm[other]))
        if seeds:
            differences = [
                by_arm["bootstrap"][seed]["best_mature_accuracy"]
                - by_arm[other][seed]["best_mature_accuracy"]
                for seed in seeds
            ]
            mean, half = mean_ci(differences)
            print(f"bootstrap − {other}: {mean:+.4f} ± {half:.4f} (paired over seeds {seeds})")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
