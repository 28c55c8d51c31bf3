"""What frozen model A tells model B about an example: its vulnerability vector (paper 002 §3).

With E the example's word embeddings, one FGSM step against A's *predicted* label y_pred
(eq. 4–5; the gold label is never used, so the same features exist at test time):

* L2 (eq. 5): ``Ẽ = E + ε · g / ‖g‖₂`` with g = ∇_E J(θ_A, E, y_pred), one norm per example over
  its real tokens and hidden units;
* L∞ (eq. 4): ``Ẽ = E + ε · sign(g)``.

``V1 = A(E)`` and ``V2 = A(Ẽ)`` are A's clean and adversarial logits, ``ΔV = V1 − V2``, and
``V3 = [V1; V2; ΔV]`` (eq. 6–7).  Padding is never perturbed.

**A deviation, not yet mended:** the paper takes V1 and V2 from A⁻, A without its final MLP
classifier, so they live in ``R^h`` (its "logit" is that hidden vector; the authors' code
projects ``3·hidden_size``); here they are A's class logits, ``R^num_labels`` — a narrower
signal.  Every VAA result in ``docs/results-vaa.md`` was measured with this form.

Cost: two forwards of A and one backward to the embeddings (the clean forward gives both V1
and the loss whose gradient is g).  A's parameters get no gradient.  When E itself carries a
gradient (an embedding attack on the whole two-stage model), V1 and V2 stay differentiable in
E; the FGSM direction is treated as a constant there (no second-order terms), a documented
choice that keeps the attacker's gradient one backward pass.
"""

from __future__ import annotations

from typing import Any

import torch

from advembed.perturbation import check_norm, direction, token_mask


def vulnerability_features(
    model_a: torch.nn.Module,
    embeds: torch.Tensor,
    model_inputs: dict[str, Any],
    *,
    norm: str = "l2",
    epsilon: float = 0.02,
) -> torch.Tensor:
    """``V3 = [V1; V2; V1 − V2]``, shape ``(batch, 3 · num_labels)``, of A on ``embeds``.

    ``model_inputs`` holds what A takes beside the embeddings (``attention_mask``,
    ``token_type_ids``); A runs in whatever mode it is in (VAA keeps it in eval mode).
    """
    check_norm(norm)
    attention = model_inputs.get("attention_mask")
    if attention is None:
        attention = torch.ones(embeds.shape[:2], device=embeds.device)
    mask = token_mask(attention, embeds.dtype)
    outer = embeds.requires_grad
    x = embeds if outer else embeds.detach().requires_grad_(True)
    with torch.enable_grad():
        v1 = model_a(inputs_embeds=x, **model_inputs).logits
        predicted = v1.detach().argmax(-1)
        loss = torch.nn.functional.cross_entropy(v1.float(), predicted, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x, retain_graph=outer)
    step = epsilon * direction(grad.detach(), mask, norm, "example")
    with torch.set_grad_enabled(outer and torch.is_grad_enabled()):
        v2 = model_a(inputs_embeds=x + step, **model_inputs).logits
    if not outer:
        v1 = v1.detach()
    return torch.cat([v1, v2, v1 - v2], dim=-1)
