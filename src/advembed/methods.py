"""Adversarial training methods: one optimisation step of forward/backward passes per batch.

Every method implements ``step(model, inputs, backward) -> loss``: it runs its passes, calls
``backward(loss)`` for each loss whose parameter gradient it wants accumulated and returns the
detached total loss.  It never steps the optimiser, so the same object serves three ways in:

* your own loop::

      method = advembed.build_training_method("freelb", model)
      loss = method.step(model, batch)          # instead of model(**batch).loss.backward()
      optimizer.step(); optimizer.zero_grad()

* ``advembed.AdvTrainer(..., method=method)``, a drop-in ``transformers.Trainer``;
* ``advembed train --method freelb``.

FreeAT is the exception that needs the optimiser between passes: it replays each minibatch
``replays`` times with an optimiser step after every replay.  Its ``step`` does one replay and
keeps δ between calls; the caller replays (``AdvTrainer`` does it by repeating each batch
``replays`` times in its data loader, and ``advembed train`` divides the epochs by ``replays``,
as Shafahi et al. do).

The loss is the model's own (``outputs.loss``, from ``labels`` in the batch), so regression and
multi-label heads work unchanged.  Passes are counted in ``passes`` (forward+backward pairs) for
the step-cost benchmark.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F

from advembed.adapter import EmbeddingAdapter, capture_first_block, first_block_output
from advembed.adversaries import FGM, FGSM, PGD, Adversary, gradient_at
from advembed.errors import AdvembedError
from advembed.objectives import Objective, ObjectiveContext
from advembed.perturbation import check_norm, direction, project, random_init

Backward = Callable[[torch.Tensor], None]


def _default_backward(loss: torch.Tensor, **kwargs: Any) -> None:
    loss.backward(**kwargs)


def _backward(backward: Backward, loss: torch.Tensor, *, retain: bool) -> None:
    """Call ``backward``, asking it to keep the graph only when an objective still needs it
    (so user-supplied ``backward(loss)`` callables without keyword arguments keep working)."""
    if retain:
        backward(loss, retain_graph=True)
    else:
        backward(loss)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DDP / accelerate wrappers (no gradient-sync hooks)."""
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    return model


