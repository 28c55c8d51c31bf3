"""``advembed report``: compare finished runs side by side.

Reads run directories written by ``advembed train`` (``config.json``, ``metrics.json``) and
``advembed attack`` (``attack-pgd.json``, ``attack-vulnerability.json(l)``, and any
word-substitution ``attack-NAME.json``), groups runs that differ only by seed, and writes

* ``report.html``: one self-contained page (inline CSS, PNG plots as base64 data URIs), and
* ``report.md``: the same content in Markdown, with the PNG plots written next to it.

Modules: :mod:`.runs` (loading and grouping), :mod:`.statistics` (mean ± std),
:mod:`.columns` (the table), :mod:`.plots` (matplotlib), :mod:`.render` (Jinja2 templates in
``templates/``, atomic writes).
"""

from __future__ import annotations

from advembed.report.render import HTML_FILE, MARKDOWN_FILE, Report, build_report, write_report
from advembed.report.runs import Group, Run, group_runs, load_run
from advembed.report.statistics import format_mean_std, mean_std

__all__ = ["HTML_FILE", "MARKDOWN_FILE", "Group", "Report", "Run", "build_report",
           "format_mean_std", "group_runs", "load_run", "mean_std", "write_report"]
