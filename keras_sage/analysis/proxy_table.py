"""The field's proxies on NAS-Bench-201, against their published correlations: `proxy_table`.

Rows of cells scored at initialisation (`benchmarks/nb201_proxies.py` writes them: one row per cell with
its `arch_string`, each proxy of `keras_sage.proxies`, and its `mature_accuracy`) give each proxy's rank
correlation with the mature accuracy, with a 95% percentile interval from resampling the cells
(`keras_sage.analysis.predictivity`'s resampling), beside the values the field publishes for NAS-Bench-201
CIFAR-10. A proxy more than `TOLERANCE` from its published value, with an interval that excludes that
value, is a bug until shown otherwise (a sample's ρ differs from a population's by chance: the interval
says by how much). `conv_count` ranks like `params` and `flops` (a cell's weights are 9·#3×3 + #1×1 per
channel pair), and over all 15,625 cells it needs no network: its ρ over the whole table is reported too.

TG at initialisation (DisWOT's regime) is scored into a rows file of its own beside the proxies'
(`teacher_guidance_rows_path`); `read_proxy_rows` joins it, so the table shows it beside the proxies.

Example:

```python
rows = read_proxy_rows("benchmarks/results/nb201-proxies-cifar10-32px-seed0.jsonl")
print(proxy_markdown(rows))
```
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from keras_sage import contract, nasbench201
from keras_sage.analysis.pool import read_pool
from keras_sage.analysis.predictors import resampled_correlation

__all__ = [
    "CONV_COUNT",
    "PUBLISHED_NB201_CIFAR10",
    "TOLERANCE",
    "conv_count",
    "proxy_markdown",
    "proxy_table",
    "read_proxy_rows",
    "teacher_guidance_rows_path",
    "whole_table_conv_count_correlation",
]

CONV_COUNT = "conv_count"  # 9·#nor_conv_3x3 + #nor_conv_1x1 of a cell (the weights of its convolutions)
# A proxy further than this from its published ρ is a bug until shown otherwise.
TOLERANCE = 0.05
# Published Spearman ρ with NAS-Bench-201's own 200-epoch CIFAR-10 accuracies, as
# (NAS-Bench-Suite-Zero, Abdelfattah et al.); None where that source gives none:
# - Krishnakumar et al. (NeurIPS 2022 Datasets and Benchmarks), "NAS-Bench-Suite-Zero", Figure 2 (the
#   NB201-CF10 column): 1,000 random cells, batch 64, validation accuracy (cifar10-valid).
# - Abdelfattah et al. (ICLR 2021), "Zero-Cost Proxies for Lightweight NAS": all 15,625 cells, batch 64,
#   test accuracy (cifar10-valid), as the authors' notebook nasbench201_correlations.ipynb prints its
#   "Table 1".
PUBLISHED_NB201_CIFAR10: dict[str, tuple[float | None, float | None]] = {
    contract.PARAMS: (0.72, None),
    contract.FLOPS: (0.69, None),
    contract.SYNFLOW: (0.73, 0.737),
    contract.SNIP: (0.58, 0.596),
    contract.GRAD_NORM: (0.58, 0.594),
    contract.NASWOT: (0.77, None),
    CONV_COUNT: (None, None),
}
_SOURCES = (
    "Published ρ with NAS-Bench-201's own 200-epoch CIFAR-10 accuracies: NAS-Bench-Suite-Zero "
    "(Krishnakumar et al., NeurIPS 2022, Figure 2: 1,000 random cells, batch 64) and Abdelfattah et al. "
    "(ICLR 2021, 'Table 1' as their nasbench201_correlations notebook prints it: all 15,625 cells); — where "
    "the source gives none."
)


def conv_count(arch_string: str) -> int:
    """9·#nor_conv_3x3 + #nor_conv_1x1: the weights per channel pair of a cell's convolutions."""
    operations = nasbench201.parse_arch_string(arch_string)
    return 9 * operations.count("nor_conv_3x3") + operations.count("nor_conv_1x1")


def teacher_guidance_rows_path(path: str | os.PathLike[str]) -> Path:
    """The rows of TG at initialisation beside the proxies' rows at `path` (never `path` itself)."""
    path = Path(path)
    if "nb201-proxies" in path.stem:
        return path.with_name(path.stem.replace("nb201-proxies", "nb201-tg-init") + path.suffix)
    return path.with_name(f"{path.stem}-tg-init{path.suffix}")


