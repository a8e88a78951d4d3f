"""The analysis package's tables, running best, search plot and project files (no search, no TensorFlow)."""

import json
import math
import subprocess
import sys

import matplotlib
import numpy as np
import pytest

from keras_sage.analysis import (
    TrialRecord,
    best_so_far,
    format_table,
    plot_search,
    project_records,
    search_summary,
)


def test_table_aligns_numbers_right_and_text_left_and_prints_nan_as_a_dash():
    table = format_table(
        [{"arm": "P+TG", "best P": 0.5, "examples": 12000}, {"arm": "P", "best P": math.nan, "examples": 7}]
    )
    assert table.splitlines() == [
        "arm   best P  examples",
        "----  ------  --------",
        "P+TG  0.5000    12,000",
        "P          -         7",
    ]


def test_table_of_no_rows_is_empty_and_float_format_applies():
    assert format_table([]) == ""
    assert format_table([{"r": 0.123456}], float_format="{:.2f}").splitlines()[-1] == "0.12"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([math.nan, 0.2, 0.1, 0.4], [math.nan, 0.2, 0.2, 0.4]),
        ([], []),
        ([math.nan, math.nan], [math.nan, math.nan]),
        ([0.3, math.nan, 0.1], [0.3, 0.3, 0.3]),
    ],
)
def test_best_so_far_is_the_running_maximum_ignoring_nan(values, expected):
    np.testing.assert_array_equal(best_so_far(values), expected)


def records(offset: float) -> list[TrialRecord]:
    return [
        TrialRecord("0", "COMPLETED", premature_accuracy=0.3 + offset, teacher_guidance=0.1),
        TrialRecord("1", "FAILED", message="training diverged"),
        TrialRecord("2", "COMPLETED", premature_accuracy=0.5 + offset, teacher_guidance=0.2),
    ]


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_search_writes_the_file_and_leaves_the_backend_alone(tmp_path, suffix):
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend()
    figures = plt.get_fignums()
    path = plot_search({"P+TG": records(0.0), "P": records(0.1)}, tmp_path / f"search{suffix}")
    content = (tmp_path / f"search{suffix}").read_bytes()
    assert path.endswith(suffix)
    assert content.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in content
    assert matplotlib.get_backend() == backend
    assert plt.get_fignums() == figures  # no figure left in pyplot's registry
    # The same plot gives the same bytes (no date, fixed SVG ids), so a committed report diffs cleanly.
    plot_search({"P+TG": records(0.0), "P": records(0.1)}, tmp_path / f"again{suffix}")
    assert (tmp_path / f"again{suffix}").read_bytes() == content


def test_the_analysis_package_imports_no_tensorflow():
    code = "import sys, keras_sage.analysis; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_distributed_projects_cost_sums_every_process_and_its_reranked_are_best_first(tmp_path):
    (tmp_path / "oracle.json").write_text(json.dumps({"start_order": []}))
    chief = {"search_examples": 0, "rerank_examples": 500, "bootstrap_examples": 0}
    (tmp_path / "tuner0.json").write_text(json.dumps(chief))
    for worker, examples, accuracy in (
        ("tuner-a-1", 1200, 0.61),
        ("tuner-b-2", 800, 0.74),
        ("tuner-0-3", 0, math.nan),
    ):
        result = {"trial_id": worker, "score": 0.5, "mature_accuracy": accuracy, "examples_processed": 250}
        state = {"search_examples": examples, "rerank_examples": 250, "rerank_results": [result]}
        state["bootstrap_examples"] = examples // 4
        (tmp_path / f"{worker}.json").write_text(json.dumps(state))

    project = project_records(tmp_path)

    assert project.search_examples == 2000
    assert project.rerank_examples == 1250
    assert project.bootstrap_examples == 500
    assert search_summary("arm", project)["examples (+M2·E2)"] == 2000 + 1250 + 500
    # A diverged candidate (NaN) comes last, whichever process reranked it.
    assert [result["mature_accuracy"] for result in project.reranked][:2] == [0.74, 0.61]
    assert math.isnan(project.reranked[2]["mature_accuracy"])


def test_a_trial_record_says_which_teacher_version_scored_it():
    from keras_sage.analysis.records import record_from_trial_state

    def state(metrics: dict[str, float]) -> dict:
        observed = {name: {"observations": [{"value": [value]}]} for name, value in metrics.items()}
        return {"trial_id": "03", "status": "COMPLETED", "metrics": {"metrics": observed}}

    record = record_from_trial_state(state({"score": 0.9, "teacher_version": 2.0, "S_L1": 0.4}))
    assert (record.teacher_version, record.score, record.similarities) == (2.0, 0.9, {"L1": 0.4})
    assert math.isnan(record_from_trial_state(state({"score": 0.9})).teacher_version)
