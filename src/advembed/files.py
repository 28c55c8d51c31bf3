"""File-system helpers for the cache and run folders: temporary folders of live processes,
manifests that notice a truncated file, file modes that follow the umask, whether a process
still lives, a lock file that names its live owner."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

MANIFEST = ".manifest.json"


def file_sizes(folder: Path, *, skip: tuple[str, ...] = ()) -> dict[str, int]:
    """The size of every file under ``folder`` (but those named in ``skip``), by relative
    path: what :func:`size_mismatch` checks a folder against later."""
    return {str(path.relative_to(folder)): path.stat().st_size
            for path in sorted(folder.rglob("*")) if path.is_file() and path.name not in skip}


def size_mismatch(folder: Path, sizes: dict[str, int]) -> str | None:
    """The first file of ``sizes`` missing from ``folder`` or of another size, in words."""
    for name, size in sizes.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, {size} expected"
    return None


def write_manifest(folder: Path) -> None:
    """The size of every extracted file, so a truncated or missing one is noticed on use."""
    (folder / MANIFEST).write_text(json.dumps(file_sizes(folder)), encoding="utf-8")


def damaged_files(folder: Path) -> str | None:
    """What is wrong with an extracted folder (``None``: nothing, or no manifest to check
    against: extracted before manifests existed)."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return None
    try:
        sizes = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "its manifest cannot be read"
    return size_mismatch(folder, sizes)


def temporary_folder(parent: Path) -> Path:
    """A fresh ``.tmp-PID-*`` folder in ``parent``, after removing those of dead processes
    (a process killed during a download or an extraction cannot clean up after itself)."""
    for stale in parent.glob(".tmp-*"):
        parts = stale.name.split("-")
        if len(parts) >= 3 and parts[1].isdigit() and not alive(int(parts[1])):
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=parent))


def replace_folder(new: Path, target: Path) -> None:
    """Put the complete folder ``new`` under the name ``target``: an existing ``target`` is moved
    aside first and deleted last, so an interruption leaves the old folder or the new one under
    that name (or the new one beside it, still complete), never half of one."""
    retired = target.with_name(f".{target.name}.replaced")
    shutil.rmtree(retired, ignore_errors=True)
    if target.exists():
        os.replace(target, retired)
    os.replace(new, target)
    shutil.rmtree(retired, ignore_errors=True)


def follow_umask(folder: Path) -> None:
    """Give every file under ``folder`` the mode a new file gets from the process's umask.

    safetensors (and so ``save_pretrained``) writes its weight files with mode 0600 whatever
    the umask, so a run or a cache shared between users would hide the weights alone. Called
    once on a staged folder before it is moved into place; a file its owner may execute
    stays executable (0777 less the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink():
            full = 0o777 if path.stat().st_mode & 0o100 else 0o666
            path.chmod(full & ~mask)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def take_lock(lock: Path) -> int | None:
    """Create ``lock`` holding this process's id; ``None`` once it is this process's, else the
    id of the live process that holds it.  A lock left by a process that no longer exists is
    taken over.  Other ``OSError`` (an unwritable folder) propagates."""
    for _ in range(2):
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = lock_owner(lock)
            if owner is not None and alive(owner) and owner != os.getpid():
                return owner
            lock.unlink(missing_ok=True)  # left by a process that no longer exists
            continue
        with os.fdopen(handle, "w") as stream:
            stream.write(str(os.getpid()))
        return None
    raise FileExistsError(f"cannot take {lock}: it reappears as fast as it is removed")


def release_lock(lock: Path) -> None:
    """Remove ``lock`` if this process holds it."""
    if lock_owner(lock) == os.getpid():
        lock.unlink(missing_ok=True)


def lock_owner(path: Path) -> int | None:
    """The process id a lock file holds, ``None`` when unreadable."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
