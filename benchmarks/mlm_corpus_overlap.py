"""How much of the evaluated datasets' dev and test text the masked LM's corpus
(``advembed mlm build``, :mod:`advembed.mlm.corpus`) trains on, compared as near-copies: a
sentence's letters and digits, lower-cased (NFKC), whatever its punctuation and spacing.

    python benchmarks/mlm_corpus_overlap.py mr rt subj cr nyt tweets bbc bbc-match bbc-lm

At this commit every count of 4-60-word sentences is 0 (corpus version 2); of dev and test
texts and sentences of any length, 14 (benchmarks/results/mlm/corpus-overlap-v2.txt).
With ``src/`` of commit bef1a86, the last with corpus version 1 (``git checkout bef1a86 --
src``), the same command printed 278 of mr's 1,147 test sentences, 2,794 of bbc-lm's 3,611,
and 163 of the 2,000 held-out sentences with a near-copy in training (README).
"""

from __future__ import annotations

import re
import sys
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from advembed.data import load_dataset  # noqa: E402
from advembed.data.named import split_sentences  # noqa: E402
from advembed.mlm.corpus import _sentences, corpus  # noqa: E402


def key(sentence: str) -> str:
    """The comparison of this script, kept apart from the corpus's own ``_key`` on purpose:
    run on an older ``src/`` it measures that corpus by today's rule."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", sentence).lower())


def main(names: list[str]) -> int:
    train, held = corpus(held_out=2000, seed=0)
    pool = {key(s) for s in train}
    print(f"corpus: {len(train)} training sentences, {len(held)} held out")
    print(f"held-out sentences with a near-copy in training: "
          f"{sum(key(s) in pool for s in held)} of {len(held)}")
    for name in names:
        data = load_dataset(name)
        for split in ("dev", "test"):
            sentences = [s for e in data.splits[split]
                         for t in [e.text] + ([e.text_pair] if e.text_pair else [])
                         for s in _sentences(t)]
            hit = sum(key(s) in pool for s in sentences)
            # the corpus keeps and compares sentences of 4-60 words; a shorter dev/test text or
            # sentence, or one split otherwise, can still have a copy among its sentences
            pieces = {key(p) for e in data.splits[split]
                      for t in [e.text] + ([e.text_pair] if e.text_pair else [])
                      for p in [t, *split_sentences(t)]}
            loose = len(pieces & pool)
            print(f"{name} {split}: {hit} of {len(sentences)} sentences in the MLM's training "
                  f"text; {loose} of {len(pieces)} texts or sentences of any length", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
