"""Whether an interrupted run may go on: the same request, the same effective settings.

``advembed train --resume`` continues a run from its last complete checkpoint only if it is
asked for what the run was started with; with ``--output``, an option not given is taken from
the run's record (:func:`recorded_options`), so ``--output X --resume`` alone is enough.
Two things are compared with what the run recorded in ``request.json`` when it started:

* before anything is loaded, the options as given (a flag changed since is one line naming
  it), with an option added to advembed after the run started read as its default;
* once the model is built, every effective method, objective and augmentation setting, in place
  of the method's, objective's and augmentation's options — so that a default changed by an
  upgrade between the start and the resume (``--ascc-pieces`` went from 1 to 3) cannot turn the
  second half of a run into another method; the line names the flag and the value to pass, and
  passing it resumes.  Numbers are compared to a relative 1e-6, since a preset's sizes are
  multiples of the embedding norm, whose float sum may round otherwise on another CPU.  A
  flag given now that the run did not record (added since) is refused.  Requests recorded
  before the settings were (no ``settings`` key) compare the options only.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from advembed.errors import AdvembedError
from advembed.runs import write_json
from advembed.settings import NO_LEGACY, Settings
from advembed.state_io import read_json_object
from advembed.training.config import TrainConfig

NOT_COMPARED = ("resume", "overwrite", "progress", "keep_checkpoints", "save_steps")
OPTIONS_OF = {"method_settings": "method_options", "objective_settings": "objective_options",
              "augment_settings": "augment_options"}
REQUEST_FILE = "request.json"


AFTER_BUILD = {"settings", "base_run_record"}
"""What a request records once the model is built (:func:`check_settings`), not options."""


def read_request(path: Path) -> dict[str, Any]:
    """The recorded request of an interrupted run, or a one-line error if it is damaged."""
    return read_json_object(path, "the interrupted run's", "start again with --overwrite")


def recorded_options(output: str | Path) -> dict[str, Any]:
    """What the interrupted run of ``--output`` was started with (``request.json`` in its
    staging folder), as ``TrainConfig`` fields — so that ``advembed train --output X --resume``
    needs no other option; ``{}`` when there is no interrupted run to read (the resume then
    fails as before, in one line)."""
    output = Path(output)
    recorded = output.parent / f".{output.name}.partial" / REQUEST_FILE
    if not recorded.is_file():
        return {}
    request = read_request(recorded)
    defaults = _defaults()
    # a default is left out: TrainConfig gives it anyway, and a preset's method stays implied
    return {k: v for k, v in request.items() if k in defaults and v != defaults[k]}


def resume_point(config: TrainConfig, staging: Path) -> Path | None:
    """The checkpoint to resume from (``None``: a new run, whose request is recorded)."""
    from advembed.training.checkpoints import damaged_checkpoint, last_checkpoint

    request = _request(config)
    recorded = staging / REQUEST_FILE
    if not config.resume:
        write_json(recorded, request)
        return None
    if not recorded.is_file():
        raise AdvembedError(f"cannot resume '{staging}': it holds no {REQUEST_FILE}")
    before = with_defaults(read_request(recorded))
    skip = set(OPTIONS_OF.values()) if "settings" in before else set()  # settings say it all
    changed = sorted(k for k in (set(before) | set(request)) - skip - AFTER_BUILD
                     if before.get(k) != request.get(k))
    if changed:
        flags = {item.name: item.flag.name for item in TrainConfig.declared()}
        differ = "; ".join(f"{flags.get(k, k)}: {before.get(k)!r} then, {request.get(k)!r} now"
                           for k in changed)
        raise AdvembedError(f"the interrupted run was started with other options ({differ}); "
                            "resume with the same options (they are in "
                            f"'{recorded}')")
    checkpoint = last_checkpoint(staging / "checkpoints")
    if checkpoint is None:
        raise AdvembedError(f"the interrupted run in '{staging}' has no complete checkpoint "
                            "yet: start again with --overwrite")
    damage = damaged_checkpoint(checkpoint)
    if damage:
        earlier = [c.name for c in checkpoint.parent.glob("checkpoint-*")
                   if c != checkpoint and (c / "complete.json").is_file()]
        latest = max(earlier, key=lambda name: int(name.rsplit("-", 1)[1]), default=None)
        advice = (f"remove that folder to resume from {latest}" if latest else
                  "start again with --overwrite")
        raise AdvembedError(f"checkpoint '{checkpoint}' is damaged ({damage}): {advice}")
    return checkpoint


def check_settings(config: TrainConfig, staging: Path,
                   settings: Mapping[str, Settings | None],
                   base_run: Mapping[str, Any] | None = None) -> None:
    """Once built: a new run adds its effective settings (by group: ``method_settings``, …),
    and the run it was built from (VAA's model A: path and weights' sha256), to its request;
    a resumed one must have the ones it recorded — a base run retrained since would be
    recorded as the model A that the checkpoint's weights are not."""
    recorded = staging / REQUEST_FILE
    request = read_request(recorded)
    effective = json.loads(json.dumps(
        {group: s.as_dict() if s is not None else {} for group, s in settings.items()}))
    if not config.resume:
        write_json(recorded, request | {"settings": effective,
                                         "base_run_record": dict(base_run or {})})
        return
    before = request.get("base_run_record") or {}
    now = dict(base_run or {})
    if before.get("base_run_sha256") and before != now:
        raise AdvembedError(
            f"the base run '{before.get('base_run')}' is not the one this run started from "
            f"(its model sha256 was {before['base_run_sha256']}, now "
            f"{now.get('base_run_sha256')}: retrained since?); the checkpoint holds the old "
            "model A: start again with --overwrite")
    if "settings" in request:
        _compare(request["settings"], effective, settings, _request(config))


