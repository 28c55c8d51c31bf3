"""Adversarial training with ``transformers.Trainer``: swap in ``advembed.AdvTrainer``.

    python examples/with_trainer.py                   # packaged MiniLM on 512 mr sentences
    python examples/with_trainer.py --method smart --model path/to/model --dataset my.csv

Everything else (TrainingArguments, mixed precision, gradient accumulation, DDP with
``torchrun``/``accelerate launch``) is the stock Trainer's.
"""

from __future__ import annotations

import argparse
import tempfile

from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    TrainingArguments,
)

import advembed
from advembed.data import load_dataset
from advembed.encoding import EncodedDataset
from advembed.metrics import compute_metrics
from advembed.models import resolve_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="default")
    parser.add_argument("--dataset", default="mr")
    parser.add_argument("--method", default="fgm")
    parser.add_argument("--limit", type=int, default=512)
    args = parser.parse_args()

    data = load_dataset(args.dataset).limit(args.limit, seed=0)
    source = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=data.num_labels
    )
    trainer = advembed.AdvTrainer(
        model=model,
        args=TrainingArguments(output_dir=tempfile.mkdtemp(), num_train_epochs=1,
                               per_device_train_batch_size=16, learning_rate=2e-5,
                               report_to="none", eval_strategy="epoch"),
        train_dataset=EncodedDataset(data.splits["train"], tokenizer),
        eval_dataset=EncodedDataset(data.splits["dev"], tokenizer),
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        method=advembed.build_training_method(args.method, model),
    )
    trainer.train()
    print(trainer.evaluate())


if __name__ == "__main__":
    main()
