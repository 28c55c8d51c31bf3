"""Run directories: created atomically, read back for ``eval`` and ``predict``.

A run is written into a hidden temporary sibling (``.NAME.partial-PID``) and renamed to
``NAME`` only when training has finished and every file is written, so an interrupted or
failed run never leaves a half-written ``NAME`` behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from advembed.errors import AdvembedError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
MODEL_DIR = "model"


@contextlib.contextmanager
def staged_run_dir(output: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``output`` if the block succeeds."""
    output = Path(output)
    if output.exists() and not overwrite:
        raise AdvembedError(f"output directory '{output}' already exists (pass --overwrite)")
    output.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(output)
    staging = output.parent / f".{output.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if output.exists():
        shutil.rmtree(output)
    os.replace(staging, output)


def _remove_stale_staging(output: Path) -> None:
    """Remove staging folders of this output left by processes that no longer exist
    (a run killed with SIGKILL cannot clean up after itself)."""
    for candidate in output.parent.glob(f".{output.name}.partial-*"):
        pid = candidate.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(candidate, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_json(path: Path, payload: Any) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write one JSON object per line, atomically (temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    os.replace(tmp, path)


def read_run(run: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(config, metrics)`` of a finished run, or a one-line error."""
    run = Path(run)
    if not run.is_dir():
        raise AdvembedError(f"run directory '{run}' does not exist")
    config_path = run / CONFIG_FILE
    if not config_path.is_file():
        raise AdvembedError(f"'{run}' is not an advembed run: {CONFIG_FILE} is missing")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        metrics_path = run / METRICS_FILE
        metrics = (
            json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
        )
    except json.JSONDecodeError as exc:
        raise AdvembedError(f"run '{run}' has a corrupt JSON file: {exc}") from exc
    return config, metrics