def symmetric_kl(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """``KL(p‖q) + KL(q‖p)`` of the softmax distributions, summed over classes, batch mean."""
    log_p = F.log_softmax(logits_p.float(), dim=-1)
    log_q = F.log_softmax(logits_q.float(), dim=-1)
    kl_pq = (log_p.exp() * (log_p - log_q)).sum(-1)
    kl_qp = (log_q.exp() * (log_q - log_p)).sum(-1)
    return (kl_pq + kl_qp).mean()


class TrainingMethodBase:
    """Shared plumbing: adapter construction, warm-up counting, pass counting."""

    name = "base"

    def __init__(self, model: torch.nn.Module, objective: Objective | None = None) -> None:
        self.adapter = EmbeddingAdapter(_unwrap(model))
        self.steps_done = 0
        self.objective = objective
        self._example_index: torch.Tensor | None = None

    @property
    def passes(self) -> float:
        """Forward+backward passes per step (relative cost in the step-cost benchmark)."""
        return 1.0

    replays = 1

    def step(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        backward: Backward = _default_backward,
    ) -> torch.Tensor:
        inputs = dict(inputs)
        self._example_index = inputs.pop("example_index", None)
        try:
            return self._step(model, inputs, backward)
        finally:
            self.steps_done += 1

    def _step(self, model, inputs, backward) -> torch.Tensor:
        raise NotImplementedError

    # --- objective plumbing -----------------------------------------------------------

    @property
    def _hidden(self) -> bool:
        return self.objective is not None

    @property
    def _objective_passes(self) -> int:
        """A clean-representation objective costs one more pass through the clean graph."""
        return 1 if self._needs_clean else 0

    @property
    def _needs_clean(self) -> bool:
        return self.objective is not None and self.objective.needs_clean

    def _prologue(self, model, inputs):
        """``(adapter for backward passes, clean embeddings (no graph), perturbation mask)``."""
        outer = self._adapter_for(model)
        with torch.no_grad():
            like = self.adapter.embed(inputs)
        return outer, like, self._mask(inputs, like)

    def _mask(self, inputs: dict[str, Any], like: torch.Tensor) -> torch.Tensor:
        """Where δ may be non-zero: real tokens, narrowed by the objective (ATCL: one word)."""
        mask = self.adapter.mask(inputs, like)
        if self.objective is not None:
            mask = self.objective.perturbation_mask(inputs, mask)
        return mask

    def _clean_for_objective(self, outer, inputs):
        """A clean pass with hidden states, kept in the graph for the objective (or None)."""
        return outer.forward(inputs, output_hidden_states=True) if self._needs_clean else None

    def _adversarial_loss(self, model, outer, inputs, delta, clean, scale: float = 1.0):
        """Loss of the adversarial pass: weighted cross-entropy plus the objective's term."""
        adversarial = outer.forward(inputs, delta, output_hidden_states=self._hidden or None)
        if self.objective is None:
            return adversarial, adversarial.loss * scale
        weighted = self.objective.adversarial_weight * adversarial.loss
        return adversarial, (weighted + self._objective_term(model, inputs, adversarial,
                                                             clean)) * scale

    def _objective_term(self, model, inputs, adversarial, clean) -> torch.Tensor:
        """The objective's own loss term for this step (0 without an objective)."""
        if self.objective is None:
            return torch.zeros((), device=adversarial.logits.device)
        context = ObjectiveContext(model=model, inputs=inputs, adversarial=adversarial,
                                   clean=clean, example_index=self._example_index,
                                   step=self.steps_done)
        return self.objective.loss(context)

    def _adapter_for(self, model: torch.nn.Module) -> EmbeddingAdapter:
        """An adapter over ``model`` as given (DDP-wrapped for passes that call backward)."""
        if model is self.adapter.model:
            return self.adapter
        return _WrappedAdapter(model, self.adapter)


class _WrappedAdapter(EmbeddingAdapter):
    """Forward through a wrapper (DDP) while finding embeddings on the inner module."""

    def __init__(self, wrapped: torch.nn.Module, inner: EmbeddingAdapter) -> None:
        self.model = wrapped
        self._inner = inner

    @property
    def word_embeddings(self) -> torch.nn.Embedding:
        return self._inner.word_embeddings

    def embedding_block(self) -> torch.nn.Module:
        return self._inner.embedding_block()


class PlainTraining(TrainingMethodBase):
    """Plain fine-tuning: one forward and backward of the clean loss."""

    name = "none"

    def _step(self, model, inputs, backward):
        return _plain_step(model, inputs, backward)


def _plain_step(model, inputs, backward) -> torch.Tensor:
    loss = model(**inputs).loss
    backward(loss)
    return loss.detach()


class GradientAttackTraining(TrainingMethodBase):
    """FGSM / FGM / PGD adversarial training: ``L(x) + L(x + δ)``.

    The clean pass's backward gives both the clean parameter gradient and ``∇_δ L`` at δ = 0,
    which is the first ascent direction when the adversary starts at zero (the usual
    implementation trick; saves a pass).  Intermediate PGD steps take gradients with respect to
    δ only, on the unwrapped model, so they never touch parameter gradients or DDP hooks.  The
    final adversarial loss is back-propagated into the parameters.  ``clean_weight = 0`` trains on
    the adversarial loss alone (Madry et al.'s formulation).
    """

    def __init__(self, model, adversary: Adversary, *, clean_weight: float = 1.0,
                 warmup_steps: int = 0, objective: Objective | None = None) -> None:
        super().__init__(model, objective)
        self.adversary = adversary
        self.clean_weight = clean_weight
        self.warmup_steps = warmup_steps
        self.name = type(adversary).__name__.lower()

    @property
    def passes(self) -> float:
        extra = 1 if self.adversary.random_start > 0 or self.clean_weight == 0 else 0
        return 1 + self.adversary.ascent_steps + extra + self._objective_passes

    def _step(self, model, inputs, backward):
        if self.steps_done < self.warmup_steps:
            return _plain_step(model, inputs, backward)
        outer = self._adapter_for(model)
        inner = self.adapter
        with torch.no_grad():
            embeds = inner.embed(inputs)
        mask = self._mask(inputs, embeds)

        def loss_at(delta: torch.Tensor) -> torch.Tensor:
            return inner.forward(inputs, delta).loss

        first_grad = None
        clean = None
        total = torch.zeros((), device=embeds.device)
        if self.clean_weight > 0:
            zero_start = self.adversary.random_start <= 0
            delta0 = torch.zeros_like(embeds, requires_grad=zero_start)
            clean = outer.forward(inputs, delta0 if zero_start else None,
                                  output_hidden_states=self._needs_clean or None)
            # Keep the clean graph when the objective back-propagates through R (CARL, ATCL).
            _backward(backward, self.clean_weight * clean.loss, retain=self._needs_clean)
            total = total + self.clean_weight * clean.loss.detach()
            if zero_start and delta0.grad is not None:
                first_grad = delta0.grad.detach() * mask
        elif self._needs_clean:
            clean = self._clean_for_objective(outer, inputs)
        delta = self.adversary.find(loss_at, embeds.detach(), mask, first_grad=first_grad)
        _, loss = self._adversarial_loss(model, outer, inputs, delta, clean)
        backward(loss)
        return total + loss.detach()


class FreeLB(TrainingMethodBase):
    """FreeLB (Zhu et al. 2020): K ascent steps, parameter gradients of all K accumulated.

    Per step t: loss ``L(x + δ_{t-1}) / K`` is back-propagated (parameters and δ together), then
    ``δ_t = Π(δ_{t-1} + α·g/‖g‖)``; one optimiser step after the K steps.  δ₀ is ``U(-1, 1)`` on
    real tokens scaled by ``γ/sqrt(len·hidden)`` (``init_mag`` γ; 0 starts at zero); ε = 0 means
    unbounded (no projection), as in the official code.  ``clean_pass`` adds a back-propagated
    clean loss; ``warmup_steps`` plain steps come first (users report NaN without them).
    """

    name = "freelb"

    def __init__(self, model, *, steps: int = 3, alpha: float = 0.03, epsilon: float = 0.0,
                 init_mag: float = 0.1, norm: str = "l2", clean_pass: bool = False,
                 warmup_steps: int = 0, objective: Objective | None = None) -> None:
        super().__init__(model, objective)
        self.steps, self.alpha, self.epsilon = steps, alpha, epsilon
        self.init_mag, self.norm = init_mag, check_norm(norm)
        self.clean_pass, self.warmup_steps = clean_pass, warmup_steps

    @property
    def passes(self) -> float:
        return self.steps + (1 if self.clean_pass or self._needs_clean else 0)

    def _step(self, model, inputs, backward):
        if self.steps_done < self.warmup_steps:
            return _plain_step(model, inputs, backward)
        outer, like, mask = self._prologue(model, inputs)
        total = torch.zeros((), device=like.device)
        clean = None
        if self.clean_pass:
            clean = outer.forward(inputs, output_hidden_states=self._needs_clean or None)
            _backward(backward, clean.loss, retain=self._needs_clean)
            total = total + clean.loss.detach()
        elif self._needs_clean:
            clean = self._clean_for_objective(outer, inputs)
        delta = project(random_init(like, mask, self.init_mag, self.norm), mask, self.epsilon,
                        self.norm)
        for t in range(self.steps):
            delta.requires_grad_(True)
            last = t == self.steps - 1
            if last:  # the objective sees the final adversarial sample
                _, loss = self._adversarial_loss(model, outer, inputs, delta, clean,
                                                 1.0 / self.steps)
            else:  # fresh embedding lookup on every pass
                loss = outer.forward(inputs, delta).loss / self.steps
            backward(loss)
            total = total + loss.detach()
            if t == self.steps - 1:
                break
            grad = delta.grad.detach()
            delta = project(delta.detach() + self.alpha * direction(grad, mask, self.norm), mask,
                            self.epsilon, self.norm)
        return total


class FreeAT(TrainingMethodBase):
    """FreeAT (Shafahi et al. 2019): replay each minibatch m times, δ carried across replays.

    Each replay: loss at ``x + δ`` back-propagated once (parameters and δ together), the caller
    steps the optimiser, and ``δ ← Π(δ + ε·dir(g))`` (L∞: ``clip(δ + ε·sign(g), -ε, ε)``, the
    paper's update).  δ restarts at zero with every new minibatch (texts differ in length, so δ
    cannot carry across batches as it does for fixed-size images).
    """

    name = "freeat"

    def __init__(self, model, *, replays: int = 3, epsilon: float = 0.001, norm: str = "linf",
                 warmup_steps: int = 0, objective: Objective | None = None) -> None:
        super().__init__(model, objective)
        if replays < 1:
            raise AdvembedError(f"FreeAT needs replays >= 1, got {replays}")
        self.replays, self.epsilon, self.norm = replays, epsilon, check_norm(norm)
        self.warmup_steps = warmup_steps
        self.delta: torch.Tensor | None = None
        self.replay_index = 0

    def _step(self, model, inputs, backward):
        if self.steps_done < self.warmup_steps * self.replays:
            return _plain_step(model, inputs, backward)
        outer = self._adapter_for(model)
        with torch.no_grad():
            like = self.adapter.embed(inputs)
        mask = self.adapter.mask(inputs, like)
        if self.objective is not None:
            raise AdvembedError(
                "method freeat does not take an objective: its δ is carried across replays "
                "while the objective would pick a new perturbation mask each replay"
            )
        if self.replay_index % self.replays == 0 or self.delta is None:
            self.delta = torch.zeros_like(like)
        elif self.delta.shape != like.shape:
            raise AdvembedError(
                "FreeAT replays must see the same minibatch; got a batch of another shape "
                "(replay each batch `replays` times, or use AdvTrainer)"
            )
        self.replay_index += 1
        delta = self.delta.detach().requires_grad_(True)
        loss = outer.forward(inputs, delta).loss
        backward(loss)
        grad = delta.grad.detach()
        self.delta = project(delta.detach() + self.epsilon * direction(grad, mask, self.norm),
                             mask, self.epsilon, self.norm)
        return loss.detach()


class YOPO(TrainingMethodBase):
    """YOPO-m-n (Zhang et al. 2019): m full passes, each followed by n cheap δ updates.

    Full pass j: loss ``L(x + δ)/m`` back-propagated into the parameters (accumulated over the m
    passes, one optimiser step), and the adjoint ``p = ∂L/∂h₀`` at the output h₀ of the first
    block (the embedding block) is kept.  Inner updates, with p fixed:
    ``δ ← Π(δ + α·dir(∇_δ ⟨p, f₀(x + δ)⟩))`` — only the embedding block runs (a hook stops the
    forward right after it).  Dropout in the block stays active in the inner updates (choice:
    the same mode as the full pass).
    """

    name = "yopo"

    def __init__(self, model, *, outer_steps: int = 2, inner_steps: int = 3,
                 alpha: float = 0.1 / 3, epsilon: float = 0.1, norm: str = "l2",
                 init_mag: float = 0.0, warmup_steps: int = 0,
                 objective: Objective | None = None) -> None:
        super().__init__(model, objective)
        self.outer_steps, self.inner_steps = outer_steps, inner_steps
        self.alpha, self.epsilon, self.norm = alpha, epsilon, check_norm(norm)
        self.init_mag, self.warmup_steps = init_mag, warmup_steps
        self.adapter.embedding_block()  # fail early for models without one

    @property
    def passes(self) -> float:
        return float(self.outer_steps) + self._objective_passes

    def _step(self, model, inputs, backward):
        if self.steps_done < self.warmup_steps:
            return _plain_step(model, inputs, backward)
        outer, like, mask = self._prologue(model, inputs)
        delta = project(random_init(like, mask, self.init_mag, self.norm), mask, self.epsilon,
                        self.norm)
        total = torch.zeros((), device=like.device)
        clean = self._clean_for_objective(outer, inputs)
        for j in range(self.outer_steps):
            with capture_first_block(outer) as captured:
                if j == self.outer_steps - 1:
                    _, loss = self._adversarial_loss(model, outer, inputs, delta, clean,
                                                     1.0 / self.outer_steps)
                else:
                    loss = outer.forward(inputs, delta).loss / self.outer_steps
            block_output = captured[0]
            block_output.retain_grad()
            backward(loss)
            total = total + loss.detach()
            adjoint = block_output.grad.detach()
            embeds = like.detach()
            for _ in range(self.inner_steps):
                delta = delta.detach().requires_grad_(True)
                h0 = first_block_output(self.adapter, inputs, embeds + delta)
                (grad,) = torch.autograd.grad((h0 * adjoint).sum(), delta)
                delta = project(delta.detach() + self.alpha * direction(grad, mask, self.norm),
                                mask, self.epsilon, self.norm)
        return total


class SMART(TrainingMethodBase):
    """SMART-style smoothness-inducing adversarial regularisation (Jiang et al. 2020).

    ``L(x) + λ·D_sKL(f(x), f(x + δ))`` where δ starts as ``N(0, σ²)`` noise on real tokens and
    takes ``steps`` ascent steps ``δ ← δ + η·g/‖g‖`` on ``D_sKL(f(x + δ), stopgrad f(x))``, with
    the norm per token (SMART's convention; ε > 0 adds a projection, 0 = none).  In the final
    regulariser each side is compared with the other's detached prediction (mt-dnn's
    ``stable_kl`` both ways), so gradients flow through both the clean and the perturbed pass.
    Perturbed passes take ``inputs_embeds`` = word embeddings + δ: the model adds position and
    segment embeddings and LayerNorm once (mt-dnn's current code applies them twice).
    """

    name = "smart"

    def __init__(self, model, *, weight: float = 1.0, noise: float = 1e-5, step_size: float = 1e-3,
                 steps: int = 1, epsilon: float = 0.0, warmup_steps: int = 0,
                 objective: Objective | None = None) -> None:
        super().__init__(model, objective)
        self.weight, self.noise, self.step_size = weight, noise, step_size
        self.steps, self.epsilon, self.warmup_steps = steps, epsilon, warmup_steps

    @property
    def passes(self) -> float:
        return 2.0 + self.steps

    def _step(self, model, inputs, backward):
        if self.steps_done < self.warmup_steps:
            return _plain_step(model, inputs, backward)
        outer = self._adapter_for(model)
        clean = outer.forward(inputs, output_hidden_states=self._needs_clean or None)
        clean_logits = clean.logits
        with torch.no_grad():
            like = self.adapter.embed(inputs)
        mask = self._mask(inputs, like)
        delta = torch.randn_like(like) * self.noise * mask
        target = clean_logits.detach()
        for _ in range(self.steps):
            grad = gradient_at(
                lambda d: symmetric_kl(self.adapter.forward(inputs, d).logits, target), delta
            )
            delta = project(delta + self.step_size * direction(grad, mask, "l2", "token"), mask,
                            self.epsilon, "l2", "token").detach()
        perturbed = outer.forward(inputs, delta, output_hidden_states=self._hidden or None)
        extra = self._objective_term(model, inputs, perturbed, clean)
        perturbed_logits = perturbed.logits
        regulariser = 0.5 * (
            symmetric_kl(perturbed_logits, clean_logits.detach())
            + symmetric_kl(clean_logits, perturbed_logits.detach())
        )
        loss = clean.loss + self.weight * regulariser + extra
        backward(loss)
        return loss.detach()


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Option:
    """One method hyper-parameter: CLI flag, Python keyword and meaning."""

    flag: str
    keyword: str
    type: type
    help: str


OPTIONS = [
    Option("--adv-epsilon", "epsilon", float, "radius ε of the perturbation ball (0 = unbounded)"),
    Option("--adv-norm", "norm", str, "norm of the ball and of the ascent step: l2 or linf"),
    Option("--adv-steps", "steps", int, "ascent steps (PGD k, FreeLB K, SMART steps)"),
    Option("--adv-alpha", "alpha", float, "ascent step size α"),
    Option("--adv-init", "init_mag", float, "magnitude γ of the random start (FreeLB, YOPO)"),
    Option("--adv-random-start", "random_start", float, "random start magnitude (FGSM/FGM/PGD)"),
    Option("--adv-replays", "replays", int, "FreeAT: replays m of each minibatch"),
    Option("--adv-outer-steps", "outer_steps", int, "YOPO: full passes m"),
    Option("--adv-inner-steps", "inner_steps", int, "YOPO: cheap inner updates n per pass"),
    Option("--adv-clean-weight", "clean_weight", float, "FGSM/FGM/PGD: weight of the clean loss"),
    Option("--adv-clean-pass", "clean_pass", bool, "FreeLB: also back-propagate the clean loss"),
    Option("--adv-warmup-steps", "warmup_steps", int, "plain steps before adversarial ones"),
    Option("--smart-weight", "weight", float, "SMART: weight λ of the smoothness term"),
    Option("--smart-noise", "noise", float, "SMART: std σ of the initial noise"),
    Option("--smart-step-size", "step_size", float, "SMART: ascent step size η"),
]
_BY_KEYWORD = {option.keyword: option for option in OPTIONS}

# Defaults.  Structural values (steps, replays, norms, FreeLB's init γ and ε = 0, SMART's
# noise and step size) follow the papers and their official code.  The perturbation sizes
# (ε, α, λ) were chosen by the search in benchmarks/search_defaults.py on mr *dev* with the
# default MiniLM (token-embedding norm ≈ 1.07): see docs/defaults.md.  The papers' sizes were
# tuned for other encoders and collapse MiniLM to chance (e.g. FGM ε = 1, FreeLB α = 0.3).
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "none": {},
    "fgsm": {"epsilon": 0.001, "norm": "linf", "random_start": 0.0, "clean_weight": 1.0,
             "warmup_steps": 0},
    "fgm": {"epsilon": 0.1, "norm": "l2", "random_start": 0.0, "clean_weight": 1.0,
            "warmup_steps": 0},
    "pgd": {"epsilon": 0.1, "norm": "l2", "steps": 3, "alpha": 0.05, "random_start": 0.0,
            "clean_weight": 1.0, "warmup_steps": 0},
    "freeat": {"epsilon": 0.001, "norm": "linf", "replays": 3, "warmup_steps": 0},
    "yopo": {"epsilon": 0.1, "norm": "l2", "outer_steps": 2, "inner_steps": 3, "alpha": 0.1 / 3,
             "init_mag": 0.0, "warmup_steps": 0},
    "freelb": {"steps": 3, "alpha": 0.03, "epsilon": 0.0, "init_mag": 0.1, "norm": "l2",
               "clean_pass": False, "warmup_steps": 0},
    "smart": {"weight": 1.0, "noise": 1e-5, "step_size": 1e-3, "steps": 1, "epsilon": 0.0,
              "warmup_steps": 0},
}
METHOD_PAPERS = {
    "none": "plain fine-tuning",
    "fgsm": "Goodfellow et al. 2015; paper 000 §2",
    "fgm": "Miyato et al. 2017; paper 000 §2",
    "pgd": "Madry et al. 2018; paper 000 §2",
    "freeat": "Shafahi et al. 2019; paper 000 §2",
    "yopo": "Zhang et al. 2019; paper 000 §2",
    "freelb": "Zhu et al. 2020; paper 000 §2, paper 001 Table 1",
    "smart": "Jiang et al. 2020; paper 003 baseline",
}
METHODS = tuple(METHOD_DEFAULTS)


