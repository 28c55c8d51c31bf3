"""Adversarial training inside your own PyTorch loop: two lines change.

    python examples/own_loop.py                       # packaged MiniLM on 512 mr sentences
    python examples/own_loop.py --method fgm --model path/to/model --dataset my.csv
"""

from __future__ import annotations

import argparse

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

import advembed
from advembed.data import load_dataset
from advembed.encoding import EncodedDataset
from advembed.models import resolve_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="default")
    parser.add_argument("--dataset", default="mr")
    parser.add_argument("--method", default="freelb")
    parser.add_argument("--limit", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()

    data = load_dataset(args.dataset).limit(args.limit, seed=0)
    source = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=data.num_labels
    )
    loader = torch.utils.data.DataLoader(
        EncodedDataset(data.splits["train"], tokenizer), batch_size=16, shuffle=True,
        collate_fn=DataCollatorWithPadding(tokenizer),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)

    method = advembed.build_training_method(args.method, model)  # line 1
    model.train()
    for epoch in range(args.epochs):
        for batch in loader:
            for _ in range(method.replays):  # 1, except FreeAT's m replays of each minibatch
                loss = method.step(model, batch)  # line 2: replaces model(**batch).loss.backward()
                optimizer.step()
                optimizer.zero_grad()
        print(f"epoch {epoch + 1}: last loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
