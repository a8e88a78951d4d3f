"""`keras-sage report` as a subprocess, on a committed pool and on a search's project directory.

`tests/data/digits_pool.jsonl` is the pool `make demo` builds (16 random CNNs on scikit-learn's digits,
budgets 0/15/30/43 steps, mature after 4 epochs, controls TG_untrained and TG_labels).
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from keras_sage.analysis import describe_comparisons, predictivity, read_pool

POOL = Path(__file__).parent / "data" / "digits_pool.jsonl"
N_BOOT = 300


def keras_sage(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "keras_sage.cli", *arguments], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def pool_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    result = keras_sage("report", str(POOL), "--out", str(out), "--n-boot", str(N_BOOT), "--title", "Digits")
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def test_the_pool_report_is_printed_and_written_with_every_figure(pool_report):
    out, printed = pool_report
    assert (out / "report.md").read_text().rstrip("\n") == printed.rstrip("\n")
    for figure in ("predictivity", "alpha_sweep", "scatter", "replay"):
        assert (out / f"{figure}.png").read_bytes().startswith(b"\x89PNG"), figure
        assert b"<svg" in (out / f"{figure}.svg").read_bytes(), figure


def test_the_first_paragraph_answers_with_the_numbers_predictivity_gives(pool_report):
    _, printed = pool_report
    first = printed.split("\n")[2]
    budget = int(re.search(r"At (\d+) steps", first).group(1))
    assert budget == 15  # the shortest budget past initialisation
    # On the demo's digits pool P alone ranks the architectures well (ρ ≈ 0.88) and TG adds nothing shown.
    assert first.startswith(
        "**At 15 steps (480 examples), TG adds no information we can detect beyond P and the controls "
        "(a null result).**"
    )
    rows = {
        row["predictor"]: row
        for row in predictivity(read_pool(POOL), n_boot=N_BOOT, seed=0)
        if row["budget"] == budget
    }
    assert f"ρ(P) = {rows['P']['r']:.3f} [{rows['P']['ci_low']:.3f}, {rows['P']['ci_high']:.3f}]" in first
    tg = rows["TG"]
    assert f"partial ρ(TG | depth, log_flops) = {tg['partial_r']:.3f} [{tg['partial_ci_low']:.3f}" in first
    # The score itself beside the best size count (no proxies in this pool).
    score_name = re.search(r"The score itself, (P alone|P \+ [\d.]+·TG) ", first).group(1)
    alpha = "0" if score_name == "P alone" else score_name.split(" + ")[1].split("·")[0]
    score = rows[f"P+{alpha}TG"] if alpha != "0" else rows["P"]
    best = max(("depth", "params", "log_flops"), key=lambda name: rows[name]["r"])
    assert (
        f"ranks the architectures at ρ = {score['r']:.3f} [{score['ci_low']:.3f}, {score['ci_high']:.3f}], "
        f"the best size count or proxy, {best}, at ρ = {rows[best]['r']:.3f}: a paired difference of "
    ) in first


def synthetic_pool(n, seed, signal):
    """Budgets 0 and 10; mature accuracy follows `signal` ("params" or "P"); TG is noise."""
    rng = np.random.default_rng(seed)
    params, premature = rng.uniform(1e4, 1e6, n), rng.uniform(0.1, 0.5, n)
    mature = (params / 1e6 if signal == "params" else premature) + rng.normal(0, 0.02, n)
    return [
        {
            "arch_id": f"{i:04d}",
            "budget": budget,
            "examples": budget * 32,
            "premature_accuracy": float(premature[i]) if budget else 0.1,
            "teacher_guidance": float(rng.uniform()),
            "mature_accuracy": float(mature[i]),
            "params": float(params[i]),
            "flops": float(rng.uniform(1e6, 1e8)),
        }
        for i in range(n)
        for budget in (0, 10)
    ]


@pytest.mark.parametrize(
    ("signal", "verdict"),
    [
        ("params", "so params ranks the architectures better."),
        ("P", "so the score ranks the architectures better than"),
    ],
)
def test_the_score_is_set_beside_the_best_control_with_a_paired_difference(tmp_path, signal, verdict):
    from keras_sage.analysis import pool_report

    pool = synthetic_pool(40, 3, signal)
    first = pool_report(pool, tmp_path, title="Synthetic", n_resamples=200).split("\n")[2]
    assert verdict in first


def guided_pool(n, seed, untrained):
    """Budgets 0 and 10; mature accuracy follows P + TG. The untrained teacher's TG is TG itself plus a
    little noise ("same") or noise ("noise"); `untrained=None` leaves the column out."""
    rng = np.random.default_rng(seed)
    premature, guidance = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    mature = premature + guidance + rng.normal(0, 0.05, n)
    control = {"same": guidance + rng.normal(0, 0.01, n), "noise": rng.uniform(0, 1, n)}.get(untrained)
    return [
        {
            "arch_id": f"{i:04d}",
            "budget": budget,
            "examples": budget * 32,
            "premature_accuracy": float(premature[i]),
            "teacher_guidance": float(guidance[i]),
            **({"TG_untrained": float(control[i])} if control is not None else {}),
            "mature_accuracy": float(mature[i]),
            "params": float(rng.uniform(1e4, 1e6)),
            "flops": float(rng.uniform(1e6, 1e8)),
        }
        for i in range(n)
        for budget in (0, 10)
    ]


@pytest.mark.parametrize(
    ("untrained", "verdict"),
    [
        (
            "noise",
            "**At 10 steps (320 examples), the trained teacher adds information beyond P and the controls.**",
        ),
        (
            "same",
            "**At 10 steps (320 examples), TG adds information beyond P and the controls, and the trained "
            "teacher is not shown to be its source.**",
        ),
        (
            None,
            "**At 10 steps (320 examples), TG adds information beyond P and the controls (without an",
        ),
    ],
)
def test_the_trained_teacher_is_credited_only_beyond_an_untrained_one(tmp_path, untrained, verdict):
    from keras_sage.analysis import pool_report, teacher_against_control

    pool = guided_pool(60, 5, untrained)
    markdown = pool_report(pool, tmp_path, title="Guided", n_resamples=200)
    first = markdown.split("\n")[2]
    assert first.startswith(verdict)
    if untrained is None:
        assert "(without an untrained teacher, TG_untrained, the pool cannot tell" in first
        assert "untrained teacher (the same" not in first
        return
    result = teacher_against_control(pool, 10, "TG_untrained")
    low, high = result.interval
    assert (
        f"ρ(P + α·TG) − ρ(P + α′·TG_untrained) on the held-out half = {result.delta:+.3f} [{low:+.3f}, "
        f"{high:+.3f}] (500 splits)."
    ) in first
    assert "## The trained teacher against its controls" in markdown
    assert (low > 0) == (untrained == "noise")


def test_a_control_on_too_few_architectures_is_said_so(tmp_path):
    from keras_sage.analysis import pool_report

    pool = guided_pool(60, 5, "noise")
    for row in pool[8:]:
        del row["TG_untrained"]  # left on the first 4 architectures only
    first = pool_report(pool, tmp_path, title="Guided", n_resamples=200).split("\n")[2]
    assert first.startswith(
        "**At 10 steps (320 examples), TG adds information beyond P and the controls (too few architectures "
        "with TG_untrained to tell whether the trained teacher is its source).**"
    )


def test_an_alpha_at_the_grid_edge_is_said(tmp_path):
    from keras_sage.analysis import pool_report

    pool = guided_pool(60, 6, "noise")
    for row in pool:
        row["mature_accuracy"] = row["teacher_guidance"] + 0.001 * row["premature_accuracy"]
    first = pool_report(pool, tmp_path, title="Guided", n_resamples=200).split("\n")[2]
    assert "α = 64 is the grid's largest, so a larger α (towards TG alone) may rank better" in first
    moderate = pool_report(guided_pool(60, 6, "noise"), tmp_path, title="Guided", n_resamples=200)
    assert "the grid's largest" not in moderate.split("\n")[2]


def test_a_project_directory_gets_the_search_report(tmp_path):
    project = tmp_path / "search"
    (project / "trial_0").mkdir(parents=True)
    metric = {"direction": "max", "observations": [{"value": [0.75], "step": 0}]}
    trial = {
        "trial_id": "0",
        "status": "COMPLETED",
        "message": None,
        "metrics": {"metrics": {"score": metric, "premature_accuracy": metric, "teacher_guidance": metric}},
    }
    (project / "trial_0" / "trial.json").write_text(json.dumps(trial))
    (project / "oracle.json").write_text(json.dumps({"start_order": ["0"]}))
    (project / "tuner0.json").write_text(json.dumps({"search_examples": 640, "rerank_examples": 0}))
    result = keras_sage("report", str(project))
    assert result.returncode == 0, result.stderr
    assert "1 of 1 trials completed" in result.stdout and "640 training examples" in result.stdout
    assert (tmp_path / "search-report" / "search.png").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no pool file or project directory"), ("", "holds no rows"), ("{]\n", "pool.jsonl, line 1")],
)
def test_bad_input_is_one_line_with_exit_status_2(tmp_path, content, message):
    source = tmp_path / "pool.jsonl"
    if content is not None:
        source.write_text(content)
    result = keras_sage("report", str(source))
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_search_comparison_gets_its_paired_report(tmp_path):
    def row(alpha, seed, winner, top_score):
        return {
            "arm": f"α = {alpha:g}",
            "alpha": alpha,
            "winner mature acc": winner,
            "top-score mature acc": top_score,
            "examples (M1·E1)": 1000,
            "seed": seed,
        }

    source = tmp_path / "searches.jsonl"
    rows = [row(0.0, 1, 0.40, 0.35), row(2.0, 1, 0.43, 0.43)]
    rows += [row(0.0, 2, 0.45, 0.45), row(2.0, 2, 0.44, 0.40)]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = keras_sage("report", str(source))
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[2]
    # Winner differences +0.03 and −0.01: mean +0.01, sd 0.028284, t(0.975, 1) = 12.706205.
    half = 12.706205 * 0.028284271 / 2**0.5
    assert (
        "the winner after reranking matures at 0.4350 on average against α = 0's 0.4250: a difference of "
        "+0.0100, paired over 2 seed(s) (95% t interval " in first
    )
    assert f"[{0.01 - half:+.4f}, {0.01 + half:+.4f}]; better at 1, equal at 0, worse at 1)" in first
    assert (
        "the top-scored candidate (before reranking) matures at 0.4150 on average against α = 0's 0.4000: a "
        in first
    )
    assert (tmp_path / "searches-report" / "report.md").read_text() + "\n" == result.stdout


def test_searches_with_looked_up_accuracies_report_regret_and_efficiency(tmp_path):
    def row(arm, alpha, seed, curve, proxy_weights=None):
        regret = curve[-1][1]
        return {
            "arm": arm,
            "alpha": alpha,
            "proxy_weights": proxy_weights or {},
            "seed": seed,
            "regret": regret,
            "winner mature acc": 0.94 - regret,
            "top-score mature acc": 0.94 - regret,
            "examples (M1·E1)": curve[-1][0],
            "curve": curve,
            "mature_accuracy_source": "a table",
        }

    guided = "P + 8·TG"
    rows = [
        row("P", 0.0, 1, [[100, 0.08], [200, 0.05]]),
        row("P", 0.0, 2, [[100, 0.03], [200, 0.03]]),
        row("P", 0.0, 3, [[100, 0.06], [200, 0.06]]),
        row(guided, 8.0, 1, [[100, 0.05], [200, 0.02]]),
        row(guided, 8.0, 2, [[100, 0.04], [200, 0.02]]),
        row(guided, 8.0, 3, [[100, 0.07], [200, 0.07]]),
        row("P + 0.1·naswot", 0.0, 1, [[100, 0.05], [200, 0.05]], {"naswot": 0.1}),
        row("P + 0.1·naswot", 0.0, 2, [[100, 0.03], [200, 0.03]], {"naswot": 0.1}),
    ]
    source = tmp_path / "searches.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = keras_sage("report", str(source))
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[2]
    differences = [0.02 - 0.05, 0.02 - 0.03, 0.07 - 0.06]
    interval = stats.ttest_1samp(differences, 0.0).confidence_interval(0.95)
    assert (
        f"{guided}: the top-scored cell's regret to the space's best is 0.0367 on average against P's "
        f"0.0467, a difference of -0.0100 paired over 3 seed(s) (95% t interval [{interval.low:+.4f}, "
        f"{interval.high:+.4f}]; lower at 2, equal at 0, higher at 1), at 1.000× P's search examples."
    ) in first
    # P reached its final regrets after 200, 100 and 100 examples; the guided arm after 100 and 200, and
    # never at seed 3, so the ratio is 0.
    assert f"{guided} reached P's final regret at 2 of 3 seed(s); the examples P needed" in first
    assert "over those P + 8·TG needed: 0.00 [" in first
    # The proxy arm shares P's α but is its own arm, over the 2 seeds it ran: regret 0.04 against 0.04.
    assert "P + 0.1·naswot: the top-scored cell's regret to the space's best is 0.0400 on average" in first
    assert "a difference of +0.0000 paired over 2 seed(s) (no interval" in first
    assert "P + 0.1·naswot reached P's final regret at 2 of 2 seed(s)" in first
    # The guided arms against each other, teacher first, over the seeds both ran: 0.02, 0.02 against 0.05,
    # 0.03; no efficiency sentence, whose reference is P's final regret.
    between = stats.ttest_1samp([0.02 - 0.05, 0.02 - 0.03], 0.0).confidence_interval(0.95)
    assert first.endswith(
        f"{guided}: the top-scored cell's regret to the space's best is 0.0200 on average against "
        f"P + 0.1·naswot's 0.0400, a difference of -0.0200 paired over 2 seed(s) (95% t interval "
        f"[{between.low:+.4f}, {between.high:+.4f}]; lower at 2, equal at 0, higher at 0), at 1.000× "
        "P + 0.1·naswot's search examples."
    )
    assert first.count("reached P's final regret at") == 2
    assert "curve" not in result.stdout and "[[100" not in result.stdout
    assert result.stdout.count("a table") == 1 and "mature_accuracy_source: a table" in result.stdout
    # A search stopped mid-way: a guided arm with a seed P has not run is said, not an error.
    unpaired = describe_comparisons([*rows[:2], row(guided, 8.0, 3, [[100, 0.07]])])
    assert unpaired == [f"{guided}: no seed searched by P too, yet."]
    # Regrets equal but for rounding are a difference of +0.0000, not -0.0000.
    rounding = describe_comparisons([row("P", 0.0, 1, [[100, 0.1 + 0.2]]), row(guided, 8.0, 1, [[100, 0.3]])])
    assert "a difference of +0.0000 paired over 1 seed(s)" in rounding[0]
    # Searches at two budgets are compared one budget at a time.
    two_budgets = [{**r, "budget": 78} for r in rows[:6]] + [{**r, "budget": 39} for r in rows[:6]]
    by_budget = describe_comparisons(two_budgets)
    assert [sentence.split(":")[0] for sentence in by_budget] == ["At 39 steps"] * 2 + ["At 78 steps"] * 2
    assert by_budget[0].startswith(f"At 39 steps: {guided}: the top-scored cell's regret")
    assert result.stdout.count("P + 8·TG  ") >= 3  # the table lists every search


def test_a_control_the_same_for_every_architecture_is_left_out_and_said(tmp_path):
    from keras_sage.analysis import pool_report

    rows = [{**row, "depth": 15.0} for row in read_pool(POOL)]  # as in NAS-Bench-201: one depth for all
    markdown = pool_report(rows, tmp_path, title="Constant depth", n_resamples=50)
    assert "partial r given log_flops (depth left out: the same for every architecture)." in markdown
    assert "partial ρ(TG | log_flops) = " in markdown and "partial ρ(TG | depth" not in markdown
    partial = predictivity(rows, n_resamples=50, controls=("log_flops",))
    tg = next(row for row in partial if row["budget"] == 15 and row["predictor"] == "TG")
    assert f"partial ρ(TG | log_flops) = {tg['partial_r']:.3f}" in markdown
