"""The named datasets built from Debian packages (fetched with ``apt-get download``, read in
place): question–answer matching and parallel text from the LibreOffice help, and paraphrase
pairs from two Bible translations.  Each builds its own splits (by question, help file or
chapter), so nothing leaks between them."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from advembed.data.base import NamedDatasetInfo
from advembed.data.bible import PACKAGES as BIBLE_PACKAGES
from advembed.data.bible import PARA_LABELS, bible_para
from advembed.data.help_qa import PACKAGES as HELP_PACKAGES
from advembed.data.help_qa import help_qa
from advembed.data.parallel import DIRECTIONS, help_parallel
from advembed.data.parallel import PACKAGES as PARALLEL_PACKAGES
from advembed.data.qa import QA_LABELS


def _help_qa_splits(lang: str, split_seed: int):
    return help_qa(lang, split_seed).splits


def debian_datasets() -> list[tuple[NamedDatasetInfo, Callable]]:
    """``(info, build(split_seed) -> splits)`` of each Debian-built dataset."""
    out = [
        (NamedDatasetInfo(
            f"help-qa-{lang}",
            f"Constructed question–answer matching ({language}): a LibreOffice help section "
            "heading as the question, paragraphs of its page as candidate replies (answers: the "
            "section's own); split by page (a paragraph repeated on several pages can be in two "
            "splits)",
            f"{HELP_PACKAGES[lang]}==7.4 (Debian, apt-get download)", QA_LABELS),
         partial(_help_qa_splits, lang))
        for lang, language in (("en", "English"), ("zh", "Chinese"))]
    out += [
        (NamedDatasetInfo(
            f"help-{source}-{target}",
            f"Parallel text {source} → {target} for translation: LibreOffice help paragraphs "
            "aligned by element id, untranslated ones dropped; split by help file",
            f"{PARALLEL_PACKAGES[source]} + {PARALLEL_PACKAGES[target]}==7.4 (Debian)"),
         partial(help_parallel, source, target))
        for source, target in DIRECTIONS]
    out.append((NamedDatasetInfo(
        "bible-para",
        "Constructed paraphrase pairs: a King James verse with the World English Bible's same "
        "verse (paraphrase) or a nearby verse of the same chapter sharing the most words (not); "
        "4 verses per chapter, balanced; split by chapter",
        f"{BIBLE_PACKAGES['kjv']}==14.3 + {BIBLE_PACKAGES['web']}==426.0 (Debian)", PARA_LABELS),
        bible_para))
    return out
