"""VDA (paper 003): fine-tuning regularised by virtual samples from a masked-LM mixture.

``L = CE(f(E), y) + λ·(1/k)·Σ_j sKL(f(E), f(Ê_j))`` (eq. 1, 6, 7), Ê_j mixing the
classifier's embedding rows with the MLM's noisy substitution distribution (eq. 2–5, see
:mod:`advembed.vda.mixture`).  The same term composes with every adversary as
``--augment vda`` (:meth:`TrainingMethod.step`).
"""

from __future__ import annotations

from dataclasses import dataclass

from advembed.methods.base import MethodSettings, TrainingMethod, unwrap
from advembed.vda import VDASettings, VirtualAugmenter


@dataclass(frozen=True)
class VDAMethodSettings(VDASettings, MethodSettings):
    """VDA's settings (:class:`~advembed.vda.VDASettings`) and the adversarial warm-up."""

    owner = "method 'vda'"


class VDATraining(TrainingMethod):
    name = "vda"
    Settings = VDAMethodSettings
    paper = "paper 003 (Zhou et al. 2021)"
    summary = ("`CE(f(E), y) + λ/k·Σ sKL(f(E), f(Ê))`, Ê a noisy masked-LM mixture of "
               "embedding rows")
    takes_objective = False

    def __init__(self, model, settings=None, *, objective=None, augment=None,
                 **options) -> None:
        """``augment`` may be a ready :class:`~advembed.vda.VirtualAugmenter` (a loaded MLM);
        otherwise the MLM named by ``--vda-mlm`` is loaded."""
        super().__init__(model, settings, objective=objective, **options)
        self.vda = augment if isinstance(augment, VirtualAugmenter) else (
            VirtualAugmenter(unwrap(model), self.settings))  # the method's own, not an extra

    @classmethod
    def no_objective_reason(cls) -> str:
        return "its virtual samples are not adversarial (use --augment vda with an adversary)"

    @classmethod
    def count_passes(cls, settings, needs_clean: bool = False) -> float:
        """The clean pass and one per virtual sample (the MLM's forward is not counted)."""
        return 1.0 + settings.samples

    def _step(self, model, inputs, backward):
        outer = self._adapter_for(model)
        clean = outer.forward(inputs)
        loss = clean.loss + self.vda.term(outer, inputs, clean.logits)
        backward(loss)
        return loss.detach()
