"""Does the teacher help on NAS-Bench-201? TG against the field's proxies, on outside mature accuracies.

The same experiment as `cifar10_science.py` (whose data and teacher stages it reuses), on the field's common
ground: students are NAS-Bench-201 cells (`keras_sage.NASBench201SearchSpace`) at 32×32, drawn uniformly
(seeded) from the 15,625, and their mature accuracy is looked up in `keras_sage.nasbench201` (no mature
training at all). Stages, each resumable (re-running the same command continues where it stopped):

1. teacher: a ResNet trained on the paper's 45,000 training images at 32×32 with the paper's augmentation,
   resumable at every epoch; weights and record committed beside the pool.
2. pool: each cell trained once on the students' subset and scored by P, TG, each S_i and the control
   teachers at initialisation and at ⅛, ¼ and ½ epoch of the subset, with the field's proxies at
   initialisation (`keras_sage.analysis.build_pool`), appended to `benchmarks/pools/` as it goes.
3. report: `keras-sage report` of the pool (α chosen out of sample), committed beside it.
4. search: the product's `TPEOracle` on `NASBench201SearchSpace` at the pool's shortest useful budget, three
   arms at equal examples, paired by seed (the same random start-up trials): P alone (α = 0), P + α·TG (α
   chosen on the pool out of sample), and P + β·x (x the pool's best proxy, β chosen on the pool); the
   budget is the shortest at which P is shown to rank the cells (`search_budget`), all kept in a plan file
   beside the rows. No reranking: the top-scored cell's mature accuracy is looked up, and its regret to
   the space's best is recorded after every trial, so the examples each arm needs to reach P's final
   regret can be counted.

`--scale cpu` fits a 2-core CPU (a ResNet-8 teacher for 10 epochs; students on 10,000 images);
`--scale gpu` is the paper's budget (2 epochs of 45,000 at 32×32) and a ResNet-56 teacher, sized to run in
10-minute pieces (the pool resumes after the last finished cell): `benchmarks/nb201_gpu_pieces.sh` runs one
piece and says whether to run another. Run, for example:

    python examples/nasbench201_science.py --scale cpu --stage teacher

Searches of different seeds, or of different arms of a seed, may run in separate processes at once (each
has its own project; rows are appended whole); on 2 cores one process leaves a core partly idle, so two
or three run more trials an hour than one. Give each process its own seeds or arms:

    python examples/nasbench201_science.py --scale cpu --stage search --search-seeds 7 8 &
    python examples/nasbench201_science.py --scale cpu --stage search --search-seeds 9 &
    python examples/nasbench201_science.py --scale cpu --stage search --search-seeds 10 --search-arms P
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import keras_tuner
import numpy as np
from cifar10_science import (
    DEFAULT_ARCHIVE,
    DEFAULT_CACHE,
    DEFAULT_POOLS,
    Scale,
    cifar10_arrays,
    split,
    standardized,
    teacher_files,
    teacher_model,
)

from keras_sage import nasbench201
from keras_sage._atomic import write_atomically
from keras_sage.analysis import (
    append_rows,
    architecture_ids,
    build_pool,
    calibrate_alpha,
    pool_report,
    read_pool,
    searches_report,
)
from keras_sage.analysis.beyond_proxies import teacher_beyond_proxy
from keras_sage.analysis.pool import MATURE_ACCURACY, MATURE_ACCURACY_SOURCE
from keras_sage.analysis.predictors import column, resampled_correlation, rows_at_budget
from keras_sage.analysis.records import SEARCH_EXAMPLES, TOP_SCORE_MATURE_ACCURACY, WINNER_MATURE_ACCURACY
from keras_sage.contract import EXAMPLES_PROCESSED, PREMATURE_ACCURACY, SCORE
from keras_sage.hypermodels import NASBench201SearchSpace
from keras_sage.proxies import PROXY_NAMES
from keras_sage.tuners import SageTuner, TPEOracle

# Budgets in epochs of the students' training subset: at initialisation, ⅛, ¼ and ½ epoch.
BUDGET_EPOCHS = (0, 0.125, 0.25, 0.5)
# The searches' rows, plan and report lie beside their pool, named `<pool>-searches...`.
SEARCHES = "-searches"
SCALES = {
    # A minute's check that every stage runs (not a result).
    "smoke": Scale(
        image_size=32,
        teacher_depth=8,
        teacher_epochs=1,
        student_train=640,
        student_validation=200,
        probe_size=100,
        architectures=2,
        mature_epochs=0,
        batch_size=64,
    ),
    # A 2-core CPU: a median cell trains ~200 images/s at 32×32, the largest ~70, so ½ epoch of 10,000
    # images costs 25–70 s a cell; 150 cells take a few hours in the background.
    "cpu": Scale(
        image_size=32,
        teacher_depth=8,
        teacher_epochs=10,
        student_train=10000,
        student_validation=1000,
        probe_size=500,
        architectures=150,
        mature_epochs=0,
        batch_size=64,
    ),
    # The paper's budget on one GPU: students up to 2 epochs of the 45,000, a ResNet-56 teacher.
    "gpu": Scale(
        image_size=32,
        teacher_depth=56,
        teacher_epochs=160,
        student_train=45000,
        student_validation=5000,
        probe_size=1000,
        architectures=150,
        mature_epochs=0,
        batch_size=128,
    ),
}
# The CNN experiment's search settings, which these searches replace with their own (`--search-seeds`,
# `--search-trials`, no reranking): left out of the pool's description.
CNN_SEARCH_FIELDS = ("max_layers", "search_trials", "search_seeds", "rerank_top_k")
# The gpu scale's budgets reach the paper's 2 epochs.
GPU_BUDGET_EPOCHS = (0, 0.25, 0.5, 1, 2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="cpu")
    parser.add_argument("--stage", choices=("teacher", "pool", "report", "search"), default="report")
    parser.add_argument("--search-seeds", type=int, nargs="+", default=list(range(1, 11)))
    parser.add_argument(
        "--search-arms",
        nargs="+",
        metavar="ARM",
        help="run only these arms of the search plan, by name (e.g. 'P + 8·TG'); every arm by default",
    )
    parser.add_argument("--search-trials", type=int, default=30)
    parser.add_argument("--pools", type=Path, default=DEFAULT_POOLS)
    parser.add_argument("--data", type=Path, default=DEFAULT_ARCHIVE)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args(argv)
    scale = SCALES[arguments.scale]
    arguments.cache.mkdir(parents=True, exist_ok=True)
    splits = split(cifar10_arrays(arguments.data, arguments.cache, scale.image_size), scale, arguments.seed)
    teacher, record = teacher_model(
        splits, scale, arguments.pools, arguments.seed, backup=arguments.cache / "teacher-backups"
    )
    print(json.dumps(record, indent=2))
    if arguments.stage == "teacher":
        return
    teacher_path, controls = teacher_files(
        teacher, record["weights_fingerprint"], splits, scale, arguments.cache, arguments.seed
    )
    name = (
        f"nasbench201-cifar10-{scale.image_size}px-{arguments.scale}-seed{arguments.seed}"
        f"-teacher{record['weights_fingerprint'][:8]}"
    )
    steps_per_epoch = -(-len(splits.y_student_train) // scale.batch_size)
    budget_epochs = GPU_BUDGET_EPOCHS if arguments.scale == "gpu" else BUDGET_EPOCHS
    budgets = [round(epochs * steps_per_epoch) for epochs in budget_epochs]
    description = {
        "scale": {
            key: value for key, value in dataclasses.asdict(scale).items() if key not in CNN_SEARCH_FIELDS
        },
        "searches": f"{name}{SEARCHES}.jsonl (one row per search run), planned in "
        f"{name}{SEARCHES}-plan.json; no reranking: the top-scored cell's mature accuracy is looked up",
        "budget_epochs": budget_epochs,
        "budgets": budgets,
        "teacher": record,
        "mature_accuracy": nasbench201.MATURE_ACCURACY_SOURCE,
        "data": "CIFAR-10 JPEGs (shared/data/cifar10-jpeg.tar.gz), 45,000/5,000 stratified split; students "
        f"train on {len(splits.y_student_train)} of the 45,000 and are validated on "
        f"{len(splits.y_student_validation)} of the 5,000; {len(splits.y_probe)} probe images from the "
        "5,000, disjoint from the students' validation images; per-image standardization, no augmentation "
        "for students; proxies on the first 64 training images of the subset",
    }
    arguments.pools.mkdir(parents=True, exist_ok=True)
    description_path = arguments.pools / f"{name}.json"
    write_atomically(description_path, lambda file: file.write(json.dumps(description, indent=2).encode()))
    pool_path = arguments.pools / f"{name}.jsonl"
    if arguments.stage == "pool" or not pool_path.exists():
        space = NASBench201SearchSpace(num_classes=10, input_shape=splits.x_student_train.shape[1:])
        build_pool(
            space,
            teacher_path,
            (
                (standardized(splits.x_student_train), splits.y_student_train),
                (standardized(splits.x_student_validation), splits.y_student_validation),
            ),
            hyperparameters=[
                space.from_arch_string(cell)
                for cell in nasbench201.sample_arch_strings(scale.architectures, arguments.seed)
            ],
            budgets=budgets,
            mature_accuracy=lambda hp: nasbench201.mature_accuracy(space.to_arch_string(hp)),
            mature_accuracy_source=nasbench201.MATURE_ACCURACY_SOURCE,
            proxies=PROXY_NAMES,
            controls=controls,
            path=pool_path,
            batch_size=scale.batch_size,
            seed=arguments.seed,
        )
    if arguments.stage == "pool":
        return
    rows = read_pool(pool_path)
    if arguments.stage == "search":
        searches_path = searches_file(pool_path)
        data = (
            (standardized(splits.x_student_train), splits.y_student_train),
            (standardized(splits.x_student_validation), splits.y_student_validation),
        )
        run_searches(rows, data, teacher_path, searches_path, arguments, scale)
        size = f"{scale.image_size}×{scale.image_size}"
        title = f"NAS-Bench-201 searches ({arguments.scale} scale, CIFAR-10 {size})"
        out = searches_path.with_name(f"{searches_path.stem}-report")
        print(searches_report(read_pool(searches_path), out, title=title))
        return
    title = f"NAS-Bench-201 pool ({arguments.scale} scale, CIFAR-10 {scale.image_size}×{scale.image_size})"
    print(pool_report(rows, arguments.pools / f"{name}-report", title=title, seed=arguments.seed))


def searches_file(pool_path: Path) -> Path:
    """The rows file of the searches run on the pool at `pool_path`, beside it."""
    return pool_path.with_name(f"{pool_path.stem}{SEARCHES}.jsonl")


def pool_files(pools: Path, pattern: str = "nasbench201-cifar10-*.jsonl") -> list[Path]:
    """The NAS-Bench-201 pools' rows files in `pools` matching `pattern`, by name: not the searches' rows
    that lie beside them."""
    return sorted(path for path in pools.glob(pattern) if not path.stem.endswith(SEARCHES))


def search_budget(pool_rows: list) -> tuple[int, str]:
    """The pool's shortest useful budget for the searches, and why: the shortest trained budget at which P,
    the baseline arm's score, is shown to rank the cells (its ρ's 95% interval above 0); if P is shown at
    none, the budget where ρ(P) is highest. A budget at which P ranks the cells backwards would hand the
    guided arms a cheap win."""
    budgets = sorted({row["budget"] for row in pool_rows if row["budget"] > 0})
    if not budgets:
        raise ValueError("the pool has no trained budget (only initialisation): no search budget to choose")
    correlations = {}
    for budget in budgets:
        rows = rows_at_budget(pool_rows, budget)
        premature, target = column(rows, PREMATURE_ACCURACY), column(rows, MATURE_ACCURACY)
        kept = np.isfinite(premature) & np.isfinite(target)
        correlations[budget] = resampled_correlation(premature[kept], target[kept])
    shown = [budget for budget in budgets if correlations[budget][1] > 0]
    described = "; ".join(
        f"{budget} steps: ρ(P) = {r:.3f} [{low:.3f}, {high:.3f}]"
        for budget, (r, low, high) in correlations.items()
    )
    if shown:
        return shown[0], f"the shortest budget at which ρ(P) is shown above 0 ({described})"
    best = max(budgets, key=lambda budget: np.nan_to_num(correlations[budget][0], nan=-np.inf))
    return best, f"ρ(P) is shown above 0 at no budget; the budget of the highest ρ(P) ({described})"


def search_plan(pool_rows: list, path: Path) -> dict:
    """The searches' budget and arms: P alone, P + α·TG (α chosen on the pool out of sample), and
    P + β·(the pool's best proxy).

    Chosen once, on the pool as it is then, and kept in `path`: searches that resume later (the pool may
    have grown) run at the same budget with the same arms.
    """
    if path.exists():
        return dict(json.loads(path.read_text()))
    budget, reason = search_budget(pool_rows)
    # With α = 0 chosen on the pool the guided arm would be P's own: the paper's α = 1 instead.
    alpha = calibrate_alpha(pool_rows, budget).alpha or 1.0
    arms = [
        {"arm": "P", "alpha": 0.0, "proxy_weights": {}},
        {"arm": f"P + {alpha:g}·TG", "alpha": alpha, "proxy_weights": {}},
    ]
    beyond = teacher_beyond_proxy(pool_rows, budget)
    if beyond is not None:
        proxy, beta = beyond.proxy, beyond.beta
        arms.append({"arm": f"P + {beta:.3g}·{proxy}", "alpha": 0.0, "proxy_weights": {proxy: beta}})
    plan = {
        "budget": budget,
        "why": reason,
        "pool_architectures": len(architecture_ids(pool_rows)),
        "arms": arms,
    }
    write_atomically(path, lambda file: file.write(json.dumps(plan, indent=2).encode()))
    return plan


def run_searches(
    pool_rows: list, data: tuple, teacher_path: Path, path: Path, arguments, scale: Scale
) -> None:
    """Every arm at every seed not yet run; one row per search appended to `path` as it ends."""
    best = max(nasbench201.mature_accuracy(cell) for cell in nasbench201.arch_strings())
    (x_train, y_train), validation = data
    plan = search_plan(pool_rows, path.with_name(f"{path.stem}-plan.json"))
    budget = plan["budget"]
    rows = read_pool(path) if path.exists() else []
    done = {(row["arm"], row["seed"]) for row in rows if row["budget"] == budget}
    print(f"searches at {budget} steps: {plan['why']}", flush=True)
    arms = planned_arms(plan, arguments.search_arms)
    for search_seed in arguments.search_seeds:
        for arm in arms:
            if (arm["arm"], search_seed) in done:
                continue
            space = NASBench201SearchSpace(num_classes=10, input_shape=x_train.shape[1:])
            tuner = SageTuner(
                space,
                teacher=teacher_path,
                alpha=arm["alpha"],
                proxy_weights=arm["proxy_weights"],
                premature_steps=budget,
                oracle=TPEOracle(
                    objective=keras_tuner.Objective(SCORE, "max"),
                    max_trials=arguments.search_trials,
                    n_startup_trials=max(1, arguments.search_trials // 3),
                    seed=search_seed,
                ),
                seed=search_seed,
                directory=arguments.cache / "nasbench201-searches",
                project_name=f"seed{arguments.seed}-{arm['arm']}-{budget}steps-search{search_seed}".replace(
                    " ", ""
                ),
                overwrite=False,
            )
            tuner.search(x_train, y_train, validation_data=validation, batch_size=scale.batch_size, verbose=0)
            row = {**search_row(tuner, space, best), **arm, "seed": search_seed, "budget": budget}
            append_rows(path, [row])
            print(f"search {arm['arm']}, seed {search_seed}: regret {row['regret']:.4f}", flush=True)


def planned_arms(plan: dict, names: list[str] | None) -> list[dict]:
    """The plan's arms to run, in the plan's order: every arm, or those `names` (`--search-arms`) names.

    Searches at different seeds or of different arms may run in separate processes at once (each search
    has its own project, and rows are appended whole), so a machine's cores can be shared out by seed and
    by arm.

    Raises:
        ValueError: A name that is not one of the plan's arms (the message lists them).
    """
    if names is None:
        return list(plan["arms"])
    known = [arm["arm"] for arm in plan["arms"]]
    unknown = [name for name in names if name not in known]
    if unknown:
        named = ", ".join(map(repr, unknown))
        raise ValueError(f"--search-arms: {named} not in the search plan's arms {known}")
    return [arm for arm in plan["arms"] if arm["arm"] in names]


def search_row(tuner: SageTuner, space: NASBench201SearchSpace, best: float) -> dict:
    """One search's row: the top-scored cell's looked-up accuracy and regret, and its curve over trials."""
    curve, examples, top = [], 0.0, None
    for trial_id in tuner.oracle.start_order:
        trial = tuner.oracle.trials[trial_id]
        score = trial.metrics.get_last_value(SCORE) if trial.status == "COMPLETED" else None
        examples += (
            trial.metrics.get_last_value(EXAMPLES_PROCESSED) or 0.0 if trial.status == "COMPLETED" else 0.0
        )
        if score is not None and math.isfinite(score) and (top is None or score > top[0]):
            top = (score, space.to_arch_string(trial.hyperparameters))
        if top is not None:
            curve.append([examples, best - nasbench201.mature_accuracy(top[1])])
    if top is None:
        raise RuntimeError(f"search {tuner.project_dir} completed no trial")
    accuracy = nasbench201.mature_accuracy(top[1])
    return {
        "trials": len(tuner.oracle.trials),
        "failed": sum(trial.status != "COMPLETED" for trial in tuner.oracle.trials.values()),
        "top-scored cell": top[1],
        TOP_SCORE_MATURE_ACCURACY: accuracy,
        WINNER_MATURE_ACCURACY: accuracy,
        "regret": best - accuracy,
        SEARCH_EXAMPLES: tuner.search_examples,
        "curve": curve,
        MATURE_ACCURACY_SOURCE: nasbench201.MATURE_ACCURACY_SOURCE,
    }


if __name__ == "__main__":
    main()
