"""VDA's virtual embeddings (paper 003 §4.1, eq. 2–5): a noisy MLM distribution mixing the rows
of the classifier's embedding matrix.

For every real token the masked LM, run on the *unmasked* sentence, scores each vocabulary
word as its substitute (eq. 2); Gaussian noise ε ~ N(0, σ²) (eq. 3) is added and a softmax
taken (eq. 4); the virtual embedding is the mixture ``ê = p′·M_E`` (eq. 5).

**Where the noise goes (eq. 4).**  Taken literally, ``softmax(p + ε)`` adds the noise to a
*probability* in [0, 1]: over BERT's 30,522 words the exponent then varies by at most ~e¹, so
the result is nearly uniform and every ê collapses towards the mean embedding
(``tests/test_vda.py`` shows it).  The default reading, ``noise_on="logits"``, adds ε to the
MLM's log-probabilities (equivalently its logits: the softmax is shift-invariant per position),
so σ → 0 gives back the MLM's own distribution.  ``noise_on="probabilities"`` is the literal
form, kept as an option for the ablation; it is a whole-vocabulary form (``top_k = 0``): the
MLM's top 64 hold about 0.2 % of its near-uniform mass, so renormalising over them would mix 64
words almost equally, which is neither eq. 4 nor VDA (``VirtualAugmenter`` refuses the pair).
(The authors' code divides the logits by their sum before adding the noise — a third form, not
built.)

**Sparse mixture.**  ``top_k > 0`` keeps the MLM's ``top_k`` best substitutes per position: the
noisy distribution restricted to them and renormalised, which equals the dense one for
``top_k = V`` and differs from it by the discarded tail's mass otherwise.  It replaces the
``B·L·V·d`` mixture by ``B·L·k·d``.

**Forms (paper 003 Table 4).**  ``mixture`` is VDA; ``argmax`` takes the most probable
substitute of the noisy distribution, ``sample`` draws one from it; both give one embedding row.
The paper says only "according to the substitution probability": we read it as eq. 4's noisy
``p′`` (so ``--vda-variance`` still acts; with σ² = 0 it is the MLM's ``p``).

Padding and structural special tokens keep their own embedding; ``[UNK]``, a real word the
vocabulary lacks, is replaced like any word (eq. 2–5 apply "to each position of the
original sentence"; :class:`~advembed.vda.VirtualAugmenter` leaves it out of the special ids).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

NOISE_ON = ("logits", "probabilities")
FORMS = ("mixture", "argmax", "sample")


@dataclass
class Substitutes:
    """The substitution distribution of each position: ``ids (B, L, k)`` of vocabulary rows and
    ``weights (B, L, k)`` summing to 1, fixed for an optimisation step, so every pass can
    re-gather the embedding rows (keeping the embedding matrix in the graph)."""

    ids: torch.Tensor
    weights: torch.Tensor
    replace: torch.Tensor  # (B, L) bool: positions that take the virtual embedding
    dense: bool = False  # ids are the whole vocabulary in order: mix by one matrix product

    def embed(self, weight: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        """``ê = Σ_j w_j · M_E[id_j]`` at replaced positions, ``original`` elsewhere (eq. 5)."""
        if self.dense:
            mixed = self.weights.to(weight.dtype) @ weight  # (B, L, V) · (V, d)
        else:
            rows = F.embedding(self.ids, weight)  # (B, L, k, d)
            mixed = (self.weights.unsqueeze(-1).to(rows.dtype) * rows).sum(-2)
        return torch.where(self.replace.unsqueeze(-1), mixed, original)


def noisy_scores(logits: torch.Tensor, ids: torch.Tensor, variance: float, noise_on: str,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """``s + ε`` at the candidate ``ids``, with ``s`` the MLM's log-probabilities over the full
    vocabulary (``noise_on="logits"``) or its probabilities (``"probabilities"``, eq. 4
    literally); the softmax of the result over the candidates is eq. 4's ``p′`` (restricted to
    them).  The noise is drawn only where it is used: i.i.d. N(0, σ²) on the candidates has the
    distribution of the full-vocabulary noise restricted to them."""
    if noise_on not in NOISE_ON:
        raise ValueError(f"noise_on must be one of {NOISE_ON}, got {noise_on!r}")
    logits = logits.float()
    log_p = logits.gather(-1, ids) - logits.logsumexp(-1, keepdim=True)  # no B·L·V copy
    scores = log_p if noise_on == "logits" else log_p.exp()
    if variance > 0:
        noise = torch.randn(scores.shape, generator=generator).to(scores.device)
        scores = scores + noise * variance ** 0.5
    return scores


def substitutes(logits: torch.Tensor, replace: torch.Tensor, *, variance: float,
                noise_on: str = "logits", top_k: int = 0, form: str = "mixture",
                generator: torch.Generator | None = None) -> Substitutes:
    """The substitution distribution of every position from the MLM's ``logits (B, L, V)``.

    ``top_k = 0`` keeps the whole vocabulary (dense); otherwise the MLM's ``top_k`` most
    probable words (chosen before the noise, so the noise reorders but never enlarges the
    candidate set) with the noisy distribution renormalised over them.
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    vocab = logits.shape[-1]
    dense = not 0 < top_k < vocab
    if not dense:
        ids = logits.topk(top_k, dim=-1).indices
    else:
        ids = torch.arange(vocab, device=logits.device).expand(*logits.shape[:-1], vocab)
    scores = noisy_scores(logits, ids, variance, noise_on, generator)
    weights = F.softmax(scores, dim=-1)
    if form != "mixture":
        if form == "argmax":
            pick = weights.argmax(-1, keepdim=True)
        else:
            flat = weights.reshape(-1, weights.shape[-1])
            pick = torch.multinomial(flat.cpu(), 1, generator=generator).to(ids.device)
            pick = pick.reshape(*weights.shape[:-1], 1)
        ids = ids.gather(-1, pick)
        weights = torch.ones_like(pick, dtype=weights.dtype)
        dense = False
    return Substitutes(ids=ids, weights=weights, replace=replace, dense=dense)


def replaceable(input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                special_ids: torch.Tensor) -> torch.Tensor:
    """``(B, L)`` bool: real tokens that are not special (``[CLS]``, ``[SEP]``, padding, …)."""
    keep = ~torch.isin(input_ids, special_ids.to(input_ids.device))
    if attention_mask is not None:
        keep = keep & attention_mask.bool()
    return keep
