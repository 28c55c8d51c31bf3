"""Debian packages as data sources, fetched without installing them: ``apt-get download``
into ``$ADVEMBED_CACHE/downloads`` (no root needed), or a ``.deb`` already there or in
``$ADVEMBED_FIND_LINKS``; read in place (``ar`` + ``data.tar.*``), never unpacked system-wide."""

from __future__ import annotations

import io
import lzma
import os
import shutil
import subprocess
import tarfile
import tempfile
import zlib
from pathlib import Path

from advembed.errors import AdvembedError, ResourceUnavailable
from advembed.provider import _offline, cache_dir

FETCH_HINT = ("get it with `apt-get download {package}` into a folder named by "
              "ADVEMBED_FIND_LINKS (or $ADVEMBED_CACHE/downloads)")
"""How a missing package's error ends (``{package}``: its name)."""


def deb_files(deb: Path, prefix: str = "") -> dict[str, bytes]:
    """Regular files of a ``.deb`` (an ``ar`` archive holding ``data.tar.*``) whose path
    starts with ``prefix``, by path.  A truncated or damaged package, or one whose payload
    Python cannot read (``data.tar.zst``), is a one-line error naming the file."""
    try:
        return _deb_files(deb, prefix)
    except (ValueError, EOFError, OSError, tarfile.TarError, lzma.LZMAError, zlib.error) as exc:
        raise AdvembedError(
            f"cannot read Debian package {deb} ({type(exc).__name__}: {exc}); it is damaged, "
            "truncated or compressed in a format Python cannot read (zstd): delete it and "
            "download it again with `apt-get download`") from None


def _deb_files(deb: Path, prefix: str) -> dict[str, bytes]:
    data = deb.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise AdvembedError(f"{deb} is not a Debian package")
    offset = 8
    while offset + 60 <= len(data):
        header = data[offset:offset + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = data[offset + 60:offset + 60 + size]
        offset += 60 + size + (size % 2)
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(body)) as tf:
                return {m.name.removeprefix("./"): tf.extractfile(m).read()
                        for m in tf.getmembers()
                        if m.isfile() and m.name.removeprefix("./").startswith(prefix)}
    raise AdvembedError(f"{deb} holds no data.tar member")


def locate_debs(names: tuple[str, ...], hint: str, fetch: bool = True) -> dict[str, Path]:
    """The ``.deb`` of each package: from ``$ADVEMBED_FIND_LINKS`` or the cache, else fetched
    with ``apt-get download`` (unless ``ADVEMBED_OFFLINE=1``); ``hint`` ends the one-line error
    that names what is missing."""
    found: dict[str, Path] = {}
    links = os.environ.get("ADVEMBED_FIND_LINKS")
    for name in names:
        for folder in ([Path(links)] if links else []) + [cache_dir() / "downloads"]:
            hits = sorted(folder.glob(f"{name}_*.deb")) if folder.is_dir() else []
            if len(hits) > 1:  # which is newer is Debian's version order, not the names'
                raise AdvembedError(
                    f"{len(hits)} versions of Debian package {name} in {folder} "
                    f"({', '.join(h.name for h in hits)}); keep the one to build from, so "
                    "that the data does not depend on which is picked")
            if hits:
                found[name] = hits[0]
                break
    missing = [n for n in names if n not in found]
    if missing and fetch and not _offline():
        apt_download(missing, hint)
        return locate_debs(names, hint, fetch=False)
    if missing:
        raise ResourceUnavailable(f"Debian package {', '.join(missing)} not found; {hint}")
    return found


def apt_download(names: list[str], hint: str) -> None:
    downloads = cache_dir() / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    if shutil.which("apt-get") is None:
        raise ResourceUnavailable(f"Debian package {', '.join(names)} not found and apt-get is not "
                            f"available; {hint}")
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".tmp-apt-") as tmp:
        proc = subprocess.run(["apt-get", "download", *names], cwd=tmp, capture_output=True,
                              text=True, timeout=600)
        got = list(Path(tmp).glob("*.deb"))
        if proc.returncode != 0 or len(got) < len(names):
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise ResourceUnavailable(f"apt-get download {' '.join(names)} failed ({last}); {hint}")
        for deb in got:
            os.replace(deb, downloads / deb.name.replace("%3a", "_"))
