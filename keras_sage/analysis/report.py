"""Markdown reports with their figures: of a finished search (a project directory) and of a pool.

`keras-sage report PROJECT_DIR`, `keras-sage report POOL.jsonl` and `keras-sage report SEARCHES.jsonl` call
these; each writes `report.md` (and the figures, PNG and SVG) into one folder and returns the markdown.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from keras_sage import contract
from keras_sage.analysis.beyond_proxies import (
    CANDIDATE_PROXIES,
    describe_beyond_proxy,
    proxies_section,
    teacher_beyond_proxy,
)
from keras_sage.analysis.control_teachers import CONTROL_TEACHERS, controls_section, teacher_against_control
from keras_sage.analysis.plots import (
    plot_alpha_sweep,
    plot_predictivity,
    plot_predictor_scatter,
    plot_replay,
    plot_search,
)
from keras_sage.analysis.pool import (
    ARCH_ID,
    BUDGET,
    MATURE_ACCURACY,
    MATURE_ACCURACY_SOURCE,
    TG_UNTRAINED,
    architecture_ids,
)
from keras_sage.analysis.predictors import (
    CONTROL_COLUMNS,
    DEFAULT_ALPHAS,
    DEFAULT_CONTROLS,
    PROXY_COLUMNS,
    SIZE_COLUMNS,
    calibrate_alpha,
    column,
    combined_predictor_name,
    constant_columns,
    pool_budgets,
    predictivity,
    resample_count,
    resampled_difference,
    rows_at_budget,
)
from keras_sage.analysis.records import front_trial_ids, project_records, search_summary
from keras_sage.analysis.search_comparison import describe_comparisons
from keras_sage.analysis.search_replay import efficiency_ratio, replay_curve
from keras_sage.analysis.tables import format_table
from keras_sage.score import combined_score

REPORT_FILE = "report.md"
# The predictors the report's tables show, besides each S_<layer>: P, TG, the calibrated P + α·TG and the
# controls.
_TABLE_COLUMNS = (
    "predictor",
    "n",
    "r",
    "ci_low",
    "ci_high",
    "delta",
    "delta_ci_low",
    "delta_ci_high",
    "partial_r",
    "partial_ci_low",
    "partial_ci_high",
)


def project_report(directory: str | os.PathLike[str], out: str | os.PathLike[str]) -> str:
    """The report of one search: its summary row, every trial, the cost, and the best-so-far plot.

    Args:
        directory: The search's project directory (`directory/project_name` of the tuner).
        out: The folder to write `report.md`, `search.png` and `search.svg` into (created if missing).

    Returns:
        The markdown written to `out/report.md`.

    Example:

    ```python
    print(project_report("searches/tg_sage", "searches/tg_sage-report"))
    ```
    """
    project = project_records(directory)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = Path(directory).name
    summary = search_summary(name, project)
    for suffix in (".png", ".svg"):
        plot_search({name: project.records}, out / f"search{suffix}")
    front = set(front_trial_ids(project.records))
    trials = [
        {
            "trial": record.trial_id,
            "front": "*" if record.trial_id in front else "",
            "status": record.status,
            contract.SCORE: record.score,
            "P": record.premature_accuracy,
            "TG": record.teacher_guidance,
            "params": record.params if math.isnan(record.params) else int(record.params),
            "examples": record.examples_processed
            if math.isnan(record.examples_processed)
            else int(record.examples_processed),
            "reason": record.message if record.status != "COMPLETED" else "",
        }
        for record in project.records
    ]
    completed = summary["trials"] - summary["failed"]
    lines = [
        f"# Search `{name}`",
        "",
        f"{completed} of {summary['trials']} trials completed (α = {project.alpha:g}). The search processed "
        f"{project.search_examples:,} training examples (M1·E1); with reranking "
        f"{project.search_examples + project.rerank_examples:,} (M1·E1 + M2·E2, the paper's §4.3 cost).",
        "",
        "```",
        format_table([summary]),
        "```",
        "",
        "## Trials",
        "",
        f"`*`: on the Pareto front of P and TG ({len(front)} trials; `SageTuner.rerank(front=True)` "
        "trains it).",
        "",
        "```",
        format_table(trials),
        "```",
        "",
    ]
    if project.reranked:
        reranked = format_table([dict(result) for result in project.reranked])
        lines += ["## Reranked", "", "```", reranked, "```", ""]
    lines += ["![P per trial and the best P so far](search.png)", ""]
    markdown = "\n".join(lines)
    (out / REPORT_FILE).write_text(markdown, encoding="utf-8")
    return markdown


def searches_report(
    rows: Sequence[Mapping[str, Any]], out: str | os.PathLike[str], title: str = "Searches compared"
) -> str:
    """The report of real searches with and without the teacher: every search, and the arms compared.

    Args:
        rows: `search_summary` rows, each with the `seed` of its search (one per arm and seed), as
            `examples/cifar10_science.py --stage search` appends them.
        out: The folder to write `report.md` into (created if missing).
        title: The report's title.

    Returns:
        The markdown written to `out/report.md`: a first paragraph comparing each guided arm with P
        alone, then the guided arms with each other, paired by seed (`describe_comparisons`: regret and
        search efficiency where the rows hold them), then the searches' table (without the curves, which
        stay in the rows).

    Example:

    ```python
    print(searches_report(read_pool("searches.jsonl"), "searches-report"))
    ```
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ordered = sorted(rows, key=lambda row: (row["seed"], row["alpha"]))
    sentences = describe_comparisons(rows) or ["The searches do not hold both P alone and a guided arm yet."]
    # A search's curve (and its proxy weights, which its arm names) stay in the rows file; the source of the
    # mature accuracies, the same in every row, is written once below the table.
    nested = {column for row in rows for column, value in row.items() if isinstance(value, (list, dict))}
    sources = {row[MATURE_ACCURACY_SOURCE] for row in rows if MATURE_ACCURACY_SOURCE in row}
    shared = (
        {MATURE_ACCURACY_SOURCE: sources.pop()}
        if len(sources) == 1 and all(MATURE_ACCURACY_SOURCE in row for row in rows)
        else {}
    )
    table = [{k: v for k, v in row.items() if k not in nested and k not in shared} for row in ordered]
    lines = [
        f"# {title}",
        "",
        " ".join(sentences),
        "",
        "```",
        format_table(table),
        "```",
        "",
        *(f"{column}: {value}" for column, value in shared.items()),
    ]
    markdown = "\n".join(lines)
    (out / REPORT_FILE).write_text(markdown, encoding="utf-8")
    return markdown


