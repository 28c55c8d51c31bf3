"""Callbacks of a training run: stop a collapsed run, keep the best model, and remember the
random state each epoch began with (for an exact ``--resume`` in the middle of an epoch)."""

from __future__ import annotations

import math
import os
import random
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback

JUDGE_AFTER = 0.2
"""Share of the run's steps (and the whole learning-rate warm-up) a run may spend at chance."""


class CollapseGuard(TrainerCallback):
    """Stop training with a warning when the dev metric is no better than the task's trivial
    predictor (the task's :meth:`~advembed.tasks.base.Task.collapse_baseline`: the majority
    label, the unigram LM, one fixed translation) at the first evaluation *after the
    learning-rate warm-up and at least* ``JUDGE_AFTER`` *of the run's steps*.

    A too-large perturbation radius can collapse a model to predicting one class; finishing
    the run silently would waste the remaining epochs and hide the problem.  Active for
    adversarial methods only: plain fine-tuning is the reference and runs its full course.
    Why not at the first evaluation: a model trained from scratch starts slowly — plain ESIM
    over 15 epochs (warm-up 1.5) is exactly at chance after epoch 1 on both pair sets, at
    0.51–0.71 after epoch 2 and 0.66–0.79 after epoch 3 — so judging epoch 1 stopped healthy
    runs; a pretrained encoder's 3-epoch run is still judged after its first epoch.

    With ``stop=False`` (``--no-collapse-guard``: a model that may start slower still) the run
    goes to its end and is marked collapsed only if its best dev score over the whole run is
    at chance.
    """

    def __init__(self, baseline: float | None, *, metric: str = "accuracy",
                 greater_is_better: bool = True, margin: float = 0.01,
                 active: bool = True, stop: bool = True) -> None:
        self.baseline, self.metric, self.greater_is_better = baseline, metric, greater_is_better
        self.margin, self.stop = margin, stop
        self.active = active and baseline is not None
        self.collapsed = False

    def at_baseline(self, value: float) -> bool:
        if self.greater_is_better:
            return value <= self.baseline + self.margin
        return value >= self.baseline - self.margin

    @staticmethod
    def judged_from(args, state) -> int:
        """The first step whose evaluation is judged: the end of the warm-up, or
        ``JUDGE_AFTER`` of the run's steps, whichever is later."""
        return max(args.get_warmup_steps(state.max_steps),
                   math.ceil(JUDGE_AFTER * state.max_steps))

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        # The first judged evaluation of the run, counted in the (checkpointed) log history so
        # that a resumed run does not take its next evaluation for the first.
        first = self.judged_from(args, state)
        judged = sum(f"eval_{self.metric}" in entry and entry.get("step", 0) >= first
                     for entry in state.log_history)
        value = (metrics or {}).get(f"eval_{self.metric}")
        if (self.active and self.stop and judged == 1 and state.global_step >= first
                and value is not None):
            if self.at_baseline(value):
                self.collapsed = True
                control.should_training_stop = True
                warnings.warn(
                    f"training collapsed: dev {self.metric} {value:.4f} at step "
                    f"{state.global_step} (after the warm-up and {JUDGE_AFTER:.0%} of the run) "
                    f"is at chance ({self.baseline:.4f}, a trivial predictor); stopping. Lower "
                    "the perturbation size (--adv-epsilon / --adv-alpha), change the learning "
                    "rate (a model trained from scratch needs a larger one), or pass "
                    "--no-collapse-guard (a dev set of a few examples is a noisy judge).",
                    stacklevel=2,
                )
        return control

    def on_train_end(self, args, state, control, **kwargs):
        """Without stopping: judge the run by its best dev score (the checkpointed history
        counts, so a resumed run is judged whole)."""
        values = [entry[f"eval_{self.metric}"] for entry in state.log_history
                  if f"eval_{self.metric}" in entry]
        if self.active and not self.stop and values:
            best = max(values) if self.greater_is_better else min(values)
            if self.at_baseline(best):
                self.collapsed = True
                warnings.warn(f"training collapsed: the best dev {self.metric} of the run, "
                              f"{best:.4f}, is at chance ({self.baseline:.4f}, a trivial "
                              "predictor).", stacklevel=2)
        return control


