"""Tasks for the process-pool test (importable by spawned workers): each marks that it
started, task 0 returns at once, task 1 fails, the others take long."""

from __future__ import annotations

import time
from pathlib import Path


def task(index: int, folder: str) -> int:
    (Path(folder) / f"started-{index}").touch()
    if index == 1:
        time.sleep(0.3)
        raise ValueError("task 1 failed")
    if index > 1:
        time.sleep(3.0)
    return index