def pool_report(
    pool: Sequence[Mapping[str, Any]],
    out: str | os.PathLike[str],
    *,
    title: str = "Pool",
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    controls: Sequence[str] = DEFAULT_CONTROLS,
    method: str = "spearman",
    n_resamples: int = 2000,
    seed: int = 0,
    n_boot: int | None = None,
) -> str:
    """The report of a pool: does the teacher predict mature accuracy beyond P and the controls?

    Its first paragraph answers in plain words at the shortest budget past initialisation (and says
    what the answer is at initialisation, the regime of zero-cost proxies): whether r(P + α·TG) − r(P),
    α chosen on one half of the architectures and measured on the other (`calibrate_alpha`), has its
    central 95% over the splits above 0 (the in-sample gain beside it, labelled), and whether the partial
    correlation of TG with mature accuracy given the controls has a 95% interval above 0; it credits the
    trained teacher only where P + α·TG beats P + α′·TG_untrained out of sample, each with its own α
    (`teacher_against_control`; an untrained teacher's TG can carry what size does), and it says when the
    α chosen is the grid's largest. Where the pool holds the field's proxies, a paragraph says whether TG
    adds to the best of them (`teacher_beyond_proxy`). Then: the predictivity table per budget, P + β·proxy
    and TG added to it for every proxy, the trained teacher against each control teacher at every budget,
    the calibrated α per budget with how often each α wins over the resamples, the replayed searches'
    efficiency ratio, and the figures (paper Figs. 2, 3
    and 4-right), each as PNG and SVG.

    Args:
        pool: The pool's rows (`keras_sage.analysis.read_pool`).
        out: The folder to write `report.md` and the figures into (created if missing).
        title: The report's title.
        alphas: The α of the combined predictors.
        controls: Capacity controls partialled out (`depth`, `log_flops`).
        method: `"spearman"` or `"pearson"`.
        n_resamples: Resamples of the architectures behind every interval.
        n_boot: The former name of `n_resamples`, still accepted.
        seed: Seed of the resamples.

    Returns:
        The markdown written to `out/report.md`.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n_resamples = resample_count(n_resamples, n_boot)
    constant = constant_columns(pool, controls)
    controls = [name for name in controls if name not in constant]
    rows = predictivity(
        pool, alphas=alphas, method=method, n_resamples=n_resamples, seed=seed, controls=controls
    )
    budgets = pool_budgets(pool)
    trained = [budget for budget in budgets if budget > 0]
    shortest = trained[0] if trained else budgets[0]
    calibrations = {
        budget: calibrate_alpha(
            pool, budget, alphas=alphas, method=method, n_resamples=n_resamples, seed=seed
        )
        for budget in budgets
    }
    alpha = calibrations[shortest].alpha
    examples = {row["budget"]: row.get("examples", math.nan) for row in pool}

    lines = [f"# {title}", ""]
    resampling = {"pool": pool, "n_resamples": n_resamples, "seed": seed, "alphas": alphas}
    lines += [_answer(rows, calibrations, shortest, examples, controls, method, resampling), ""]
    if budgets[0] == 0 and shortest != 0:
        lines += [_answer(rows, calibrations, 0, examples, controls, method, resampling), ""]
    each_proxy = [
        result
        for budget in budgets
        for name in CANDIDATE_PROXIES
        if (result := teacher_beyond_proxy(pool, budget, n_resamples=n_resamples, seed=seed, proxy=name))
    ]
    at_shortest = [result for result in each_proxy if result.budget == shortest]
    if at_shortest:
        best = max(at_shortest, key=lambda result: np.nan_to_num(result.proxy_r, nan=-np.inf))
        lines += [describe_beyond_proxy(best, examples), ""]
    n_architectures = len(architecture_ids(pool))
    analysed = len(
        architecture_ids([row for row in pool if math.isfinite(row.get(MATURE_ACCURACY, math.nan))])
    )
    lines += [
        f"{analysed} architectures analysed ({n_architectures} in the pool, {n_architectures - analysed} "
        f"failed: not built, or diverged); budgets (SGD steps): {', '.join(str(b) for b in budgets)}; "
        f"{method} correlations with mature accuracy; 95% percentile intervals from resampling the "
        f"architectures ({n_resamples} resamples, paired for Δ = r − r(P)); partial r given "
        f"{', '.join(controls) or 'nothing'}"
        + (f" ({', '.join(constant)} left out: the same for every architecture)." if constant else "."),
        "",
    ]
    for budget in budgets:
        shown = [row for row in rows if row["budget"] == budget and _shown(row["predictor"], alpha)]
        lines += [
            f"## Budget {budget} steps ({examples.get(budget, math.nan):,} examples)",
            "",
            "```",
            format_table([{key: row[key] for key in _TABLE_COLUMNS} for row in shown]),
            "```",
            "",
        ]
    lines += proxies_section(each_proxy)
    lines += controls_section(
        [
            against
            for budget in budgets
            for name in CONTROL_TEACHERS
            if (
                against := teacher_against_control(
                    pool, budget, name, alphas=alphas, method=method, seed=seed
                )
            )
        ]
    )
    lines += ["## α calibration", "", "```"]
    lines += [
        format_table(
            [
                {
                    "budget": budget,
                    "α (out of sample)": calibration.alpha,
                    "chosen in (splits)": calibration.split_choices.get(calibration.alpha, 0.0),
                    "Δ held out": calibration.out_of_sample_delta,
                    "Δ low": calibration.out_of_sample_interval[0],
                    "Δ high": calibration.out_of_sample_interval[1],
                    "α (in sample)": calibration.in_sample_alpha,
                    "r (in sample)": calibration.in_sample_r,
                    **{f"wins α={a:g}": calibration.win_fractions[float(a)] for a in alphas},
                }
                for budget, calibration in calibrations.items()
            ]
        ),
        "```",
        "",
    ]
    replayable = _replayable_architectures(pool, trained)
    if trained and replayable >= 2:
        # With a calibrated α of 0 the guided search would be P's own; replay the paper's α = 1 instead.
        replay_alpha = alpha if alpha > 0 else 1.0
        why = "" if alpha > 0 else ", the paper's, since the calibration picks 0"
        trials_grid = list(range(1, replayable + 1))
        ratio = efficiency_ratio(pool, trained, replay_alpha, trials_grid, seed=seed)
        reached = (
            f"with {ratio.examples_guided:,.0f} examples against P's {ratio.examples_premature:,.0f}"
            if math.isfinite(ratio.examples_guided)
            else f"never (P needs {ratio.examples_premature:,.0f} examples)"
        )
        lines += [
            "## Replayed random searches",
            "",
            f"Random search replayed on the pool ({replayable} architectures with every score; every budget "
            f"past initialisation, 1 to {replayable} "
            f"trials, α = {replay_alpha:g}{why}"
            f"): P + {replay_alpha:g}·TG reaches the mature accuracy that P's most expensive search reaches "
            f"({ratio.target_accuracy:.4f}) {reached}: an efficiency ratio of {ratio.ratio:.2f} "
            f"[{ratio.ci_low:.2f}, {ratio.ci_high:.2f}] (the issue's goal: 5 or more).",
            "",
        ]
        plot_replay(replay_curve(pool, trained, replay_alpha, trials_grid), out / "replay")
        lines += ["![Replayed searches](replay.png)", ""]
    plot_predictivity(rows, out / "predictivity", alpha=alpha)
    plot_alpha_sweep(rows, out / "alpha_sweep")
    plot_predictor_scatter(pool, out / "scatter", budget=shortest, alpha=alpha)
    lines += [
        "![r against budget](predictivity.png)",
        "",
        "![r against α](alpha_sweep.png)",
        "",
        f"![P and P + α·TG against mature accuracy at {shortest} steps](scatter.png)",
        "",
    ]
    markdown = "\n".join(lines)
    (out / REPORT_FILE).write_text(markdown, encoding="utf-8")
    return markdown


def _replayable_architectures(pool: Sequence[Mapping[str, Any]], budgets: Sequence[int]) -> int:
    """How many architectures have P, TG and mature accuracy at every budget (what a replay draws from)."""
    columns = (contract.PREMATURE_ACCURACY, contract.TEACHER_GUIDANCE, MATURE_ACCURACY)
    complete: dict[str, bool] = {}
    for row in pool:
        if row[BUDGET] in budgets:
            finite = all(
                isinstance(row.get(name), (int, float)) and math.isfinite(row[name]) for name in columns
            )
            complete[row[ARCH_ID]] = complete.get(row[ARCH_ID], True) and finite
    return sum(complete.values())


def _shown(predictor: str, alpha: float) -> bool:
    """Whether the report's budget table shows a predictor: all but the combinations at other α."""
    if predictor.startswith("P+"):
        return predictor in (combined_predictor_name(alpha), combined_predictor_name(alpha, "TG_untrained"))
    return True


