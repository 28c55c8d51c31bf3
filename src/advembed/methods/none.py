"""Plain fine-tuning: the reference every adversarial method is compared with."""

from __future__ import annotations

from advembed.methods.base import NoSettings, TrainingMethod, plain_step


class PlainTraining(TrainingMethod):
    """One forward and backward of the clean loss."""

    name = "none"
    Settings = NoSettings
    paper = "—"
    summary = "plain fine-tuning"
    takes_objective = False

    def _step(self, model, inputs, backward):
        return plain_step(model, inputs, backward)
