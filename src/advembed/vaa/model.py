"""VAA's stage-two model (paper 002 §3.2): model B fed with frozen model A's vulnerability.

:class:`VulnerabilityAwareModel` holds

* ``model_a``: the finished run's classifier, frozen (no gradient, always in eval mode);
* ``model_b``: the same architecture, initialised from A and trained;
* ``projection``: the trained linear map ``V = W · V3 + b`` from A's vulnerability vector
  ``V3 = [V1; V2; ΔV]`` (:func:`~advembed.vaa.features.vulnerability_features`) to the word
  embedding size, so ``W`` is ``(embedding size × 3h)`` with h the width A's classifier head
  reads (``vaa_features="hidden"``, the paper's A⁻), or ``× 3 · num_labels`` for the logits
  form runs saved before session 40 used.

Where V enters B (the paper feeds it "along with the word embeddings"; it does not say where),
``placement``:

* ``add`` (default): V added to the word embedding of every real token;
* ``position``: an extra input position right after the first token ([CLS]), whose embedding
  is V (attention mask 1, the first token's segment); B's hidden states are returned without
  it, so representations and drift line up with the input tokens.

On ``cr`` (seed 13, B from a plain run with dev 0.8611) ``add`` reached dev 0.8778 and
``position`` 0.8722, so ``add`` is the default; one seed, a difference of two dev sentences.

``W`` and ``b`` start at zero (our choice; the paper does not say): under ``add`` the model then
starts exactly as A, and V's information enters as B learns to use it.

It is a ``transformers`` model (``model_type`` ``advembed-vaa``, registered with the Auto
classes), so a VAA run saves, loads and serves ``eval``, ``predict`` and every attack like any
other run.  An embedding attack on it perturbs the word embeddings that B reads; A reads its
own embeddings of the same tokens plus the same δ (the input is perturbed once, for both
models), so the model reads ``input_ids`` beside ``inputs_embeds``.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    PretrainedConfig,
    PreTrainedModel,
)

from advembed.decoders import positions_from_mask, reads_last_token
from advembed.errors import AdvembedError
from advembed.vaa.features import SOURCES, head_width, vulnerability_features

PLACEMENTS = ("add", "position")


class VAAConfig(PretrainedConfig):
    """Model A's config (``base_config``) and how A's vulnerability reaches B."""

    model_type = "advembed-vaa"

    def __init__(self, base_config: dict[str, Any] | None = None, placement: str = "add",
                 vaa_norm: str = "l2", vaa_epsilon: float = 0.02, base_run: str | None = None,
                 base_run_sha256: str | None = None, vaa_features: str = "logits",
                 vaa_threshold: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_config = dict(base_config or {})
        self.placement = placement
        self.vaa_features = vaa_features  # a config saved before it existed: logits
        self.vaa_norm = vaa_norm
        self.vaa_epsilon = vaa_epsilon
        self.vaa_threshold = vaa_threshold  # A's decision threshold (QA matching), else argmax
        self.base_run = base_run
        self.base_run_sha256 = base_run_sha256
        for key in ("hidden_size", "vocab_size"):  # what objectives and attacks read of B
            if key in self.base_config:
                setattr(self, key, self.base_config[key])
        positions = self.base_config.get("max_position_embeddings")
        if isinstance(positions, int):  # the extra position takes one of A's
            self.max_position_embeddings = positions - (placement == "position")

    def base(self) -> PretrainedConfig:
        """Model A's (and B's) own config."""
        values = dict(self.base_config)
        kind = values.pop("model_type", None)
        if kind is None:
            raise AdvembedError("a VAA model's config has no base_config.model_type")
        return AutoConfig.for_model(kind, **values)


class VulnerabilityAwareModel(PreTrainedModel):
    """Model B, reading frozen model A's vulnerability of each example (see the module)."""

    config_class = VAAConfig
    base_model_prefix = "vaa"
    takes_input_ids_with_embeds = True  # the adapter passes input_ids beside inputs_embeds

    def __init__(self, config: VAAConfig) -> None:
        super().__init__(config)
        if config.placement not in PLACEMENTS:
            raise AdvembedError(f"unknown VAA placement '{config.placement}'; choose one of "
                                f"{', '.join(PLACEMENTS)}")
        base = config.base()
        self.model_a = AutoModelForSequenceClassification.from_config(base)
        self.model_b = AutoModelForSequenceClassification.from_config(base)
        size = self.model_b.get_input_embeddings().embedding_dim
        if config.vaa_features not in SOURCES:
            raise AdvembedError(f"unknown VAA feature source '{config.vaa_features}'; choose "
                                f"one of {', '.join(SOURCES)}")
        width = (head_width(self.model_a) if config.vaa_features == "hidden"
                 else base.num_labels)
        self.projection = torch.nn.Linear(3 * width, size)
        self.model_a.requires_grad_(False)
        self._positions_from_mask_on_decoders(config.placement)
        self.post_init()

    def _positions_from_mask_on_decoders(self, placement: str) -> None:
        """A decoder-only classifier (padded on the left, :func:`advembed.models.
        pad_where_the_head_reads`) numbers its positions from the mask, in A and in B alike, as
        the run of A did: else a padded sentence's scores depend on its batch and B does not
        start as A.  ``position`` would put V after a left pad: refused for such models."""
        if not reads_last_token(self.model_a):
            return
        if placement == "position":
            raise AdvembedError("--vaa-placement position does not apply to a decoder-only "
                                "classifier (padded on the left, V would follow a pad): use add")
        for model in (self.model_a, self.model_b):
            model.register_forward_pre_hook(positions_from_mask, with_kwargs=True)

    def _init_weights(self, module: torch.nn.Module) -> None:
        if module is getattr(self, "projection", None):
            torch.nn.init.zeros_(module.weight)
            torch.nn.init.zeros_(module.bias)

    @classmethod
    def from_model_a(cls, model_a: PreTrainedModel, *, placement: str = "add",
                     norm: str = "l2", epsilon: float = 0.02, base_run: str | None = None,
                     base_run_sha256: str | None = None, features: str = "hidden",
                     threshold: float | None = None) -> VulnerabilityAwareModel:
        """Stage two's starting point: A frozen, B a copy of A, the projection at zero.
        ``threshold``: A's decision threshold on P(class 1), for a task that decides by one
        (QA matching's dev threshold); ``None`` takes A's argmax."""
        base = model_a.config
        config = VAAConfig(base_config=base.to_dict(), placement=placement, vaa_norm=norm,
                           vaa_epsilon=epsilon, vaa_features=features, vaa_threshold=threshold,
                           base_run=base_run,
                           base_run_sha256=base_run_sha256, num_labels=base.num_labels,
                           id2label=base.id2label, label2id=base.label2id)
        model = cls(config)
        state = model_a.state_dict()
        model.model_a.load_state_dict(state)
        model.model_b.load_state_dict(state)
        model._init_weights(model.projection)
        return model.train(model_a.training)

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.model_b.get_input_embeddings()

    def set_input_embeddings(self, value: torch.nn.Module) -> None:
        self.model_b.set_input_embeddings(value)

    def train(self, mode: bool = True) -> VulnerabilityAwareModel:
        super().train(mode)
        self.model_a.eval()  # A is frozen: no dropout either
        return self

    def vulnerability(self, input_ids: torch.Tensor, inputs_embeds: torch.Tensor | None,
                      a_inputs: dict[str, Any]) -> torch.Tensor:
        """``V = W · V3 + b`` per example; ``inputs_embeds``' offset from B's clean embeddings
        (an attack's δ) is applied to A's embeddings too."""
        embeds_a = self.model_a.get_input_embeddings()(input_ids)
        if inputs_embeds is not None:
            embeds_a = embeds_a + (inputs_embeds - self.get_input_embeddings()(input_ids))
        features = vulnerability_features(self.model_a, embeds_a, a_inputs,
                                          norm=self.config.vaa_norm,
                                          epsilon=self.config.vaa_epsilon,
                                          source=self.config.vaa_features,
                                          threshold=getattr(self.config, "vaa_threshold", None))
        return self.projection(features.to(self.projection.weight.dtype))

    def forward(self, input_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None,
                inputs_embeds: torch.Tensor | None = None,
                labels: torch.Tensor | None = None,
                output_hidden_states: bool | None = None,
                output_attentions: bool | None = None,
                return_dict: bool | None = None, **kwargs: Any):
        if input_ids is None:
            raise AdvembedError("a VAA model reads input_ids (model A's input) beside any "
                                "inputs_embeds")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        segments = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        vector = self.vulnerability(input_ids, inputs_embeds,
                                    {"attention_mask": attention_mask, **segments})
        embeds = self.get_input_embeddings()(input_ids) if inputs_embeds is None else inputs_embeds
        embeds, attention_mask, segments = self._feed(embeds, vector, attention_mask, segments)
        outputs = self.model_b(inputs_embeds=embeds, attention_mask=attention_mask,
                               labels=labels, output_hidden_states=output_hidden_states,
                               output_attentions=output_attentions, return_dict=True,
                               **segments)
        if self.config.placement == "position" and outputs.hidden_states is not None:
            outputs.hidden_states = tuple(torch.cat([h[:, :1], h[:, 2:]], dim=1)
                                          for h in outputs.hidden_states)
        return outputs

    def _feed(self, embeds: torch.Tensor, vector: torch.Tensor, attention_mask: torch.Tensor,
              segments: dict[str, torch.Tensor]):
        """B's inputs with V in them (see ``placement``)."""
        if self.config.placement == "add":
            real = attention_mask.unsqueeze(-1).to(embeds.dtype)
            return embeds + vector.unsqueeze(1).to(embeds.dtype) * real, attention_mask, segments

        def insert(x: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
            return torch.cat([x[:, :1], value, x[:, 1:]], dim=1)

        embeds = insert(embeds, vector.unsqueeze(1).to(embeds.dtype))
        attention_mask = insert(attention_mask, attention_mask[:, :1].clone().fill_(1))
        segments = {key: insert(value, value[:, :1]) for key, value in segments.items()}
        return embeds, attention_mask, segments


def register() -> None:
    """Make ``AutoModelForSequenceClassification.from_pretrained`` load saved VAA models."""
    AutoConfig.register(VAAConfig.model_type, VAAConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(VAAConfig, VulnerabilityAwareModel,
                                                exist_ok=True)


register()
