"""``advembed report``: compare finished runs side by side.

Reads run directories written by ``advembed train`` (``config.json``, ``metrics.json``) and
``advembed attack`` (``attack-pgd.json``, ``attack-vulnerability.json(l)``, and any
word-substitution ``attack-NAME.json``), groups runs that differ only by seed, and writes

* ``report.html``: one self-contained page (inline CSS, PNG plots as base64 data URIs), and
* ``report.md``: the same content in Markdown, with the PNG plots written next to it.

Every file is written atomically (temporary file in the output directory, then rename).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from advembed.errors import AdvembedError
from advembed.runs import read_run

HTML_FILE = "report.html"
MARKDOWN_FILE = "report.md"
EMBEDDING_ATTACKS = ("pgd", "vulnerability")
WORD_ATTACK_KEYS = ("original_accuracy", "attack_accuracy", "success_rate", "mean_queries",
                    "mean_perturbed_percent")
MISSING = "—"


# ---------------------------------------------------------------------------------- loading


@dataclass
class Run:
    """One run directory and everything the report reads from it."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    pgd: dict[str, Any] | None = None
    vulnerability: dict[str, Any] | None = None
    vulnerability_records: list[dict[str, Any]] = field(default_factory=list)
    word_attacks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def pgd_by_epsilon(self) -> dict[float, dict[str, Any]]:
        """PGD result rows keyed by (rounded) ε."""
        rows = (self.pgd or {}).get("results", [])
        return {_eps(row["epsilon"]): row for row in rows if "epsilon" in row}


@dataclass
class Group:
    """Runs of one configuration (same everything but the seed)."""

    label: str
    dataset: str
    model: str
    runs: list[Run]
    colour: str = "C0"


