"""``transformers.Trainer`` integration.

:class:`AdvTrainer` is a drop-in ``Trainer`` whose ``training_step`` hands each batch to a
training *method* (plain fine-tuning, or an adversary × objective composition).  The method
calls the ``backward`` it is given — ``accelerator.backward`` with the gradient-accumulation
scale applied (and, under DeepSpeed, ``scale_wrt_gas=False``, as the stock ``Trainer`` passes)
— once per pass, so mixed precision, DeepSpeed, DDP and accumulation behave as in the stock
``Trainer`` (DeepSpeed untested here: not installed, and the CLI does not turn it on).
With ``method=None`` it is exactly the stock ``Trainer``.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from transformers import Trainer

from advembed.errors import AdvembedError
from advembed.methods.base import TrainingMethod, plain_step
from advembed.training.callbacks import EpochRandomState
from advembed.training.checkpoints import CheckpointMixin
from advembed.training.guard import NonFiniteGuard
from advembed.training.replay import ReplayLoader


class AdvTrainer(CheckpointMixin, Trainer):
    """``Trainer`` that runs ``method.step`` inside ``training_step``.

    ``task`` (optional, :mod:`advembed.tasks`) says how the loss is normalised under gradient
    accumulation: a sequence-level loss (a mean over examples) is divided by the number of
    accumulation steps, as the stock ``Trainer`` does for classifiers; a token-level loss (a
    mean over target tokens, ``task.token_level``) is weighted by the micro-batch's share of the
    target tokens of the whole accumulated batch (``num_items_in_batch``, counted by
    ``task.count_items`` and summed across processes), so that the accumulated gradient is that
    of one batch of all the tokens.

    A step whose loss or gradient is not finite is skipped (``guard``,
    :mod:`advembed.training.guard`); checkpoints are pickle-free and resume exactly
    (:mod:`advembed.training.checkpoints`).
    """

    def __init__(self, *args: Any, method: TrainingMethod | None = None, task=None,
                 guard: NonFiniteGuard | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.method = method
        if method is not None:  # warm-ups count optimiser steps, not micro-batches
            if getattr(method, "replays", 1) > 1 and self.args.gradient_accumulation_steps > 1:
                raise AdvembedError(f"method {method.name} steps the optimiser after every "
                                    "replay: it does not combine with gradient accumulation")
            method.micro_steps = self.args.gradient_accumulation_steps
            if self.args.n_gpu > 1:  # Trainer would wrap the model in nn.DataParallel
                raise AdvembedError(f"AdvTrainer sees {self.args.n_gpu} GPUs in one process "
                                    "(nn.DataParallel, whose loss is a vector per GPU): run "
                                    "one process per GPU with torchrun or accelerate launch")
            self._refuse_custom_loss()
            warn_half_precision(method, self.args)
        self.task = task
        if self._classifies(self.model):
            # A model whose forward takes **kwargs is handed num_items_in_batch by the stock
            # step, which then skips dividing the loss by the accumulation steps; a classifier
            # (ESIM's forward, Llama's, Qwen's, ModernBERT's) ignores the count and still
            # returns a batch mean: N micro-batches would sum to N times the gradient.  (A
            # language model uses the count: left as the stock Trainer sets it.)
            self.model_accepts_loss_kwargs = False
        self.guard = guard if guard is not None else NonFiniteGuard()
        self.epoch_random = EpochRandomState()
        self.add_callback(self.epoch_random)

    def _refuse_custom_loss(self) -> None:
        """A method trains on the model's own loss (``outputs.loss``) in every pass, so a
        ``compute_loss`` override, ``compute_loss_func`` or label smoothing would shape the
        evaluation loss only: refused rather than silently ignored in training."""
        custom = None
        if type(self).compute_loss is not AdvTrainer.compute_loss:
            custom = "a compute_loss override"
        elif getattr(self, "compute_loss_func", None) is not None:
            custom = "compute_loss_func"
        elif getattr(self, "label_smoother", None) is not None:
            custom = "label_smoothing_factor"
        if custom is not None:
            raise AdvembedError(f"AdvTrainer with a method trains on the model's own loss "
                                f"(outputs.loss) in every pass: {custom} would change only "
                                "the evaluation loss; put the loss in the model's forward")

    def _classifies(self, model) -> bool:
        """A classification run: its task says so, or without a task the model is (a subclass
        of) a sequence classifier (a mean over examples, whatever its forward accepts)."""
        if self.task is not None:
            return not self._token_level
        inner = getattr(model, "module", model)
        return any(cls.__name__.endswith("ForSequenceClassification")
                   for cls in type(inner).__mro__)

    @property
    def _token_level(self) -> bool:
        return bool(getattr(self.task, "token_level", False))

    def create_optimizer(self):
        """The stock optimiser, with the objective's own-rate parameters (RAR's reconstructor
        with ``lr`` set) moved into groups of their own before the scheduler is built, so they
        follow the same warm-up and decay from their own peak rate."""
        created = self.optimizer is None
        optimizer = super().create_optimizer()
        objective = getattr(self.method, "objective", None)
        if created and objective is not None:
            split_learning_rates(optimizer, objective.learning_rates())
        if created:  # before the scheduler, which wraps the (guarded) step to count it
            self.guard.wrap(optimizer)
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
        """The stock step; a task that scores generated text (translation: ``task.generate``)
        gets its own decodes as the predictions, beside each example's target-token NLL sum
        and count (``task.target_nll_and_count``), from which its metrics give the loss
        weighted by target tokens — the stock loop would average batch means by sentences."""
        inputs = strip_bookkeeping(inputs)
        generate = getattr(self.task, "generate", None)
        if generate is None or prediction_loss_only:
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            logits = model(**inputs).logits
        stats = self.task.target_nll_and_count(logits, inputs["labels"])
        return None, (generate(model, inputs), stats), inputs.get("labels")

    def compute_loss(self, model, inputs, *args: Any, **kwargs: Any):
        return super().compute_loss(model, strip_bookkeeping(inputs), *args, **kwargs)

    def training_step(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        num_items_in_batch: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.method is None and not self._token_level:
            loss = super().training_step(model, inputs, num_items_in_batch)
            self.guard.note(loss, self.state.global_step)
            return loss
        model.train()
        if callable(getattr(self.optimizer, "train", None)):
            self.optimizer.train()  # schedule-free optimisers, as the stock step does
        inputs = self._prepare_inputs(inputs)
        scale = self._loss_scale(inputs, num_items_in_batch)

        fixed = self._backward_options()

        def backward(loss: torch.Tensor, **kwargs: Any) -> None:
            self.accelerator.backward(loss * scale, **(fixed | kwargs))

        with self.compute_loss_context_manager():
            if self.method is None:
                loss = plain_step(model, strip_bookkeeping(inputs), backward)
            else:
                scaler = getattr(self.accelerator, "scaler", None)  # fp16's GradScaler
                self.method.inner_loss_scale = (float(scaler.get_scale()) if scaler is not None
                                                and scaler.is_enabled() else 1.0)
                self.method.optimizer_step = self.state.global_step
                loss = self.method.step(model, inputs, backward)
        if self.accelerator.sync_gradients:  # the accumulated batch is complete
            average_local_gradients(getattr(self.method, "objective", None))
        self.guard.note(loss, self.state.global_step)
        return loss.detach() * scale


    def _backward_options(self) -> dict[str, Any]:
        """Under DeepSpeed the engine divides each loss by the accumulation steps unless told
        not to; the loss is scaled here already (``_loss_scale``), so it is told, as the stock
        ``Trainer`` tells it for the same reason (transformers PR 35808)."""
        from accelerate.utils import DistributedType

        if self.accelerator.distributed_type == DistributedType.DEEPSPEED:
            return {"scale_wrt_gas": False}
        return {}

    def _loss_scale(self, inputs: dict[str, Any], num_items_in_batch) -> float | torch.Tensor:
        """What turns this micro-batch's mean loss into its part of the batch's loss."""
        if not self._token_level or num_items_in_batch is None:
            # A mean over examples: dividing by the accumulation steps makes the accumulated
            # gradient the mean over the full batch (for micro-batches of equal size; an
            # epoch's short last micro-batch weighs each of its examples more, as the stock
            # Trainer's classification loss does).
            return 1.0 / self.current_gradient_accumulation_steps
        share = self.task.count_items(inputs) / num_items_in_batch
        if self.args.average_tokens_across_devices:  # DDP then averages over the processes
            share = share * self.accelerator.num_processes
        return share

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device):
        """Target tokens of the accumulated batch, as the task counts them (token-level
        tasks only; summed across processes as the stock ``Trainer`` does)."""
        if not self._token_level or not batch_samples:
            return super()._get_num_items_in_batch(batch_samples, device)
        count = sum(torch.as_tensor(self.task.count_items(batch)) for batch in batch_samples)
        count = torch.as_tensor(count, device=device)
        if self.args.average_tokens_across_devices:
            count = self.accelerator.gather(count).sum()
        return count


def average_local_gradients(objective) -> None:
    """Average, across processes, the gradients of parameters DDP does not manage (RAR's
    reconstructor), as DDP does for the others — before clipping and the optimiser step."""
    from advembed.distributed import world_size

    if objective is None or world_size() == 1:
        return
    import torch.distributed as dist

    for parameter in objective.local_parameters():
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)
            parameter.grad /= world_size()


def strip_bookkeeping(inputs: dict[str, Any]) -> dict[str, Any]:
    """The batch without ``example_index`` (CARL's memory-bank rows), which no model takes."""
    return {key: value for key, value in inputs.items() if key != "example_index"}


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


def warn_half_precision(method: TrainingMethod, args: Any) -> None:
    """Warn where ``method`` cannot work in the half precision ``args`` asks for (SMART: its
    ``half_precision_note``)."""
    note = getattr(method, "half_precision_note", None)
    if note and (getattr(args, "fp16", False) or getattr(args, "bf16", False)):
        warnings.warn(note, stacklevel=3)
