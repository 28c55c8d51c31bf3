"""No non-finite step into the weights.

A step whose loss or gradient is not finite (NaN or ±inf) is skipped: the optimiser does not
step, the step is counted (``skipped_steps`` in ``metrics.json``) and logged.  After
``PATIENCE`` skipped steps in a row the run stops with one line and writes nothing: training
has diverged (lower ``--lr`` or the perturbation size, or add ``--adv-warmup-steps``).

A non-finite loss counts against the optimiser step it belongs to only (``note`` is told the step):
under a mixed-precision GradScaler, which skips an overflowed step without calling the
optimiser, the flag of that step must not skip the next, healthy one.  The scaler's own skips
are its business (its scale backs off) and are not counted here.
"""

from __future__ import annotations

import logging
import types
from typing import Any

import torch

from advembed.distributed import any_process
from advembed.errors import AdvembedError

PATIENCE = 10
log = logging.getLogger(__name__)


class NonFiniteGuard:
    """Wraps an optimiser's ``step``; the training step reports each loss with :meth:`note`."""

    def __init__(self, patience: int = PATIENCE) -> None:
        self.patience = patience
        self.skipped = 0
        self.in_a_row = 0
        self._bad_loss = False
        self._step: int | None = None

    def note(self, loss: torch.Tensor, step: int | None = None) -> None:
        """Report a micro-batch's loss; ``step``: the optimiser step it belongs to."""
        if step != self._step:  # a new step: an earlier one's flag is stale
            self._step, self._bad_loss = step, False
        if not bool(torch.isfinite(loss.detach()).all()):
            self._bad_loss = True

    def wrap(self, optimizer: torch.optim.Optimizer) -> None:
        """Make ``optimizer.step`` skip non-finite steps (call before the scheduler exists, so
        that its step counting wraps this guarded step)."""
        original = optimizer.step

        def step(_optimizer, *args: Any, **kwargs: Any):
            bad = self._bad_loss or not _gradients_finite(optimizer)
            # under DDP the gradients agree but a loss is one process's: skip on all, or the
            # replicas part for good (DDP never re-syncs the weights)
            bad = any_process(bad, _device_of(optimizer))
            self._bad_loss = False
            if not bad:
                self.in_a_row = 0
                return original(*args, **kwargs)
            self.skipped += 1
            self.in_a_row += 1
            log.warning("skipped an optimiser step: the loss or a gradient is not finite "
                        "(%d skipped, %d in a row)", self.skipped, self.in_a_row)
            if self.in_a_row >= self.patience:
                raise AdvembedError(
                    f"training diverged: {self.in_a_row} optimiser steps in a row had a "
                    "non-finite loss or gradient; lower --lr or the perturbation size, or add "
                    "--adv-warmup-steps")
            return None

        optimizer.step = types.MethodType(step, optimizer)  # bound, as the scheduler expects

    def state_dict(self) -> dict[str, int]:
        return {"skipped": self.skipped, "in_a_row": self.in_a_row}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.skipped, self.in_a_row = int(state["skipped"]), int(state["in_a_row"])


def _device_of(optimizer: torch.optim.Optimizer) -> torch.device:
    return next(p.device for group in optimizer.param_groups for p in group["params"])


def _gradients_finite(optimizer: torch.optim.Optimizer) -> bool:
    grads = [p.grad for group in optimizer.param_groups for p in group["params"]
             if p.grad is not None]
    if not grads:
        return True
    return bool(torch.isfinite(torch.nn.utils.get_total_norm(grads)))
