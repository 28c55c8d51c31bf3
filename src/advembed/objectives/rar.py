"""RAR (paper 001 §3.3, eq. 7): reconstruct the original tokens from the adversarial token
states, through a small head whose output layer is the input embedding matrix itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from advembed.errors import AdvembedError
from advembed.objectives.base import (
    BuildContext,
    Objective,
    ObjectiveContext,
    input_token_states,
)
from advembed.settings import Settings, setting

RECONSTRUCTOR_NAME = "advembed_reconstructor"


@dataclass(frozen=True)
class RARSettings(Settings):
    """w_r from paper 001 §4.3; the reconstructor's own rate is our measured choice (below)."""

    owner = "objective 'rar'"
    weight: float = setting(0.1, "--rar-weight", "RAR: weight w_r of L_R", minimum=0,
                            paper="paper 001 eq. 7")
    head: str = setting(
        "listed", "--rar-head", "RAR: the reconstructor's layers: 'listed' LayerNorm(hidden) → "
        "GeLU → Linear → tied output, the order §3.3 lists; 'mlm' Linear(hidden → embedding) → "
        "GeLU → LayerNorm(embedding) → tied output, ALBERT's MLM head, whose parameters the "
        "paper's Table 7 counts (it collapses FreeLB+RAR on MiniLM: README)",
        choices=("listed", "mlm"), paper="paper 001 §3.3 and Table 7", legacy="listed")
    lr: float | None = setting(1e-3, "--rar-lr", "RAR: peak learning rate of the "
                               "reconstructor's own parameters (give --lr's value for the "
                               "paper's single rate)", minimum=0, exclusive_minimum=True,
                               paper="measured: docs/rar-samples-cr.md")


class Reconstructor(torch.nn.Module):
    """Paper 001 §3.3's head: a LayerNorm, a GeLU and two feed-forward layers, the first
    hidden → embedding size, the second the input embedding matrix itself (tied).

    The prose lists the parts, not their order; the paper's Table 7 fixes it: RAR has 128,688
    parameters more than FreeLB on ALBERT-base (hidden 768, embedding 128, vocabulary
    30,000), exactly ALBERT's MLM head — Linear(768 → 128) 98,432, LayerNorm(128) 256, output
    bias 30,000 — whose order is Linear → GeLU → LayerNorm(embedding) → tied output (BERT's
    MLM head too).  A LayerNorm over the hidden size first would make 129,968.  ``order``:
    ``"mlm"`` (that head) or ``"listed"`` (LayerNorm(hidden) → GeLU → Linear → tied output,
    the prose's order).  ``"listed"`` is the default on
    measurement: on MiniLM, whose embeddings were never trained under an MLM head, the
    ``"mlm"`` head's LayerNorm hands the tied embedding matrix unit-variance vectors from the
    first step, and FreeLB+RAR on ``cr`` collapsed to the majority class after one epoch at
    ``--rar-lr`` 1e-3 and 2e-5 alike (README, *Objectives*).

    The last layer's weight is the model's input embedding matrix itself (fetched through
    ``get_input_embeddings()`` at call time, so it is the same storage and gets the gradient);
    only its bias belongs to the reconstructor.
    """

    def __init__(self, hidden_size: int, embedding_size: int, vocab_size: int,
                 order: str = "listed") -> None:
        super().__init__()
        if order not in ("mlm", "listed"):
            raise ValueError(f"unknown reconstructor order {order!r}")
        self.order = order
        self.norm = torch.nn.LayerNorm(embedding_size if order == "mlm" else hidden_size)
        self.dense = torch.nn.Linear(hidden_size, embedding_size)
        self.bias = torch.nn.Parameter(torch.zeros(vocab_size))

    def forward(self, states: torch.Tensor, embedding_weight: torch.Tensor) -> torch.Tensor:
        if self.order == "mlm":
            hidden = self.norm(F.gelu(self.dense(states)))
        else:
            hidden = self.dense(F.gelu(self.norm(states)))
        return F.linear(hidden, embedding_weight, self.bias)


def recorded_head(config: dict[str, Any]) -> str:
    """The reconstructor order a run trained with (``config.json``); runs from before
    ``--rar-head`` existed trained the listed order."""
    declared = {item.name: item for item in RARSettings.declared()}["head"]
    return declared.meta.recorded(config.get("objective_settings") or {}, "head",
                                  declared.default)


def real_token_mask(inputs: dict[str, Any], special_ids: set[int]) -> torch.Tensor:
    """Boolean ``(B, L)``: real (attended) tokens that are not special tokens."""
    ids = inputs["input_ids"]
    mask = inputs.get("attention_mask", torch.ones_like(ids)).bool()
    if special_ids:
        special = torch.tensor(sorted(special_ids), device=ids.device)
        mask = mask & ~torch.isin(ids, special)
    return mask


