"""examples/nasbench201_science.py: its search plan on a synthetic pool, and every stage end to end at
`--scale smoke` as a subprocess, on a made-up archive of class-named JPEG folders (the layout of the shared
CIFAR-10 archive; nothing is downloaded)."""

import importlib.util
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_sage import nasbench201

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "nasbench201_science.py"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@pytest.fixture(scope="module")
def example():
    sys.path.insert(0, str(EXAMPLE.parent))
    spec = importlib.util.spec_from_file_location("nasbench201_science", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic_pool(n: int, seed: int) -> list[dict]:
    """Cells from the table at budgets 0, 10 and 20; P ranks them backwards at 10 steps and forwards at 20,
    TG follows mature accuracy, naswot does so more closely."""
    rng = np.random.default_rng(seed)
    cells = nasbench201.sample_arch_strings(n, seed)
    mature = np.array([nasbench201.mature_accuracy(cell) for cell in cells])
    rows = []
    for index, cell in enumerate(cells):
        for budget, sign in ((0, 0.0), (10, -1.0), (20, 1.0)):
            rows.append(
                {
                    "arch_id": f"{index:04d}",
                    "arch_string": cell,
                    "budget": budget,
                    "premature_accuracy": float(0.1 + sign * mature[index] + rng.normal(0, 0.01)),
                    "teacher_guidance": float(mature[index] + rng.normal(0, 0.05)),
                    "naswot": float(1000 * mature[index] + rng.normal(0, 1)),
                    "mature_accuracy": float(mature[index]),
                }
            )
    return rows


def test_the_plan_is_chosen_once_at_the_budget_where_p_ranks_the_cells(example, tmp_path):
    pool = synthetic_pool(40, 3)
    path = tmp_path / "pool-searches-plan.json"
    plan = example.search_plan(pool, path)
    assert plan["budget"] == 20, plan["why"]
    assert "the shortest budget at which ρ(P) is shown above 0" in plan["why"]
    arms = [arm["arm"] for arm in plan["arms"]]
    assert arms[0] == "P" and arms[1].endswith("·TG") and arms[2].endswith("·naswot")
    assert plan["arms"][2]["proxy_weights"]["naswot"] > 0
    # Kept: a grown pool in which P ranks the cells at 10 steps too does not change it.
    grown = [{**row, "premature_accuracy": row["mature_accuracy"]} for row in synthetic_pool(60, 4)]
    assert example.search_plan(grown, path) == plan
    with pytest.raises(ValueError, match="no trained budget"):
        example.search_budget([row for row in pool if row["budget"] == 0])


def made_up_archive(path: Path, per_class: int) -> None:
    """`train/<class>/<n>.jpg`, 32×32, each class a mean colour plus noise (so a teacher can learn it)."""
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as archive:
        for label, name in enumerate(CLASSES):
            for index in range(per_class):
                pixels = np.clip(rng.normal(25 * label, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
                buffer = io.BytesIO()
                Image.fromarray(pixels).save(buffer, format="JPEG")
                info = tarfile.TarInfo(f"train/{name}/{index:05d}.jpg")
                info.size = buffer.tell()
                buffer.seek(0)
                archive.addfile(info, buffer)


def run_example(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        str(EXAMPLE),
        "--scale",
        "smoke",
        "--pools",
        str(tmp_path / "pools"),
        "--cache",
        str(tmp_path / "cache"),
        "--data",
        str(tmp_path / "cifar10-jpeg.tar.gz"),
        *arguments,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_search_arms_picks_the_plans_arms_by_name_in_the_plans_order(example):
    plan = {"arms": [{"arm": "P"}, {"arm": "P + 8·TG"}, {"arm": "P + 0.1·naswot"}]}
    assert example.planned_arms(plan, None) == plan["arms"]
    assert example.planned_arms(plan, ["P + 0.1·naswot", "P"]) == [{"arm": "P"}, {"arm": "P + 0.1·naswot"}]
    with pytest.raises(ValueError, match=r"'P\+8·TG' not in the search plan's arms \['P', 'P \+ 8·TG', "):
        example.planned_arms(plan, ["P+8·TG"])


@pytest.mark.slow
def test_every_stage_runs_and_a_rerun_adds_nothing(tmp_path):
    # The paper's split holds out 5,000 images: 580 a class leaves 800 for training.
    made_up_archive(tmp_path / "cifar10-jpeg.tar.gz", 580)
    run_example(tmp_path, "--stage", "search", "--search-seeds", "1", "--search-trials", "2")
    pools = tmp_path / "pools"
    (pool_path,) = [path for path in pools.glob("nasbench201-*.jsonl") if "searches" not in path.name]
    pool = [json.loads(line) for line in pool_path.read_text().splitlines()]
    assert sorted({row["budget"] for row in pool}) == [0, 1, 2, 5]
    for row in pool:
        assert row["mature_accuracy"] == nasbench201.mature_accuracy(row["arch_string"])
    searches = pool_path.with_name(f"{pool_path.stem}-searches.jsonl")
    rows = [json.loads(line) for line in searches.read_text().splitlines()]
    plan = json.loads(pool_path.with_name(f"{pool_path.stem}-searches-plan.json").read_text())
    assert [row["arm"] for row in rows] == [arm["arm"] for arm in plan["arms"]]
    best = max(nasbench201.mature_accuracy(cell) for cell in nasbench201.arch_strings())
    for row in rows:
        assert row["trials"] == 2 and row["seed"] == 1 and row["budget"] == plan["budget"]
        assert row["regret"] == pytest.approx(best - nasbench201.mature_accuracy(row["top-scored cell"]))
        assert row["curve"][-1] == [row["examples (M1·E1)"], pytest.approx(row["regret"])]
    assert (searches.with_name(f"{searches.stem}-report") / "report.md").exists()
    description = json.loads(pool_path.with_suffix(".json").read_text())
    assert description["searches"].startswith(f"{searches.name} (one row per search run)")
    assert "rerank_top_k" not in description["scale"]
    # A rerun finds every search done: no row added, no trial trained.
    again = run_example(tmp_path, "--stage", "search", "--search-seeds", "1", "--search-trials", "2")
    assert searches.read_text().count("\n") == len(rows)
    assert "search P, seed 1" not in again.stdout
    # One arm of another seed, as a second process would run it beside the first.
    one_arm = ("--search-seeds", "2", "--search-trials", "2", "--search-arms", "P")
    run_example(tmp_path, "--stage", "search", *one_arm)
    added = [json.loads(line) for line in searches.read_text().splitlines()][len(rows) :]
    assert [(row["arm"], row["seed"]) for row in added] == [("P", 2)]
