"""The runs a report reads, grouped by configuration (everything but the seed)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
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
    fields: dict[str, str] = field(default_factory=dict)
    """The configuration, field by field (:func:`config_fields`)."""


def _eps(value: Any) -> float:
    return round(float(value), 10)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:  # a dangling link, a folder of that name, no permission
        raise AdvembedError(f"cannot read '{path}': {exc.strerror}") from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        payload = json.loads(_read_text(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdvembedError(f"'{path}' is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise AdvembedError(f"'{path}' does not hold a JSON object")
    return payload


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(_read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise AdvembedError(f"'{path}' line {number} is not valid JSON: {exc}") from exc
        if not isinstance(rows[-1], dict):
            raise AdvembedError(f"'{path}' line {number} is not a JSON object (edited by hand?)")
    return rows


_OBJECT_FIELDS = ("method_options", "objective_options", "augment_options", "method_settings",
                  "objective_settings", "augment_settings", "data_sha256", "split_sizes")


def _check_config(path: Path, config: dict[str, Any]) -> None:
    """The config fields a report reads as objects are objects (else one line naming them)."""
    for name in _OBJECT_FIELDS:
        if config.get(name) is not None and not isinstance(config[name], dict):
            raise AdvembedError(f"'{path / 'config.json'}': '{name}' must be a JSON object, "
                                "as `advembed train` writes it (edited by hand?)")


def load_run(path: Path) -> Run:
    """Read a run directory and its optional attack files (one-line error if not a run)."""
    path = Path(path)
    config, metrics = read_run(path)
    _check_config(path, config)
    run = Run(path=path, config=config, metrics=metrics)
    for attack_file in sorted(path.glob("attack-*.json")):
        name = attack_file.stem.removeprefix("attack-")
        if "-on-" in name:  # on data given by --dataset: not the run's own test figures
            continue
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


# config.json fields that make a configuration: everything that changes what is trained, on
# what and how, but the seed.  An absent field reads as its default here, so that runs written
# before it was recorded still group with the runs that record it.
KEY_FIELDS: dict[str, Any] = {
    "dataset": "?", "task": "classification", "model": "?", "model_init": "pretrained",
    "model_source": None, "split_seed": 2024, "text_column": None, "text_pair_column": None,
    "label_column": None, "epochs": None, "batch_size": None, "lr": None,
    "weight_decay": None, "warmup_ratio": None, "max_length": None, "max_steps": None,
    "limit": None, "gradient_accumulation_steps": 1, "augment_file": None,
    "augment_limit": None, "preset": None, "method": "none", "objective": "ce", "augment": None,
}
_SHOWN_APART = ("dataset", "model", "method", "method_options")  # in the label or its own column
_PER_SEED_PATHS = ("model", "model_source", "augment_file", "method_options",
                   "objective_options", "augment_options")
"""Fields that may name a per-seed path (a dataset path is the data itself: kept whole)."""
_SEED_IN_PATH = re.compile(r"(?<=[-_/.])s\d+(?=$|[-_/.\s])")


def _portable(value: Any) -> Any:
    """A path as a configuration sees it: its last two parts, a ``-sNN`` seed part masked (a
    continued run's model, VAA's base run and an ADA file are per seed; an absolute and a
    relative spelling of one path are one path)."""
    if isinstance(value, dict):
        return {k: _portable(v) for k, v in value.items()}
    if isinstance(value, str) and "/" in value and not value.startswith("scratch:"):
        return _SEED_IN_PATH.sub("s*", "/".join(PurePath(value).parts[-2:]))
    return value


def config_fields(config: dict[str, Any]) -> dict[str, str]:
    """What makes two runs the same configuration, field by field (JSON text of each)."""
    fields = {name: config.get(name, default) for name, default in KEY_FIELDS.items()}
    fields["objective"] = _objective(config)
    for part in ("method", "objective", "augment"):  # resolved settings where recorded
        settings = config.get(f"{part}_settings")
        fields[f"{part}_options"] = (settings if settings is not None
                                     else config.get(f"{part}_options") or {})
    sizes = config.get("split_sizes")  # recorded by every run; the test set's sha256 is not
    fields["test examples"] = sizes.get("test") if isinstance(sizes, dict) else None
    return {name: json.dumps(_portable(value) if name in _PER_SEED_PATHS else value,
                             sort_keys=True) for name, value in fields.items()}


def config_key(config: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """Everything but the seed, as one hashable key (see :func:`config_fields`)."""
    return tuple(sorted(config_fields(config).items()))


def _base_label(config: dict[str, Any]) -> str:
    method, objective = str(config.get("method", "none")), _objective(config)
    return method if objective == "ce" else f"{method}+{objective}"


def _options_text(config: dict[str, Any]) -> str:
    options = config.get("method_options") or {}
    return ", ".join(f"{k}={_portable(v)}" for k, v in sorted(options.items()))


def group_runs(runs: Sequence[Run]) -> list[Group]:
    """Group runs by configuration, in first-seen order, with distinct labels and colours.

    Two runs of one configuration with the same seed are refused: a report averages seeds.
    """
    grouped: dict[tuple[tuple[str, str], ...], list[Run]] = {}
    for run in runs:
        members = grouped.setdefault(config_key(run.config), [])
        for member in members:
            _one_configuration(member, run)
        members.append(run)
    groups = [Group(label=_base_label(members[0].config),
                    dataset=str(members[0].config.get("dataset", "?")),
                    model=str(_portable(members[0].config.get("model", "?"))), runs=members,
                    fields=dict(key)) for key, members in grouped.items()]
    _disambiguate(groups)
    for index, group in enumerate(groups):
        group.colour = f"C{index % 10}"
    return groups


def _test_sha256(run: Run) -> str | None:
    data = run.config.get("data_sha256")
    return data.get("test") if isinstance(data, dict) else None


def _one_configuration(member: Run, run: Run) -> None:
    """Refuse to average ``run`` with ``member`` of its configuration when they share a seed
    or were scored on different test sets (both recorded, and not the same)."""
    if member.config.get("seed") == run.config.get("seed"):
        raise AdvembedError(
            f"runs '{member.path}' and '{run.path}' have the same configuration and seed "
            f"{run.config.get('seed')}; a report averages seeds, so give one of them")
    shas = {_test_sha256(member), _test_sha256(run)}
    if None not in shas and len(shas) > 1:
        raise AdvembedError(
            f"runs '{member.path}' and '{run.path}' were scored on different test sets "
            "(their data_sha256 differ: the data was rebuilt?); report them apart")


def _disambiguate(groups: list[Group]) -> None:
    """Add what differs to labels that would otherwise collide: the model and method options
    where they differ at all (one label must mean one configuration, across datasets too),
    and any other field that differs between groups of one dataset."""
    clashes: dict[str, list[Group]] = {}
    for group in groups:
        clashes.setdefault(group.label, []).append(group)
    extras = (lambda g: g.model, lambda g: _options_text(g.runs[0].config) or "default")
    for clashing in clashes.values():
        if len(clashing) < 2:
            continue
        varying = [extra for extra in extras if len({extra(g) for g in clashing}) > 1]
        alike: dict[tuple[str, ...], list[Group]] = {}  # what the model and options leave alike
        for group in clashing:
            key = (group.dataset, *(extra(group) for extra in varying))
            alike.setdefault(key, []).append(group)
        others = [name for name in clashing[0].fields if name not in _SHOWN_APART
                  and any(len({g.fields[name] for g in same}) > 1 for same in alike.values())]
        for group in clashing:
            parts = [extra(group) for extra in varying]
            parts += [f"{name}={_shown(group.fields[name])}" for name in others]
            if parts:
                group.label += " [" + "; ".join(parts) + "]"


def _shown(text: str) -> str:
    value = json.loads(text)
    return value if isinstance(value, str) else text


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