class RAR(Objective):
    """``w_r · L_R`` from the first step.

    ``L_R`` is the cross-entropy of the reconstructor's prediction from the adversarial final
    token states against the original token ids, on real positions only (no padding, no
    special tokens).  The reconstructor is registered on the model as ``advembed_reconstructor``
    so any optimiser built from ``model.parameters()`` trains it, and it is saved with the
    model (``advembed reconstruct`` uses it).

    ``lr`` (default 1e-3) is the learning rate of the reconstructor's own parameters (LayerNorm,
    the hidden → embedding layer, the output bias); the tied output weight is the embedding
    matrix and trains at the model's rate.  ``lr=None`` trains everything at the model's rate,
    as the paper does (one Adam learning rate, §4.3).  We depart from the paper here on
    measurement: its encoder is ALBERT, whose final states were pre-trained to predict tokens;
    on our sentence-embedding encoder a freshly initialised reconstructor at the fine-tuning
    rate (2e-5) learned little beyond frequent tokens (92.7 % of dev tokens decoded wrong after
    PGD on cr), while at 1e-3 it decodes readable text (21.4 %) at the same test accuracy
    (``docs/rar-samples-cr.md``).

    ``L_R`` is a mean over the real tokens of each micro-batch (of each process under DDP); the
    paper does not say how it is averaged.  With gradient accumulation or several processes
    the micro-batches' means are then weighted as the task weights its own loss (equally for
    classification; by each micro-batch's share of target tokens for the token-level tasks),
    so, unlike those losses, ``L_R`` is not exactly the mean over every token of the full
    batch when micro-batches hold different numbers of tokens.
    """

    name = "rar"
    Settings = RARSettings
    paper = "paper 001 §3.3 (eq. 7)"
    summary = ("`w_r · L_R`: reconstruct the original tokens from the adversarial token states "
               "through LayerNorm → GeLU → Linear(hidden → embedding) → the input embedding "
               "matrix itself (tied) + bias (`--rar-head mlm`: ALBERT's MLM head order); real, "
               "non-special positions only")

    def __init__(self, model: torch.nn.Module, special_ids: set[int], *,
                 settings: RARSettings | None = None, **options) -> None:
        self.settings = RARSettings.from_options(options, settings)
        self.special_ids = set(special_ids)
        self.attach(model)

    @classmethod
    def build(cls, settings: RARSettings, context: BuildContext) -> RAR:
        if context.tokenizer is None:
            raise AdvembedError("objective rar needs the tokenizer (its special tokens)")
        if not getattr(context.model, "has_token_states", True):
            raise AdvembedError(f"objective rar reconstructs each token from its final state; "
                                f"{type(context.model).__name__} has no state per token (its "
                                "last hidden state is pooled): use carl or atcl")
        return cls(context.model, set(context.tokenizer.all_special_ids), settings=settings)

    @property
    def weight(self) -> float:
        return self.settings.weight

    def learning_rates(self) -> list[tuple[list[torch.nn.Parameter], float]]:
        if self.settings.lr is None:
            return []
        return [(list(self.reconstructor.parameters()), self.settings.lr)]

    def attach(self, model: torch.nn.Module) -> None:
        inner = getattr(model, "module", model)
        existing = getattr(inner, RECONSTRUCTOR_NAME, None)
        if existing is not None and existing.order != self.settings.head:
            raise AdvembedError(f"the model already carries a RAR reconstructor of order "
                                f"'{existing.order}': --rar-head {self.settings.head} does not "
                                "fit it")
        if existing is None:
            embeddings = inner.get_input_embeddings()
            existing = Reconstructor(inner.config.hidden_size, embeddings.embedding_dim,
                                     embeddings.num_embeddings, self.settings.head)
            existing.to(embeddings.weight.device)
            inner.add_module(RECONSTRUCTOR_NAME, existing)
        # DDP must not manage the reconstructor: it runs outside the model's forward (DDP would
        # mark its parameters ready twice); its gradient is averaged by the trainer instead.
        ignored = set(getattr(inner, "_ddp_params_and_buffers_to_ignore", ()))
        ignored |= {f"{RECONSTRUCTOR_NAME}.{name}" for name, _ in existing.named_parameters()}
        inner._ddp_params_and_buffers_to_ignore = sorted(ignored)
        self.reconstructor = existing

    def local_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.reconstructor.parameters())

    def logits(self, model: torch.nn.Module, token_states: torch.Tensor) -> torch.Tensor:
        inner = getattr(model, "module", model)
        return self.reconstructor(token_states, inner.get_input_embeddings().weight)

    def loss(self, context: ObjectiveContext) -> torch.Tensor:
        states = input_token_states(context.adversarial)
        mask = real_token_mask(context.inputs, self.special_ids)
        if not mask.any():  # through the reconstructor all the same, on no row: its
            # gradients are zeros, not None, which the cross-process average needs (a process
            # that skipped the all-reduce would leave the others waiting)
            return self.logits(context.model, states[mask]).sum() * 0.0 + states.sum() * 0.0
        logits = self.logits(context.model, states[mask])
        return self.weight * F.cross_entropy(logits.float(), context.inputs["input_ids"][mask])