def _answer(
    rows: Sequence[Mapping[str, Any]],
    calibrations: Mapping[int, Any],
    budget: int,
    examples: Mapping[int, Any],
    controls: Sequence[str],
    method: str,
    resampling: Mapping[str, Any],
) -> str:
    """The plain-words answer at one budget: does the trained teacher add information?"""
    calibration = calibrations[budget]
    alpha = calibration.alpha
    at_budget = {row["predictor"]: row for row in rows if row["budget"] == budget}
    premature, guidance = at_budget["P"], at_budget["TG"]
    in_sample = at_budget.get(combined_predictor_name(calibration.in_sample_alpha), premature)
    symbol = "ρ" if method == "spearman" else "r"
    when = (
        "At initialisation (0 steps)" if budget == 0 else f"At {budget} steps ({examples[budget]:,} examples)"
    )
    held_out_low, held_out_high = calibration.out_of_sample_interval
    # Out of sample when the pool can be halved; otherwise only the in-sample gain exists.
    delta_above = held_out_low > 0 if calibration.splits else in_sample["delta_ci_low"] > 0
    partial_low = guidance["partial_ci_low"]
    partial_above = partial_low > 0
    partial_text = (
        f"partial {symbol}(TG | {', '.join(controls) or 'nothing'}) = {guidance['partial_r']:.3f} "
        f"[{partial_low:.3f}, {guidance['partial_ci_high']:.3f}]"
    )
    controls_text = ", ".join(
        f"{symbol}({name}) = {at_budget[name]['r']:.3f}"
        for name in CONTROL_COLUMNS
        if name in at_budget and math.isfinite(at_budget[name]["r"])
    )
    pool = resampling["pool"]
    source = (
        teacher_against_control(
            pool, budget, alphas=resampling["alphas"], method=method, seed=resampling["seed"]
        )
        if delta_above
        else None
    )
    # Only a gain an untrained teacher's TG does not also give is the trained teacher's.
    subject = "the trained teacher" if source is not None and source.interval[0] > 0 else "TG"
    verdict = (
        f"{subject} adds information beyond P and the controls"
        if delta_above and partial_above
        else f"{subject} adds information beyond P, but it is not shown beyond the capacity controls"
        if delta_above
        else "TG carries information the capacity controls do not, yet P + α·TG is not shown to predict "
        "better than P"
        if partial_above
        else "TG adds no information we can detect beyond P and the controls (a null result)"
    )
    if delta_above and subject == "TG":
        verdict += (
            ", and the trained teacher is not shown to be its source"
            if source is not None
            else " (without an untrained teacher, TG_untrained, the pool cannot tell whether the trained "
            "teacher is its source)"
            if not any(TG_UNTRAINED in row for row in rows_at_budget(pool, budget))
            else " (too few architectures with TG_untrained to tell whether the trained teacher is its "
            "source)"
        )
    source_text = (
        f" Against an untrained teacher (the same network, random weights), each with its own α chosen out "
        f"of sample: {symbol}(P + α·TG) − {symbol}(P + α′·TG_untrained) on the held-out half = "
        f"{source.delta:+.3f} [{source.interval[0]:+.3f}, {source.interval[1]:+.3f}] ({source.splits} "
        "splits)."
        if source is not None
        else ""
    )
    largest = max(calibration.correlations)
    edge_text = (
        f"; α = {alpha:g} is the grid's largest, so a larger α (towards TG alone) may rank better"
        if alpha == largest and largest > 0
        else ""
    )
    held_out_text = (
        f"with α chosen out of sample (on one half of the architectures, its gain measured on the other; "
        f"{calibration.splits} random splits), {symbol}(P + α·TG) − {symbol}(P) on the held-out half = "
        f"{calibration.out_of_sample_delta:+.3f} [{held_out_low:+.3f}, {held_out_high:+.3f}] (each split's "
        f"own α; the one chosen most often is α = {alpha:g}, in "
        f"{calibration.split_choices.get(alpha, 0):.0%} of splits{edge_text})"
        if calibration.splits
        else "too few architectures to choose α out of sample"
    )
    in_sample_alpha = calibration.in_sample_alpha
    in_sample_text = (
        f"in sample (α = {in_sample_alpha:g} chosen and measured on all architectures, optimistic): "
        f"{in_sample['delta']:+.3f} [{in_sample['delta_ci_low']:+.3f}, {in_sample['delta_ci_high']:+.3f}]"
    )
    return (
        f"**{when}, {verdict}.** "
        f"{_against_best_control(at_budget, budget, alpha, method, resampling)}"
        f"{symbol}(P) = {premature['r']:.3f} [{premature['ci_low']:.3f}, "
        f"{premature['ci_high']:.3f}]; {symbol}(TG) = {guidance['r']:.3f} [{guidance['ci_low']:.3f}, "
        f"{guidance['ci_high']:.3f}]; {held_out_text}; {in_sample_text}; {partial_text}. "
        f"Controls: {controls_text}.{source_text}"
    )