def _eps(value: Any) -> float:
    return round(float(value), 10)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdvembedError(f"'{path}' is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise AdvembedError(f"'{path}' does not hold a JSON object")
    return payload


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise AdvembedError(f"'{path}' line {number} is not valid JSON: {exc}") from exc
    return rows


def load_run(path: Path) -> Run:
    """Read a run directory and its optional attack files (one-line error if not a run)."""
    path = Path(path)
    config, metrics = read_run(path)
    run = Run(path=path, config=config, metrics=metrics)
    for attack_file in sorted(path.glob("attack-*.json")):
        name = attack_file.stem.removeprefix("attack-")
        payload = _read_json(attack_file)
        if name == "pgd":
            run.pgd = payload
        elif name == "vulnerability":
            run.vulnerability = payload
        elif any(key in payload for key in WORD_ATTACK_KEYS):
            run.word_attacks[name] = payload
    records = path / "attack-vulnerability.jsonl"
    if records.is_file():
        run.vulnerability_records = _read_jsonl(records)
    return run


# --------------------------------------------------------------------------------- grouping


def _objective(config: dict[str, Any]) -> str:
    return config.get("objective") or "ce"


def config_key(config: dict[str, Any]) -> tuple[str, ...]:
    """What makes two runs the same configuration: everything the brief names but the seed."""
    options = json.dumps(config.get("method_options") or {}, sort_keys=True)
    return (str(config.get("dataset", "?")), str(config.get("model", "?")),
            str(config.get("method", "none")), _objective(config), options)


def _base_label(config: dict[str, Any]) -> str:
    method, objective = str(config.get("method", "none")), _objective(config)
    return method if objective == "ce" else f"{method}+{objective}"


def _options_text(config: dict[str, Any]) -> str:
    options = config.get("method_options") or {}
    return ", ".join(f"{k}={v}" for k, v in sorted(options.items()))


def group_runs(runs: Sequence[Run]) -> list[Group]:
    """Group runs by configuration, in first-seen order, with distinct labels and colours."""
    grouped: dict[tuple[str, ...], list[Run]] = {}
    for run in runs:
        grouped.setdefault(config_key(run.config), []).append(run)
    groups = [Group(label=_base_label(members[0].config), dataset=key[0], model=key[1],
                    runs=members) for key, members in grouped.items()]
    _disambiguate(groups)
    for index, group in enumerate(groups):
        group.colour = f"C{index % 10}"
    return groups


def _disambiguate(groups: list[Group]) -> None:
    """Add the model and/or method options that differ to labels that would otherwise collide."""
    clashes: dict[tuple[str, str], list[Group]] = {}
    for group in groups:
        clashes.setdefault((group.dataset, group.label), []).append(group)
    extras = (lambda g: g.model, lambda g: _options_text(g.runs[0].config) or "default")
    for clashing in clashes.values():
        if len(clashing) < 2:
            continue
        varying = [extra for extra in extras if len({extra(g) for g in clashing}) > 1]
        for group in clashing:
            group.label += " [" + "; ".join(extra(group) for extra in varying) + "]"


# ------------------------------------------------------------------------------- statistics


def _finite(values: Sequence[Any]) -> list[float]:
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            out.append(float(value))
    return out


def mean_std(values: Sequence[Any]) -> tuple[float, float | None] | None:
    """Mean and sample standard deviation (n−1) of the finite values; std is None for one."""
    numbers = _finite(values)
    if not numbers:
        return None
    if len(numbers) == 1:
        return numbers[0], None
    return statistics.fmean(numbers), statistics.stdev(numbers)


def format_mean_std(values: Sequence[Any], digits: int = 4) -> str:
    """``mean ± std`` (or just the value for one seed, ``—`` for none)."""
    stats = mean_std(values)
    if stats is None:
        return MISSING
    mean, std = stats
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _dig(payload: dict[str, Any] | None, *keys: str) -> Any:
    for key in keys:
        if not isinstance(payload, dict):
            return None
        payload = payload.get(key)
    return payload


def _auc_f2(run: Run) -> float | None:
    auc = _dig(run.vulnerability, "auc", "F2")
    return auc.get("mean") if isinstance(auc, dict) else auc


# ----------------------------------------------------------------------------------- table


@dataclass(frozen=True)
class Column:
    """A table column: header, one-line explanation, and how to fill a group's cell."""

    header: str
    explanation: str
    cell: Callable[[Group], str]
    numeric: bool = True
    family: str = ""  # explained once for several columns, e.g. "PGD acc ε=…"


def explanations(columns: Sequence[Column]) -> list[tuple[str, str]]:
    """(header, explanation) pairs, one per column family, in display order."""
    seen: dict[str, str] = {}
    for column in columns:
        seen.setdefault(column.family or column.header, column.explanation)
    return list(seen.items())


def _per_run(getter: Callable[[Run], Any], digits: int = 4) -> Callable[[Group], str]:
    return lambda group: format_mean_std([getter(run) for run in group.runs], digits)


def _parameters(group: Group) -> str:
    values = sorted({int(v) for v in _finite([r.metrics.get("parameters") for r in group.runs])})
    return " / ".join(f"{v:,}" for v in values) or MISSING


def _collapsed(group: Group) -> str:
    return f"{sum(bool(r.metrics.get('collapsed')) for r in group.runs)}/{len(group.runs)}"


def _epsilons(runs: Sequence[Run]) -> list[float]:
    return sorted({eps for run in runs for eps in run.pgd_by_epsilon()})


def _word_attack_names(runs: Sequence[Run]) -> list[str]:
    return sorted({name for run in runs for name in run.word_attacks})


def _pgd_settings(runs: Sequence[Run]) -> str:
    settings = sorted({f"{r.pgd.get('norm', '?')} norm, {r.pgd.get('steps', '?')} steps"
                       for r in runs if r.pgd})
    return "; ".join(settings)


def _base_columns() -> list[Column]:
    return [
        Column("configuration", "training method, plus the extra objective when one is used "
               "(method+objective); [..] tells apart configurations that differ in model or "
               "method options", lambda g: g.label, numeric=False),
        Column("dataset", "dataset the runs were trained on", lambda g: g.dataset, numeric=False),
        Column("seeds", "number of runs (seeds) aggregated in the row", lambda g: str(len(g.runs))),
        Column("test acc", "clean test accuracy",
               _per_run(lambda r: _dig(r.metrics, "test", "accuracy"))),
        Column("test macro-F1", "clean test macro-F1",
               _per_run(lambda r: _dig(r.metrics, "test", "macro_f1"))),
        Column("best dev acc", "accuracy on dev at the best epoch",
               _per_run(lambda r: _dig(r.metrics, "best_dev", "accuracy"))),
    ]


def _pgd_value(epsilon: float, key: str) -> Callable[[Run], Any]:
    return lambda run: _dig(run.pgd_by_epsilon().get(epsilon), key)


def _word_value(name: str, key: str) -> Callable[[Run], Any]:
    return lambda run: _dig(run.word_attacks.get(name), key)


def _pgd_columns(runs: Sequence[Run]) -> list[Column]:
    epsilons, settings = _epsilons(runs), _pgd_settings(runs)
    columns = []
    for title, key, meaning in (
        ("PGD acc", "accuracy", f"accuracy under k-PGD on the word embeddings ({settings}) "
         "of radius ε"),
        ("cos sim", "cosine", "mean cosine similarity between the clean and adversarial "
         "sentence representations under PGD of radius ε (1 = no drift)"),
        ("L2 drift", "euclidean", "mean Euclidean distance between the clean and adversarial "
         "sentence representations under PGD of radius ε (0 = no drift)"),
    ):
        for eps in epsilons:
            columns.append(Column(f"{title} ε={eps:g}", meaning, _per_run(_pgd_value(eps, key)),
                                  family=f"{title} ε=…"))
    return columns


def _word_columns(runs: Sequence[Run]) -> list[Column]:
    columns = []
    for name in _word_attack_names(runs):
        for key, title, meaning, digits in (
            ("examples", "n", "examples in the attacked sample", 0),
            ("original_accuracy", "orig acc", "accuracy on the attacked sample before attack", 4),
            ("attack_accuracy", "acc", "accuracy after the attack", 4),
            ("success_rate", "success", "fraction of attacked examples whose label flipped", 4),
            ("mean_queries", "queries", "mean model queries per example", 1),
            ("mean_perturbed_percent", "perturbed %", "mean percentage of words changed", 1),
        ):
            columns.append(Column(f"{name} {title}", f"word-substitution attack {name}: {meaning}",
                                  _per_run(_word_value(name, key), digits)))
    return columns


def build_columns(runs: Sequence[Run]) -> list[Column]:
    """All columns the runs have data for, in display order."""
    columns = _base_columns() + _pgd_columns(runs)
    if any(run.vulnerability for run in runs):
        columns.append(Column("vuln. AUC (F2)", "ROC AUC of the VAA vulnerability score F2 as a "
                              "predictor of the gold label (mean over labels beyond two)",
                              _per_run(_auc_f2)))
    columns += _word_columns(runs)
    columns += [
        Column("train time (s)", "wall-clock training time in seconds",
               _per_run(lambda r: _dig(r.metrics, "train", "seconds"), 0)),
        Column("parameters", "trainable parameters of the model", _parameters),
        Column("collapsed", "runs whose training collapsed to one predicted class, of all seeds",
               _collapsed),
    ]
    return columns


# ----------------------------------------------------------------------------------- plots


@dataclass
class Plot:
    """A rendered plot (PNG bytes) or the reason it was skipped."""

    filename: str
    title: str
    png: bytes | None = None
    skipped: str = ""


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def plot_accuracy_vs_epsilon(groups: Sequence[Group]) -> Plot:
    """Accuracy under PGD vs ε, one line per configuration (mean ± std over seeds)."""
    plot = Plot("accuracy-vs-epsilon.png", "Accuracy under embedding attack (PGD) vs ε")
    lines = []
    for group in groups:
        points = []
        for eps in _epsilons(group.runs):
            stats = mean_std([_dig(r.pgd_by_epsilon().get(eps), "accuracy") for r in group.runs])
            if stats:
                points.append((eps, stats[0], stats[1] or 0.0))
        if points:
            lines.append((group, points))
    if not lines:
        plot.skipped = "no run has PGD results (attack-pgd.json)"
        return plot
    figure = _figure(7, 4.2)
    axes = figure.subplots()
    for group, points in lines:
        xs, ys, errs = zip(*points, strict=True)
        axes.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, color=group.colour,
                      label=f"{group.label} · {group.dataset} (n={len(group.runs)})")
    axes.set_xlabel("ε (perturbation radius)")
    axes.set_ylabel("accuracy under attack")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    plot.png = _png(figure)
    return plot


