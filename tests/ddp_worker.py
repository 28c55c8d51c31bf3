"""Worker for the distributed test: AdvTrainer under torchrun with 2 CPU processes (gloo).

Writes each rank's final parameters to ``OUT/rank{RANK}.pt``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import tiny_batch, tiny_model  # noqa: E402
from transformers import TrainingArguments  # noqa: E402

from advembed.methods import build_training_method  # noqa: E402
from advembed.training.trainer import AdvTrainer  # noqa: E402


class Batches(torch.utils.data.Dataset):
    def __init__(self):
        batch = tiny_batch(batch=16, length=9, seed=1)
        self.items = [{k: v[i] for k, v in batch.items()} for i in range(16)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def main(method: str, out: Path) -> None:
    model = tiny_model("bert", dropout=0.1)
    args = TrainingArguments(
        output_dir=str(out / "trainer"), per_device_train_batch_size=4, max_steps=3,
        learning_rate=1e-2, ddp_backend="gloo", use_cpu=True, report_to="none", seed=3,
        save_strategy="no", disable_tqdm=True, logging_steps=1,
    )
    trainer = AdvTrainer(model=model, args=args, train_dataset=Batches(),
                         method=build_training_method(method, model))
    trainer.train()
    rank = int(os.environ.get("RANK", 0))
    torch.save({n: p.detach().clone() for n, p in model.named_parameters()},
               out / f"rank{rank}.pt")
    assert trainer.args.world_size == 2, trainer.args.world_size


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
