"""Share of word pieces the default MiniLM tokenizer maps to [UNK], per dataset (training
split).  Issue 14 asks it for the Chinese datasets: BERT's uncased vocabulary has only part of
the CJK characters, so a high share means the pretrained encoder sees much of the text as [UNK].

    python benchmarks/vocabulary_coverage.py [--datasets chn-senti thucnews mr]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from advembed.data import load_dataset  # noqa: E402
from advembed.models import default_model_dir  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["chn-senti", "thucnews", "mr"])
    args = parser.parse_args()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(default_model_dir()))
    print("| dataset | training texts | word pieces | [UNK] share |")
    print("|---|---|---|---|")
    for name in args.datasets:
        texts = [e.text for e in load_dataset(name).splits["train"]]
        ids = [i for encoded in tokenizer(texts, add_special_tokens=False)["input_ids"]
               for i in encoded]
        share = sum(i == tokenizer.unk_token_id for i in ids) / len(ids)
        print(f"| {name} | {len(texts):,} | {len(ids):,} | {share:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
