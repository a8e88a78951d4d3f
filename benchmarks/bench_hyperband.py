"""TG under Hyperband against TPE at the same examples processed, on digits, with α = 0 and α > 0.

For each seed and α it runs, on scikit-learn's digits (real, no download):

- `SageHyperband(max_epochs, factor, hyperband_iterations)`: P + α·TG decides every promotion;
- `SageTuner` with `TPEOracle` at a premature budget of one epoch, with as many trials as Hyperband's
  examples processed pay for (so both arms cost the same SGD examples, M1·E1);

then trains each arm's best candidate (by its search score) for `--mature-epochs` epochs from scratch
(`rerank`) and records its mature validation accuracy. One JSON line per (arm, α, seed) is appended to
`--out` as it finishes, so a killed run resumes; the table of means and the per-seed rows print at the end.

Run: `.venv/bin/python benchmarks/bench_hyperband.py [--seeds 1 2 3] [--alphas 0 1] [--out FILE]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from _teacher import resnet8_teacher

from keras_sage.datasets import digits
from keras_sage.hypermodels import CNNSearchSpace
from keras_sage.tuners import SageHyperband, SageTuner, TPEOracle
from keras_sage.tuners.sage_tuner import SCORE_OBJECTIVE


def run_arm(arm: str, alpha: float, seed: int, trials: int, data, teacher: Path, arguments) -> dict:
    space = CNNSearchSpace(
        max_layers=arguments.max_layers, num_classes=10, input_shape=data.x_train.shape[1:]
    )
    common = {"teacher": teacher, "alpha": alpha, "seed": seed, "overwrite": True}
    with tempfile.TemporaryDirectory() as folder:
        if arm == "hyperband":
            tuner: SageTuner = SageHyperband(
                space,
                max_epochs=arguments.max_epochs,
                factor=arguments.factor,
                hyperband_iterations=arguments.iterations,
                directory=folder,
                project_name="hb",
                **common,
            )
        else:
            oracle = TPEOracle(objective=SCORE_OBJECTIVE, max_trials=trials, seed=seed, n_startup_trials=5)
            tuner = SageTuner(
                space, premature_epochs=1, oracle=oracle, directory=folder, project_name="tpe", **common
            )
        started = time.perf_counter()
        tuner.search(
            data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), batch_size=32, verbose=0
        )
        (best,) = tuner.rerank(
            1,
            arguments.mature_epochs,
            data.x_train,
            data.y_train,
            validation_data=(data.x_val, data.y_val),
            batch_size=32,
        )
        completed = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
        return {
            "arm": arm,
            "alpha": alpha,
            "seed": seed,
            "trials": len(tuner.oracle.trials),
            "completed": len(completed),
            "search_examples": tuner.search_examples,
            "rerank_examples": tuner.rerank_examples,
            "best_mature_accuracy": best.mature_accuracy,
            "seconds": round(time.perf_counter() - started, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 1.0])
    parser.add_argument("--image-size", type=int, default=8)
    parser.add_argument("--max-layers", type=int, default=5)
    parser.add_argument("--max-epochs", type=int, default=3)
    parser.add_argument("--factor", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--mature-epochs", type=int, default=6)
    parser.add_argument("--teacher-epochs", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path("bench-hyperband.jsonl"))
    arguments = parser.parse_args()

    data = digits(image_size=arguments.image_size, probe_size=100, seed=0)
    cache = Path(tempfile.gettempdir()) / f"keras-sage-bench-hyperband-{arguments.image_size}px"
    cache.mkdir(exist_ok=True)
    teacher, accuracy = resnet8_teacher(data, cache / "teacher.h5", arguments.teacher_epochs)
    print(f"teacher: ResNet-8, validation accuracy {accuracy}", flush=True)
    rows = (
        [json.loads(line) for line in arguments.out.read_text().splitlines()]
        if arguments.out.exists()
        else []
    )
    done = {(row["arm"], row["alpha"], row["seed"]) for row in rows}
    for seed in arguments.seeds:
        for alpha in arguments.alphas:
            examples = None
            for arm in ("hyperband", "tpe"):
                previous = [
                    r for r in rows if (r["arm"], r["alpha"], r["seed"]) == ("hyperband", alpha, seed)
                ]
                if arm == "tpe":
                    # As many one-epoch TPE trials as Hyperband's examples pay for.
                    examples = previous[0]["search_examples"] if previous else examples
                    trials = max(1, round(examples / len(data.x_train)))
                else:
                    trials = 0
                if (arm, alpha, seed) in done:
                    continue
                row = run_arm(arm, alpha, seed, trials, data, teacher, arguments)
                rows.append(row)
                with arguments.out.open("a") as file:
                    file.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
    print("\narm        alpha  seeds  search examples (mean)  best mature accuracy (mean ± sd)")
    for arm in ("hyperband", "tpe"):
        for alpha in arguments.alphas:
            chosen = [r for r in rows if r["arm"] == arm and r["alpha"] == alpha]
            if not chosen:
                continue
            accuracies = [r["best_mature_accuracy"] for r in chosen]
            spread = statistics.stdev(accuracies) if len(accuracies) > 1 else float("nan")
            examples = statistics.mean(r["search_examples"] for r in chosen)
            print(
                f"{arm:9s}  {alpha:5g}  {len(chosen):5d}  {examples:22,.0f}"
                f"  {statistics.mean(accuracies):.4f} ± {spread:.4f}"
            )


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