def _attack_sources(runs: Sequence[Run]) -> list[tuple[str, Callable[[Run], Any]]]:
    """The y axes of the clean-vs-attack plot: PGD at the largest ε, then each word attack."""
    sources: list[tuple[str, Callable[[Run], Any]]] = []
    epsilons = _epsilons(runs)
    if epsilons:
        top = epsilons[-1]
        sources.append((f"PGD accuracy at ε={top:g}", _pgd_value(top, "accuracy")))
    for name in _word_attack_names(runs):
        sources.append((f"{name} attack accuracy", _word_value(name, "attack_accuracy")))
    return sources


def _scatter_panel(axes, groups: Sequence[Group], ylabel: str,
                   getter: Callable[[Run], Any]) -> None:
    from matplotlib.ticker import MaxNLocator

    for group in groups:
        pairs = [(x, y) for r in group.runs
                 for x, y in [(_dig(r.metrics, "test", "accuracy"), getter(r))]
                 if _finite([x]) and _finite([y])]
        if not pairs:
            continue
        xs, ys = zip(*pairs, strict=True)
        axes.scatter(xs, ys, color=group.colour, alpha=0.6, s=30,
                     label=f"{group.label} · {group.dataset}")
        axes.scatter([statistics.fmean(xs)], [statistics.fmean(ys)], color=group.colour,
                     marker="D", s=90, edgecolors="black", linewidths=1.2)
    axes.set_xlabel("clean test accuracy")
    axes.set_ylabel(ylabel)
    axes.xaxis.set_major_locator(MaxNLocator(nbins=4))  # close accuracies: keep ticks apart
    axes.grid(alpha=0.3)


