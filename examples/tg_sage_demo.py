"""`make demo`: teacher-guided search (TG-SAGE) against performance-guided search, offline, on digits.

1. Trains a small CIFAR-style ResNet teacher on scikit-learn's digits (16×16), cached in the output folder.
2. Registers its three stacks (L1-L3) as a teacher file with the real command line,
   `keras-sage teacher register`.
3. Runs the same TPE search over the paper's 10-layer CNN space twice with a short premature budget:
   guided by P + α·TG (α = 1, TG-SAGE) and by P alone (α = 0). Both start from the same random
   candidates; after them, each arm's score steers where it samples next.
4. Trains each arm's best candidates longer (the paper's reranking step) and prints one table: trials,
   best P, best TG, the mature accuracy of each arm's winner, and the examples processed (M1·E1 + M2·E2).
5. Writes a plot of both searches (P against TG, score per trial) to the output folder.

Run: `python examples/tg_sage_demo.py` (about 10 minutes on 2 CPU cores); `--help` for the settings.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from keras_sage.analysis import format_table, plot_search, search_summary, trial_records
from keras_sage.datasets import digits
from keras_sage.hypermodels import CNNSearchSpace, resnet_cifar
from keras_sage.tuners import TPEOracle
from keras_sage.tuners.sage_tuner import DEFAULT_MAX_CONSECUTIVE_FAILED_TRIALS, SCORE_OBJECTIVE, SageTuner

TEACHER_LAYERS = ("L1", "L2", "L3")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("demo-output"), help="working folder")
    parser.add_argument("--trials", type=int, default=15, help="trials per arm (M1)")
    parser.add_argument("--premature-steps", type=int, default=30, help="SGD steps per candidate")
    parser.add_argument(
        "--oracle",
        choices=("tpe", "random"),
        default="tpe",
        help="search algorithm (random: same candidates)",
    )
    parser.add_argument("--startup-trials", type=int, default=5, help="random trials before TPE starts")
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


def make_oracle(arguments: argparse.Namespace) -> TPEOracle | None:
    """TPE with fewer random start-up trials than the paper's 20, to fit the demo's 15 trials."""
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

    arms = [
        run_arm("tg_sage", 1.0, data, teacher_path, arguments),
        run_arm("performance", 0.0, data, teacher_path, arguments),
    ]
    print()
    print(format_table([arm["row"] for arm in arms]))
    plot_path = plot_search(
        {"P+TG (α=1)": arms[0]["records"], "P (α=0)": arms[1]["records"]}, arguments.output / "search.png"
    )
    print(f"\nplot: {plot_path}")
    print(f"total time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
