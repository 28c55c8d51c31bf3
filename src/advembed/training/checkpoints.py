"""Checkpoints without pickle, complete or absent, and everything a resumed run needs.

The stock ``Trainer`` pickles its optimizer, scheduler, RNG states and training arguments.
:class:`CheckpointMixin` writes them with :mod:`advembed.state_io` instead (safetensors for
tensors, JSON for the rest), adds the method's own state (FreeAT's δ and replay index, CARL's
banks and generator, ATCL's generator, warm-up counters, skipped-step counts) and the random
state the epoch began with, and marks a checkpoint complete (``complete.json``) only once every
file is written: a resumed run takes the last complete checkpoint, and a partial one — a kill
or a full disk during the write — is removed.  ``training_args.bin`` (a pickle) is never
written; the arguments are in ``config.json``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from transformers import TrainerCallback

from advembed.errors import AdvembedError
from advembed.files import file_sizes, size_mismatch
from advembed.runs import Resumable, WriteFailed, write_json
from advembed.state_io import load_state, save_state
from advembed.training.callbacks import EpochRandomState, random_state, set_random_state

COMPLETE = "complete.json"
PICKLED_ARGUMENTS = "training_args.bin"


def last_checkpoint(folder: Path) -> Path | None:
    """The complete checkpoint with the highest step in ``folder`` (incomplete ones removed)."""
    complete = []
    for candidate in Path(folder).glob("checkpoint-*"):
        if (candidate / COMPLETE).is_file():
            complete.append(candidate)
        else:
            shutil.rmtree(candidate, ignore_errors=True)
    return max(complete, key=lambda c: int(c.name.rsplit("-", 1)[1]), default=None)


def checkpoint_sizes(folder: Path) -> dict[str, int]:
    """The size of each file of a finished checkpoint, so that a resume notices one deleted
    or cut short since (under DDP every rank's files are in: :meth:`_save_rng_state` waits
    for all of them before process 0 gets here)."""
    return file_sizes(folder, skip=(COMPLETE,))


def damaged_checkpoint(folder: Path) -> str | None:
    """What is missing or cut short in a complete checkpoint (``None``: nothing, or one
    marked before the sizes were recorded)."""
    try:
        sizes = json.loads((folder / COMPLETE).read_text(encoding="utf-8")).get("sizes") or {}
    except (OSError, ValueError, AttributeError):
        return f"its {COMPLETE} cannot be read"
    return size_mismatch(folder, sizes)


class LossSumOnResume(TrainerCallback):
    """Gives a resumed ``Trainer`` the training-loss sum its checkpoint saved.  ``Trainer``
    zeroes the sum just before ``on_train_begin``, which it calls once on every way a run
    resumes — mid-epoch, at an epoch boundary, or from the final checkpoint, where no step is
    left to train."""

    def __init__(self, trainer, loss_sum: float) -> None:
        self.trainer, self.loss_sum = trainer, loss_sum

    def on_train_begin(self, args, state, control, **kwargs):
        self.trainer._total_loss_scalar = self.loss_sum


class CheckpointMixin:
    """``Trainer`` overrides for pickle-free, complete, exactly resumable checkpoints.

    Needs ``self.method`` (or ``None``), ``self.guard`` and ``self.epoch_random``
    (:class:`~advembed.training.callbacks.EpochRandomState`, registered as a callback).
    """

    epoch_random: EpochRandomState

    def _state_name(self, name: str) -> str:
        return f"{name}_{self.args.process_index}" if self.args.world_size > 1 else name

    # --- optimizer and scheduler ------------------------------------------------------------
    def _save_optimizer_and_scheduler(self, output_dir):
        if self.args.should_save:
            save_state(Path(output_dir), "optimizer", self.optimizer.state_dict())
            save_state(Path(output_dir), "scheduler", self.lr_scheduler.state_dict())

    def _load_optimizer_and_scheduler(self, checkpoint):
        if checkpoint is None:
            return
        self.optimizer.load_state_dict(load_state(Path(checkpoint), "optimizer"))
        self.lr_scheduler.load_state_dict(load_state(Path(checkpoint), "scheduler"))

    def _save_scaler(self, output_dir):
        """fp16's GradScaler state (its scale and growth counter), as JSON, not the stock
        pickled ``scaler.pt``."""
        scaler = getattr(self.accelerator, "scaler", None)
        if scaler is not None and self.args.should_save:
            save_state(Path(output_dir), "scaler", scaler.state_dict())

    def _load_scaler(self, checkpoint):
        scaler = getattr(self.accelerator, "scaler", None)
        if checkpoint is not None and scaler is not None and \
                (Path(checkpoint) / "scaler.json").is_file():
            scaler.load_state_dict(load_state(Path(checkpoint), "scaler"))

    # --- the training loss so far -----------------------------------------------------------
    def _maybe_log_save_evaluate(self, tr_loss, *args, **kwargs):
        self._running_loss = tr_loss  # the loss summed since the last log (zeroed in place)
        return super()._maybe_log_save_evaluate(tr_loss, *args, **kwargs)

    def _loss_sum(self) -> float:
        """The summed training loss ``Trainer`` divides by the step count at the end: what was
        logged so far plus what was not yet.  A resumed ``Trainer`` starts both at 0 and so
        reported the run's loss times the share of steps it trained itself; the checkpoint
        keeps this sum and :class:`LossSumOnResume` puts it back."""
        running = getattr(self, "_running_loss", None)
        return self._total_loss_scalar + (float(running.item()) if running is not None else 0.0)

    # --- random states and the method's own state -------------------------------------------
    def _save_rng_state(self, output_dir):
        """Each process's random and method state, then a barrier: under DDP the other ranks
        reach this before process 0 has created the folder (they write no model), and process
        0 marks the checkpoint complete only after every rank's files are in it."""
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        save_state(Path(output_dir), self._state_name("rng"),
                   {"now": random_state(), "epoch_begin": self.epoch_random.state})
        method = self.method.state_dict() if self.method is not None else None
        save_state(Path(output_dir), self._state_name("method"),
                   {"method": method, "guard": self.guard.state_dict(),
                    "loss_sum": self._loss_sum()})
        self.accelerator.wait_for_everyone()

    def _load_rng_state(self, checkpoint):
        if checkpoint is None:
            return
        set_random_state(load_state(Path(checkpoint), self._state_name("rng"))["now"])
        if not self.epoch_random.fetched:  # resumed at an epoch boundary: the epoch begins now
            self.epoch_random.state = random_state()

    def train(self, resume_from_checkpoint: str | bool | None = None, *args, **kwargs):
        """The stock ``train``; resuming (a checkpoint folder, or ``True``: the last complete
        one in ``output_dir``) first restores what the stock resume does not — the method's
        state (FreeAT's δ and replay, warm-up counts, CARL's banks, ATCL's generator), the
        guard's, the interrupted epoch's random state and the loss so far — so that
        ``trainer.train(resume_from_checkpoint=...)`` resumes exactly, as ``advembed train
        --resume`` does."""
        if resume_from_checkpoint is True:
            found = last_checkpoint(Path(self.args.output_dir))
            if found is None:
                raise AdvembedError(f"no complete checkpoint to resume from in "
                                    f"'{self.args.output_dir}'")
            resume_from_checkpoint = str(found)
        if resume_from_checkpoint:
            self.resume_state(Path(resume_from_checkpoint))
        return super().train(resume_from_checkpoint or None, *args, **kwargs)

    def resume_state(self, checkpoint: Path) -> None:
        """Before ``train(resume_from_checkpoint=...)``: the method's and the guard's state,
        and the random state the interrupted epoch began with."""
        state = load_state(checkpoint, self._state_name("method"))
        if self.method is not None and state["method"] is not None:
            self.method.load_state_dict(state["method"])
        self.guard.load_state_dict(state["guard"])
        begin = load_state(checkpoint, self._state_name("rng"))["epoch_begin"]
        self.epoch_random.pending = begin
        if state.get("loss_sum") is not None:  # checkpoints before session 41 lack it
            self.add_callback(LossSumOnResume(self, float(state["loss_sum"])))

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        self.epoch_random.fetched = True
        return super().get_batch_samples(epoch_iterator, num_batches, device)

    # --- complete checkpoints, no pickle ------------------------------------------------------
    def _save_checkpoint(self, model, trial):
        step = self.state.global_step
        try:
            super()._save_checkpoint(model, trial)
        except (OSError, WriteFailed) as exc:
            if self.args.should_save:  # process 0 owns the folder; the others only add to it
                shutil.rmtree(Path(self.args.output_dir) / f"checkpoint-{step}",
                              ignore_errors=True)
            raise Resumable(f"cannot write the checkpoint at step {step} ({exc.strerror}); the "
                            "previous checkpoint is kept: free space, then run the same command "
                            "with --resume") from None

    def _rotate_checkpoints(self, use_mtime=False, output_dir=None):
        folder = Path(output_dir or self.args.output_dir) / f"checkpoint-{self.state.global_step}"
        if folder.is_dir() and self.args.should_save:  # every file written: mark it complete
            write_json(folder / COMPLETE, {"step": self.state.global_step,
                                           "sizes": checkpoint_sizes(folder)})
        return super()._rotate_checkpoints(use_mtime=use_mtime, output_dir=output_dir)

    def _save(self, output_dir=None, state_dict=None):
        super()._save(output_dir, state_dict)
        Path(output_dir or self.args.output_dir, PICKLED_ARGUMENTS).unlink(missing_ok=True)