def plot_clean_vs_attack(groups: Sequence[Group]) -> Plot:
    """Clean test accuracy vs attack accuracy, one point per run, ◆ = configuration mean."""
    plot = Plot("clean-vs-attack.png", "Clean accuracy vs accuracy under attack "
                "(dots: runs; ◆: configuration mean)")
    runs = [run for group in groups for run in group.runs]
    sources = _attack_sources(runs)
    if not sources:
        plot.skipped = "no run has attack results (attack-pgd.json or a word attack)"
        return plot
    figure = _figure(5.2 * len(sources) + 1.5, 4.2)
    panels = figure.subplots(1, len(sources), squeeze=False)[0]
    for axes, (ylabel, getter) in zip(panels, sources, strict=True):
        _scatter_panel(axes, groups, ylabel, getter)
    from matplotlib.lines import Line2D

    mean = Line2D([], [], linestyle="none", marker="D", markersize=8, color="white",
                  markeredgecolor="black", label="configuration mean")
    handles = {label: handle for axes in panels
               for handle, label in zip(*axes.get_legend_handles_labels(), strict=True)}
    figure.legend([*handles.values(), mean], [*handles, mean.get_label()],
                  loc="outside right upper", fontsize="small")
    plot.png = _png(figure)
    return plot


def _label_names(group: Group) -> list[str]:
    return list(group.runs[0].config.get("label_names") or [])


def plot_vulnerability(groups: Sequence[Group]) -> Plot:
    """F2 histograms per gold label, one panel per configuration (seeds pooled)."""
    plot = Plot("vulnerability.png", "Vulnerability F2 per gold label (seeds pooled)")
    panels = [(g, [r for run in g.runs for r in run.vulnerability_records]) for g in groups]
    panels = [(g, records) for g, records in panels if records]
    if not panels:
        plot.skipped = "no run has per-example vulnerability scores (attack-vulnerability.jsonl)"
        return plot
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = _figure(4.2 * columns, 3.2 * rows)
    grid = figure.subplots(rows, columns, squeeze=False).ravel()
    for axes, (group, records) in zip(grid, panels, strict=False):
        _histogram_panel(axes, group, records)
    for axes in grid[len(panels):]:
        axes.set_visible(False)
    plot.png = _png(figure)
    return plot


