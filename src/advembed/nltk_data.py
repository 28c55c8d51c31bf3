"""WordNet 3.0 and the English stop words for NLTK, offline.

TextAttack's PWWS (``advembed attack``) and ASCC's synonym table (:mod:`advembed.hull`) read
WordNet and an English stop-word list through NLTK.  Nothing may be fetched from a website here,
so this module builds an NLTK data folder from the Debian packages that carry the same data
(the apt registry is reachable):

* ``wordnet-base`` + ``wordnet-sense-index`` → ``corpora/wordnet/`` (copies, since NLTK refuses
  symlinks out of its data root).  Debian lacks WordNet's ``lexnames`` file; it is regenerated
  from the ``lexnames(5WN)`` man page shipped in ``wordnet-base`` (45 fixed lines).
* ``liblingua-stopwords-perl`` → ``corpora/stopwords/english`` (Snowball's English list, the
  same source as NLTK's).

Resolution order, first hit wins:

1. NLTK data that NLTK already finds (``$NLTK_DATA``, ``~/nltk_data``, …), e.g. after
   ``python -m nltk.downloader wordnet stopwords`` on a connected machine;
2. ``<advembed cache>/nltk_data``, built earlier;
3. build it now from ``.deb`` files in ``$ADVEMBED_FIND_LINKS`` or fetched with
   ``apt-get download`` (not when ``ADVEMBED_OFFLINE=1``).

Otherwise one :class:`~advembed.errors.AdvembedError` names what is missing and how to get it.
The folder is built in a temporary sibling and renamed into place only when complete.
"""

from __future__ import annotations

import gzip
import re
import shutil
import tempfile
from pathlib import Path

from advembed.debian import deb_files, locate_debs
from advembed.errors import AdvembedError
from advembed.provider import _move_into_place, cache_dir

DEBIAN_PACKAGES = ("wordnet-base", "wordnet-sense-index", "liblingua-stopwords-perl")
"""Debian packages that carry WordNet 3.0 and the English stop words."""

WORDNET_FILES = (
    "adj.exc", "adv.exc", "cntlist.rev", "data.adj", "data.adv", "data.noun", "data.verb",
    "index.adj", "index.adv", "index.noun", "index.verb", "noun.exc", "verb.exc",
    "index.sense", "cntlist", "frames.vrb", "sentidx.vrb", "sents.vrb",
)
"""WordNet database files copied from ``usr/share/wordnet`` of the two WordNet packages."""

_LEXNAME_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
_MISSING_HINT = (
    "get them with `apt-get download wordnet-base wordnet-sense-index liblingua-stopwords-perl` "
    "into a folder named by ADVEMBED_FIND_LINKS, or with "
    "`python -m nltk.downloader wordnet stopwords` on a connected machine and NLTK_DATA "
    "pointing at its folder"
)


def nltk_has_resources(paths: list[str] | None = None) -> bool:
    """Whether NLTK finds WordNet and the English stop words (in ``paths`` or its defaults)."""
    import nltk

    try:
        for resource in ("corpora/wordnet", "corpora/stopwords/english"):
            try:
                nltk.data.find(resource, paths=paths)
            except LookupError:
                nltk.data.find(resource + ".zip", paths=paths)
    except LookupError:
        return False
    return True


def ensure_nltk_data() -> Path | None:
    """Make WordNet and the stop words visible to NLTK; return the folder added, if any."""
    import nltk

    if nltk_has_resources():
        return None
    folder = cache_dir() / "nltk_data"
    if not nltk_has_resources([str(folder)]):
        build_nltk_data(folder)
    if str(folder) not in nltk.data.path:
        nltk.data.path.insert(0, str(folder))
    return folder


def build_nltk_data(folder: Path, debs: dict[str, Path] | None = None) -> Path:
    """Build an NLTK data folder at ``folder`` from the Debian packages (atomically)."""
    debs = debs if debs is not None else _locate_debs()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-nltk-", dir=folder.parent))
    try:
        files: dict[str, bytes] = {}
        for name in DEBIAN_PACKAGES:
            files |= deb_files(debs[name])
        wordnet = tmp / "corpora" / "wordnet"
        wordnet.mkdir(parents=True)
        for name in WORDNET_FILES:
            key = f"usr/share/wordnet/{name}"
            if key not in files:
                raise AdvembedError(f"the WordNet packages lack {key}; {_MISSING_HINT}")
            (wordnet / name).write_bytes(files[key])
        man = files.get("usr/share/man/man5/lexnames.5WN.gz")
        if man is None:
            raise AdvembedError(f"wordnet-base lacks the lexnames(5WN) man page; {_MISSING_HINT}")
        (wordnet / "lexnames").write_text(lexnames_from_man(gzip.decompress(man).decode()))
        perl = files.get("usr/share/perl5/Lingua/StopWords/EN.pm")
        if perl is None:
            raise AdvembedError(f"liblingua-stopwords-perl lacks EN.pm; {_MISSING_HINT}")
        stopwords = tmp / "corpora" / "stopwords"
        stopwords.mkdir(parents=True)
        (stopwords / "english").write_text("\n".join(stopwords_from_perl(perl.decode())) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        _move_into_place(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def lexnames_from_man(man_page: str) -> str:
    """WordNet's ``lexnames`` file (``NN<TAB>name<TAB>category``) from the lexnames(5WN) page."""
    lines = []
    for row in re.findall(r"^(\d\d)\t(\S+)\s*\t", man_page, flags=re.M):
        number, name = row
        lines.append(f"{number}\t{name}\t{_LEXNAME_CATEGORY[name.split('.')[0]]}")
    if len(lines) != 45 or [int(line[:2]) for line in lines] != list(range(45)):
        raise AdvembedError(f"the lexnames(5WN) man page did not give 45 lexicographer files "
                            f"(got {len(lines)}); {_MISSING_HINT}")
    return "\n".join(lines) + "\n"


def stopwords_from_perl(source: str) -> list[str]:
    """The words of the ``qw( … )`` list in Lingua::StopWords::EN."""
    match = re.search(r"sub _stopwords\s*\{\s*return qw\((.*?)\);", source, flags=re.S)
    if match is None:
        raise AdvembedError(f"no stop-word list found in Lingua/StopWords/EN.pm; {_MISSING_HINT}")
    return match.group(1).split()


def _locate_debs(fetch: bool = True) -> dict[str, Path]:
    try:
        return locate_debs(DEBIAN_PACKAGES, _MISSING_HINT, fetch=fetch)
    except AdvembedError as exc:
        raise AdvembedError(f"WordNet / stop-word data not found: {exc}") from None
