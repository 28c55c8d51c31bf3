"""Test (and dev) texts of named datasets whose case- and punctuation-normalised form is also a
training text's (the splits deduplicate exact text only).

    python benchmarks/near_duplicates.py mr cr nyt tweets rt subj chn-senti thucnews
"""
import re
import sys
import unicodedata

from advembed.data import load_dataset


def norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(c for c in text if not unicodedata.category(c).startswith("P"))
    return re.sub(r"\s+", " ", text).strip()


for name in sys.argv[1:]:
    data = load_dataset(name)
    train = {norm(e.text + " " + (e.text_pair or "")) for e in data.splits["train"]}
    cells = []
    for split in ("dev", "test"):
        examples = data.splits[split]
        hits = sum(norm(e.text + " " + (e.text_pair or "")) in train for e in examples)
        cells.append(f"{split} {hits} of {len(examples)}")
    print(name, "; ".join(cells))
