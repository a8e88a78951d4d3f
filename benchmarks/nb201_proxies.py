"""The field's zero-cost proxies on NAS-Bench-201, validated against their published correlations.

For cells drawn uniformly (seeded, without replacement) from the 15,625 of NAS-Bench-201, each network is
built by `keras_sage.NASBench201SearchSpace` at 32×32 on CIFAR-10 (the shared JPEGs, per-image
standardized as the students see them) and scored at initialisation by every proxy of
`keras_sage.proxies` (params, flops, synflow, snip and grad_norm on 64 training images as Abdelfattah et
al. use, naswot on 128 as Mellor et al. use). The mature accuracy is looked up in the table of
`keras_sage.nasbench201` (no training at all). One row per cell is appended as it is scored, so a killed
run resumes where it stopped:

    python benchmarks/nb201_proxies.py --cells 1000             # scores (hours on 2 cores; resumable)
    python benchmarks/nb201_proxies.py --report                 # Spearman ρ with 95% intervals

The report puts each proxy's Spearman ρ with the mature accuracy, with a 95% percentile interval from
resampling the cells, beside its published NAS-Bench-201 CIFAR-10 value; a proxy more than 0.05 from it is
a bug until shown otherwise. The conv count 9·#3×3 + #1×1 is a control computed from the arch string.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from cifar10_science import DEFAULT_ARCHIVE, DEFAULT_CACHE, cifar10_arrays, standardized

from keras_sage import contract, nasbench201
from keras_sage.analysis.pool import append_rows, read_pool
from keras_sage.analysis.predictors import percentile_interval, resample_indices
from keras_sage.hypermodels import NASBench201SearchSpace
from keras_sage.proxies import naswot, zero_cost_proxies

RESULTS = Path(__file__).resolve().parent / "results"
# Abdelfattah et al. score on one batch of 64 images; Mellor et al. on 128 for NAS-Bench-201.
GRADIENT_BATCH = 64
NASWOT_BATCH = 128
GRADIENT_PROXIES = (contract.PARAMS, contract.FLOPS, contract.SYNFLOW, contract.SNIP, contract.GRAD_NORM)
CONV_COUNT = "conv_count"  # 9·#nor_conv_3x3 + #nor_conv_1x1 of the cell (the weights of its convolutions)
# Published Spearman ρ with NAS-Bench-201 CIFAR-10 accuracy after 200 epochs, as (NAS-Bench-Suite-Zero,
# Abdelfattah et al.); None where that source gives none:
# - Krishnakumar et al. (NeurIPS 2022 Datasets and Benchmarks), "NAS-Bench-Suite-Zero", Figure 2 (the
#   NB201-CF10 column): 1,000 random cells, batch 64, 200-epoch validation accuracy (cifar10-valid).
# - Abdelfattah et al. (ICLR 2021), "Zero-Cost Proxies for Lightweight NAS": all 15,625 cells, batch 64,
#   200-epoch test accuracy (cifar10-valid), as the authors' notebook nasbench201_correlations.ipynb
#   prints its "Table 1".
PUBLISHED: dict[str, tuple[float | None, float | None]] = {
    contract.PARAMS: (0.72, None),
    contract.FLOPS: (0.69, None),
    contract.SYNFLOW: (0.73, 0.737),
    contract.SNIP: (0.58, 0.596),
    contract.GRAD_NORM: (0.58, 0.594),
    contract.NASWOT: (0.77, None),
    CONV_COUNT: (None, None),
}


def conv_count(arch_string: str) -> int:
    """9·#nor_conv_3x3 + #nor_conv_1x1: the weights per channel pair of a cell's convolutions."""
    operations = nasbench201.parse_arch_string(arch_string)
    return 9 * operations.count("nor_conv_3x3") + operations.count("nor_conv_1x1")


def drawn_cells(count: int, seed: int) -> list[str]:
    """`count` arch strings drawn uniformly without replacement from the table (seeded)."""
    strings = sorted(nasbench201.arch_strings())
    chosen = np.random.default_rng(seed).permutation(len(strings))[:count]
    return [strings[position] for position in chosen]


