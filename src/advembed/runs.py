"""Run directories: written under a lock into a staging folder and renamed when complete
(:class:`RunWriter`), read back for ``eval``, ``predict``, ``attack`` and ``report``.

A run is written into a hidden sibling (``.NAME.partial``) and renamed to ``NAME`` only when
training has finished and every file is written, so an interrupted or failed run never leaves
a half-written ``NAME`` behind; an interrupted one keeps its checkpoints for ``--resume``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from advembed.errors import AdvembedError
from advembed.files import alive, follow_umask, release_lock, replace_folder, take_lock

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
MODEL_DIR = "model"
WEIGHTS_FILE = "model.safetensors"


def attack_stem(attack: str, split: str = "test", dataset: str | None = None) -> str:
    """Name of an attack's files in a run: ``attack-NAME`` (``.json`` summary, ``.jsonl``
    records) for the test split of the run's own data, which the report and tables read as
    the run's robustness; ``attack-NAME-SPLIT`` for another split (``--split train`` for ADA,
    ``dev`` for a search), and ``attack-NAME-on-DATA[-SPLIT]`` for data given by ``--dataset``
    (``--dataset other.csv``: ``on-other``; the run's own dataset named again too, since it is
    then read without the run's ``--limit`` and split check), so that neither overwrites, or
    passes for, the run's own test figures."""
    stem = f"attack-{attack}"
    if dataset:
        tag = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(dataset).stem or dataset).strip("-.")
        stem += f"-on-{tag or 'data'}"
    return stem if split == "test" else f"{stem}-{split}"


def sha256_of(path: Path) -> str:
    """The file's sha256 (hex), read in chunks."""
    import hashlib

    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class WriteFailed(AdvembedError):
    """A file could not be written (``strerror``: why); nothing half-written is left."""

    def __init__(self, message: str, strerror: str) -> None:
        super().__init__(message)
        self.strerror = strerror


class Resumable(AdvembedError):
    """An error after which the interrupted run's checkpoints are kept for ``--resume``."""


class RunWriter:
    """Owns ``output`` while a run is written: a lock, a staging folder, the final rename.

    * **Lock.** ``.NAME.lock`` holds the writing process's id; a second writer of the same
      output is refused while that process lives (a lock left by a killed process is taken
      over).  The lock is held until the rename, so a finished run is never replaced without
      ``overwrite``.
    * **Staging.** The run is written into ``.NAME.partial`` and renamed to ``NAME`` only when
      every file is written.  A failed run's staging folder is removed; an interrupted one
      (SIGTERM, Ctrl-C, a :class:`Resumable` error such as a full disk) keeps its checkpoints
      there for ``resume``; a resumed run that fails keeps them too.  Without ``resume`` an
      existing staging folder is refused (not silently deleted) unless ``overwrite`` is given.
    """

    def __init__(self, output: Path, *, overwrite: bool = False, resume: bool = False) -> None:
        self.output = Path(output)
        self.overwrite, self.resume = overwrite, resume
        self.lock = self.output.parent / f".{self.output.name}.lock"
        self.staging = self.output.parent / f".{self.output.name}.partial"
        self._locked = False

    def __enter__(self) -> RunWriter:
        check_output(self.output, self.overwrite, self.resume)
        try:
            self.output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AdvembedError(f"cannot create the folder of --output '{self.output}': "
                                f"{exc.strerror}") from None
        self._acquire()
        try:
            self._prepare_staging()
        except BaseException:
            self._release()
            raise
        return self

    def _acquire(self) -> None:
        try:
            owner = take_lock(self.lock)
        except OSError as exc:
            raise AdvembedError(f"cannot write into the folder of --output '{self.output}': "
                                f"{exc.strerror or exc}") from None
        if owner is not None:
            raise AdvembedError(
                f"output '{self.output}' is being written by another advembed process "
                f"(pid {owner}); wait for it to finish or choose another --output")
        self._locked = True

    def _prepare_staging(self) -> None:
        _remove_stale_staging(self.output)
        if self.staging.exists():
            if self.resume:
                return
            if not self.overwrite:
                raise AdvembedError(
                    f"output '{self.output}' has an interrupted run (its checkpoints are in "
                    f"'{self.staging}'): pass --resume to continue it, or --overwrite to start "
                    "again")
            shutil.rmtree(self.staging)
        elif self.resume:
            raise AdvembedError(f"nothing to resume: no interrupted run of '{self.output}' "
                                f"('{self.staging}' does not exist)")
        self.staging.mkdir()

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if kind is None:
                self._commit()
            elif (self.resume or issubclass(kind, KeyboardInterrupt | Resumable)) and \
                    has_checkpoint(self.staging):
                if issubclass(kind, KeyboardInterrupt):  # errors say what to do themselves
                    print(f"advembed: the interrupted run's checkpoints are kept in "
                          f"'{self.staging}'; run the same command with --resume to continue",
                          file=sys.stderr)
            else:
                shutil.rmtree(self.staging, ignore_errors=True)
        finally:
            self._release()

    def _commit(self) -> None:
        if self.output.exists():
            if not self.overwrite:  # cannot happen under the lock, unless written by hand
                raise AdvembedError(f"output directory '{self.output}' appeared while the run "
                                    f"was written; the run is kept in '{self.staging}'")
        follow_umask(self.staging)
        replace_folder(self.staging, self.output)

    def _release(self) -> None:
        if self._locked:
            release_lock(self.lock)
        self._locked = False


