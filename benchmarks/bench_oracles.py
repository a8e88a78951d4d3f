"""Benchmark: TPEOracle against hyperopt's TPE (the paper's implementation) and KerasTuner's random search.

Two measurements, in one run:

1. Suggestion latency on the 20-layer CNN space (num_layers, then per layer 6 choices, a connection from
   the image and from every earlier layer, each layer active only when num_layers reaches it: 330
   hyperparameters), with N = 100 and N = 1000 completed random trials in the history:
   - ours: `TPEOracle.populate_space` (its `SplitOnceTPESampler`, walking KerasTuner's conditional space,
     writing the journal); the history is filled by the oracle's own random start-up trials;
   - before: the same oracle with optuna's own `TPESampler` and the same settings (what TPEOracle used
     before `SplitOnceTPESampler`), on a copy of the same history, suggestion by suggestion with ours,
     so both do the same work (the same values are suggested; asserted);
   - group: then, continuing ours, optuna's multivariate TPE by groups (`multivariate=True, group=True`);
   - hyperopt: `tpe.suggest` with its defaults (the paper's settings: 20 start-up trials, 24 EI
     candidates, γ = 0.25, linear forgetting 25, prior weight 1) on the equivalent space
     (`hp.choice("num_layers", ...)` over 20 lists that share each layer's labels, so layer l is active
     exactly when num_layers ≥ l); the history is filled by `rand.suggest`.
   Objective values are seeded random numbers (the latency does not depend on them). Reported: the
   median over seeds of each seed's median of 5 consecutive suggestions. KerasTuner's own bookkeeping per
   trial (`Oracle.create_trial` minus `populate_space`: copying the space, writing trial.json and
   oracle.json) is the same for every KerasTuner oracle and is not counted.

2. Best value after 100 trials on Branin, Hartmann-6 (encoded with Float, log Float, Int, Choice and
   stepped Float) and a conditional toy space (tests/test_tpe.py defines all three), medians over
   seeds, for TPEOracle in a KerasTuner `Tuner`, hyperopt's `fmin(algo=tpe.suggest)` on the same spaces,
   and KerasTuner's `RandomSearchOracle`.

Usage:

    .venv/bin/python benchmarks/bench_oracles.py                 # 10 seeds, N = 100 and 1000
    .venv/bin/python benchmarks/bench_oracles.py --seeds 3 --histories 100
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import math
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import optuna
from hyperopt import STATUS_OK, Trials, fmin, hp, rand, tpe
from hyperopt.base import JOB_STATE_DONE, Domain

# The test functions, their KerasTuner spaces and the stand-in CNN space live with the tests.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))
from oracle_harness import LAYER_CHOICES, layerwise_space
from test_tpe import PROBLEMS, best_after, random_oracle, tpe_oracle

from keras_sage.tuners import TPEOracle, _compat
from keras_sage.tuners.oracles.tpe import hyperopt_gamma, linear_forgetting_weights

MAX_LAYERS = 20
SUGGESTIONS = 5
TRIALS = 100


def hyperopt_cnn_space(max_layers: int) -> object:
    layers = []
    for layer in range(1, max_layers + 1):
        params = {
            f"{name}_{layer}": hp.choice(f"{name}_{layer}", list(v)) for name, v in LAYER_CHOICES.items()
        }
        params[f"connect_image_to_{layer}"] = hp.choice(f"connect_image_to_{layer}", [False, True])
        for source in range(1, layer):
            params[f"connect_{source}_to_{layer}"] = hp.choice(f"connect_{source}_to_{layer}", [False, True])
        layers.append(params)
    return hp.choice("num_layers", [layers[:n] for n in range(1, max_layers + 1)])


def optuna_tpe_sampler(seed: int) -> optuna.samplers.TPESampler:
    """Optuna's own `TPESampler` with the settings `TPEOracle` gives its `SplitOnceTPESampler`."""
    return optuna.samplers.TPESampler(
        n_startup_trials=0,
        gamma=functools.partial(hyperopt_gamma),
        weights=linear_forgetting_weights,
        multivariate=False,
        constant_liar=True,
        seed=seed,
    )


def latency_oracle(history: int, seed: int, directory: str, name: str) -> TPEOracle:
    oracle = TPEOracle(
        objective="loss",
        hyperparameters=layerwise_space(MAX_LAYERS),
        max_trials=history + 2 * SUGGESTIONS,
        n_startup_trials=history,
        seed=seed,
    )
    _compat.set_oracle_project_dir(oracle, directory, f"latency-{name}-{history}-{seed}")
    return oracle


def ours_latency(history: int, seed: int, directory: str) -> tuple[float, float, float]:
    """Median suggestion times: TPEOracle, the same with optuna's TPESampler, then optuna's group mode.

    The first two suggest from copies of one history, step by step, so they do the same work (the test
    that they suggest the same values is asserted here too); the group mode continues the first.
    """
    ours = latency_oracle(history, seed, directory, "ours")
    rng = np.random.default_rng(seed)
    for number in range(history):
        ours.populate_space(f"{number}")
        ours.study.tell(number, float(rng.random()))
    before = latency_oracle(history, seed, directory, "before")
    before.sampler = optuna_tpe_sampler(seed)
    before.study.add_trials(ours.study.get_trials(deepcopy=False))
    times: dict[str, list[float]] = {"ours": [], "before": [], "group": []}
    for number in range(history, history + SUGGESTIONS):
        value, suggestions = float(rng.random()), []
        for name, oracle in (("ours", ours), ("before", before)):
            start = time.perf_counter()
            suggestions.append(oracle.populate_space(f"{number}")["values"])
            times[name].append(time.perf_counter() - start)
            oracle.study.tell(number, value)
        assert suggestions[0] == suggestions[1], f"different suggestions for trial {number}"
    ours.sampler = ours.study.sampler = TPEOracle(
        multivariate=True, group=True, n_startup_trials=0, seed=seed
    ).sampler
    for number in range(history + SUGGESTIONS, history + 2 * SUGGESTIONS):
        start = time.perf_counter()
        ours.populate_space(f"{number}")
        times["group"].append(time.perf_counter() - start)
        ours.study.tell(number, float(rng.random()))
    return tuple(statistics.median(times[name]) for name in ("ours", "before", "group"))