def _histogram_panel(axes, group: Group, records: list[dict[str, Any]]) -> None:
    import matplotlib
    import numpy as np

    names = _label_names(group)
    scores = _finite([r.get("F2") for r in records])
    bins = np.histogram_bin_edges(scores or [0.0], bins=20)
    for index, label in enumerate(sorted({r.get("label") for r in records}, key=str)):
        values = _finite([r.get("F2") for r in records if r.get("label") == label])
        name = names[label] if isinstance(label, int) and 0 <= label < len(names) else str(label)
        # Set2, not the C0.. cycle: those colours already stand for configurations.
        colour = matplotlib.colormaps["Set2"](index % 8)
        axes.hist(values, bins=bins, histtype="stepfilled", alpha=0.5, color=colour,
                  edgecolor=colour, linewidth=1.5, label=f"{name} (n={len(values)})")
    axes.set_title(f"{group.label} · {group.dataset}", fontsize="medium")
    axes.set_xlabel("F2")
    axes.set_ylabel("examples")
    axes.legend(fontsize="x-small")


def build_plots(groups: Sequence[Group]) -> list[Plot]:
    """The three report plots, each rendered or marked as skipped."""
    return [plot_accuracy_vs_epsilon(groups), plot_clean_vs_attack(groups),
            plot_vulnerability(groups)]


# ---------------------------------------------------------------------------------- render


@dataclass
class Report:
    """Everything rendered into both formats."""

    generated: str
    runs: list[Run]
    groups: list[Group]
    columns: list[Column]
    plots: list[Plot]


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem;
       color: #1f2328; background: #fff; line-height: 1.45; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
