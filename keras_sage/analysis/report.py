"""Markdown reports with their figures: of a finished search (a project directory) and of a pool.

`keras-sage report PROJECT_DIR` and `keras-sage report POOL.jsonl` call these; each writes `report.md`
and its figures (PNG and SVG) into one folder and returns the markdown.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from keras_sage.analysis.plots import plot_search
from keras_sage.analysis.records import project_records, search_summary
from keras_sage.analysis.tables import format_table

REPORT_FILE = "report.md"


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
    trials = [
        {
            "trial": record.trial_id,
            "status": record.status,
            "score": record.score,
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
