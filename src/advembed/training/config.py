"""The settings of a training run, declared once: ``advembed train``'s flags, their defaults
and ranges, and what ``config.json`` records come from :class:`TrainConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advembed.data.options import DATASET, SPLIT_SEED, DataOptions
from advembed.flags import PROGRESS
from advembed.settings import MAX_BATCH, MAX_SEED, setting

POSITIVE = {"minimum": 0, "exclusive_minimum": True}


@dataclass(frozen=True)
class TrainConfig(DataOptions):
    """Everything needed to reproduce a run; saved as the run's ``config.json`` (with the
    effective method and objective settings beside the options given)."""

    owner = "train"
    dataset: str = setting("mr", DATASET)
    split_seed: int = setting(2024, SPLIT_SEED)
    task: str = setting("classification", "--task", "what is learned: the task's data, model "
                        "head, loss, metrics (see `advembed.tasks`)")
    model: str = setting("default", "--model", "'default' (the packaged MiniLM), a local model "
                         "folder or a hub name")
    model_init: str = setting("pretrained", "--model-init", "pretrained: load the model's "
                              "weights; random: the same architecture randomly initialised (a "
                              "non-pretrained baseline)", choices=("pretrained", "random"))
    output: str | None = setting(None, "--output", "run directory (default "
                                 "runs/DATASET-METHOD-sSEED)")
    epochs: float = setting(3.0, "--epochs", "training epochs", **POSITIVE)
    batch_size: int = setting(32, "--batch-size", "training batch size", minimum=1,
                              maximum=MAX_BATCH)
    eval_batch_size: int = setting(64, "--eval-batch-size", "evaluation batch size", minimum=1,
                                   maximum=MAX_BATCH)
    lr: float = setting(2e-5, "--lr", "peak learning rate (AdamW, linear decay)", **POSITIVE)
    weight_decay: float = setting(0.01, "--weight-decay", "AdamW weight decay", minimum=0)
    warmup_ratio: float = setting(0.1, "--warmup-ratio", "share of steps with a rising "
                                  "learning rate", minimum=0, maximum=1, exclusive_maximum=True)
    max_length: int = setting(128, "--max-length", "longest input in tokens (longer inputs are "
                              "truncated)", minimum=1)
    seed: int = setting(13, "--seed", "training seed (model head, data order, dropout)",
                        minimum=0, maximum=MAX_SEED)
    max_steps: int | None = setting(None, "--max-steps", "cap the number of training steps",
                                    minimum=1)
    limit: int | None = setting(None, "--limit", "cap the examples taken from each split (a "
                                "subset drawn with --split-seed, so the same for every --seed)",
                                minimum=1)
    gradient_accumulation_steps: int = setting(1, "--gradient-accumulation-steps", "micro-batches"
                                               " per optimiser step", minimum=1)
    group_by_length: bool = setting(True, "--group-by-length", "batch sentences of similar "
                                    "length together (--no-group-by-length: plain random "
                                    "batches)")
    augment_file: str | None = setting(None, "--augment-file", "adversarial data augmentation: "
                                       "add the successful adversarial texts of an attack's "
                                       "records (advembed attack --split train) to the training "
                                       "split", paper="paper 003 Table 5 (ADA)")
    augment_limit: int | None = setting(None, "--augment-limit", "add at most N of "
                                        "--augment-file's adversarial examples, a sample drawn "
                                        "with --seed (default: all of them)", minimum=1)
    preset: str | None = setting(None, "--preset", "a method with settings chosen for a goal "
                                 "and sized to the model: robust = FreeLB++ (see README); "
                                 "method flags given too override its values",
                                 choices=("robust",))
    method: str = setting("none", "--method", "adversarial training method (none = plain "
                          "fine-tuning)")
    objective: str = setting("ce", "--objective", "what is learned from the adversarial sample "
                             "(ce: its cross-entropy only; carl, rar, atcl add their term)")
    augment: str | None = setting(None, "--augment", "add virtual data augmentation's term "
                                  "to the method's step: vda = λ·sKL(f(E), f(Ê)), Ê a noisy "
                                  "masked-LM mixture (--vda-* settings)", choices=("vda",),
                                  paper="paper 003 (FreeLB_VDA, SMART_VDA)")
    save_steps: int | None = setting(None, "--save-steps", "write a resumable checkpoint every "
                                     "N optimiser steps (default: at each evaluation, once an "
                                     "epoch)", minimum=1)
    resume: bool = setting(False, "--resume", "continue the interrupted run of this --output "
                           "from its last checkpoint, with the options it started with (any "
                           "given must be the same)")
    overwrite: bool = setting(False, "--overwrite", "replace an existing run directory")
    keep_checkpoints: bool = setting(False, "--keep-checkpoints", "keep the Trainer's "
                                     "checkpoints in the run")
    collapse_guard: bool = setting(True, "--collapse-guard", "stop an adversarial run whose "
                                   "dev score is at chance at the first evaluation after the "
                                   "warm-up and a fifth of the steps (--no-collapse-guard: "
                                   "train to the end, marked collapsed only if its best dev "
                                   "score stays at chance)")
    progress: bool = setting(True, PROGRESS)
    method_options: dict[str, Any] = field(default_factory=dict)
    objective_options: dict[str, Any] = field(default_factory=dict)
    augment_options: dict[str, Any] = field(default_factory=dict)

    def output_dir(self) -> Path:
        if self.output:
            return Path(self.output)
        dataset = Path(self.dataset).stem if Path(self.dataset).exists() else self.dataset
        dataset = dataset.replace(":", "-").replace("/", "-")
        method = self.preset or self.method
        method = method if self.objective == "ce" else f"{method}+{self.objective}"
        method = method if not self.augment else f"{method}+{self.augment}"
        return Path("runs") / f"{dataset}-{method}-s{self.seed}"

    def data_options(self) -> DataOptions:
        return DataOptions(dataset=self.dataset, **self.columns, split_seed=self.split_seed)