.meta { color: #57606a; }
ul.runs { margin-top: 0; font-size: 14px; }
code { background: #f6f8fa; padding: 0 .25rem; border-radius: 4px; font-size: 90%; }
.table-wrap { overflow-x: auto; border: 1px solid #d0d7de; border-radius: 6px;
              display: inline-block; max-width: 100%; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: .35rem .6rem; border-bottom: 1px solid #eaeef2; white-space: nowrap;
         vertical-align: top; }
th { background: #f6f8fa; text-align: left; white-space: normal; min-width: 4.5em;
     vertical-align: bottom; }
.sd { display: block; color: #6e7781; font-size: 11px; }
td.num { text-align: right; } th.num { text-align: right; }
tbody tr:nth-child(even) { background: #fbfcfd; } tbody tr:hover { background: #eef4ff; }
td.first, th.first { position: sticky; left: 0; background: inherit; font-weight: 600; }
tbody td.first { background: #fff; } thead th.first { background: #f6f8fa; }
dl.columns { display: grid; grid-template-columns: max-content 1fr max-content 1fr;
             gap: .1rem 1rem; font-size: 13px; margin: .4rem 0 0; max-width: 1500px; }
dl.columns dt { font-weight: 600; } dl.columns dd { margin: 0; color: #424a53; }
figure { margin: 1rem 0 2rem; } figure img { max-width: 100%; height: auto;
         border: 1px solid #eaeef2; border-radius: 6px; }
figcaption { font-weight: 600; margin-bottom: .4rem; }
.note { color: #6e7781; font-style: italic; }
"""


def _html_table(report: Report) -> str:
    def cell(tag: str, column: Column, text: str, index: int) -> str:
        classes = " ".join(c for c in ("num" if column.numeric else "",
                                       "first" if index == 0 else "") if c)
        mean, sep, std = text.partition(" ± ")
        body = html.escape(mean) + (f'<span class="sd">± {html.escape(std)}</span>' if sep else "")
        return f'<{tag} class="{classes}">{body}</{tag}>'

    head = "".join(cell("th", c, c.header, i) for i, c in enumerate(report.columns))
    body = "".join(
        "<tr>" + "".join(cell("td", c, c.cell(g), i) for i, c in enumerate(report.columns))
        + "</tr>\n" for g in report.groups)
    return (f'<div class="table-wrap"><table>\n<thead><tr>{head}</tr></thead>\n'
            f"<tbody>\n{body}</tbody></table></div>")


def _html_plot(plot: Plot) -> str:
    if plot.png is None:
        return (f'<p class="note">Plot “{html.escape(plot.title)}” skipped: '
                f"{html.escape(plot.skipped)}.</p>")
    data = base64.b64encode(plot.png).decode("ascii")
    return (f"<figure><figcaption>{html.escape(plot.title)}</figcaption>"
            f'<img src="data:image/png;base64,{data}" alt="{html.escape(plot.title)}"></figure>')


def render_html(report: Report) -> str:
    """The self-contained HTML page (no external resources)."""
    runs = "".join(f"<li><code>{html.escape(str(r.path))}</code></li>" for r in report.runs)
    meanings = "".join(f"<dt>{html.escape(header)}</dt><dd>{html.escape(text)}</dd>"
                       for header, text in explanations(report.columns))
    plots = "\n".join(_html_plot(p) for p in report.plots)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>advembed report</title><style>{CSS}</style></head>
<body>
<h1>advembed report</h1>
<p class="meta">Generated {html.escape(report.generated)} from {len(report.runs)} run(s) in
{len(report.groups)} configuration(s). Numbers are mean ± sample standard deviation over seeds
(just the value for one seed).</p>
<p>Run directories:</p><ul class="runs">{runs}</ul>
<details open><summary>What the columns mean</summary>
<dl class="columns">{meanings}</dl></details>
<h2>Results</h2>
{_html_table(report)}
<h2>Plots</h2>
{plots}
</body></html>
"""


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def _md_table(report: Report) -> str:
    header = "| " + " | ".join(_md_cell(c.header) for c in report.columns) + " |"
    rule = "|" + "|".join("---:" if c.numeric else "---" for c in report.columns) + "|"
    rows = ["| " + " | ".join(_md_cell(c.cell(g)) for c in report.columns) + " |"
            for g in report.groups]
    return "\n".join([header, rule, *rows])


def render_markdown(report: Report) -> str:
    """The Markdown twin; plots are referenced as PNG files next to it."""
    lines = [
        "# advembed report", "",
        f"Generated {report.generated} from {len(report.runs)} run(s) in "
        f"{len(report.groups)} configuration(s). Numbers are mean ± sample standard deviation "
        "over seeds (just the value for one seed).", "",
        "Run directories:", "",
        *[f"- `{r.path}`" for r in report.runs], "",
        "## Results", "", _md_table(report), "",
        "Columns:", "",
        *[f"- **{header}**: {text}" for header, text in explanations(report.columns)], "",
        "## Plots", "",
    ]
    for plot in report.plots:
        if plot.png is None:
            lines += [f"_Plot “{plot.title}” skipped: {plot.skipped}._", ""]
        else:
            lines += [f"### {plot.title}", "", f"![{plot.title}]({plot.filename})", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------- write


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as stream:  # open(), unlike mkstemp, honours the umask
            stream.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _load_runs(paths: Sequence[Path]) -> list[Run]:
    if not paths:
        raise AdvembedError("give at least one run directory")
    seen: dict[Path, Path] = {}
    for path in paths:
        resolved = Path(path).resolve()
        if resolved in seen:
            raise AdvembedError(f"run '{path}' is given twice")
        seen[resolved] = Path(path)
    return [load_run(Path(path)) for path in paths]


def _prepare_out(out: Path) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise AdvembedError(f"--out '{out}' exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AdvembedError(f"cannot create --out '{out}': {exc.strerror}") from exc
    return out


def build_report(paths: Sequence[Path]) -> Report:
    """Read the runs, group them, and build the table columns and plots."""
    runs = _load_runs(paths)
    groups = group_runs(runs)
    generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    return Report(generated=generated, runs=runs, groups=groups, columns=build_columns(runs),
                  plots=build_plots(groups))


def write_report(paths: Sequence[Path], out: Path) -> list[Path]:
    """Write ``report.html``, ``report.md`` and the plot PNGs into ``out``; return the paths.

    Plots are written first and the HTML last, each atomically, so ``report.html`` is either
    the previous complete page or the new complete page.  PNGs of plots skipped this time are
    removed so ``out`` never mixes old plots into the new report.
    """
    report = build_report(paths)
    out = _prepare_out(out)
    written = []
    for plot in report.plots:
        target = out / plot.filename
        if plot.png is None:
            target.unlink(missing_ok=True)
            continue
        _write_atomic(target, plot.png)
        written.append(target)
    for name, text in ((MARKDOWN_FILE, render_markdown(report)),
                       (HTML_FILE, render_html(report))):
        _write_atomic(out / name, text.encode("utf-8"))
        written.append(out / name)
    return written
