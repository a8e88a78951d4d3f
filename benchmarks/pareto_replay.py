"""Pareto + rerank of the front against P + α·TG and against P alone, replayed on a committed pool.

A replay, not a search: each seed draws `--trials` architectures of the pool at random (a random search's
trials), and three arms choose from the same draw, at the same examples (the draw's premature training
plus the same number of candidates trained at maturity):

- Pareto: the draw's Pareto front in (P, TG) (or its k most spread members by crowding distance), each
  member's mature accuracy looked up, the best kept (`rerank(front=True)`);
- P + α·TG: the k best by the score, α chosen out of sample on the architectures the seed did not draw
  (`calibrate_alpha(...).alpha`, itself chosen on random halves and measured on the other halves);
- P alone: the k best by P.

k is the front's size (whole front) or a fixed `--top-k` (the k most spread members of the front, or the
whole front when it is smaller, in which case the other arms rerank as many). Each arm's winner is the
mature accuracy of its best reranked candidate; the differences are paired by seed, with t intervals.

Run: `python benchmarks/pareto_replay.py benchmarks/pools/cifar10-16px-cpu-seed0-teacher87816699.jsonl`
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from scipy import stats

from keras_sage import contract
from keras_sage.analysis import calibrate_alpha
from keras_sage.analysis.pool import ARCH_ID, EXAMPLES, MATURE_ACCURACY, read_pool
from keras_sage.analysis.predictors import rows_at_budget
from keras_sage.dominance import most_spread, non_dominated
from keras_sage.score import combined_score


def top_k(scores: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """The indices of the k highest scores, ties broken at random."""
    order = np.lexsort((rng.random(len(scores)), -scores))
    return order[:k]


def t_interval(differences: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% t interval of paired differences."""
    mean = float(np.mean(differences))
    half = float(stats.t.ppf(0.975, len(differences) - 1) * stats.sem(differences))
    return mean, mean - half, mean + half


def replay_seed(
    rows: list[dict], budget: int, trials: int, fixed_k: int | None, seed: int, mature_examples: int
) -> dict[str, float]:
    """One seed's draw and the three arms' winners (mature accuracy), with k, α and the examples."""
    rng = np.random.default_rng(seed)
    drawn = rng.choice(len(rows), size=trials, replace=False)
    held_out = [rows[index] for index in sorted(set(range(len(rows))) - set(drawn.tolist()))]
    alpha = calibrate_alpha(held_out, budget, n_resamples=200, seed=seed).alpha
    chosen = [rows[index] for index in drawn]
    premature = np.array([row[contract.PREMATURE_ACCURACY] for row in chosen])
    guidance = np.array([row[contract.TEACHER_GUIDANCE] for row in chosen])
    mature = np.array([row[MATURE_ACCURACY] for row in chosen])
    points = np.stack([premature, guidance], axis=1)
    front = non_dominated(points)
    if fixed_k is not None and fixed_k < len(front):
        front = [front[index] for index in most_spread(points[front], fixed_k)]
    k = len(front)
    return {
        "alpha": alpha,
        "k": k,
        "examples": trials * chosen[0][EXAMPLES] + k * mature_examples,
        "pareto": float(mature[front].max()),
        "alpha_arm": float(mature[top_k(combined_score(premature, guidance, alpha), k, rng)].max()),
        "p_arm": float(mature[top_k(premature, k, rng)].max()),
        "best_of_draw": float(mature.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pool", type=Path)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--top-k", type=int, default=None, help="rerank the k most spread (default: front)")
    parser.add_argument("--out", type=Path, help="JSON Lines of every seed's arms")
    args = parser.parse_args()
    pool = read_pool(args.pool)
    settings = json.loads(args.pool.with_suffix(".json").read_text())["scale"]
    mature_examples = settings["mature_epochs"] * settings["student_train"]
    budgets = sorted({int(row["budget"]) for row in pool if int(row["budget"]) > 0})
    print(
        f"replay on {args.pool.name}: {args.trials} of {len({row[ARCH_ID] for row in pool})} architectures "
        f"per seed, {args.seeds} seeds, rerank {'the front' if args.top_k is None else f'k = {args.top_k}'}, "
        f"mature = {mature_examples:,} examples each\n"
    )
    print(
        "| budget (steps) | mean k | mean α | Pareto | P + α·TG | P | Pareto − (P + α·TG) [95% t] | "
        "Pareto − P [95% t] | examples |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    records = []
    for budget in budgets:
        rows = [row for row in rows_at_budget(pool, budget) if math.isfinite(row[MATURE_ACCURACY])]
        seeds = [
            replay_seed(rows, budget, args.trials, args.top_k, seed, mature_examples)
            for seed in range(args.seeds)
        ]
        records += [{"budget": budget, "seed": seed, **arms} for seed, arms in enumerate(seeds)]
        column = {key: np.array([arms[key] for arms in seeds]) for key in seeds[0]}
        versus_alpha = t_interval(column["pareto"] - column["alpha_arm"])
        versus_p = t_interval(column["pareto"] - column["p_arm"])
        means = " | ".join(f"{column[arm].mean():.4f}" for arm in ("pareto", "alpha_arm", "p_arm"))
        print(
            f"| {budget} | {column['k'].mean():.1f} | {column['alpha'].mean():.2f} | {means} | "
            f"{versus_alpha[0]:+.4f} [{versus_alpha[1]:+.4f}, {versus_alpha[2]:+.4f}] | "
            f"{versus_p[0]:+.4f} [{versus_p[1]:+.4f}, {versus_p[2]:+.4f}] | "
            f"{column['examples'].mean():,.0f} |"
        )
    if args.out:
        args.out.write_text("".join(json.dumps(record) + "\n" for record in records))


if __name__ == "__main__":
    main()
