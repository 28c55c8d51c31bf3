"""What TextDefender's ASCC entropy weight α = 10 is in advembed's normalisation, on a dataset.

TextDefender's inner loss is ``−KL_sum + α·H_all``: the KL summed over the batch, the entropy
of the hull weights averaged over *every* position of the dynamically padded ``(B, L)`` batch
(padding, special tokens and words without synonyms count, with entropy 0).  advembed's
(``--method ascc``, :func:`advembed.hull.hull_entropy`) is ``−KL_mean + α'·H_open``: the KL
averaged over examples, the entropy over the *open* positions only (a hull of two entries or
more).  With ``f`` = open positions ÷ padded positions, ``H_all = f·H_open``, and dividing
TextDefender's loss by B (Adam does not see a loss's scale) gives ``α' = α·f / B``.

``f`` depends on the data's length spread and on the tokenizer's table, so this script measures
it: random batches of ``--batch-size`` (TextDefender shuffles), each padded to its longest
sentence (its ``collate_fn``), over ``--epochs`` shuffles of the training split::

    python benchmarks/ascc_sparsity_scale.py --dataset cr --model runs/robust/cr-ascc-s13/model
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def open_share(table, token_ids: Sequence[Sequence[int]], *, batch_size: int, epochs: int,
               seed: int, pad_id: int) -> tuple[int, int]:
    """``(open positions, padded positions)`` over random batches of ``token_ids`` (each a
    tokenized sentence with its special tokens), each batch padded to its longest sentence."""
    order = list(range(len(token_ids)))
    rng = random.Random(seed)
    opened = padded = 0
    for _ in range(epochs):
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            rows = [token_ids[i] for i in order[start:start + batch_size]]
            width = max(len(row) for row in rows)
            ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for i, row in enumerate(rows):
                ids[i, :len(row)] = torch.tensor(row)
                mask[i, :len(row)] = 1
            _, valid = table.lookup({"input_ids": ids, "attention_mask": mask}, mask > 0)
            opened += int((valid.sum(-1) > 1).sum())
            padded += ids.numel()
    return opened, padded


def equivalent_alpha(alpha: float, batch_size: int, opened: int, padded: int) -> float:
    """TextDefender's ``alpha`` at ``batch_size`` in advembed's normalisation: ``α·f / B``."""
    return alpha * (opened / padded) / batch_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="a dataset as advembed train takes it")
    parser.add_argument("--model", required=True, help="a folder holding the tokenizer")
    parser.add_argument("--alpha", type=float, default=10.0, help="TextDefender's α")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--pieces", type=int, default=1, help="as --ascc-pieces")
    parser.add_argument("--neighbours", type=int, default=16, help="as --ascc-neighbours")
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args(argv)

    from transformers import AutoTokenizer

    from advembed.data import load_dataset
    from advembed.errors import AdvembedError
    from advembed.hull import synonym_table

    if not (Path(args.model) / "tokenizer_config.json").is_file():
        parser.error(f"--model {args.model}: no tokenizer there (a run's model/ folder)")
    try:
        examples = load_dataset(args.dataset).splits["train"]
    except AdvembedError as error:
        parser.error(f"--dataset: {error}".splitlines()[0])
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    table = synonym_table(tokenizer, max_neighbours=args.neighbours, size=len(tokenizer),
                          pieces=args.pieces)
    texts = [ex.text for ex in examples]
    token_ids = tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"]
    opened, padded = open_share(table, token_ids, batch_size=args.batch_size,
                                epochs=args.epochs, seed=0, pad_id=tokenizer.pad_token_id)
    alpha = equivalent_alpha(args.alpha, args.batch_size, opened, padded)
    print(f"{args.dataset}, pieces {args.pieces}: {opened} open of {padded} padded positions, "
          f"f = {opened / padded:.3f}; TextDefender's α = {args.alpha:g} at batch "
          f"{args.batch_size} is --ascc-sparsity {alpha:.4f} here")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
