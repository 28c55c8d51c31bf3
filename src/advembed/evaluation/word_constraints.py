"""TextAttack constraints built on its classes at first use (TextAttack is imported lazily):
the perturbation budget of an attacked column, and the sentence-similarity encoder."""

from __future__ import annotations

import math

import torch

from advembed.errors import AdvembedError


def column_words(text, column: str) -> list[str]:
    """The words of ``column`` of a TextAttack ``AttackedText`` (all its words when it has no
    such column: a single text)."""
    labels = text.column_labels
    return text.words_per_input[labels.index(column)] if column in labels else text.words


def build_budget_class(textattack):
    base = textattack.constraints.overlap.MaxWordsPerturbed

    class ColumnWordsPerturbed(base):
        """TextAttack's ``MaxWordsPerturbed`` (at most ``ceil(max_percent · n)`` words changed,
        n the smaller word count of the original and the candidate), with n counted in the
        attacked ``column`` only: on a pair, where only the second sentence may change, a
        budget over both sentences would let an attack rewrite most of a short second one."""

        def __init__(self, *, max_percent: float, column: str = "text"):
            super().__init__(max_percent=max_percent)
            self.column = column

        def _words(self, text) -> int:
            return len(column_words(text, self.column))

        def _check_constraint(self, transformed_text, reference_text):
            changed = len(transformed_text.all_words_diff(reference_text))
            n = min(self._words(transformed_text), self._words(reference_text))
            return changed <= math.ceil(n * self.max_percent)

        def extra_repr_keys(self):
            return [*super().extra_repr_keys(), "column"]

    return ColumnWordsPerturbed


def build_encoder_class(textattack):
    base = textattack.constraints.semantics.sentence_encoders.SentenceEncoder

    class MeanPooledEncoder(base):
        """Sentence similarity from a transformer encoder, mean-pooled and L2-normalised."""

        def __init__(self, model_name: str = "default", batch_size: int = 64, **kwargs):
            super().__init__(**kwargs)
            from transformers import AutoModel, AutoTokenizer

            from advembed.models import resolve_model

            path = resolve_model(model_name)
            try:
                self.tokenizer = AutoTokenizer.from_pretrained(path)
                self.encoder = AutoModel.from_pretrained(path).eval()
            except (OSError, ValueError) as exc:
                raise AdvembedError(f"--similarity-model: cannot load '{model_name}': "
                                    f"{str(exc).strip().splitlines()[0]}") from None
            self.batch_size = batch_size

        @torch.no_grad()
        def encode(self, sentences):
            out = []
            for start in range(0, len(sentences), self.batch_size):
                chunk = list(sentences[start:start + self.batch_size])
                enc = self.tokenizer(chunk, padding=True, truncation=True, max_length=128,
                                     return_tensors="pt")
                hidden = self.encoder(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                out.append(torch.nn.functional.normalize(pooled, dim=-1))
            return torch.cat(out)

    return MeanPooledEncoder
