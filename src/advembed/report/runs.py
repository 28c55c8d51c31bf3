"""The runs a report reads, grouped by configuration (everything but the seed)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advembed.errors import AdvembedError
from advembed.runs import read_run

WORD_ATTACK_KEYS = ("original_accuracy", "attack_accuracy", "success_rate", "mean_queries",
                    "mean_perturbed_percent")
# written by benchmarks/vulnerability_sweep.py into each run it sweeps (paper 002, Figure 3b):
# {"split": ..., "limit": n or null, "examples": n,
#  "rows": [{"norm", "epsilon", "criterion", "auc", "theorem1", ...}, ...]}
VULNERABILITY_SWEEP_FILE = "vulnerability-sweep.json"


@dataclass
class Run:
    """One run directory and everything the report reads from it."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    pgd: dict[str, Any] | None = None
    vulnerability: dict[str, Any] | None = None
    vulnerability_records: list[dict[str, Any]] = field(default_factory=list)
    vulnerability_sweep: list[dict[str, Any]] = field(default_factory=list)
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
        if payload.get("split", "test") != "test":  # ADA's train or a search's dev sample
            continue
        if payload.get("dataset", config.get("dataset")) != config.get("dataset"):
            continue  # an attack on other data (--dataset) is not the run's robustness
        if name == "pgd":
            results = payload.get("results", [])
            if not (isinstance(results, list) and all(
                    isinstance(row, dict) and isinstance(row.get("epsilon", 0), int | float)
                    for row in results)):
                raise AdvembedError(f"'{attack_file}': 'results' must be a list of rows with a "
                                    "numeric epsilon, as `advembed attack` writes (edited by "
                                    "hand?)")
            run.pgd = payload
        elif name == "vulnerability":
            run.vulnerability = payload
        elif any(key in payload for key in WORD_ATTACK_KEYS):
            run.word_attacks[name] = payload
    records = path / "attack-vulnerability.jsonl"
    if records.is_file():
        run.vulnerability_records = _read_jsonl(records)
    sweep = path / VULNERABILITY_SWEEP_FILE
    if sweep.is_file() and _read_json(sweep).get("split", "test") == "test":
        run.vulnerability_sweep = _sweep_rows(sweep)  # a dev sweep is not the run's figure
    return run


def _sweep_rows(path: Path) -> list[dict[str, Any]]:
    """The AUC rows of a vulnerability sweep, each checked to name its norm, ε, criterion."""
    rows = _read_json(path).get("rows")
    needed = ("norm", "epsilon", "criterion", "auc")
    if not isinstance(rows, list) or not all(
            isinstance(row, dict) and all(key in row for key in needed) for row in rows):
        raise AdvembedError(f"'{path}' needs a list 'rows' of objects with "
                            f"{', '.join(needed)}")
    return rows


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
    clashes: dict[str, list[Group]] = {}
    for group in groups:  # across datasets too: one label must mean one configuration
        clashes.setdefault(group.label, []).append(group)
    extras = (lambda g: g.model, lambda g: _options_text(g.runs[0].config) or "default")
    for clashing in clashes.values():
        if len(clashing) < 2:
            continue
        varying = [extra for extra in extras if len({extra(g) for g in clashing}) > 1]
        if not varying:  # one configuration on several datasets: the dataset tells them apart
            continue
        for group in clashing:
            group.label += " [" + "; ".join(extra(group) for extra in varying) + "]"


def load_runs(paths: Sequence[Path]) -> list[Run]:
    if not paths:
        raise AdvembedError("give at least one run directory")
    seen: dict[Path, Path] = {}
    for path in paths:
        resolved = Path(path).resolve()
        if resolved in seen:
            raise AdvembedError(f"run '{path}' is given twice")
        seen[resolved] = Path(path)
    return [load_run(Path(path)) for path in paths]
