"""Whether an interrupted run may go on: the same request, the same effective settings.

``advembed train --resume`` continues a run from its last complete checkpoint only if it is
asked for what the run was started with.  Two things are compared with what the run recorded
in ``request.json`` when it started:

* the options as given (a flag changed since is one line naming it), with an option added to
  advembed after the run started read as its default;
* every effective method, objective and augmentation setting, in place of the method's,
  objective's and augmentation's options — so that a default changed by an upgrade between the
  start and the resume (``--ascc-pieces`` went from 1 to 3) cannot turn the second half of a
  run into another method; the line names the flag and the value to pass, and passing it
  resumes.  Requests recorded before the settings were (no ``settings`` key) compare the
  options only.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from advembed.errors import AdvembedError
from advembed.runs import write_json
from advembed.settings import Settings
from advembed.training.config import TrainConfig

NOT_COMPARED = ("resume", "overwrite", "progress", "keep_checkpoints", "save_steps")
OPTIONS_OF = {"method_settings": "method_options", "objective_settings": "objective_options",
              "augment_settings": "augment_options"}
REQUEST_FILE = "request.json"


def resume_point(config: TrainConfig, staging: Path,
                 settings: Mapping[str, Settings | None]) -> Path | None:
    """The checkpoint to resume from (``None``: a new run, whose request is recorded).
    ``settings``: the run's effective settings by group (``method_settings``, …)."""
    from advembed.training.checkpoints import last_checkpoint

    request = {k: v for k, v in dataclasses.asdict(config).items() if k not in NOT_COMPARED}
    effective = {group: s.as_dict() if s is not None else {} for group, s in settings.items()}
    request = json.loads(json.dumps(request | {"settings": effective}))  # as JSON gives it back
    recorded = staging / REQUEST_FILE
    if not config.resume:
        write_json(recorded, request)
        return None
    if not recorded.is_file():
        raise AdvembedError(f"cannot resume '{staging}': it holds no {REQUEST_FILE}")
    before = with_defaults(json.loads(recorded.read_text(encoding="utf-8")))
    before_settings = before.pop("settings", None)
    now_settings = request.pop("settings")
    skip = OPTIONS_OF.values() if before_settings is not None else ()  # settings say it all
    changed = sorted(k for k in set(before) | set(request)
                     if before.get(k) != request.get(k) and k not in skip)
    if changed:
        key = changed[0]
        raise AdvembedError(f"the interrupted run was started with other options ({key}: "
                            f"{before.get(key)!r}, now {request.get(key)!r}); resume with the "
                            "same options")
    if before_settings is not None:
        _check_settings(before_settings, now_settings, settings, request)
    checkpoint = last_checkpoint(staging / "checkpoints")
    if checkpoint is None:
        raise AdvembedError(f"the interrupted run in '{staging}' has no complete checkpoint "
                            "yet: start again with --overwrite")
    return checkpoint


def _check_settings(before: dict[str, dict], now: dict[str, dict],
                    settings: Mapping[str, Settings | None], request: dict) -> None:
    """One line for the first effective setting whose value is not the one the run started
    with, given now as an option or changed as a default (a setting the run did not record —
    added since — is not compared)."""
    for group, values in now.items():
        started = before.get(group, {})
        for name, value in values.items():
            if name not in started or started[name] == value:
                continue
            flag, old = _flag_of(settings[group], name), _text(started[name])
            given = name in (request.get(OPTIONS_OF.get(group, "")) or {})
            why = ("" if given else " (advembed's default; it changed since the run started)")
            raise AdvembedError(f"the interrupted run was trained with {flag} {old}, now "
                                f"{_text(value)}{why}; resume with {flag} {old}")


def _flag_of(settings: Settings | None, name: str) -> str:
    for item in type(settings).declared() if settings is not None else []:
        if item.name == name:
            return item.flag.name
    return name


def _text(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def with_defaults(before: dict) -> dict:
    """A recorded request with every option it lacks (one added to advembed after the run
    started) read as that option's default, so an older interrupted run still resumes."""
    defaults = {field.name: field.default for field in dataclasses.fields(TrainConfig)
                if field.default is not dataclasses.MISSING and field.name not in NOT_COMPARED}
    return json.loads(json.dumps(defaults)) | before
