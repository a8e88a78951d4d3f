"""The proxies' correlations on NAS-Bench-201 cells, beside the published values."""

import math

import numpy as np
import pytest
import scipy.stats

from keras_sage import nasbench201
from keras_sage.analysis import append_rows
from keras_sage.analysis.predictors import percentile_interval, resample_indices
from keras_sage.analysis.proxy_table import (
    conv_count,
    proxy_markdown,
    proxy_table,
    read_proxy_rows,
    teacher_guidance_rows_path,
    whole_table_conv_count_correlation,
)


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(4)
    cells = sorted(nasbench201.arch_strings())[:: 15625 // 60][:60]
    mature = rng.uniform(0.1, 0.94, len(cells))
    return [
        {
            "arch_string": cell,
            "mature_accuracy": float(accuracy),
            "synflow": float(accuracy * 1e40 + rng.normal() * 1e39),
            "snip": float(rng.normal()),
            "naswot": -math.inf if position == 0 else float(accuracy + rng.normal() * 0.2),
            "params": float(position),
        }
        for position, (cell, accuracy) in enumerate(zip(cells, mature, strict=True))
    ]


def test_each_proxys_rho_and_interval_match_scipy_on_the_same_resamples(rows):
    table = {entry["proxy"]: entry for entry in proxy_table(rows, ("synflow", "snip"), n_resamples=300)}
    mature = np.array([row["mature_accuracy"] for row in rows])
    for name in ("synflow", "snip"):
        values = np.array([row[name] for row in rows])
        resampled = [
            scipy.stats.spearmanr(values[indices], mature[indices]).statistic
            for indices in resample_indices(len(rows), 300, 0)
        ]
        assert table[name]["r"] == pytest.approx(scipy.stats.spearmanr(values, mature).statistic, abs=1e-12)
        assert (table[name]["ci_low"], table[name]["ci_high"]) == pytest.approx(
            percentile_interval(np.array(resampled)), abs=1e-9
        )
        assert table[name]["n"] == 60
    assert table["synflow"]["suite_zero"] == 0.73 and table["synflow"]["abdelfattah"] == 0.737
    assert table["synflow"]["difference"] == pytest.approx(table["synflow"]["r"] - 0.73)


def test_minus_infinity_ranks_below_every_finite_value(rows):
    (entry,) = proxy_table(rows, ("naswot",), n_resamples=50)
    values = np.array([row["naswot"] for row in rows])
    values[0] = values[1:].min() - 1
    mature = np.array([row["mature_accuracy"] for row in rows])
    assert entry["r"] == pytest.approx(scipy.stats.spearmanr(values, mature).statistic, abs=1e-12)


def test_conv_count_is_read_from_the_arch_string_and_ranks_the_whole_table_as_published():
    assert conv_count("|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|nor_conv_3x3~1|none~2|") == 19
    assert whole_table_conv_count_correlation() == pytest.approx(0.744, abs=0.005)


def test_the_markdown_flags_only_a_proxy_far_from_its_published_value_with_an_interval_excluding_it(rows):
    markdown = proxy_markdown(rows, n_resamples=100)
    # synflow follows the mature accuracy almost exactly here (ρ near 1, far above 0.73): flagged;
    # snip is noise (ρ near 0, far below 0.58): flagged; params (ρ of the row order) too.
    flagged = markdown.split("interval excluding it: ")[1].split(".")[0].split(", ")
    assert "synflow" in flagged and "snip" in flagged
    assert "| conv_count |" in markdown and "NAS-Bench-Suite-Zero" in markdown


def test_tg_at_initialisation_is_joined_from_its_own_rows_and_shown_in_the_table(rows, tmp_path):
    path = tmp_path / "nb201-proxies-cifar10-32px-seed0.jsonl"
    append_rows(path, rows)
    assert teacher_guidance_rows_path(path) == tmp_path / "nb201-tg-init-cifar10-32px-seed0.jsonl"
    assert "teacher_guidance" not in proxy_markdown(read_proxy_rows(path), n_resamples=50)
    # TG scored on the first 40 cells so far, in another order.
    scored = [{"arch_string": row["arch_string"], "teacher_guidance": -row["params"]} for row in rows[:40]]
    append_rows(teacher_guidance_rows_path(path), scored[::-1])
    joined = read_proxy_rows(path)
    assert [row["teacher_guidance"] for row in joined[:40]] == [-row["params"] for row in rows[:40]]
    assert all(math.isnan(row["teacher_guidance"]) for row in joined[40:])
    markdown = proxy_markdown(joined, n_resamples=50)
    mature = [row["mature_accuracy"] for row in rows[:40]]
    expected = scipy.stats.spearmanr([-row["params"] for row in rows[:40]], mature).statistic
    assert f"| teacher_guidance | {expected:.3f} | [" in markdown and "| — | — | — | 40 |" in markdown
