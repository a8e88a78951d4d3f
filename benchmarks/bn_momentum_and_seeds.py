"""Two sources of error in the 16 px CIFAR-10 pool: batch-norm momentum at short budgets, and seed noise.

Both re-train architectures of the committed pool `benchmarks/pools/cifar10-16px-cpu-seed0-teacher87816699`
with the same students' data, teacher and `keras_sage.analysis.build_pool` (rows appended as they come,
so a killed run resumes):

- `--part momentum`: every analysable architecture of the pool with a batch normalization layer and at most
  250 MFLOPs, trained 63 steps (1 epoch of the 4,000 images) with the batch-norm momentum of Keras (0.99,
  what the pool used) and of PyTorch (0.9, what NAS-Bench-201 and our cell spaces use), P and TG scored
  in inference mode at 0, 16 and 63 steps. The same seed for both: training uses the batch statistics, so
  the weights are the same and only the moving statistics (what inference mode reads) differ.
- `--part seeds`: five architectures spanning the pool's mature accuracies (the cheapest of each range)
  trained to maturity (10 epochs) with three new seeds: the seed-to-seed spread of mature accuracy.
- `--report`: prints both analyses as markdown (and writes them beside the rows).

    python benchmarks/bn_momentum_and_seeds.py --part momentum
    python benchmarks/bn_momentum_and_seeds.py --part seeds
    python benchmarks/bn_momentum_and_seeds.py --report
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from cifar10_science import (
    DEFAULT_ARCHIVE,
    DEFAULT_CACHE,
    DEFAULT_POOLS,
    SCALES,
    cifar10_arrays,
    split,
    standardized,
    teacher_files,
    teacher_model,
)

from keras_sage import contract
from keras_sage._atomic import write_atomically
from keras_sage.analysis.pool import read_pool
from keras_sage.analysis.predictors import percentile_interval, resample_indices

RESULTS = Path(__file__).resolve().parent / "results"
POOL = DEFAULT_POOLS / "cifar10-16px-cpu-seed0-teacher87816699.jsonl"
MOMENTA = (0.99, 0.9)
MOMENTUM_BUDGETS = (0, 16, 63)
MAX_FLOPS = 250e6
# The cheapest architecture of the pool in each range of mature accuracy (0.29, 0.35, 0.39, 0.42, 0.46).
SPREAD_ARCHITECTURES = ("0012", "0011", "0015", "0029", "0028")
SPREAD_SEEDS = (100, 200, 300)
SPREAD_BUDGETS = (16, 63)
N_RESAMPLES = 2000


def momentum_path(momentum: float) -> Path:
    return RESULTS / f"bn-momentum-{momentum:g}-cifar10-16px.jsonl"


def seeds_path(seed: int) -> Path:
    return RESULTS / f"seed-spread-cifar10-16px-seed{seed}.jsonl"


def pool_architectures() -> dict[str, dict]:
    """The pool's first row of each analysable architecture, by its id."""
    first: dict[str, dict] = {}
    for row in read_pool(POOL):
        if math.isfinite(row.get(contract.MATURE_ACCURACY, math.nan)):
            first.setdefault(row["arch_id"], row)
    return first


def has_batch_norm(hyperparameters: dict) -> bool:
    layers = range(1, hyperparameters["num_layers"] + 1)
    return any(hyperparameters.get(f"normalization_{layer}") == "batchnorm" for layer in layers)


def momentum_architectures() -> list[str]:
    return [
        arch_id
        for arch_id, row in sorted(pool_architectures().items())
        if has_batch_norm(row["hyperparameters"]) and row[contract.FLOPS] <= MAX_FLOPS
    ]


def train(part: str) -> None:
    from keras_sage.analysis import build_pool
    from keras_sage.hypermodels import CNNSearchSpace

    scale = SCALES["cpu"]
    splits = split(cifar10_arrays(DEFAULT_ARCHIVE, DEFAULT_CACHE, scale.image_size), scale, 0)
    teacher, record = teacher_model(splits, scale, DEFAULT_POOLS, 0)
    teacher_path, _ = teacher_files(teacher, record["weights_fingerprint"], splits, scale, DEFAULT_CACHE, 0)
    data = (
        (standardized(splits.x_student_train), splits.y_student_train),
        (standardized(splits.x_student_validation), splits.y_student_validation),
    )
    architectures = pool_architectures()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if part == "momentum":
        chosen = momentum_architectures()
        runs = [(momentum, momentum_path(momentum), 0, MOMENTUM_BUDGETS, 1) for momentum in MOMENTA]
    else:
        chosen = list(SPREAD_ARCHITECTURES)
        momentum = scale.batch_norm_momentum  # the pool's
        runs = [
            (momentum, seeds_path(seed), seed, SPREAD_BUDGETS, scale.mature_epochs) for seed in SPREAD_SEEDS
        ]
    for momentum, path, seed, budgets, epochs in runs:
        space = CNNSearchSpace(
            max_layers=scale.max_layers,
            num_classes=10,
            input_shape=splits.x_student_train.shape[1:],
            batch_norm_momentum=momentum,
        )
        build_pool(
            space,
            teacher_path,
            data,
            hyperparameters=[architectures[arch_id]["hyperparameters"] for arch_id in chosen],
            budgets=budgets,
            mature_epochs=epochs,
            path=path,
            batch_size=scale.batch_size,
            seed=seed,
        )


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return float(stats.spearmanr(x, y).statistic)