def check_output(output: Path, overwrite: bool, resume: bool = False) -> None:
    """Refuse, before any work, an ``--output`` that a finished run could not take the place
    of: ``.``, ``..`` or a root; an existing file; an existing folder without ``overwrite``;
    with ``overwrite``, a non-empty folder that is not a run (no ``config.json``: a dataset,
    a model, a home folder), which ``--overwrite`` must never delete."""
    if output.name in ("", ".", ".."):
        raise AdvembedError(f"--output '{output}' must name the run's own folder, "
                            "not '.', '..' or a root")
    if output.is_file() or (output.exists() and not output.is_dir()):
        raise AdvembedError(f"--output '{output}' is a file, not a run folder")
    if not output.exists():
        return
    if resume and not overwrite and (output / CONFIG_FILE).is_file():
        raise AdvembedError(f"run '{output}' is finished: there is nothing to resume (pass "
                            "--overwrite instead of --resume to train it again)")
    if not overwrite:
        raise AdvembedError(f"output directory '{output}' already exists (pass --overwrite)")
    if not any(output.iterdir()):
        return
    if not (output / CONFIG_FILE).is_file():
        raise AdvembedError(f"--output '{output}' is a folder that is not an advembed run (no "
                            f"{CONFIG_FILE}); --overwrite replaces only runs")
    if not _is_run_config(output / CONFIG_FILE):  # a model folder has a config.json too
        raise AdvembedError(f"--output '{output}' is a folder that is not an advembed run (its "
                            f"{CONFIG_FILE} is not a run's: a model folder?); --overwrite "
                            "replaces only runs")


def _is_run_config(path: Path) -> bool:
    """Whether ``path`` is a run's ``config.json`` (a JSON object naming its dataset), not a
    model's (which has ``model_type``) or another file of that name."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(config, dict) and "dataset" in config and "model_type" not in config


def has_checkpoint(staging: Path) -> bool:
    """Whether a run's staging folder holds a complete checkpoint to resume from."""
    return any(staging.glob("checkpoints/checkpoint-*/complete.json"))


def _remove_stale_staging(output: Path) -> None:
    """Remove per-process staging folders (``.NAME.partial-PID``, the layout before runs could
    be resumed) left by processes that no longer exist."""
    for candidate in output.parent.glob(f".{output.name}.partial-*"):
        pid = candidate.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(candidate, ignore_errors=True)


