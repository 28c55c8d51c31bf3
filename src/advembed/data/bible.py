"""``bible-para`` (constructed): paraphrase identification from two English Bible translations
aligned by verse — the King James Version and the World English Bible, as Debian packages
``sword-text-kjv`` and ``sword-text-web`` (SWORD zText modules, public domain).

A pair is a KJV verse and a WEB verse: the *same* reference is a paraphrase (label 1); a verse
of the same chapter at most :data:`NEARBY` verses away — the one sharing the most words with
the KJV verse, so topic and names do not decide — is not (label 0).  Per chapter, up to
:data:`PER_CHAPTER` verses are drawn (seeded): half give a paraphrase, half a non-paraphrase,
so the set is balanced and of a size that trains on a CPU.  Chapters are split 80/10/10
(seeded), so no verse is in two splits; a dev or test pair whose KJV or WEB text also occurs in
an earlier split (repeated verses: Numbers 7) is dropped.

Reading the modules: a zText module is a verse index (``*.bzv``: block, offset, size per
entry), a block index (``*.bzs``) and zlib blocks (``*.bzz``), one set per testament.  Entries
follow the versification: a heading entry per book and per chapter, then the chapter's verses.
The chapter headings carry ``<chapter osisID="Book.N">``, so verse numbers are counted from
them instead of from versification tables; KJV (versification KJV) yields its 1,189 chapters
and 31,102 verses, WEB (NRSVA) its own, and only references present in both are used (31,093).
Footnotes and section titles are dropped; an entry over :data:`MAX_WORDS` words is back matter
(WEB's glossary follows its last verse), not a verse.
"""

from __future__ import annotations

import html
import random
import re
import struct
import zlib

from advembed.data.base import Example
from advembed.data.splits import split_groups
from advembed.errors import AdvembedError

PACKAGES = {"kjv": "sword-text-kjv", "web": "sword-text-web"}
PARA_LABELS = ("not-paraphrase", "paraphrase")
PER_CHAPTER, NEARBY = 4, 3
MAX_WORDS = 150  # the longest verse (Esther 8:9) has 90; WEB's last verse carries its glossary
_CHAPTER = re.compile(r'<chapter\b[^>]*osisID="([^"]+)\.(\d+)"')
_DROPPED = re.compile(r"<(note|title)\b[^>]*?(?<!/)>.*?</\1>", re.S)  # footnotes, headings
_TAG = re.compile(r"<[^>]+>")
_BEFORE_PUNCTUATION = re.compile(r" ([,.;:!?)’”])")


def ztext_entries(index: bytes, blocks: bytes, data: bytes) -> list[str]:
    """Every entry of one testament of a zText module, in index order (``""`` if empty)."""
    spans = [struct.unpack_from("<III", blocks, i) for i in range(0, len(blocks) - 11, 12)]
    cache: dict[int, bytes] = {}
    out = []
    for i in range(0, len(index) - 9, 10):
        block, offset, size = struct.unpack_from("<IIH", index, i)
        if size == 0:
            out.append("")
            continue
        if block not in cache:
            start, length, _ = spans[block]
            cache[block] = zlib.decompress(data[start:start + length])
        out.append(cache[block][offset:offset + size].decode("utf-8", errors="replace"))
    return out


def plain(entry: str) -> str:
    """A verse entry as plain text: footnotes and section titles dropped, markup removed."""
    text = html.unescape(_TAG.sub("", _DROPPED.sub(" ", entry))).replace("¶", " ")
    return _BEFORE_PUNCTUATION.sub(r"\1", " ".join(text.split()))


def verses(entries: list[str]) -> dict[tuple[str, int, int], str]:
    """``{(book, chapter, verse): plain text}`` from one testament's entries: after each chapter
    heading the entries are verses 1, 2, …; the entry before the next book's first chapter
    heading is that book's heading, not a verse."""
    heads = [(i, m.group(1), int(m.group(2))) for i, entry in enumerate(entries)
             if (m := _CHAPTER.search(entry))]
    out = {}
    for k, (i, book, chapter) in enumerate(heads):
        end = heads[k + 1][0] if k + 1 < len(heads) else len(entries)
        if k + 1 < len(heads) and heads[k + 1][1] != book:
            end -= 1  # the next book's heading entry
        for number, entry in enumerate(entries[i + 1:end], 1):
            text = plain(entry)
            if text and len(text.split()) <= MAX_WORDS:
                out[book, chapter, number] = text
    return out


def module_verses(deb_files: dict[str, bytes]) -> dict[tuple[str, int, int], str]:
    """All verses of the zText module in a package's files (both testaments)."""
    out = {}
    for testament in ("ot", "nt"):
        found = {path.rsplit(".", 1)[1]: raw for path, raw in deb_files.items()
                 if "/modules/texts/ztext/" in path and path.rsplit("/", 1)[1].startswith(
                     f"{testament}.")}
        if {"bzv", "bzs", "bzz"} <= set(found):
            out |= verses(ztext_entries(found["bzv"], found["bzs"], found["bzz"]))
    if not out:
        raise AdvembedError("the package holds no zText module with verses")
    return out


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def para_pairs(first: dict, second: dict, seed: int) -> list[tuple[tuple[str, int], Example]]:
    """``((book, chapter), pair)`` for up to :data:`PER_CHAPTER` verses of every chapter."""
    rng = random.Random(seed)
    chapters: dict[tuple[str, int], list[int]] = {}
    for book, chapter, verse in sorted(set(first) & set(second)):
        chapters.setdefault((book, chapter), []).append(verse)
    pairs = []
    for key, numbers in chapters.items():
        chosen = rng.sample(numbers, min(PER_CHAPTER, len(numbers)))
        for position, verse in enumerate(chosen):
            text = first[(*key, verse)]
            if position % 2 == 0:
                pairs.append((key, Example(text, 1, second[(*key, verse)])))
                continue
            near = [n for n in numbers if n != verse and abs(n - verse) <= NEARBY]
            if not near:
                continue
            words = _words(text)
            other = max(near, key=lambda n: (len(words & _words(second[(*key, n)])), -n))
            pairs.append((key, Example(text, 0, second[(*key, other)])))
    return pairs


def split_by_chapter(pairs: list[tuple[tuple[str, int], Example]], seed: int
                     ) -> dict[str, list[Example]]:
    """80/10/10 of the chapters (seeded); later splits lose pairs sharing a text with earlier
    ones, and each split is deduplicated."""
    split_of = split_groups([key for key, _ in pairs], seed, "chapters")
    splits: dict[str, list[Example]] = {"train": [], "dev": [], "test": []}
    seen: set[str] = set()
    for name in ("train", "dev", "test"):
        kept = [e for key, e in pairs if split_of[key] == name
                and e.text not in seen and e.text_pair not in seen]
        splits[name] = list(dict.fromkeys(kept))
        seen |= {t for e in splits[name] for t in (e.text, e.text_pair)}
    return splits


def bible_para(split_seed: int) -> dict[str, list[Example]]:
    """The splits of ``bible-para`` (the packages read in place, nothing unpacked)."""
    from advembed.debian import FETCH_HINT, deb_files, locate_debs

    debs = locate_debs(tuple(PACKAGES.values()),
                       FETCH_HINT.format(package=" ".join(PACKAGES.values())))
    kjv, web = (module_verses(deb_files(debs[PACKAGES[name]], "usr/share/sword/modules/"))
                for name in ("kjv", "web"))
    return split_by_chapter(para_pairs(kjv, web, seed=0), split_seed)
