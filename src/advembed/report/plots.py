"""The report's plots, rendered to PNG bytes with matplotlib (or skipped, with the reason)."""

from __future__ import annotations

import io
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from advembed.report.columns import pgd_epsilons, pgd_value, word_attack_names, word_value
from advembed.report.runs import Group, Run
from advembed.report.statistics import dig, finite, mean_std


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
        for eps in pgd_epsilons(group.runs):
            stats = mean_std([dig(r.pgd_by_epsilon().get(eps), "accuracy") for r in group.runs])
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
                      label=f"{group.label} · {group.dataset} "
                            f"(n={sum(1 for r in group.runs if r.pgd_by_epsilon())})")
    axes.set_xlabel("ε (perturbation radius)")
    axes.set_ylabel("accuracy under attack")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    plot.png = _png(figure)
    return plot


def _attack_sources(runs: Sequence[Run]) -> list[tuple[str, Callable[[Run], Any]]]:
    """The y axes of the clean-vs-attack plot: PGD at the largest ε, then each word attack."""
    sources: list[tuple[str, Callable[[Run], Any]]] = []
    epsilons = pgd_epsilons(runs)
    if epsilons:
        top = epsilons[-1]
        sources.append((f"PGD accuracy at ε={top:g}", pgd_value(top, "accuracy")))
    for name in word_attack_names(runs):
        # the headline: the lowest over the logit temperatures (a summary from before they
        # were attacked has only its T = 1 figure)
        rescaled, plain = (word_value(name, "attack_accuracy_rescaled"),
                           word_value(name, "attack_accuracy"))
        sources.append((f"{name} accuracy under attack (lowest over temperatures)",
                        lambda run, r=rescaled, p=plain: r(run) if r(run) is not None
                        else p(run)))
    return sources


def _scatter_panel(axes, groups: Sequence[Group], ylabel: str,
                   getter: Callable[[Run], Any]) -> None:
    from matplotlib.ticker import MaxNLocator

    for group in groups:
        pairs = [(x, y) for r in group.runs
                 for x, y in [(dig(r.metrics, "test", "accuracy"), getter(r))]
                 if finite([x]) and finite([y])]
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


def _figure_legend(figure, panels, extra: Sequence[Any] = ()) -> None:
    """One legend right of all panels: each label once, whichever panel drew it, then extra."""
    handles = {label: handle for axes in panels
               for handle, label in zip(*axes.get_legend_handles_labels(), strict=True)}
    handles |= {item.get_label(): item for item in extra}
    figure.legend([*handles.values()], [*handles], loc="outside right upper", fontsize="small")


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
    _figure_legend(figure, panels, extra=[mean])
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
    scores = finite([r.get("F2") for r in records])
    bins = np.histogram_bin_edges(scores or [0.0], bins=20)
    for index, label in enumerate(sorted({r.get("label") for r in records}, key=str)):
        values = finite([r.get("F2") for r in records if r.get("label") == label])
        name = names[label] if isinstance(label, int) and 0 <= label < len(names) else str(label)
        # Set2, not the C0.. cycle: those colours already stand for configurations.
        colour = matplotlib.colormaps["Set2"](index % 8)
        axes.hist(values, bins=bins, histtype="stepfilled", alpha=0.5, color=colour,
                  edgecolor=colour, linewidth=1.5, label=f"{name} (n={len(values)})")
    axes.set_title(f"{group.label} · {group.dataset}", fontsize="medium")
    axes.set_xlabel("F2")
    axes.set_ylabel("examples")
    axes.legend(fontsize="x-small")


NORM_NAMES = {"l2": "L2", "linf": "L∞"}


def sweep_curve(group: Group, norm: str, criterion: str) -> list[tuple[float, float, float]]:
    """(ε, mean AUC, std AUC) over the group's seeds, for one norm and criterion, by ε.

    An ε only some seeds swept is averaged over those; the std of one value is 0.
    """
    by_epsilon: dict[float, list[float]] = {}
    for run in group.runs:
        for row in run.vulnerability_sweep:
            if row["norm"] == norm and row["criterion"] == criterion:
                by_epsilon.setdefault(round(float(row["epsilon"]), 10), []).append(row["auc"])
    points = []
    for epsilon in sorted(by_epsilon):
        stats = mean_std(by_epsilon[epsilon])
        if stats:
            points.append((epsilon, stats[0], stats[1] or 0.0))
    return points


def plot_vulnerability_sweep(groups: Sequence[Group]) -> Plot:
    """Paper 002's Figure 3b: ROC AUC of the label from F1 (solid) and F2 (dashed) against the
    FGSM ε, one panel per norm, one colour per configuration (mean ± std over seeds)."""
    plot = Plot("vulnerability-auc.png", "Vulnerability as a label predictor: ROC AUC vs FGSM ε "
                "(paper 002, Figure 3b; solid F1, dashed F2)")
    norms = sorted({row["norm"] for g in groups for run in g.runs
                    for row in run.vulnerability_sweep}, key=lambda n: (n != "l2", n))
    if not norms:
        plot.skipped = ("no run has a vulnerability sweep (vulnerability-sweep.json, written "
                        "by benchmarks/vulnerability_sweep.py)")
        return plot
    figure = _figure(4.6 * len(norms) + 3.5, 3.8)
    panels = figure.subplots(1, len(norms), squeeze=False)[0]
    for axes, norm in zip(panels, norms, strict=True):
        for group in groups:
            for criterion, style in (("F1", "-"), ("F2", "--")):
                points = sweep_curve(group, norm, criterion)
                if points:
                    xs, ys, errs = zip(*points, strict=True)
                    axes.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, linestyle=style,
                                  color=group.colour,
                                  label=f"{group.label} · {group.dataset} {criterion}")
        axes.set_xscale("log")
        axes.axhline(0.5, color="grey", linewidth=0.5)
        axes.set_title(NORM_NAMES.get(norm, norm), fontsize="medium")
        axes.set_xlabel("ε (FGSM step)")
        axes.set_ylabel("ROC AUC of the label")
        axes.grid(alpha=0.3)
    _figure_legend(figure, panels)
    plot.png = _png(figure)
    return plot


def build_plots(groups: Sequence[Group]) -> list[Plot]:
    """The four report plots, each rendered or marked as skipped."""
    return [plot_accuracy_vs_epsilon(groups), plot_clean_vs_attack(groups),
            plot_vulnerability(groups), plot_vulnerability_sweep(groups)]
