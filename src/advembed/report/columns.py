"""The report's table: which columns the runs have data for, and each group's cells."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from advembed.report.runs import Group, Run
from advembed.report.statistics import MISSING, dig, finite, format_mean_std


def auc_f2(run: Run) -> float | None:
    """F2's AUC: the binary AUC, or beyond two labels the mean one-vs-rest separation
    (runs attacked before it existed recorded a plain mean, always about 0.5: left out)."""
    auc = dig(run.vulnerability, "auc", "F2")
    return auc.get("separation") if isinstance(auc, dict) else auc


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
    values = sorted({int(v) for v in finite([r.metrics.get("parameters") for r in group.runs])})
    return " / ".join(f"{v:,}" for v in values) or MISSING


def _collapsed(group: Group) -> str:
    return f"{sum(bool(r.metrics.get('collapsed')) for r in group.runs)}/{len(group.runs)}"


def pgd_epsilons(runs: Sequence[Run]) -> list[float]:
    return sorted({eps for run in runs for eps in run.pgd_by_epsilon()})


def word_attack_names(runs: Sequence[Run]) -> list[str]:
    return sorted({name for run in runs for name in run.word_attacks})


def _pgd_settings(runs: Sequence[Run]) -> str:
    """The PGD settings the runs were attacked with; several are listed, and then the cells
    average attacks that differ (each run's accuracy counts an example broken at any of its
    own radii up to ε)."""
    settings = sorted({f"{r.pgd.get('norm', '?')} norm, {r.pgd.get('steps', '?')} steps, "
                       + (f"α = {r.pgd['alpha']:g}" if r.pgd.get("alpha") is not None else
                          f"α = {r.pgd.get('alpha_ratio', '?')}·ε")
                       + f", {_pgd_examples(r)} test examples" for r in runs if r.pgd})
    if len(settings) > 1:
        return "runs attacked differently: " + "; ".join(settings)
    return "; ".join(settings)


def _pgd_examples(run: Run) -> str:
    results = run.pgd.get("results") or [{}]
    return str(run.pgd.get("examples") or results[0].get("examples", "?"))


def _base_columns(runs: Sequence[Run]) -> list[Column]:
    columns = [
        Column("configuration", "training method, plus the extra objective when one is used "
               "(method+objective); [..] tells apart configurations that differ in model or "
               "method options", lambda g: g.label, numeric=False),
        Column("dataset", "dataset the runs were trained on", lambda g: g.dataset, numeric=False),
        Column("seeds", "number of runs (seeds) aggregated in the row", lambda g: str(len(g.runs))),
    ]
    seen = set()
    for task in _tasks(runs):
        for split, key, header, meaning in task.report_columns():
            if header not in seen:
                seen.add(header)
                columns.append(Column(header, meaning, _per_run(
                    lambda r, split=split, key=key: dig(r.metrics, split, key))))
    return columns


def _tasks(runs: Sequence[Run]) -> list:
    """The tasks of the runs, in first-seen order (runs from before tasks: classification)."""
    from advembed.tasks import get_task

    names = list(dict.fromkeys(run.config.get("task") or "classification" for run in runs))
    return [get_task(name) for name in names]


def pgd_value(epsilon: float, key: str) -> Callable[[Run], Any]:
    return lambda run: dig(run.pgd_by_epsilon().get(epsilon), key)


def word_value(name: str, key: str) -> Callable[[Run], Any]:
    return lambda run: dig(run.word_attacks.get(name), key)


def _pgd_columns(runs: Sequence[Run]) -> list[Column]:
    epsilons, settings = pgd_epsilons(runs), _pgd_settings(runs)
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
            columns.append(Column(f"{title} ε={eps:g}", meaning, _per_run(pgd_value(eps, key)),
                                  family=f"{title} ε=…"))
    return columns


def _word_temperatures(runs: Sequence[Run], name: str) -> str:
    """The temperatures the runs' ``name`` attacks scored; several sets are named, since the
    cells then average lowest-over-temperature figures over different sets."""
    sets = sorted({", ".join(sorted((run.word_attacks[name].get("temperatures") or {"1": 0}),
                                    key=float))
                   for run in runs if isinstance(run.word_attacks.get(name), dict)})
    if len(sets) > 1:
        return "runs attacked at different temperatures: " + "; ".join(f"({s})" for s in sets)
    return f"temperatures {sets[0]}" if sets else "1, 100, 0.01 by default"


def _word_columns(runs: Sequence[Run]) -> list[Column]:
    columns = []
    for name in word_attack_names(runs):
        for key, title, meaning, digits in (
            ("examples", "n", "examples in the attacked sample", 0),
            ("original_accuracy", "orig acc", "accuracy on the attacked sample before attack", 4),
            ("attack_accuracy", "acc", "accuracy after the attack", 4),
            ("attack_accuracy_rescaled", "acc rescaled", "the lowest accuracy after the attack "
             f"over the logits divided by each temperature ({_word_temperatures(runs, name)}): "
             "an over-confident model cannot hide behind saturated scores", 4),
            ("success_rate", "success", "fraction of attacked examples whose label flipped", 4),
            ("mean_queries", "queries", "mean model queries per attacked example", 1),
            ("mean_perturbed_percent", "perturbed %", "mean percentage of words changed, over "
             "the successful attacks", 1),
        ):
            columns.append(Column(f"{name} {title}", f"word-substitution attack {name}: {meaning}",
                                  _per_run(word_value(name, key), digits)))
    return columns


def build_columns(runs: Sequence[Run]) -> list[Column]:
    """All columns the runs have data for, in display order."""
    columns = _base_columns(runs) + _pgd_columns(runs)
    if any(run.vulnerability for run in runs):
        columns.append(Column("vuln. AUC (F2)", "ROC AUC of the VAA vulnerability score F2 as a "
                              "predictor of the gold label (beyond two labels, the mean over "
                              "labels of max(AUC, 1 − AUC), one label against the rest; with "
                              "two, the second label name is the positive class, so below 0.5 "
                              "means the first label's examples are the more vulnerable)",
                              _per_run(auc_f2)))
    columns += _word_columns(runs)
    columns += [
        Column("train time (s)", "wall-clock training time in seconds",
               _per_run(lambda r: dig(r.metrics, "train", "seconds"), 0)),
        Column("parameters", "trainable parameters of the model", _parameters),
        Column("collapsed", "runs whose training collapsed to one predicted class, of all seeds",
               _collapsed),
    ]
    return columns
