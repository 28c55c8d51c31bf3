"""Divergences shared by methods and objectives."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kl_divergence(logits_p: torch.Tensor, logits_q: torch.Tensor,
                  positions: torch.Tensor | None = None) -> torch.Tensor:
    """``KL(p‖q)`` of the softmax distributions, summed over classes, mean over the batch — or
    over ``positions`` (a boolean mask of the leading dimensions: a token-level model's target
    positions, padding excluded)."""
    log_p = F.log_softmax(logits_p.float(), dim=-1)
    log_q = F.log_softmax(logits_q.float(), dim=-1)
    divergence = (log_p.exp() * (log_p - log_q)).sum(-1)
    return divergence.mean() if positions is None else divergence[positions].mean()


def symmetric_kl(logits_p: torch.Tensor, logits_q: torch.Tensor,
                 positions: torch.Tensor | None = None) -> torch.Tensor:
    """``KL(p‖q) + KL(q‖p)``, each as :func:`kl_divergence`."""
    return kl_divergence(logits_p, logits_q, positions) + kl_divergence(logits_q, logits_p,
                                                                        positions)


def target_positions(inputs: dict, logits: torch.Tensor) -> torch.Tensor | None:
    """Where a token-level model's per-position predictions count: the positions whose label
    is not ``-100`` (translation's padded targets), when ``logits`` has one prediction per
    label position; ``None`` (every row counts) for a classifier.  A language-model block has
    no padding, so all its positions count."""
    labels = inputs.get("labels")
    if labels is None or logits.dim() != 3 or labels.shape != logits.shape[:2]:
        return None
    return labels.to(logits.device) != -100