def resampled(statistic, n: int) -> tuple[float, float, float]:
    """`statistic(indices)` on all items, with a 95% percentile interval over resampled items."""
    samples = np.array([statistic(indices) for indices in resample_indices(n, N_RESAMPLES, 0)])
    low, high = percentile_interval(samples[np.isfinite(samples)])
    return statistic(np.arange(n)), low, high


def momentum_values(budget: int, chosen: list[str]) -> dict[float, dict[str, np.ndarray]]:
    """P, TG and mature accuracy at `budget` of the architectures scored under both momenta."""
    pool = pool_architectures()
    by_momentum = {}
    for momentum in MOMENTA:
        by_momentum[momentum] = {
            chosen[int(row["arch_id"])]: row
            for row in read_pool(momentum_path(momentum))
            if row["budget"] == budget and int(row["arch_id"]) < len(chosen)
        }
    common = [arch_id for arch_id in chosen if all(arch_id in rows for rows in by_momentum.values())]
    return {
        momentum: {
            "P": np.array([rows[i][contract.PREMATURE_ACCURACY] for i in common]),
            "TG": np.array([rows[i][contract.TEACHER_GUIDANCE] for i in common]),
            "mature": np.array([pool[i][contract.MATURE_ACCURACY] for i in common]),
        }
        for momentum, rows in by_momentum.items()
    }


def interval(value: tuple[float, float, float], signed: bool = False) -> str:
    number = "{:+.2f}" if signed else "{:.2f}"
    return f"{number.format(value[0])} [{number.format(value[1])}, {number.format(value[2])}]"


def rho(scores: np.ndarray, mature: np.ndarray) -> tuple[float, float, float]:
    """Spearman's ρ of `scores` with `mature` (or any second score), with its resampled interval."""
    return resampled(lambda i: spearman(scores[i], mature[i]), len(mature))


def rho_difference(new: np.ndarray, old: np.ndarray, mature: np.ndarray) -> tuple[float, float, float]:
    """ρ(new, mature) − ρ(old, mature) on the same resampled architectures, with its interval."""
    return resampled(lambda i: spearman(new[i], mature[i]) - spearman(old[i], mature[i]), len(mature))


def momentum_report() -> list[str]:
    chosen = momentum_architectures()
    lines = [
        f"### Batch-norm momentum: {len(chosen)} architectures of the pool with batch normalization "
        f"(≤ {MAX_FLOPS / 1e6:.0f} MFLOPs), the same seed and steps, scored in inference mode",
        "",
        "| steps | momentum | mean P | ρ(P, mature) | ρ(TG, mature) | Δρ(P), 0.9 − 0.99 "
        "| Δρ(TG), 0.9 − 0.99 |",
        "|---|---|---|---|---|---|---|",
    ]
    for budget in MOMENTUM_BUDGETS:
        values = momentum_values(budget, chosen)
        keras_default, pytorch_default = values[0.99], values[0.9]
        mature, n = keras_default["mature"], len(keras_default["mature"])
        if n < 3:
            lines.append(f"| {budget} | — | {n} architectures in both runs so far | | | | |")
            continue

        for momentum, scores in values.items():
            steps = f"{budget} ({n} archs)" if momentum == MOMENTA[0] else str(budget)
            differences = (
                [
                    interval(rho_difference(pytorch_default[name], keras_default[name], mature), signed=True)
                    for name in ("P", "TG")
                ]
                if scores is pytorch_default
                else ["", ""]
            )
            lines.append(
                f"| {steps} | {momentum:g} | {np.mean(scores['P']):.3f} | "
                f"{interval(rho(scores['P'], mature))} | {interval(rho(scores['TG'], mature))} | "
                f"{differences[0]} | {differences[1]} |"
            )
    return lines