def build_training_method(
    name: str,
    model: torch.nn.Module,
    *,
    objective: Objective | None = None,
    **options: Any,
):
    """Build the training method ``name`` for ``model``; unset options take the defaults.

    ``objective`` (see :func:`advembed.objectives.build_objective`) adds its loss term to the
    method's final adversarial pass; with ATCL, FGM's default ε becomes the paper's 0.03.
    Raises :class:`AdvembedError` for an unknown method or an option the method does not take.
    """
    if name not in METHOD_DEFAULTS:
        raise AdvembedError(f"unknown method '{name}'; choose one of {', '.join(METHODS)}")
    defaults = METHOD_DEFAULTS[name]
    for keyword in options:
        if keyword not in defaults:
            flag = _BY_KEYWORD[keyword].flag if keyword in _BY_KEYWORD else keyword
            accepted = ", ".join(_BY_KEYWORD[k].flag for k in defaults) or "none"
            raise AdvembedError(
                f"option {flag} does not apply to method '{name}' (it takes: {accepted})"
            )
    if objective is not None and name in ("none", "freeat"):
        raise AdvembedError(
            f"method '{name}' does not take an objective ({objective.name}): "
            + ("it has no adversarial pass" if name == "none" else
               "its δ is carried across replays, which a per-step objective cannot follow")
        )
    defaults = defaults | (getattr(objective, "method_defaults", {}).get(name, {}))
    settings = defaults | {k: v for k, v in options.items() if v is not None}
    _check_settings(name, settings)
    if name == "none":
        return PlainTraining(model)
    if name in ("fgsm", "fgm", "pgd"):
        adversary_type = {"fgsm": FGSM, "fgm": FGM, "pgd": PGD}[name]
        adversary_keys = {f.name for f in fields(adversary_type)}
        adversary = adversary_type(**{k: v for k, v in settings.items() if k in adversary_keys})
        return GradientAttackTraining(
            model, adversary, clean_weight=settings["clean_weight"],
            warmup_steps=settings["warmup_steps"], objective=objective,
        )
    return {"freelb": FreeLB, "freeat": FreeAT, "yopo": YOPO, "smart": SMART}[name](
        model, objective=objective, **settings
    )