def check_output_file(path: Path, flag: str, replaces: str | None = None) -> None:
    """Refuse, before any work, an output file that cannot be written: a folder, or a path
    whose folder does not exist (or is a file); and an existing file unless it is this
    command's own earlier output (a JSONL file whose first record has the key ``replaces``) —
    a typo must not overwrite a dataset or a run's ``config.json``."""
    path = Path(path)
    if path.is_dir():
        raise AdvembedError(f"{flag} '{path}' is a folder; give a file name")
    if path.exists() and not (replaces is not None and _first_record_has(path, replaces)):
        raise AdvembedError(f"{flag} '{path}' already exists and is not this command's earlier "
                            "output; give a new file name or remove it")
    if path.parent.exists() and not path.parent.is_dir():
        raise AdvembedError(f"{flag} '{path}': '{path.parent}' is not a folder")
    if not path.parent.is_dir():
        raise AdvembedError(f"{flag} '{path}': folder '{path.parent}' does not exist")


def _first_record_has(path: Path, key: str) -> bool:
    try:
        with path.open(encoding="utf-8") as lines:
            first = json.loads(lines.readline() or "null")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(first, dict) and key in first


def _write_atomic(path: Path, text: str) -> None:
    """``text`` into ``path`` by a temporary file and a rename; a failure leaves neither a
    half-written file nor the temporary one, and is a one-line error naming the path."""
    write_together({Path(path): text})


def write_together(files: dict[Path, str]) -> None:
    """Several files that belong together (an attack's records and its summary): every
    temporary file is written before any is renamed into place, so a full disk leaves the old
    pair or none changed — never new records beside an old summary; one-line error."""
    temporaries = {Path(path): Path(path).with_name(f".{Path(path).name}.tmp") for path in files}
    try:
        for path, text in files.items():
            temporaries[Path(path)].write_text(text, encoding="utf-8")
        for path, tmp in temporaries.items():
            os.replace(tmp, path)
    except OSError as exc:
        for tmp in temporaries.values():
            if not tmp.is_dir():
                tmp.unlink(missing_ok=True)
        raise WriteFailed(f"cannot write '{next(iter(files))}': {exc.strerror or exc}",
                          exc.strerror or str(exc)) from None


def write_json(path: Path, payload: Any) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    _write_atomic(path, json.dumps(payload, indent=2, sort_keys=False) + "\n")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write one JSON object per line, atomically (temporary file, then rename)."""
    _write_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))


def read_run(run: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(config, metrics)`` of a finished run, or a one-line error."""
    run = Path(run)
    if run.exists() and not run.is_dir():
        raise AdvembedError(f"'{run}' is a file, not a run directory")
    if not run.is_dir():
        raise AdvembedError(f"run directory '{run}' does not exist")
    config_path = run / CONFIG_FILE
    if not config_path.is_file():
        raise AdvembedError(f"'{run}' is not an advembed run: {CONFIG_FILE} is missing")
    metrics_path = run / METRICS_FILE
    reading = config_path
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        reading = metrics_path
        metrics = (
            json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
        )
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdvembedError(f"run '{run}' has a corrupt {reading.name}: {exc}") from None
    if not isinstance(config, dict) or not isinstance(metrics, dict):
        raise AdvembedError(f"run '{run}': {CONFIG_FILE} and {METRICS_FILE} must hold JSON "
                            "objects (edited by hand?)")
    if "dataset" not in config:
        if "model_type" in config or "architectures" in config:
            raise AdvembedError(f"'{run}' is a model folder, not an advembed run (a run holds "
                                f"it in {MODEL_DIR}/ beside its own {CONFIG_FILE})")
        raise AdvembedError(f"run '{run}': {CONFIG_FILE} has no 'dataset' (edited by hand?)")
    length = config.get("max_length", 128)
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise AdvembedError(f"run '{run}': {CONFIG_FILE} has max_length {length!r}; it must be "
                            "a positive integer")
    for name, kinds in _RECORDED_TYPES.items():
        value = config.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
            raise AdvembedError(f"run '{run}': {CONFIG_FILE} has {name} {value!r} (edited by "
                                f"hand?); it must be {_KIND_NAMES[kinds]}")
    return config, metrics


_RECORDED_TYPES: dict[str, type | tuple[type, ...]] = {
    "dataset": str, "seed": int, "split_seed": int, "limit": int, "task": str, "model": str}
"""Fields of ``config.json`` that reading a run back uses, with their types (absent or null:
the default)."""
_KIND_NAMES = {str: "a string", int: "an integer"}