def _request(config: TrainConfig) -> dict[str, Any]:
    request = {k: v for k, v in dataclasses.asdict(config).items() if k not in NOT_COMPARED}
    return json.loads(json.dumps(request))  # as JSON gives it back


def _compare(before: dict[str, dict], now: dict[str, dict],
             settings: Mapping[str, Settings | None], request: dict) -> None:
    """One line for the first effective setting that is not what the run started with."""
    for group, values in now.items():
        started = before.get(group, {})
        given = request.get(OPTIONS_OF.get(group, "")) or {}
        for name, value in values.items():
            flag = _flag_of(settings[group], name)
            legacy = _legacy_of(settings[group], name)
            if name not in started and legacy is not NO_LEGACY:
                started = started | {name: legacy}  # what the run did before the flag existed
            if name not in started:
                if name in given:
                    raise AdvembedError(f"the interrupted run predates {flag} (added to "
                                        f"advembed since it started): resume without it")
                continue
            if _same(started[name], value):
                continue
            old = _text(started[name])
            why = ("" if name in given else f" (from --preset {request['preset']})"
                   if request.get("preset") else
                   " (advembed's default; it changed since the run started)")
            raise AdvembedError(f"the interrupted run was trained with {flag} {old}, now "
                                f"{_text(value)}{why}; resume with {flag} {old}")


def _same(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _declared(settings: Settings | None, name: str):
    for item in type(settings).declared() if settings is not None else []:
        if item.name == name:
            return item
    return None


def _flag_of(settings: Settings | None, name: str) -> str:
    item = _declared(settings, name)
    return item.flag.name if item is not None else name


def _legacy_of(settings: Settings | None, name: str) -> Any:
    item = _declared(settings, name)
    return item.meta.legacy if item is not None else NO_LEGACY


def _text(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _defaults() -> dict[str, Any]:
    """Every compared ``TrainConfig`` option's default, as JSON gives it back."""
    return json.loads(json.dumps({
        field.name: (field.default if field.default is not dataclasses.MISSING
                     else field.default_factory())
        for field in dataclasses.fields(TrainConfig) if field.name not in NOT_COMPARED
        and (field.default is not dataclasses.MISSING
             or field.default_factory is not dataclasses.MISSING)}))


def with_defaults(before: dict) -> dict:
    """A recorded request with every option it lacks (one added to advembed after the run
    started) read as that option's default, so an older interrupted run still resumes."""
    return _defaults() | before
