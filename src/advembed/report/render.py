"""Rendering a report: the HTML page and its Markdown twin from Jinja2 templates
(``templates/``), written atomically."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from advembed.errors import AdvembedError
from advembed.report.columns import Column, build_columns, explanations
from advembed.report.plots import Plot, build_plots
from advembed.report.runs import Group, Run, group_runs, load_runs

HTML_FILE = "report.html"
MARKDOWN_FILE = "report.md"


@dataclass
class Report:
    """Everything rendered into both formats."""

    generated: str
    runs: list[Run]
    groups: list[Group]
    columns: list[Column]
    plots: list[Plot]

    def context(self) -> dict[str, Any]:
        """What the templates see: plain strings and lists, the table cells filled in."""
        return {
            "generated": self.generated,
            "runs": [str(run.path) for run in self.runs],
            "explanations": explanations(self.columns),
            "table": {"headers": [c.header for c in self.columns],
                      "numeric": [c.numeric for c in self.columns],
                      "rows": [[c.cell(g) for c in self.columns] for g in self.groups]},
            "plots": self.plots,
        }


def _environment(*, html: bool):
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template_source),
        autoescape=html, keep_trailing_newline=True, undefined=jinja2.StrictUndefined,
    )
    env.filters["b64"] = lambda data: base64.b64encode(data).decode("ascii")
    env.filters["md"] = lambda text: str(text).replace("|", "\\|")
    return env


def _template_source(name: str) -> str:
    return resources.files("advembed.report").joinpath("templates", name).read_text("utf-8")


def render_html(report: Report) -> str:
    """The self-contained HTML page (inline CSS, plots as base64 data URIs)."""
    template = _environment(html=True).get_template("report.html.j2")
    return template.render(css=_template_source("report.css"), **report.context())


def render_markdown(report: Report) -> str:
    """The Markdown twin; plots are referenced as PNG files next to it."""
    text = _environment(html=False).get_template("report.md.j2").render(**report.context())
    return text.rstrip("\n") + "\n"


def build_report(paths) -> Report:
    """Read the runs, group them, and build the table columns and plots."""
    runs = load_runs(paths)
    groups = group_runs(runs)
    generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    return Report(generated=generated, runs=runs, groups=groups, columns=build_columns(runs),
                  plots=build_plots(groups))


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as stream:  # open(), unlike mkstemp, honours the umask
            stream.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _prepare_out(out: Path) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise AdvembedError(f"--out '{out}' exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AdvembedError(f"cannot create --out '{out}': {exc.strerror}") from exc
    return out


def write_report(paths, out: Path) -> list[Path]:
    """Write ``report.html``, ``report.md`` and the plot PNGs into ``out``; return the paths.

    Plots are written first and the HTML last, each atomically, so ``report.html`` is either
    the previous complete page or the new complete page.  PNGs of plots skipped this time are
    removed so ``out`` never mixes old plots into the new report.
    """
    try:
        report = build_report(paths)
        rendered = (render_markdown(report), render_html(report))
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise AdvembedError("cannot read the runs' metrics and attack summaries as advembed "
                            f"wrote them (edited by hand?): {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    out = _prepare_out(out)
    written = []
    for plot in report.plots:
        target = out / plot.filename
        if plot.png is None:
            target.unlink(missing_ok=True)
            continue
        write_atomic(target, plot.png)
        written.append(target)
    for name, text in zip((MARKDOWN_FILE, HTML_FILE), rendered, strict=True):
        write_atomic(out / name, text.encode("utf-8"))
        written.append(out / name)
    return written