def score_cells(arguments: argparse.Namespace) -> None:
    arrays = cifar10_arrays(arguments.archive, arguments.cache, 32)
    rng = np.random.default_rng(arguments.seed)
    batch = rng.choice(len(arrays["labels"]), NASWOT_BATCH, replace=False)
    images, labels = standardized(arrays["images"][batch]), arrays["labels"][batch]
    space = NASBench201SearchSpace(num_classes=10, input_shape=(32, 32, 3))
    path = arguments.out
    done = {row["arch_string"] for row in read_pool(path)} if path.exists() else set()
    cells = drawn_cells(arguments.cells, arguments.seed)
    started, scored = time.perf_counter(), 0
    for index, arch_string in enumerate(cells):
        if arch_string in done:
            continue
        cell_started = time.perf_counter()
        keras.utils.set_random_seed(arguments.seed + index)
        model = space.model_from_arch_string(arch_string)
        scores = zero_cost_proxies(
            model, images[:GRADIENT_BATCH], labels[:GRADIENT_BATCH], names=GRADIENT_PROXIES
        )
        scores[contract.NASWOT] = naswot(model, images)
        row = {
            "index": index,
            "arch_string": arch_string,
            "seed": arguments.seed + index,
            **{name: float(value) for name, value in scores.items()},
            CONV_COUNT: conv_count(arch_string),
            contract.MATURE_ACCURACY: nasbench201.mature_accuracy(arch_string),
            "mature_accuracy_source": nasbench201.MATURE_ACCURACY_SOURCE,
            "seconds": round(time.perf_counter() - cell_started, 2),
        }
        append_rows(path, [row])
        keras.backend.clear_session(free_memory=True)
        scored += 1
        elapsed = time.perf_counter() - started
        remaining = elapsed / scored * (len(cells) - len(done) - scored)
        print(
            f"cell {index + 1}/{len(cells)}: {row['seconds']:.1f} s · ETA {remaining / 60:.0f} min",
            file=sys.stderr,
            flush=True,
        )


def report(path: Path, n_resamples: int, seed: int) -> str:
    """The Spearman ρ of each proxy with the mature accuracy, with its interval, as markdown."""
    rows = read_pool(path)
    target = np.array([row[contract.MATURE_ACCURACY] for row in rows])
    lines = [
        f"# Zero-cost proxies on NAS-Bench-201 (CIFAR-10, 32×32): {len(rows)} cells",
        "",
        f"Rows: `{path.name}`, made by `python benchmarks/nb201_proxies.py --cells N` (2 CPU cores).",
        f"Mature accuracy: {nasbench201.MATURE_ACCURACY_SOURCE}.",
        f"Spearman ρ with mature accuracy; 95% percentile intervals from {n_resamples} resamples of the "
        "cells. Published ρ with NAS-Bench-201's own 200-epoch CIFAR-10 accuracies: NAS-Bench-Suite-Zero "
        "(Krishnakumar et al., NeurIPS 2022, Figure 2: 1,000 random cells, batch 64) and Abdelfattah et "
        "al. (ICLR 2021, 'Table 1' as their nasbench201_correlations notebook prints it: all 15,625 "
        "cells); — where the source gives none. Our ground truth is another 200-epoch training of the "
        "same cells (the table above), so some difference is expected; more than 0.05 is a bug until "
        "shown otherwise.",
        "",
        "| proxy | ρ | 95% interval | NAS-Bench-Suite-Zero | Abdelfattah et al. | difference | cells |",
        "|---|---|---|---|---|---|---|",
    ]
    indices = resample_indices(len(rows), n_resamples, seed)
    for name, (suite_zero, abdelfattah) in PUBLISHED.items():
        values = np.array([row.get(name, np.nan) for row in rows], dtype=np.float64)
        kept = ~np.isnan(values) & ~np.isnan(target)
        rho = float(spearmanr(values[kept], target[kept])[0])
        resampled = [
            float(spearmanr(values[sample][kept[sample]], target[sample][kept[sample]])[0])
            for sample in indices
        ]
        low, high = percentile_interval(np.array(resampled))
        reference = suite_zero if suite_zero is not None else abdelfattah
        difference = "—" if reference is None else f"{rho - reference:+.3f}"
        lines.append(
            f"| {name} | {rho:.3f} | [{low:.3f}, {high:.3f}] | {_shown(suite_zero)} | {_shown(abdelfattah)} "
            f"| {difference} | {int(kept.sum())} |"
        )
    seconds = [row["seconds"] for row in rows]
    lines += ["", f"Seconds per cell (all proxies): median {np.median(seconds):.1f}, max {max(seconds):.1f}."]
    return "\n".join(lines) + "\n"


def _shown(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=1000, help="cells to score (default: 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", action="store_true", help="write the report of the rows so far")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--archive", type=Path, default=DEFAULT_ARCHIVE)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=None, help="the rows file (JSON Lines)")
    arguments = parser.parse_args(argv)
    if arguments.out is None:
        arguments.out = RESULTS / f"nb201-proxies-cifar10-32px-seed{arguments.seed}.jsonl"
    if arguments.report:
        markdown = report(arguments.out, arguments.resamples, arguments.seed)
        arguments.out.with_suffix(".md").write_text(markdown)
        print(markdown)
        return
    score_cells(arguments)


if __name__ == "__main__":
    main()
