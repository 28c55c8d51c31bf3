"""Tensor math for perturbations δ on word-embedding outputs.

All tensors have shape ``(batch, length, hidden)``; ``mask`` has shape ``(batch, length, 1)``
and is 1 on real tokens and 0 on padding, so δ is always zero on padding.

Norm conventions (documented choice, following FreeLB's official code and Miyato et al.):

* ``l2`` with ``scope="example"``: one norm per example over all its real tokens and hidden
  units, ``‖δ_i‖ = sqrt(Σ_{t,h} δ_{i,t,h}²)``.  FGM's ``δ = ε·g/‖g‖`` therefore has norm exactly
  ε per example.
* ``l2`` with ``scope="token"``: one norm per token.
* ``linf``: elementwise; the direction is ``sign(g)`` and projection clamps to ``[-ε, ε]``
  (SMART's step is ``g/‖g‖∞`` per token instead, :func:`max_normalized`).
"""

from __future__ import annotations

import torch

NORMS = ("l2", "linf")
SCOPES = ("example", "token")
_TINY = 1e-12


def token_mask(attention_mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(batch, length, 1)`` mask of real tokens from an attention mask."""
    return attention_mask.to(dtype).unsqueeze(-1)


def check_norm(norm: str) -> str:
    if norm not in NORMS:
        from advembed.errors import AdvembedError

        raise AdvembedError(f"unknown norm '{norm}'; choose one of {', '.join(NORMS)}")
    return norm


def l2_norm(x: torch.Tensor, mask: torch.Tensor, scope: str = "example") -> torch.Tensor:
    """L2 norm of ``x`` on real tokens, broadcastable against ``x``; summed in float32 and
    returned in ``x``'s dtype (squares of half-precision gradients underflow, and their sums
    overflow)."""
    squared = (x.float() * mask.float()).pow(2)
    if scope == "example":
        return squared.sum(dim=(1, 2), keepdim=True).sqrt().to(x.dtype)
    return squared.sum(dim=-1, keepdim=True).sqrt().to(x.dtype)


def direction(
    grad: torch.Tensor, mask: torch.Tensor, norm: str = "l2", scope: str = "example"
) -> torch.Tensor:
    """Unit ascent direction: ``g/‖g‖`` (L2) or ``sign(g)`` (L∞), zero on padding."""
    grad = grad * mask
    if norm == "linf":
        return grad.sign()
    size = l2_norm(grad.float(), mask, scope).clamp_min(_TINY)
    return (grad.float() / size).to(grad.dtype)


def max_normalized(grad: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``g/‖g‖∞`` per token (SMART's Algorithm 1 and mt-dnn's ``adv_p_norm='inf'``): each
    token's largest coordinate becomes ±1 and the others keep their proportions — an L∞-unit
    step that, unlike ``sign(g)``, does not inflate the small coordinates; zero on padding."""
    grad = grad * mask
    return grad / grad.abs().amax(-1, keepdim=True).clamp_min(_TINY)


def project(
    delta: torch.Tensor,
    mask: torch.Tensor,
    epsilon: float,
    norm: str = "l2",
    scope: str = "example",
) -> torch.Tensor:
    """Project δ onto the ε-ball (no-op when ``epsilon <= 0``, i.e. unbounded)."""
    delta = delta * mask
    if epsilon <= 0:
        return delta
    if norm == "linf":
        return delta.clamp(-epsilon, epsilon)
    size = l2_norm(delta, mask, scope)
    factor = torch.where(size > epsilon, epsilon / size.clamp_min(_TINY), torch.ones_like(size))
    return delta * factor


def random_init(
    like: torch.Tensor,
    mask: torch.Tensor,
    magnitude: float,
    norm: str = "l2",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random start δ₀, zero on padding.

    L2 (FreeLB's official initialisation): ``U(-1, 1)`` on real tokens, scaled per example by
    ``magnitude / sqrt(length · hidden)`` where ``length`` counts the example's real tokens.
    L∞: ``U(-magnitude, magnitude)`` elementwise.
    """
    noise = torch.rand(like.shape, generator=generator, device=like.device, dtype=like.dtype)
    noise = (noise * 2 - 1) * mask
    if magnitude <= 0:
        return torch.zeros_like(like)
    if norm == "linf":
        return noise * magnitude
    lengths = mask.float().sum(dim=(1, 2), keepdim=True).clamp_min(1)  # L·d overflows fp16
    return noise * (magnitude / (lengths * like.shape[-1]).sqrt()).to(like.dtype)
