"""``transformers.Trainer`` integration.

:class:`AdvTrainer` is a drop-in ``Trainer`` whose ``training_step`` hands each batch to a
training *method* (plain fine-tuning, or an adversary × objective composition).  The method
calls the ``backward`` it is given — ``accelerator.backward`` with the gradient-accumulation
scale applied — once per pass, so mixed precision, DeepSpeed, DDP and accumulation behave as in
the stock ``Trainer``.  With ``method=None`` it is exactly the stock ``Trainer``.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from transformers import Trainer


class TrainingMethod(Protocol):
    """One optimisation step's worth of forward/backward passes on a batch.

    ``step`` must call ``backward(loss)`` for every loss whose gradient it wants accumulated
    into the parameters and return the (detached) loss to log.  It must not call the
    optimiser: the Trainer steps it afterwards.
    """

    def step(self, model: torch.nn.Module, inputs: dict[str, Any], backward) -> torch.Tensor: ...


class AdvTrainer(Trainer):
    """``Trainer`` that runs ``method.step`` inside ``training_step``."""

    def __init__(self, *args: Any, method: TrainingMethod | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.method = method

    def create_optimizer(self):
        """The stock optimiser, with the objective's own-rate parameters (RAR's reconstructor
        with ``lr`` set) moved into groups of their own before the scheduler is built, so they
        follow the same warm-up and decay from their own peak rate."""
        created = self.optimizer is None
        optimizer = super().create_optimizer()
        objective = getattr(self.method, "objective", None)
        if created and objective is not None:
            split_learning_rates(optimizer, objective.learning_rates())
        return optimizer

    def get_train_dataloader(self):
        loader = super().get_train_dataloader()
        replays = getattr(self.method, "replays", 1)
        return ReplayLoader(loader, replays) if replays > 1 else loader

    def _set_signature_columns_if_needed(self) -> None:
        # Keep ``example_index`` (CARL's memory-bank rows) when unused columns are removed.
        super()._set_signature_columns_if_needed()
        if "example_index" not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, "example_index"]

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = {key: value for key, value in inputs.items() if key != "example_index"}
        return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)

    def compute_loss(self, model, inputs, *args: Any, **kwargs: Any):
        inputs = {key: value for key, value in inputs.items() if key != "example_index"}
        return super().compute_loss(model, inputs, *args, **kwargs)

    def training_step(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        num_items_in_batch: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.method is None:
            return super().training_step(model, inputs, num_items_in_batch)
        model.train()
        inputs = self._prepare_inputs(inputs)
        # Each micro-batch's loss is a mean over its examples; dividing by the number of
        # accumulation steps makes the accumulated gradient the mean over the full batch.
        scale = 1.0 / self.current_gradient_accumulation_steps

        def backward(loss: torch.Tensor, **kwargs: Any) -> None:
            self.accelerator.backward(loss * scale, **kwargs)

        with self.compute_loss_context_manager():
            loss = self.method.step(model, inputs, backward)
        return loss.detach() * scale


def split_learning_rates(optimizer: torch.optim.Optimizer,
                         special: list[tuple[list[torch.nn.Parameter], float]]) -> None:
    """Move each ``(params, lr)`` of ``special`` out of the optimiser's groups into new groups at
    ``lr``, one per original group so each keeps its weight decay.  Call before any step."""
    for params, lr in special:
        wanted = {id(p) for p in params}
        for group in list(optimizer.param_groups):
            moved = [p for p in group["params"] if id(p) in wanted]
            if not moved or group["lr"] == lr and len(moved) == len(group["params"]):
                continue
            group["params"] = [p for p in group["params"] if id(p) not in wanted]
            optimizer.add_param_group({**{k: v for k, v in group.items() if k != "params"},
                                       "params": moved, "lr": lr})
        optimizer.param_groups[:] = [g for g in optimizer.param_groups if g["params"]]


class ReplayLoader:
    """Yield every batch of ``loader`` ``replays`` times in a row (FreeAT's minibatch replay).

    The Trainer steps the optimiser after each yielded batch, so each replay gets its own
    parameter update, and an epoch counts ``replays × len(loader)`` steps.
    """

    def __init__(self, loader, replays: int) -> None:
        self.loader = loader
        self.replays = replays

    def __len__(self) -> int:
        return len(self.loader) * self.replays

    def __iter__(self):
        for batch in self.loader:
            for _ in range(self.replays):
                yield batch

    def __getattr__(self, name: str):
        return getattr(self.loader, name)