def hyperopt_latency(history: int, seed: int) -> float:
    domain = Domain(lambda config: 0.0, hyperopt_cnn_space(MAX_LAYERS))
    trials = Trials()
    docs = rand.suggest(list(range(history)), domain, trials, seed)
    rng = np.random.default_rng(seed)
    for doc in docs:
        doc["state"] = JOB_STATE_DONE
        doc["result"] = {"loss": float(rng.random()), "status": STATUS_OK}
    trials.insert_trial_docs(docs)
    trials.refresh()
    times = []
    for k in range(SUGGESTIONS):
        start = time.perf_counter()
        new = tpe.suggest([history + k], domain, trials, seed + k)
        times.append(time.perf_counter() - start)
        new[0]["state"] = JOB_STATE_DONE
        new[0]["result"] = {"loss": float(rng.random()), "status": STATUS_OK}
        trials.insert_trial_docs(new)
        trials.refresh()
    return statistics.median(times)


def hyperopt_space(problem: str) -> object:
    if problem == "branin":
        return {"x1": hp.uniform("x1", -5, 10), "x2": hp.quniform("x2", 0, 15, 0.05)}
    if problem == "hartmann6":
        return {
            "x1": hp.uniform("x1", 0, 1),
            "x2": hp.loguniform("x2", math.log(0.001), 0),
            "x3": hp.uniformint("x3", 0, 100),
            "x4": hp.choice("x4", [round(0.1 * i, 1) for i in range(11)]),
            "x5": hp.quniform("x5", 0, 1, 0.01),
            "x6": hp.uniform("x6", 0, 1),
        }
    return hp.choice(
        "branch",
        [
            {"branch": "bowl", "x": hp.uniform("x", -10, 10), "z": hp.uniformint("z", -20, 20)},
            {"branch": "ramp", "y": hp.uniformint("y", 0, 100)},
            {"branch": "flat", "flag": hp.choice("flag", [False, True])},
        ],
    )


def hyperopt_best(problem: str, seed: int) -> float:
    function = PROBLEMS[problem][0]
    trials = Trials()
    fmin(
        function,
        hyperopt_space(problem),
        algo=tpe.suggest,
        max_evals=TRIALS,
        trials=trials,
        rstate=np.random.default_rng(1 + 1000 * seed),
        show_progressbar=False,
    )
    return min(trials.losses())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--histories", default="100,1000", help="completed trials before the timed ones")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    versions = {name: importlib.metadata.version(name) for name in ("optuna", "hyperopt", "keras-tuner")}
    machine = platform.processor() or platform.machine()
    print(f"{machine}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(", ".join(f"{name} {version}" for name, version in versions.items()), f"seeds: {args.seeds}\n")

    directory = tempfile.mkdtemp(prefix="bench-oracles-")
    print(
        "| completed trials | TPEOracle.populate_space | hyperopt tpe.suggest | ours / hyperopt "
        "| with optuna's TPESampler (before) | before / hyperopt | ours / before "
        "| TPEOracle(multivariate=True, group=True) | group / hyperopt |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for history in (int(h) for h in args.histories.split(",")):
        ours_times, before_times, group_times, their_times = [], [], [], []
        for seed in range(1, args.seeds + 1):  # Interleaved, so both see the same machine load.
            ours, before, group = ours_latency(history, seed, directory)
            ours_times.append(ours)
            before_times.append(before)
            group_times.append(group)
            their_times.append(hyperopt_latency(history, seed))
        ours, before, group, theirs = (
            statistics.median(t) for t in (ours_times, before_times, group_times, their_times)
        )
        print(
            f"| {history} | {1000 * ours:.0f} ms | {1000 * theirs:.0f} ms | {ours / theirs:.2f} "
            f"| {1000 * before:.0f} ms | {before / theirs:.2f} | {ours / before:.2f} "
            f"| {1000 * group:.0f} ms | {group / theirs:.2f} |",
            flush=True,
        )

    if args.skip_quality:
        return
    print(
        f"\nBest value after {TRIALS} trials minus the known minimum (median over seeds; lower is better)\n"
    )
    print("| problem | TPEOracle | hyperopt TPE | KerasTuner random | ours / hyperopt | ours / random |")
    print("|---|---|---|---|---|---|")
    for problem in sorted(PROBLEMS):
        minimum = PROBLEMS[problem][2]
        base = pathlib.Path(directory) / problem
        ours = statistics.median(
            best_after(tpe_oracle, problem, s, base / "tpe") - minimum for s in range(args.seeds)
        )
        theirs = statistics.median(hyperopt_best(problem, s) - minimum for s in range(args.seeds))
        random = statistics.median(
            best_after(random_oracle, problem, s, base / "random") - minimum for s in range(args.seeds)
        )
        ratios = f"{ours / theirs:.2f} | {ours / random:.2f}"
        print(f"| {problem} | {ours:.4f} | {theirs:.4f} | {random:.4f} | {ratios} |", flush=True)


if __name__ == "__main__":
    main()