def retest_report() -> list[str]:
    """P and TG of the same architectures under two seeds: the pool's (seed = its position) and the
    momentum run's at the pool's momentum (seed = its position in that run): how well a seed's short
    training ranks the architectures as another seed's does. Architectures whose two positions, hence
    seeds, coincide (the first few) are left out."""
    chosen = momentum_architectures()
    pool = read_pool(POOL)
    rerun = read_pool(momentum_path(MOMENTA[0]))
    lines = [
        f"### Seed to seed at short budgets: the pool's P and TG against a rerun with another seed "
        f"(momentum {MOMENTA[0]:g} in both)",
        "",
        "| steps | architectures | ρ(P, P′) | ρ(TG, TG′) | mean abs(P − P′) |",
        "|---|---|---|---|---|",
    ]
    for budget in MOMENTUM_BUDGETS[1:]:
        first = {row["arch_id"]: row for row in pool if row["budget"] == budget}
        second = {chosen[int(row["arch_id"])]: row for row in rerun if row["budget"] == budget}
        ids = [
            arch_id
            for arch_id in chosen
            if arch_id in first and arch_id in second and first[arch_id]["seed"] != second[arch_id]["seed"]
        ]
        if len(ids) < 3:
            continue
        pairs = {
            name: (np.array([first[i][name] for i in ids]), np.array([second[i][name] for i in ids]))
            for name in (contract.PREMATURE_ACCURACY, contract.TEACHER_GUIDANCE)
        }
        p_first, p_second = pairs[contract.PREMATURE_ACCURACY]
        difference = np.mean(np.abs(p_first - p_second))
        lines.append(
            f"| {budget} | {len(ids)} | {interval(rho(*pairs[contract.PREMATURE_ACCURACY]))} | "
            f"{interval(rho(*pairs[contract.TEACHER_GUIDANCE]))} | {difference:.3f} |"
        )
    return lines


def mature_rows(path: Path) -> dict[str, dict]:
    """A seed run's last-budget row of each architecture (it carries the mature accuracy), by pool id."""
    if not path.exists():
        return {}
    return {
        SPREAD_ARCHITECTURES[int(row["arch_id"])]: row
        for row in read_pool(path)
        if row["budget"] == SPREAD_BUDGETS[-1]
    }


def seeds_report() -> list[str]:
    pool = pool_architectures()
    lines = [
        "### Seed-to-seed spread of mature accuracy (10 epochs, the pool's training)",
        "",
        "| architecture | MFLOPs | pool (seed = position) | "
        + " | ".join(f"seed {s}" for s in SPREAD_SEEDS)
        + " | sd of the four seeds |",
        "|---|---|---|" + "---|" * len(SPREAD_SEEDS) + "---|",
    ]
    runs = [mature_rows(seeds_path(seed)) for seed in SPREAD_SEEDS]
    variances = []
    for arch_id in SPREAD_ARCHITECTURES:
        accuracies = [pool[arch_id][contract.MATURE_ACCURACY]]  # the pool's own run is one of the seeds
        accuracies += [run[arch_id][contract.MATURE_ACCURACY] for run in runs if arch_id in run]
        accuracies = [a for a in accuracies if math.isfinite(a)]
        spread = float(np.std(accuracies, ddof=1)) if len(accuracies) >= 2 else math.nan
        if len(accuracies) >= 2:
            variances.append(spread**2)
        cells = [f"{run[arch_id][contract.MATURE_ACCURACY]:.3f}" if arch_id in run else "—" for run in runs]
        lines.append(
            f"| {arch_id} | {pool[arch_id][contract.FLOPS] / 1e6:.1f} | "
            f"{pool[arch_id][contract.MATURE_ACCURACY]:.3f} | " + " | ".join(cells) + f" | {spread:.3f} |"
        )
    if variances:
        within = math.sqrt(float(np.mean(variances)))
        between = float(np.std([row[contract.MATURE_ACCURACY] for row in pool.values()], ddof=1))
        reliability = max(0.0, 1 - within**2 / between**2)
        lines += [
            "",
            f"Pooled within-architecture sd (seed noise) over {len(variances)} architectures × 4 seeds: "
            f"{within:.4f}; "
            f"sd of mature accuracy across the pool's {len(pool)} architectures: {between:.4f}; the share "
            f"of that spread which is not seed noise (reliability) ≈ {reliability:.2f}, so no predictor can "
            f"correlate with one seed's mature accuracy much above √{reliability:.2f} ≈ "
            f"{math.sqrt(reliability):.2f} (Pearson's attenuation, as a guide for Spearman's ρ).",
        ]
    return lines


def report() -> str:
    sections = []
    if all(momentum_path(m).exists() for m in MOMENTA):
        sections += [*momentum_report(), "", *retest_report(), ""]
    if any(seeds_path(s).exists() for s in SPREAD_SEEDS):
        sections += seeds_report()
    text = "\n".join(sections) + "\n"
    write_atomically(
        RESULTS / "bn-momentum-and-seeds-cifar10-16px.md", lambda file: file.write(text.encode())
    )
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("momentum", "seeds"))
    parser.add_argument("--report", action="store_true")
    arguments = parser.parse_args(argv)
    if arguments.part:
        train(arguments.part)
    if arguments.report or not arguments.part:
        print(report())


if __name__ == "__main__":
    main()
