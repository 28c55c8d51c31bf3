"""Parallel text for translation: ``help-en-de``, ``help-de-en``, ``help-en-fr``, ``help-fr-en``.

The LibreOffice help pages of Debian's ``libreoffice-help-en-us``, ``-de`` and ``-fr`` (7.4,
MPL-2.0) are the same files in each language, and every paragraph and heading carries the same
id (``par_id…``, ``hd_id…``) in each.  A pair is the English and the translated text of the
element with the same id in the same file; pairs whose translation equals the English
(untranslated) or that are empty are dropped.

The split is **by help file** (80/10/10, seeded), so no page is in two splits; because the
same sentence recurs across pages ("Choose Format - Cells"), a dev or test pair whose source
sentence also occurs in train is dropped (and a test pair whose source is in dev), so that
no sentence is scored that the model was trained on.  Sources are compared after lowercasing
and collapsing spaces and sentence punctuation (:func:`source_key`): the pages also repeat a
sentence with another case or punctuation ("Switch function" / "Switch Function"), which an
exact comparison let through — 80 of 3,513 dev and 55 of 2,315 test pairs of
``help-en-de`` before this (2026-12-07).  Example: ``text`` is the
source, ``text_pair`` the reference translation; no labels.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from advembed.data.base import Example
from advembed.data.help_qa import VOID_TAGS
from advembed.data.splits import split_groups

PACKAGES = {"en": "libreoffice-help-en-us", "de": "libreoffice-help-de",
            "fr": "libreoffice-help-fr"}
LANG_DIR = {"en": "en-US", "de": "de", "fr": "fr"}
DIRECTIONS = (("en", "de"), ("de", "en"), ("en", "fr"), ("fr", "en"))


class _IdentifiedText(HTMLParser):
    """The text of every element whose id is a help paragraph or heading id, by id."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: dict[str, str] = {}
        self._open: list[tuple[str, str | None, list[str]]] = []  # (tag, id, text parts)
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in VOID_TAGS:
            if tag == "br":
                self.handle_data(" ")  # a line break separates words
            return
        values = dict(attrs)
        if self._hidden or "hidden" in values or tag in ("script", "style"):
            self._hidden += 1
            return
        ident = values.get("id") or ""
        keep = ident.startswith(("par_id", "hd_id"))
        self._open.append((tag, ident if keep else None, []))

    def handle_endtag(self, tag):
        if self._hidden:
            self._hidden -= 1
            return
        while self._open:  # close up to the matching tag (tolerates unclosed inner tags)
            open_tag, ident, parts = self._open.pop()
            if ident is not None:
                text = " ".join("".join(parts).split())
                if text:
                    self.texts.setdefault(ident, text)
            if open_tag == tag:
                break

    def handle_data(self, data):
        if self._hidden:
            return
        for _, ident, parts in self._open:
            if ident is not None:
                parts.append(data)


def page_texts(html: str) -> dict[str, str]:
    """``{element id: text}`` of one help page's paragraphs and headings."""
    parser = _IdentifiedText()
    parser.feed(html)
    parser.close()
    return parser.texts


def align(source_pages: dict[str, str], target_pages: dict[str, str]
          ) -> list[tuple[str, str, str]]:
    """``(file, source, target)`` for every id present in the same file of both languages,
    untranslated (target equal to source) and empty pairs dropped; pages keyed by the path
    below the language folder."""
    pairs = []
    for path in sorted(set(source_pages) & set(target_pages)):
        source, target = page_texts(source_pages[path]), page_texts(target_pages[path])
        for ident in sorted(set(source) & set(target)):
            if source[ident] != target[ident]:
                pairs.append((path, source[ident], target[ident]))
    return pairs


_LOOSE = re.compile(r"[\s.,:;!?\"'“”„«»‘’]+")  # spaces and sentence punctuation, not symbols


def source_key(text: str) -> str:
    """What two sources share when one is the other in another case, spacing or sentence
    punctuation ("Switch function" / "Switch Function:"); symbols count ("C++" is not "C",
    "=A1+B1" not "=A1*B1"), and a source of punctuation alone is its own key."""
    return _LOOSE.sub(" ", text.lower()).strip() or text.lower()


def split_by_file(pairs: list[tuple[str, str, str]], seed: int) -> dict[str, list[Example]]:
    """80/10/10 of the files (seeded), then dev/test pairs whose source occurs in an earlier
    split, up to case and punctuation (:func:`source_key`), dropped; each split's pairs
    deduplicated."""
    split_of = split_groups([path for path, _, _ in pairs], seed, "files")
    splits: dict[str, list[Example]] = {"train": [], "dev": [], "test": []}
    seen_pairs: set[tuple[str, str]] = set()
    for name in ("train", "dev", "test"):
        earlier = {source_key(example.text) for split in splits.values() for example in split}
        for path, source, target in pairs:
            if split_of[path] == name and source_key(source) not in earlier and (
                    source, target) not in seen_pairs:
                seen_pairs.add((source, target))
                splits[name].append(Example(source, text_pair=target))
    return splits


def help_pages(lang: str) -> dict[str, str]:
    """``{path below the language folder: html}`` of a help package's text pages."""
    from advembed.debian import FETCH_HINT, deb_files, locate_debs

    package = PACKAGES[lang]
    deb = locate_debs((package,), FETCH_HINT.format(package=package))[package]
    prefix = f"usr/share/libreoffice/help/{LANG_DIR[lang]}/text/"
    return {path.removeprefix(prefix): raw.decode("utf-8", errors="replace")
            for path, raw in deb_files(deb, prefix).items() if path.endswith(".html")}


def help_parallel(source: str, target: str, split_seed: int) -> dict[str, list[Example]]:
    """The splits of ``help-SOURCE-TARGET`` (the aligned pairs cached as TSV)."""
    from advembed.provider import cache_dir

    english, other = sorted((source, target), key=lambda lang: lang != "en")
    path = cache_dir() / "extracted" / f"help-{english}-{other}-v1.tsv"
    if not path.is_file():
        rows = align(help_pages(english), help_pages(other))
        staging = path.with_suffix(".tsv.tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        staging.write_text("".join(f"{f}\t{_one_line(s)}\t{_one_line(t)}\n" for f, s, t in rows),
                           encoding="utf-8")
        staging.replace(path)
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]
    pairs = [(f, s, t) if source == english else (f, t, s) for f, s, t in rows]
    return split_by_file(pairs, split_seed)


def _one_line(text: str) -> str:
    return text.replace("\t", " ").replace("\n", " ")
