"""Decoder-only sequence classifiers (GPT-2, Llama, Qwen, Mistral, …): how to tell one, and
the forward pre-hook that numbers a left-padded row's positions from its first real token."""

from __future__ import annotations

from typing import Any

import torch


def reads_last_token(model: Any) -> bool:
    """A decoder-only sequence classifier (GPT-2, Llama, Qwen, Mistral, …): its ``score`` head
    is applied at every position and the logits taken at the last non-padding token."""
    return (isinstance(getattr(model, "score", None), torch.nn.Linear)
            and not hasattr(model, "classifier")
            and not getattr(model.config, "is_encoder_decoder", False))


def positions_from_mask(_module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """``position_ids`` from ``attention_mask`` (0 at each row's first real token), so that a
    left-padded sentence gets the positions it has alone: its scores do not depend on the
    batch it is padded in."""
    mask = kwargs.get("attention_mask")
    if mask is not None and kwargs.get("position_ids") is None:
        kwargs["position_ids"] = (mask.long().cumsum(-1) - 1).clamp(min=0)
    return args, kwargs
