"""Figures of a pool: written as PNG and SVG, on standalone figures that leave pyplot alone."""

import xml.etree.ElementTree as ElementTree

import matplotlib
import matplotlib.pyplot as pyplot
import numpy as np
import pytest

from keras_sage.analysis import (
    plot_alpha_sweep,
    plot_predictivity,
    plot_predictor_scatter,
    plot_replay,
    predictivity,
    replay_curve,
)
from keras_sage.analysis.plots import new_figure, save_figure_formats

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(0)
    n = 16
    mature = rng.uniform(0.5, 0.9, n)
    rows = []
    for budget, noise in [(50, 0.3), (200, 0.1), (800, 0.03)]:
        rows += [
            {
                "arch_id": f"a{i:02d}",
                "budget": budget,
                "examples": budget * 32,
                "premature_accuracy": mature[i] + rng.normal(0, noise),
                "teacher_guidance": mature[i] + rng.normal(0, 0.1),
                "S_L1": mature[i] + rng.normal(0, 0.2),
                "TG_untrained": rng.uniform(0, 1),
                "mature_accuracy": mature[i],
                "depth": int(rng.integers(2, 8)),
                "flops": float(rng.uniform(1e6, 1e7)),
            }
            for i in range(n)
        ]
    rows[5]["teacher_guidance"] = float("nan")  # a diverged candidate
    return rows


def assert_png_and_svg(paths, stem):
    assert paths == (f"{stem}.png", f"{stem}.svg")
    with open(paths[0], "rb") as file:
        assert file.read(8) == PNG_MAGIC
    assert ElementTree.parse(paths[1]).getroot().tag.endswith("svg")


def test_every_figure_of_a_pool_is_written_as_png_and_svg_without_touching_pyplot(pool, tmp_path):
    backend = matplotlib.get_backend()
    figures_before = pyplot.get_fignums()
    rows = predictivity(pool, alphas=(0, 0.5, 1, 2), n_boot=50)
    curve = replay_curve(pool, budgets=[50, 200, 800], alpha=1.0, trials_grid=[1, 2, 4, 8, 15])

    assert_png_and_svg(plot_predictivity(rows, tmp_path / "predictivity"), tmp_path / "predictivity")
    assert_png_and_svg(plot_alpha_sweep(rows, tmp_path / "alpha.png"), tmp_path / "alpha")
    assert_png_and_svg(plot_predictor_scatter(pool, tmp_path / "scatter", budget=200), tmp_path / "scatter")
    assert_png_and_svg(plot_replay(curve, tmp_path / "replay.svg"), tmp_path / "replay")

    assert matplotlib.get_backend() == backend
    assert pyplot.get_fignums() == figures_before


def test_the_predictivity_figure_draws_the_default_predictors_with_their_bands(pool, tmp_path, monkeypatch):
    rows = predictivity(pool, alphas=(0.5, 1), n_boot=20)
    drawn = {}
    original = save_figure_formats

    def capture(figure, path):
        axes = figure.axes[0]
        drawn["lines"] = [
            line.get_label() for line in axes.get_lines() if not line.get_label().startswith("_")
        ]
        drawn["bands"] = len(axes.collections)
        return original(figure, path)

    monkeypatch.setattr("keras_sage.analysis.plots.save_figure_formats", capture)
    plot_predictivity(rows, tmp_path / "predictivity")
    assert drawn["lines"] == ["P", "TG", "S_L1", "TG_untrained", "depth", "log_flops", "P+1TG"]
    assert drawn["bands"] == 7


def test_save_figure_formats_names_each_format_from_the_stem(tmp_path):
    figure = new_figure((2, 2))
    figure.subplots().plot([0, 1], [1, 0])
    assert save_figure_formats(figure, tmp_path / "a.png") == (f"{tmp_path}/a.png", f"{tmp_path}/a.svg")
    assert save_figure_formats(figure, tmp_path / "b.v1") == (f"{tmp_path}/b.v1.png", f"{tmp_path}/b.v1.svg")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.png", "a.svg", "b.v1.png", "b.v1.svg"]
