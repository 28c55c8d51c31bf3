"""Worker for the distributed test: AdvTrainer under torchrun with 2 CPU processes (gloo).

Trains every configuration named on the command line, one after another in the same process
group, each on the same 32 examples in order (a global batch of 8: 4 per process), and writes
each rank's final parameters — and CARL's memory banks — to ``OUT/CONFIG-rankR.safetensors``.
With ``--single`` it runs in one process with batches of 8 instead (the same global batches)
and writes ``OUT/CONFIG-single.safetensors``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import tiny_batch, tiny_model  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import TrainingArguments  # noqa: E402

from advembed.methods import build_training_method  # noqa: E402
from advembed.objectives import build_objective  # noqa: E402
from advembed.training.trainer import AdvTrainer  # noqa: E402

EXAMPLES = 32


class Batches(torch.utils.data.Dataset):
    def __init__(self):
        batch = tiny_batch(batch=EXAMPLES, length=9, seed=1)
        batch["labels"] = torch.arange(EXAMPLES) % 2
        self.items = [{k: v[i] for k, v in batch.items()} | {"example_index": i}
                      for i in range(EXAMPLES)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def train(config: str, out: Path, per_device: int, suffix: str) -> None:
    """``config`` is ``METHOD[+OBJECTIVE][:STEPS][@ckpt|@nan]`` (8 steps unless given;
    ``@ckpt``: a checkpoint every 4 steps, in ``OUT/CONFIG-checkpoints``; ``@nan``: process 1
    alone reports a non-finite loss at step 3)."""
    config_name = config
    config, _, save = config.partition("@")
    name, _, steps = config.partition(":")
    method, _, objective_name = name.partition("+")
    torch.manual_seed(0)
    model = tiny_model("bert", dropout=0.0)
    objective = build_objective(objective_name or "ce", model, tokenizer=_Tokenizer(),
                                train_labels=[i % 2 for i in range(EXAMPLES)], warmup=0,
                                num_negatives=4) if objective_name == "carl" else \
        build_objective(objective_name or "ce", model, tokenizer=_Tokenizer())
    args = TrainingArguments(
        output_dir=str(out / (f"{config_name}-checkpoints" if save == "ckpt" else "trainer")),
        per_device_train_batch_size=per_device,
        max_steps=int(steps or 8), learning_rate=1e-2, use_cpu=True, report_to="none",
        ddp_backend="gloo" if suffix != "single" else None,
        seed=3, save_strategy="steps" if save == "ckpt" else "no", save_steps=4,
        disable_tqdm=True, logging_steps=1,
        lr_scheduler_type="constant", warmup_ratio=0.0,
    )
    data = Batches()
    trainer = AdvTrainer(model=model, args=args, train_dataset=data,
                         method=build_training_method(method, model, objective=objective))
    trainer._get_train_sampler = lambda *a, **k: torch.utils.data.SequentialSampler(data)
    if save == "ckpt":
        _slow_down(trainer)
    if save == "nan":  # process 1 alone sees a non-finite loss at step 3 (finite gradients)
        note = trainer.guard.note

        def one_bad_loss(loss, step=None):
            if trainer.args.process_index == 1 and step == 3:
                loss = loss * float("nan")
            return note(loss, step)

        trainer.guard.note = one_bad_loss
    trainer.train()
    tensors = {n: p.detach().clone().contiguous() for n, p in model.named_parameters()}
    if objective_name == "carl":
        tensors |= {"bank.orig": objective.orig.rows, "bank.adv": objective.adv.rows,
                    "bank.filled": objective.orig.filled}
    save_file(tensors, str(out / f"{config_name}-{suffix}.safetensors"))


LM_LENGTHS = [3, 4, 11, 12, 5, 12, 2, 9]  # real tokens of the 8 rows: unequal per process


def train_lm(method: str, out: Path, per_device: int, accumulation: int, suffix: str) -> None:
    """A token-level task (language modelling) under DDP with accumulation: one SGD step over
    8 rows of unequal lengths — 2 processes × 2 micro-batches × 2 rows, or one process with
    one batch of 8 — writes ``OUT/lm-METHOD-SUFFIX.safetensors``.  Each micro-batch's loss is
    weighted by its share of the global batch's target tokens."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from advembed.tasks import get_task

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=30, n_positions=16, n_embd=16, n_layer=1,
                                       n_head=2, resid_pdrop=0.0, embd_pdrop=0.0,
                                       attn_pdrop=0.0))
    generator = torch.Generator().manual_seed(3)
    rows = []
    for length in LM_LENGTHS:
        ids = torch.randint(5, 30, (12,), generator=generator)
        mask = (torch.arange(12) < length).long()
        rows.append({"input_ids": ids * mask, "attention_mask": mask,
                     "labels": torch.where(mask.bool(), ids, torch.tensor(-100))})
    args = TrainingArguments(
        output_dir=str(out / "trainer-lm"), per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accumulation, max_steps=1, learning_rate=0.5, optim="sgd",
        lr_scheduler_type="constant", warmup_ratio=0.0, weight_decay=0.0, use_cpu=True,
        report_to="none", ddp_backend="gloo" if suffix != "single" else None, seed=3,
        save_strategy="no", disable_tqdm=True)
    trainer = AdvTrainer(model=model, args=args, train_dataset=rows, task=get_task("lm"),
                         method=build_training_method(method, model) if method != "none"
                         else None)
    trainer._get_train_sampler = lambda *a, **k: torch.utils.data.SequentialSampler(rows)
    trainer.train()
    tensors = {n: p.detach().clone().contiguous() for n, p in model.named_parameters()
               if n != "lm_head.weight"}  # tied to the input embeddings
    save_file(tensors, str(out / f"lm-{method}-{suffix}.safetensors"))


def _slow_down(trainer) -> None:
    """Make the checkpoint race certain: process 0 writes the model (and creates the folder)
    late, and process 1 writes its own state late, after process 0 would have marked the
    checkpoint complete without waiting for it."""
    import time

    rank = trainer.args.process_index
    save, save_rng = trainer._save, trainer._save_rng_state

    def late_save(*args, **kwargs):
        time.sleep(0.5 if rank == 0 else 0.0)
        return save(*args, **kwargs)

    def late_rng(*args, **kwargs):
        time.sleep(0.5 if rank == 1 else 0.0)
        return save_rng(*args, **kwargs)

    trainer._save, trainer._save_rng_state = late_save, late_rng


class _Tokenizer:
    """What RAR and ATCL read: special ids 0–4, every other id a whole word."""

    all_special_ids = [0, 1, 2, 3, 4]

    def __len__(self):
        return 100

    def convert_ids_to_tokens(self, ids):
        return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"][: min(5, len(ids))] + [
            f"word{'abcdefghij'[i % 10]}{'abcdefghij'[i // 10]}" for i in ids[5:]]


if __name__ == "__main__":
    single = "--single" in sys.argv
    arguments = [a for a in sys.argv[1:] if a != "--single"]
    out = Path(arguments[0])
    suffix = "single" if single else f"rank{int(os.environ.get('RANK', 0))}"
    for name in arguments[1:]:
        if name.startswith("lm-"):
            train_lm(name.removeprefix("lm-"), out, per_device=8 if single else 2,
                     accumulation=1 if single else 2, suffix=suffix)
        else:
            train(name, out, per_device=8 if single else 4, suffix=suffix)
    if not single:
        import torch.distributed as dist

        assert dist.get_world_size() == 2