def read_proxy_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The proxies' rows at `path`, each with its cell's TG at initialisation (`teacher_guidance`) where the
    rows beside them (`teacher_guidance_rows_path`) have scored it, NaN where not yet."""
    rows = read_pool(path)
    guidance_path = teacher_guidance_rows_path(path)
    if not guidance_path.exists():
        return rows
    guidance = {row["arch_string"]: row[contract.TEACHER_GUIDANCE] for row in read_pool(guidance_path)}
    return [{**row, contract.TEACHER_GUIDANCE: guidance.get(row["arch_string"], math.nan)} for row in rows]


def proxy_table(
    rows: Sequence[Mapping[str, Any]],
    names: Sequence[str] = tuple(PUBLISHED_NB201_CIFAR10),
    *,
    method: str = "spearman",
    n_resamples: int = 2000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Each proxy's correlation with the mature accuracy, with its interval and the published value.

    A proxy of −∞ (naswot of a network whose ReLU codes coincide) ranks below every finite value; rows
    without the proxy or the mature accuracy are left out of its correlation.

    Args:
        rows: One row per cell: `mature_accuracy`, the proxies, and `arch_string` (for `conv_count`).
        names: The proxies (and `conv_count`).
        method: `"spearman"` (the field's) or `"pearson"`.
        n_resamples: Resamples of the cells (with replacement) behind each interval.
        seed: Seed of the resamples.

    Returns:
        One dict per proxy: `proxy`, `r`, `ci_low`, `ci_high`, `n`, `suite_zero` and `abdelfattah` (the
        published ρ, None where none), and `difference` (r − the first published value, NaN where none).
    """
    target = np.array([row.get(contract.MATURE_ACCURACY, math.nan) for row in rows], dtype=np.float64)
    table = []
    for name in names:
        values = np.array([_value(row, name) for row in rows], dtype=np.float64)
        finite = values[np.isfinite(values)]
        if len(finite):
            values = np.where(np.isneginf(values), finite.min() - 1.0, values)
        kept = np.isfinite(values) & np.isfinite(target)
        r, low, high = resampled_correlation(
            values[kept], target[kept], method=method, n_resamples=n_resamples, seed=seed
        )
        suite_zero, abdelfattah = PUBLISHED_NB201_CIFAR10.get(name, (None, None))
        published = suite_zero if suite_zero is not None else abdelfattah
        table.append(
            {
                "proxy": name,
                "r": r,
                "ci_low": low,
                "ci_high": high,
                "n": int(kept.sum()),
                "suite_zero": suite_zero,
                "abdelfattah": abdelfattah,
                "difference": math.nan if published is None else r - published,
            }
        )
    return table


def proxy_markdown(
    rows: Sequence[Mapping[str, Any]],
    names: Sequence[str] | None = None,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
) -> str:
    """`proxy_table` as a markdown table with its sources and a plain sentence on the differences.

    `names` defaults to the published proxies and `conv_count`, and TG at initialisation where the rows
    hold it (`read_proxy_rows`).
    """
    if names is None:
        scored = any(contract.TEACHER_GUIDANCE in row for row in rows)
        names = [*PUBLISHED_NB201_CIFAR10, *([contract.TEACHER_GUIDANCE] if scored else [])]
    table = proxy_table(rows, names, n_resamples=n_resamples, seed=seed)
    lines = [
        f"Spearman ρ with mature accuracy over {len(rows)} NAS-Bench-201 cells at initialisation; 95% "
        f"percentile intervals from {n_resamples} resamples of the cells. {_SOURCES}",
        "",
        "| proxy | ρ | 95% interval | NAS-Bench-Suite-Zero | Abdelfattah et al. | difference | cells |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry in table:
        difference = "—" if math.isnan(entry["difference"]) else f"{entry['difference']:+.3f}"
        lines.append(
            f"| {entry['proxy']} | {entry['r']:.3f} | [{entry['ci_low']:.3f}, {entry['ci_high']:.3f}] | "
            f"{_shown(entry['suite_zero'])} | {_shown(entry['abdelfattah'])} | {difference} | {entry['n']} |"
        )
    far = [entry["proxy"] for entry in table if _far(entry)]
    whole_table = whole_table_conv_count_correlation()
    lines += [
        "",
        f"More than {TOLERANCE} from the published value, the interval excluding it: {', '.join(far)}."
        if far
        else f"No proxy is more than {TOLERANCE} from its published value with an interval excluding it.",
        f"Over all {len(nasbench201.arch_strings()):,} cells of the table, ρ(conv_count) = {whole_table:.3f} "
        "(so is ρ(params), ρ(flops): the same ranks).",
    ]
    return "\n".join(lines) + "\n"


def whole_table_conv_count_correlation() -> float:
    """Spearman ρ of `conv_count` with the mature accuracy over every cell of the table (no network)."""
    strings = nasbench201.arch_strings()
    counts = np.array([conv_count(arch_string) for arch_string in strings], dtype=np.float64)
    accuracies = np.array([nasbench201.mature_accuracy(arch_string) for arch_string in strings])
    return float(spearmanr(counts, accuracies).statistic)


def _far(entry: Mapping[str, Any]) -> bool:
    """Whether a proxy's ρ is more than `TOLERANCE` from its published value, its interval excluding it."""
    published = entry["suite_zero"] if entry["suite_zero"] is not None else entry["abdelfattah"]
    if published is None:
        return False
    outside = not entry["ci_low"] <= published <= entry["ci_high"]
    return bool(abs(entry["difference"]) > TOLERANCE and outside)


def _value(row: Mapping[str, Any], name: str) -> float:
    if name == CONV_COUNT and CONV_COUNT not in row and "arch_string" in row:
        return float(conv_count(str(row["arch_string"])))
    value = row.get(name)
    return math.nan if value is None else float(value)


def _shown(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