def _check_settings(name: str, settings: dict[str, Any]) -> None:
    if "norm" in settings:
        check_norm(settings["norm"])
    for key in ("steps", "replays", "outer_steps", "inner_steps"):
        if key in settings and int(settings[key]) < 1:
            raise AdvembedError(f"option {_BY_KEYWORD[key].flag} must be >= 1 for '{name}'")
    for key in ("epsilon", "alpha", "init_mag", "random_start", "warmup_steps", "noise",
                "step_size", "weight", "clean_weight"):
        if key in settings and settings[key] < 0:
            raise AdvembedError(f"option {_BY_KEYWORD[key].flag} must be >= 0 for '{name}'")
    if name == "fgsm" and settings.get("norm") != "linf":
        raise AdvembedError("FGSM is defined for --adv-norm linf; use fgm for l2")


def add_method_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--method`` and every method hyper-parameter flag to ``parser``."""
    parser.add_argument("--method", default="none", choices=METHODS,
                        help="adversarial training method (default: none = plain fine-tuning)")
    group = parser.add_argument_group("method hyper-parameters (defaults: see README)")
    for option in OPTIONS:
        if option.type is bool:
            group.add_argument(option.flag, dest=option.keyword, action="store_const", const=True,
                               default=None, help=option.help)
        elif option.keyword == "norm":
            group.add_argument(option.flag, dest=option.keyword, choices=("l2", "linf"),
                               default=None, help=option.help)
        else:
            group.add_argument(option.flag, dest=option.keyword, type=option.type, default=None,
                               help=option.help)
    from advembed.objectives import OBJECTIVE_OPTIONS, OBJECTIVES

    parser.add_argument("--objective", default="ce", choices=OBJECTIVES,
                        help="what is learned from the adversarial sample (default ce: its "
                             "cross-entropy only; carl, rar, atcl add their loss term)")
    group = parser.add_argument_group("objective hyper-parameters (defaults: see README)")
    for options in OBJECTIVE_OPTIONS.values():
        for flag, _, kind, default, help_text in options:
            if kind is bool:
                group.add_argument(flag, dest=_dest(flag), action="store_const", const=True,
                                   default=None, help=help_text)
                continue
            suffix = "" if default is None else f" (default {default:g})"
            group.add_argument(flag, dest=_dest(flag), type=kind, default=None,
                               help=help_text + suffix)


def objective_options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The objective options given explicitly on the command line."""
    from advembed.objectives import OBJECTIVE_OPTIONS

    chosen = {}
    for name, options in OBJECTIVE_OPTIONS.items():
        for flag, keyword, _, _, _ in options:
            value = getattr(args, _dest(flag), None)
            if value is None:
                continue
            if name != args.objective:
                raise AdvembedError(f"option {flag} needs --objective {name}")
            chosen[keyword] = value
    return chosen


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def method_options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The method options given explicitly on the command line (the rest keep defaults)."""
    return {
        option.keyword: getattr(args, option.keyword)
        for option in OPTIONS
        if getattr(args, option.keyword, None) is not None
    }
