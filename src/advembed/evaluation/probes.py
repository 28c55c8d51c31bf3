"""Paper 004's qualitative checks on language-model and translation runs.

* :func:`nearest_words` — Table 3: the closest vocabulary words (Euclidean distance in the
  trained input embedding) to anchor words.
* :func:`perturbed_generation` — Tables 4 and 7: one complete word near the end of the input
  (ATCL's mask ℳ; the last such word) gets an FGM step of L2 norm ε (eq. 1, read as ascent like
  the training objective) on the loss of the text's own continuation — for a language model the
  NLL of the sentence itself, for a translation model the NLL of the reference (or, without
  one, of the model's clean translation: the predicted, not a gold, target) — and the model's
  greedy output is shown with and without the perturbation, with the perplexity the model
  gives to each output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from advembed.errors import AdvembedError
from advembed.tasks.base import GREEDY
from advembed.words import WordFlags, complete_word_mask, word_flags


def _word_ids(tokenizer, word: str) -> list[int]:
    """The token ids of ``word`` as it occurs inside a sentence (after a space)."""
    ids = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
    return ids if ids else tokenizer(word, add_special_tokens=False)["input_ids"]


def nearest_words(model, tokenizer, words: list[str], k: int = 4) -> dict[str, list[str] | str]:
    """For each anchor word, its ``k`` nearest complete-word tokens by Euclidean distance in
    ``model.get_input_embeddings()`` (the anchor excluded); a word the tokenizer splits into
    several pieces has no single embedding and is reported as such."""
    weights = model.get_input_embeddings().weight.detach().float()
    flags = word_flags(tokenizer)
    candidates = flags.start & flags.alpha & ~flags.continuation
    out: dict[str, list[str] | str] = {}
    for word in words:
        ids = _word_ids(tokenizer, word)
        if len(ids) != 1:
            out[word] = f"({len(ids)} pieces: no single embedding)"
            continue
        distance = (weights - weights[ids[0]]).norm(dim=1)
        distance[~candidates[: len(distance)]] = math.inf
        distance[ids[0]] = math.inf
        nearest = distance.topk(k, largest=False).indices.tolist()
        out[word] = [tokenizer.decode([i]).strip() for i in nearest]
    return out


@dataclass
class PerturbedOutput:
    text: str
    perturbed_word: str
    clean: str
    perturbed: str
    clean_perplexity: float
    perturbed_perplexity: float


def _last_word_position(flags: WordFlags, ids: torch.Tensor) -> int:
    mask = complete_word_mask(ids.unsqueeze(0), torch.ones_like(ids).unsqueeze(0), flags)[0]
    positions = mask.nonzero().flatten()
    if len(positions) == 0:
        raise AdvembedError("the text has no complete word to perturb (ATCL's mask is empty)")
    return int(positions[-1])


def _fgm_delta(embeds: torch.Tensor, position: int, epsilon: float, loss_of) -> torch.Tensor:
    """ε·g/‖g‖ on one token's embedding, g the gradient of ``loss_of(embeds)``."""
    embeds = embeds.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss_of(embeds), embeds)
    delta = torch.zeros_like(embeds)
    g = grad[0, position]
    delta[0, position] = epsilon * g / g.norm().clamp_min(1e-12)
    return delta


def perturbed_generation(model, tokenizer, text: str, *, epsilon: float,
                         reference: str | None = None, max_new_tokens: int = 20,
                         flags: WordFlags | None = None) -> PerturbedOutput:
    """Greedy output for ``text`` clean and with its last complete word FGM-perturbed.
    ``flags`` (``word_flags(tokenizer)``, a pass over the vocabulary) may be computed once by a
    caller that probes many texts."""
    model.eval()
    seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
    if seq2seq:
        ids = tokenizer(text, return_tensors="pt")["input_ids"]
    else:
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    position = _last_word_position(flags or word_flags(tokenizer), ids[0])
    embeds = model.get_input_embeddings()(ids).detach()
    attention = torch.ones_like(ids)

    def generate(inputs_embeds) -> torch.Tensor:
        with torch.no_grad():
            out = model.generate(inputs_embeds=inputs_embeds, attention_mask=attention,
                                 max_new_tokens=max_new_tokens, **GREEDY,
                                 pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
        return out[0]

    clean_out = generate(embeds)
    if seq2seq:
        target = (tokenizer(text_target=reference, return_tensors="pt")["input_ids"]
                  if reference else clean_out[1:].unsqueeze(0))

        def loss_of(e):
            return model(inputs_embeds=e, attention_mask=attention, labels=target).loss
    else:
        def loss_of(e):
            return model(inputs_embeds=e, labels=ids).loss
    perturbed_out = generate(embeds + _fgm_delta(embeds, position, epsilon, loss_of))

    def perplexity(output: torch.Tensor) -> float:
        with torch.no_grad():
            if seq2seq:
                labels = output[1:].unsqueeze(0)  # the decoder start token is not predicted
                return math.exp(model(input_ids=ids, labels=labels).loss.item())
            whole = torch.cat([ids[0], output]).unsqueeze(0)
            labels = whole.clone()
            labels[0, : ids.shape[1]] = -100  # the continuation's tokens only
            return math.exp(model(input_ids=whole, labels=labels).loss.item())

    return PerturbedOutput(
        text=text, perturbed_word=tokenizer.decode(ids[0, position]).strip(),
        clean=tokenizer.decode(clean_out, skip_special_tokens=True).strip(),
        perturbed=tokenizer.decode(perturbed_out, skip_special_tokens=True).strip(),
        clean_perplexity=perplexity(clean_out), perturbed_perplexity=perplexity(perturbed_out))
