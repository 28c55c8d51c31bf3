"""``bible-para``: reading SWORD zText modules (verse numbers counted from chapter headings),
plain text from OSIS markup, and paraphrase pairs split by chapter without leaks."""

from __future__ import annotations

import struct
import zlib

from advembed.data.bible import (
    para_pairs,
    plain,
    split_by_chapter,
    verses,
    ztext_entries,
)


def _module(entries: list[str], per_block: int = 3) -> tuple[bytes, bytes, bytes]:
    """A zText testament (index, block index, data) holding ``entries``."""
    index, blocks, data = b"", b"", b""
    for start in range(0, len(entries), per_block):
        raw = b""
        for entry in entries[start:start + per_block]:
            encoded = entry.encode()
            index += struct.pack("<IIH", len(blocks) // 12, len(raw), len(encoded))
            raw += encoded
        packed = zlib.compress(raw)
        blocks += struct.pack("<III", len(data), len(packed), len(raw))
        data += packed
    return index, blocks, data


ENTRIES = [
    "", '<milestone type="x-importer"/>',
    '<div osisID="Gen" type="book"/><title type="main">Genesis</title>',
    '<chapter n="1" osisID="Gen.1" sID="Gen.1"/> ',
    'In the <w lemma="strong:H7225">beginning</w> God created.',
    '<title type="section">Light</title>And God said<note placement="foot">Hebrew: '
    'amar</note>, Let there be light',
    '<chapter n="2" osisID="Gen.2" sID="Gen.2"/>', "", "Thus the heavens were finished.",
    '<div osisID="Exod" type="book"/> Exodus heading, not a verse',
    '<chapter n="1" osisID="Exod.1" sID="Exod.1"/>', "Now these are the names",
]


def test_verses_are_counted_from_chapter_headings_and_book_headings_are_skipped():
    entries = ztext_entries(*_module(ENTRIES))
    assert entries == ENTRIES
    found = verses(entries)
    assert found == {("Gen", 1, 1): "In the beginning God created.",
                     ("Gen", 1, 2): "And God said, Let there be light",
                     ("Gen", 2, 2): "Thus the heavens were finished.",  # 2:1 is empty
                     ("Exod", 1, 1): "Now these are the names"}


def test_markup_footnotes_and_titles_are_removed_and_punctuation_rejoined():
    assert plain('<w>Eber</w>, <w>Peleg</w><note n="a">a note</note> ¶ and &amp; '
                 '<transChange type="added">Reu</transChange> .') == "Eber, Peleg and & Reu."


def test_pairs_are_balanced_with_the_most_similar_nearby_verse_as_the_negative():
    first = {("Ps", 1, n): f"blessed is the man number {n}" for n in range(1, 9)}
    second = {("Ps", 1, n): f"happy the one {n}" for n in range(1, 9)}
    second["Ps", 1, 5] = "blessed is the man who walks"  # shares the most words with any verse
    pairs = para_pairs(first, second, seed=1)
    labels = [e.label for _, e in pairs]
    assert labels.count(1) == 2 and labels.count(0) == 2
    for _, example in pairs:
        verse = int(example.text.rsplit(" ", 1)[1])
        if example.label == 1:
            assert example.text_pair == second["Ps", 1, verse]
        else:
            assert example.text_pair != second["Ps", 1, verse]
            partner = [n for n, t in second.items() if t == example.text_pair][0][2]
            assert abs(partner - verse) <= 3
            if abs(verse - 5) <= 3 and verse != 5:
                assert partner == 5  # the most words in common wins


def test_the_split_is_by_chapter_and_repeated_texts_do_not_cross_splits():
    from advembed.data.base import Example

    pairs = [((f"B{c}", 1), Example(f"verse {c}-{v}", v % 2, f"other {c}-{v}"))
             for c in range(30) for v in range(2)]
    pairs += [((f"B{c}", 1), Example("One kid of the goats", 1, "one male goat"))
              for c in range(30)]  # a verse repeated in every chapter
    splits = split_by_chapter(pairs, seed=4)
    chapter = {e.text: e.text.split()[1].split("-")[0] for s in splits.values() for e in s
               if e.text.startswith("verse")}
    by_split = {name: {chapter[e.text] for e in s if e.text in chapter}
                for name, s in splits.items()}
    assert not by_split["train"] & by_split["dev"] and not by_split["dev"] & by_split["test"]
    repeated = [name for name, s in splits.items() for e in s if e.text.startswith("One kid")]
    assert repeated == ["train"]
