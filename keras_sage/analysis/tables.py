"""Plain-text tables, the one format of every table keras-sage prints."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def format_table(rows: Sequence[Mapping[str, Any]], float_format: str = "{:.4f}") -> str:
    """Formats rows (dicts with the same keys) as an aligned plain-text table.

    Floats use `float_format`; integers get thousands separators; NaN prints as `-`. Columns of numbers
    are right-aligned, others left-aligned.

    Args:
        rows: The rows; the first row's keys are the columns.
        float_format: Format of float cells.

    Returns:
        The table, one line per row after a header and a rule.
    """
    if not rows:
        return ""
    columns = list(rows[0])

    def cell(value: Any) -> str:
        if isinstance(value, (bool, np.bool_)):
            return str(value)
        if isinstance(value, (int, np.integer)):
            return f"{int(value):,}"
        if isinstance(value, (float, np.floating)):
            return "-" if math.isnan(value) else float_format.format(value)
        return str(value)

    cells = [[cell(row[column]) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    numeric = [
        all(isinstance(row[column], (int, float, np.integer, np.floating)) for row in rows)
        for column in columns
    ]

    def join(texts: Sequence[str]) -> str:
        return "  ".join(
            text.rjust(width) if right else text.ljust(width)
            for text, width, right in zip(texts, widths, numeric, strict=True)
        ).rstrip()

    lines = [join(columns), join(["-" * width for width in widths])]
    lines.extend(join(line) for line in cells)
    return "\n".join(lines)


def table_section(title: str, intro: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """A report's markdown section: a `## title`, an introducing sentence and `rows` as a fenced table.

    Args:
        title: The section's heading, without `## `.
        intro: The paragraph above the table.
        rows: The table's rows (`format_table`); no rows, no section.

    Returns:
        Markdown lines (none without rows).
    """
    if not rows:
        return []
    return [f"## {title}", "", intro, "", "```", format_table(rows), "```", ""]
