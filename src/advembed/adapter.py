"""Model adapter: where the word embeddings are and how to run the model from them.

Everything goes through ``model.get_input_embeddings()`` and the ``inputs_embeds`` argument,
so any Hugging Face architecture that accepts ``inputs_embeds`` works (BERT, RoBERTa, ALBERT,
DistilBERT, ELECTRA, DeBERTa-v2, …).  The perturbation is added to the per-example embedding
*outputs*, never to the shared weight matrix, and the lookup is redone on every pass so the
embedding matrix receives its gradient as usual.
"""

from __future__ import annotations

from typing import Any

import torch

from advembed.errors import AdvembedError
from advembed.perturbation import token_mask

# Batch keys that never reach the model: the ids (replaced by ``inputs_embeds``) and the
# bookkeeping training adds (``example_index``: CARL's memory-bank rows).  Every other key the
# task's collator put in the batch is passed on (attention and segment masks, labels,
# ``decoder_input_ids`` of an encoder–decoder, …).
NOT_PASSED = frozenset({"input_ids", "example_index"})
# A model that reads the token ids beside ``inputs_embeds`` (VAA's two-stage model: its frozen
# model A embeds the ids itself) says so with ``takes_input_ids_with_embeds = True``.
IDS_KEPT = NOT_PASSED - {"input_ids"}


class EmbeddingAdapter:
    """Run ``model`` on (perturbed) word embeddings of a tokenised batch."""

    not_passed: frozenset[str] = NOT_PASSED  # batch keys kept from the model

    def __init__(self, model: torch.nn.Module) -> None:
        getter = getattr(model, "get_input_embeddings", None)
        embeddings = getter() if callable(getter) else None
        if not isinstance(embeddings, torch.nn.Embedding):
            raise AdvembedError(
                f"model {type(model).__name__} has no input embeddings "
                "(get_input_embeddings() returned none), so it cannot be trained adversarially "
                "in embedding space"
            )
        self.model = model
        if getattr(model, "takes_input_ids_with_embeds", False):
            self.not_passed = IDS_KEPT

    @property
    def word_embeddings(self) -> torch.nn.Embedding:
        return self.model.get_input_embeddings()

    def embed(self, inputs: dict[str, Any]) -> torch.Tensor:
        """Word-embedding outputs ``(batch, length, embedding_size)`` of ``inputs['input_ids']``."""
        return self.word_embeddings(inputs["input_ids"])

    def mask(self, inputs: dict[str, Any], like: torch.Tensor) -> torch.Tensor:
        """``(batch, length, 1)`` mask of real (non-padding) tokens."""
        attention = inputs.get("attention_mask")
        if attention is None:
            attention = torch.ones(inputs["input_ids"].shape, device=like.device)
        return token_mask(attention, like.dtype)

    def forward(
        self,
        inputs: dict[str, Any],
        delta: torch.Tensor | None = None,
        *,
        embeds: torch.Tensor | None = None,
        **extra: Any,
    ):
        """Model outputs on ``embed(inputs) + delta`` (fresh lookup unless ``embeds`` given)."""
        if embeds is None:
            embeds = self.embed(inputs)
        if delta is not None:
            embeds = embeds + delta
        kwargs = {key: value for key, value in inputs.items()
                  if key not in self.not_passed and value is not None}
        kwargs.update({key: value for key, value in extra.items() if value is not None})
        return self.model(inputs_embeds=embeds, **kwargs)

    def embedding_block(self) -> torch.nn.Module | None:
        """The first block: the module that owns the word embeddings as a direct child.

        For BERT-like models this is the ``*Embeddings`` module (word + position + segment
        embeddings, LayerNorm, dropout).  Found by identity, not by attribute path.  ``None``
        where the owner is a whole ``transformers`` model (GPT-2, BART, Marian: the lookup is in
        the model's own forward, with no block of its own): the first layer is then the
        identity on the (perturbed) embedding outputs.
        """
        target = self.word_embeddings
        for module in self.model.modules():
            if any(child is target for child in module.children()):
                from transformers import PreTrainedModel

                return None if isinstance(module, PreTrainedModel) else module
        raise AdvembedError(
            f"cannot find the embedding block of {type(self.model).__name__}: no module owns "
            "its input embeddings"
        )


class _StopForward(Exception):
    def __init__(self, output: torch.Tensor) -> None:
        super().__init__()
        self.output = output


def first_block_output(adapter: EmbeddingAdapter, inputs: dict[str, Any], embeds: torch.Tensor):
    """Output of the embedding block on ``embeds`` *without running the encoder layers*.

    A forward hook on the embedding block raises as soon as it has produced its output, so
    the layers after it never run.  Used by YOPO's cheap inner updates.
    """
    block = adapter.embedding_block()
    if block is None:  # the identity first layer
        return embeds

    def hook(module, args, output):
        raise _StopForward(output[0] if isinstance(output, tuple) else output)

    handle = block.register_forward_hook(hook)
    try:
        adapter.forward(inputs, embeds=embeds)
    except _StopForward as stop:
        return stop.output
    finally:
        handle.remove()
    raise AdvembedError("the embedding block was not called during the forward pass")


def capture_first_block(adapter: EmbeddingAdapter):
    """Context manager yielding a list that receives the embedding block's output tensor (the
    embeddings the model is given, where it has no block: the identity first layer)."""
    import contextlib

    @contextlib.contextmanager
    def capture():
        captured: list[torch.Tensor] = []

        def hook(module, args, output):
            tensor = output[0] if isinstance(output, tuple) else output
            captured.append(tensor)

        def identity(module, args, kwargs):  # no block: the embeddings the model is given
            captured.append(kwargs["inputs_embeds"])

        block = adapter.embedding_block()
        handle = (block.register_forward_hook(hook) if block is not None else
                  adapter.model.register_forward_pre_hook(identity, with_kwargs=True))
        try:
            yield captured
        finally:
            handle.remove()

    return capture()
