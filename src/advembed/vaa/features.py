"""What frozen model A tells model B about an example: its vulnerability vector (paper 002 §3).

With E the example's word embeddings, one FGSM step against A's *predicted* label y_pred
(eq. 4–5; the gold label is never used, so the same features exist at test time) — A's argmax,
or, where A decides by a threshold on P(class 1) (QA matching's dev threshold, ``threshold``),
the label that threshold gives, so that y_pred is the prediction A's run reports:

* L2 (eq. 5): ``Ẽ = E + ε · g / ‖g‖₂`` with g = ∇_E J(θ_A, E, y_pred), one norm per example over
  its real tokens and hidden units;
* L∞ (eq. 4): ``Ẽ = E + ε · sign(g)``.

``V1 = A⁻(E)`` and ``V2 = A⁻(Ẽ)`` are the outputs of A⁻, A without its final classifier
(``source="hidden"``, the paper's: vectors in ``R^h``, what A's classification head — its
``classifier`` or ``score`` module — reads: BERT's pooled output, the first token's state for a
RoBERTa-style head (whose module holds its dense + tanh layer too), the last real token's state
for a decoder's ``score`` head, and for ESIM the output of its tanh hidden layer, the input of
its final linear layer (``h`` wide: the cut is wherever the model's own ``classifier`` module
begins; the paper's "final MLP classifier" of ESIM also holds that hidden layer, so its V
would be the ``8h``-wide pooled composition — a documented departure, one layer later)),
``ΔV = V1 − V2`` and ``V3 = [V1; V2; ΔV]`` (eq. 6–7).  ``source="logits"`` takes
A's class logits instead (``R^num_labels``): the form every VAA result before session 40 was
measured with (``docs/results-vaa.md``), kept so those runs load and reproduce.  Padding is
never perturbed.

Cost: two forwards of A and one backward to the embeddings (the clean forward gives both V1
and the loss whose gradient is g).  A's parameters get no gradient.  When E itself carries a
gradient (an embedding attack on the whole two-stage model), V1 and V2 stay differentiable in
E; the FGSM direction is treated as a constant there (no second-order terms), a documented
choice that keeps the attacker's gradient one backward pass.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import torch

from advembed.errors import AdvembedError
from advembed.perturbation import check_norm, direction, token_mask

SOURCES = ("hidden", "logits")


def predicted_labels(logits: torch.Tensor, threshold: float | None = None) -> torch.Tensor:
    """A's prediction: argmax, or P(class 1) ≥ ``threshold`` for a two-class decision."""
    if threshold is None:
        return logits.argmax(-1)
    if logits.shape[-1] != 2:
        raise AdvembedError(f"a decision threshold needs 2 classes, not {logits.shape[-1]}")
    return (logits.float().softmax(-1)[..., 1] >= threshold).long()


def classifier_head(model: torch.nn.Module) -> torch.nn.Module:
    """The final classifier of a sequence classifier (``classifier`` or ``score``)."""
    for name in ("classifier", "score"):
        head = getattr(model, name, None)
        if isinstance(head, torch.nn.Module):
            return head
    raise AdvembedError(f"VAA's A⁻ needs the classifier head of {type(model).__name__} "
                        "(an attribute 'classifier' or 'score'); use --vaa-features logits")


def head_width(model: torch.nn.Module) -> int:
    """``h``: the width of what the classifier head reads (its first linear layer's input)."""
    head = classifier_head(model)
    linear = next((m for m in head.modules() if isinstance(m, torch.nn.Linear)), None)
    if linear is None:
        raise AdvembedError(f"the classifier head of {type(model).__name__} has no linear "
                            "layer; use --vaa-features logits")
    return linear.in_features


@contextmanager
def _head_input(model: torch.nn.Module, into: list):
    """Record what the classifier head reads on each forward: where it is handed every
    position, the one it classifies from — the first token for a RoBERTa-style ``classifier``,
    the last for a decoder's ``score`` head (the last real token: such models are padded on
    the left, :func:`advembed.models.pad_where_the_head_reads`)."""
    position = -1 if getattr(model, "score", None) is classifier_head(model) else 0

    def hook(_module, args):
        features = args[0]
        into.append(features[:, position] if features.dim() == 3 else features)

    handle = classifier_head(model).register_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _a_minus(model_a, x, model_inputs, source: str):
    """``(A's logits, V)`` of one forward of A on embeddings ``x``."""
    if source == "logits":
        logits = model_a(inputs_embeds=x, **model_inputs).logits
        return logits, logits
    seen: list[torch.Tensor] = []
    with _head_input(model_a, seen):
        logits = model_a(inputs_embeds=x, **model_inputs).logits
    return logits, seen[-1]


def vulnerability_features(
    model_a: torch.nn.Module,
    embeds: torch.Tensor,
    model_inputs: dict[str, Any],
    *,
    norm: str = "l2",
    epsilon: float = 0.02,
    source: str = "hidden",
    threshold: float | None = None,
) -> torch.Tensor:
    """``V3 = [V1; V2; V1 − V2]``, shape ``(batch, 3 · h)`` (``source="hidden"``) or ``(batch,
    3 · num_labels)`` (``"logits"``), of A on ``embeds``.

    ``model_inputs`` holds what A takes beside the embeddings (``attention_mask``,
    ``token_type_ids``); A runs in whatever mode it is in (VAA keeps it in eval mode).
    ``threshold`` (two classes only): y_pred = 1 where A's P(class 1) ≥ it, else A's argmax.
    """
    check_norm(norm)
    if source not in SOURCES:
        raise AdvembedError(f"unknown VAA feature source '{source}'; choose one of "
                            f"{', '.join(SOURCES)}")
    attention = model_inputs.get("attention_mask")
    if attention is None:
        attention = torch.ones(embeds.shape[:2], device=embeds.device)
    mask = token_mask(attention, embeds.dtype)
    outer = embeds.requires_grad
    x = embeds if outer else embeds.detach().requires_grad_(True)
    with torch.enable_grad():
        logits, v1 = _a_minus(model_a, x, model_inputs, source)
        predicted = predicted_labels(logits.detach(), threshold)
        loss = torch.nn.functional.cross_entropy(logits.float(), predicted, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x, retain_graph=outer)
    step = epsilon * direction(grad.detach(), mask, norm, "example")
    with torch.set_grad_enabled(outer and torch.is_grad_enabled()):
        _, v2 = _a_minus(model_a, x + step, model_inputs, source)
    if not outer:
        v1 = v1.detach()
    return torch.cat([v1, v2, v1 - v2], dim=-1)