class BestModel(TrainerCallback):
    """Keep the weights of the best evaluation so far in ``folder`` (``model.safetensors``),
    written atomically, and the value that made them best (``best.json``), so that a resumed
    run keeps comparing with it.  Strictly better replaces; the first of equal values stays."""

    def __init__(self, folder: Path, *, metric: str, greater_is_better: bool) -> None:
        self.folder, self.metric, self.greater_is_better = Path(folder), metric, greater_is_better
        self.best: float | None = None
        tmp = self.folder.with_name(f".{self.folder.name}.tmp")
        if not self.folder.exists() and (tmp / "best.json").is_file():
            os.replace(tmp, self.folder)  # stopped between the two renames of on_evaluate
        record = self.folder / "best.json"
        if record.is_file():
            import json

            self.best = json.loads(record.read_text())["value"]

    def better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.greater_is_better else value < self.best

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        value = (metrics or {}).get(f"eval_{self.metric}")
        if value is None or model is None or not args.should_save or not self.better(value):
            return control
        from advembed.runs import replace_folder, write_json  # (runs' own, from files)

        tmp = self.folder.with_name(f".{self.folder.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(str(tmp), safe_serialization=True)
        write_json(tmp / "best.json", {"value": value, "step": state.global_step})
        replace_folder(tmp, self.folder)  # best.json is written last: tmp is complete
        self.best = value
        return control

    def restore(self, model) -> None:
        """Load the best weights into ``model`` (nothing if no evaluation ran)."""
        weights = self.folder / "model.safetensors"
        if weights.is_file():
            from safetensors.torch import load_file

            model.load_state_dict(load_file(str(weights)), strict=False)


class EpochRandomState(TrainerCallback):
    """The global random state at the beginning of the current epoch.

    The training sampler (length-grouped batches) draws its order of the epoch from the
    global torch generator when the epoch starts; to resume exactly in the middle of an epoch,
    that state is saved in every checkpoint and restored when the resumed epoch begins (the
    Trainer then skips the batches already seen and restores the checkpoint's own state)."""

    def __init__(self) -> None:
        self.state: dict | None = None
        self.pending: dict | None = None  # an epoch-begin state to restore (mid-epoch resume)
        self.fetched = False  # whether the epoch's first batch has been drawn

    def on_epoch_begin(self, args, state, control, **kwargs):
        if self.pending is not None:
            set_random_state(self.pending)
            self.pending = None
        self.state = random_state()
        self.fetched = False
        return control


def random_state() -> dict:
    """The Python, NumPy and torch (CPU and CUDA) generators' states."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "cpu": torch.random.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.random.get_rng_state_all()
    return state


def set_random_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.random.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.random.set_rng_state_all(state["cuda"])


class LogLines(TrainerCallback):
    """With ``--no-progress``, one readable line per log instead of the Trainer's printed
    dictionaries: ``step 100/2481 (epoch 0.12): loss 1.1459, lr 9.50e-04, grad norm 0.363``
    and ``step 827/2481 (epoch 1.00): dev f1 0.4774, loss 0.5898``, on the main process."""

    SKIP = ("total_flos", "epoch", "train_runtime", "train_samples_per_second",
            "train_steps_per_second", "eval_runtime", "eval_samples_per_second",
            "eval_steps_per_second")
    NAMES = {"learning_rate": "lr", "grad_norm": "grad norm", "train_loss": "mean train loss"}

    @staticmethod
    def format(step: int, max_steps: int, logs: dict) -> str:
        epoch = logs.get("epoch")
        head = f"step {step}/{max_steps}" + (f" (epoch {epoch:.2f})" if epoch is not None
                                             else "")
        dev = any(key.startswith("eval_") for key in logs)
        parts = []
        for key, value in logs.items():
            if key in LogLines.SKIP or not isinstance(value, int | float):
                continue
            name = LogLines.NAMES.get(key, key.removeprefix("eval_").replace("_", " "))
            text = f"{value:.2e}" if key == "learning_rate" else (
                f"{value:.4g}" if isinstance(value, float) else str(value))
            parts.append(f"{name} {text}")
        return f"{head}: {'dev ' if dev else ''}{', '.join(parts)}"

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and state.is_world_process_zero:
            print(self.format(state.global_step, state.max_steps, logs), flush=True)