def _against_best_control(
    at_budget: Mapping[str, Mapping[str, Any]],
    budget: int,
    alpha: float,
    method: str,
    resampling: Mapping[str, Any],
) -> str:
    """A sentence setting the score P + α·TG itself (α the one chosen out of sample) beside the best size
    count or proxy, with their paired difference: a gain over P alone does not show it, and a gain over
    a P that ranks the architectures backwards is cheap."""
    finite = [
        name
        for name in (*SIZE_COLUMNS, *PROXY_COLUMNS)
        if name in at_budget and math.isfinite(at_budget[name]["r"])
    ]
    if not finite:
        return ""
    best = max(finite, key=lambda name: at_budget[name]["r"])
    rows = rows_at_budget(resampling["pool"], budget)
    premature, guidance = column(rows, contract.PREMATURE_ACCURACY), column(rows, contract.TEACHER_GUIDANCE)
    score, control, target = (
        combined_score(premature, guidance, alpha),
        column(rows, best),
        column(rows, MATURE_ACCURACY),
    )
    kept = np.isfinite(score) & np.isfinite(control) & np.isfinite(target)
    difference, low, high = resampled_difference(
        score[kept],
        control[kept],
        target[kept],
        method=method,
        n_resamples=resampling["n_resamples"],
        seed=resampling["seed"],
    )
    symbol = "ρ" if method == "spearman" else "r"
    verdict = (
        f"{best} ranks the architectures better"
        if high < 0
        else f"the score ranks the architectures better than {best}"
        if low > 0
        else "neither is shown to rank the architectures better"
    )
    combined = at_budget.get(combined_predictor_name(alpha), at_budget["P"]) if alpha else at_budget["P"]
    return (
        f"The score itself, {f'P + {alpha:g}·TG' if alpha else 'P alone'} (α the one chosen most often "
        f"out of sample), ranks the architectures at {symbol} = {combined['r']:.3f} "
        f"[{combined['ci_low']:.3f}, {combined['ci_high']:.3f}], the best size count or proxy, {best}, at "
        f"{symbol} = {at_budget[best]['r']:.3f}: a paired difference of {difference:+.3f} [{low:+.3f}, "
        f"{high:+.3f}], so "
        f"{verdict}. "
    )
