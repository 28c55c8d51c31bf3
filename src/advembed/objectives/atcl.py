"""ATCL (paper 004 §3, eq. 1, 5–7): FGM on one randomly chosen complete word per sentence, a
down-weighted adversarial loss and a cosine contrastive loss against in-batch negatives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from advembed.distributed import process_rank
from advembed.errors import AdvembedError
from advembed.objectives.base import (
    BuildContext,
    Objective,
    ObjectiveContext,
    input_token_states,
)
from advembed.settings import Settings, setting
from advembed.words import complete_word_mask, word_flags


@dataclass(frozen=True)
class ATCLSettings(Settings):
    """α, β, τ and n from paper 004 §5.1 (its ε = 0.03 is FGM's, see ``method_defaults``)."""

    owner = "objective 'atcl'"
    alpha: float = setting(0.1, "--atcl-alpha", "ATCL: weight α of the adversarial loss",
                           minimum=0, paper="paper 004 §5.1")
    beta: float = setting(0.1, "--atcl-beta", "ATCL: weight β of the contrastive loss", minimum=0,
                          paper="paper 004 §5.1")
    tau: float = setting(0.07, "--atcl-tau", "ATCL: temperature τ", minimum=0,
                         exclusive_minimum=True, paper="paper 004 §5.1")
    num_negatives: int = setting(5, "--atcl-negatives", "ATCL: negatives n from the batch",
                                 minimum=1)


def atcl_contrastive_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    pool: torch.Tensor,
    num_negatives: int,
    tau: float = 0.07,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Eq. 6 with cosine similarity, mean over anchors.

    Row k's anchor is ``anchor[k]``, its positive ``positive[k]`` and its n negatives are
    sampled without replacement from ``pool`` rows other than k (the anchor itself is never a
    negative): :func:`token_contrastive_loss` with anchor k at row k of the pool.  Eq. 6's
    denominator holds the negatives only.
    """
    own = torch.arange(anchor.shape[0], device=anchor.device)
    return token_contrastive_loss(anchor, positive, pool, own, num_negatives, tau,
                                  generator=generator)


def _info_nce(anchor, positive, pool, negative_index, tau: float) -> torch.Tensor:
    """``mean_k [log Σ_j exp(cos(a_k, n_kj)/τ) − cos(a_k, p_k)/τ]`` with
    ``n_kj = pool[negative_index[k, j]]``: eq. 6, negatives only in the denominator."""
    a = F.normalize(anchor.float(), dim=-1)
    p = F.normalize(positive.float(), dim=-1)
    negatives = F.normalize(pool.float(), dim=-1)[negative_index]  # (count, n, d)
    positive_score = (a * p).sum(-1) / tau
    negative_scores = torch.einsum("kd,knd->kn", a, negatives) / tau
    return (torch.logsumexp(negative_scores, dim=1) - positive_score).mean()


def token_contrastive_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    pool: torch.Tensor,
    own: torch.Tensor,
    num_negatives: int,
    tau: float = 0.07,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Eq. 6 at token level: anchor k is the clean state of the perturbed token, its positive
    the adversarial state of the same token, its n negatives sampled without replacement from
    the clean states of the batch's other real tokens (``pool``), never row ``own[k]`` (the
    anchor itself).  Cosine similarity, τ, negatives only in the denominator; mean over
    anchors.  The paper disagrees with itself on the pool: eq. 6's text takes
    ``NB_kj ≡ H(S) − {h_kj}`` (every other token state, its own sentence's included), Figure
    1's caption "randomly sampled negatives from other sentences in the batch"; we follow the
    equation (choice), which also works for a batch of one long block (language modelling).
    A pool of n rows or fewer gives each anchor all the others (n shrinks); a pool of one row
    has no negative and the term is 0 (:class:`ATCL` warns once: a sentence-level batch of
    one)."""
    count, size = anchor.shape[0], pool.shape[0]
    if count == 0 or size < 2:
        return pool.sum() * 0.0
    n = min(num_negatives, size - 1)
    scores = torch.rand(count, size, generator=generator).to(anchor.device)
    scores[torch.arange(count, device=anchor.device), own] = 2.0  # never picked
    return _info_nce(anchor, positive, pool, scores.argsort(dim=1)[:, :n], tau)


class ATCL(Objective):
    """``L + α·L_adv + β·L_cont``.

    Perturbation: one token per sentence, chosen uniformly among the complete-word tokens
    (``complete_word_mask``), gets an FGM step of norm ε **in the direction that increases the
    loss** (eq. 1 prints ``e − ε·g/‖g‖``; with J the training cost that would lower the loss
    and not be adversarial, so we read it as the usual FGM ascent).  Use with ``--method fgm``
    (its per-example norm over this one-token mask is the token's norm, = ε; composed with FGM
    its ε defaults to the paper's 0.03).  Sentences with no complete word are not perturbed.
    ``L_cont``: anchor = clean representation, positive = adversarial representation, n
    negatives from the other clean representations in the batch (eq. 6, cosine similarity, τ);
    only the sentences that were perturbed are anchors (the others serve as negatives), and
    ``L_cont`` is the *mean* over anchors where eq. 5 sums (choice: β then does not grow with
    the batch).
    On a token-level task (``--task lm``, ``--task translation``) the representations are eq.
    6's ``h``: the final states of the perturbed token itself (clean and adversarial; for
    translation the encoder's — choice: the pre-softmax state eq. 6 names is, in an
    encoder–decoder, a decoder state, with no position of the source word —
    :func:`~advembed.objectives.base.input_token_states`), with negatives drawn from the other
    real tokens of the batch (:func:`token_contrastive_loss`).  Only the perturbed token is an
    anchor (choice): eq. 5 sums "over h_kj ∈ H(S)", which could be read as every token being
    one, but the text names "the representation of the original candidate h_kj as the anchor",
    and only that token has an adversarial twin to be its positive.  On ``--task lm`` a row is a
    block of the token stream (128 tokens, about 3.9 sentences of ``bbc-lm``), and one word is
    perturbed per row (choice): the paper perturbs one per sentence, so this perturbs about a
    quarter as many words, keeping one anchor and the FGM norm of one token per row.
    The batch is the process's own micro-batch (choice): under DDP or gradient accumulation
    the negatives come from the examples this forward pass sees, not from the whole global
    batch — n = 5 of a micro-batch of 16 or more is the paper's setting either way.  On a
    token-level task the trainer weights each micro-batch's whole loss, ``β·L_cont`` included,
    by its share of the step's target tokens (exact for the token losses; ``L_cont``, a mean
    over the micro-batch's anchors, is thereby weighted by tokens, not by anchors).
    ``cut_stream``: the rows are blocks cut from a token stream (``--task lm``), whose edges
    may fall inside a word (:func:`complete_word_mask`'s ``cut_edges``).
    """

    name = "atcl"
    Settings = ATCLSettings
    paper = "paper 004 §3 (eq. 1, 5–7)"
    summary = ("perturbs **one** randomly chosen complete word per sentence (no special tokens, "
               "punctuation, numbers, single characters or sub-word pieces), then "
               "`L + α·L_adv + β·L_cont` with a cosine contrastive loss against n in-batch "
               "negatives")
    needs_clean = True
    method_defaults = {"fgm": {"epsilon": 0.03}}  # §5.1: ε = 0.03

    def __init__(self, tokenizer, *, settings: ATCLSettings | None = None, seed: int = 0,
                 token_level: bool = False, cut_stream: bool = False, **options) -> None:
        self.settings = ATCLSettings.from_options(options, settings)
        self.adversarial_weight = self.settings.alpha
        self.flags = word_flags(tokenizer)
        self.generator = torch.Generator().manual_seed(seed + process_rank())  # per rank
        self.token_level = token_level
        self.cut_stream = cut_stream
        self._warned_alone = False
        self.chosen: tuple[torch.Tensor, torch.Tensor] | None = None  # (position, has a word)

    @classmethod
    def build(cls, settings: ATCLSettings, context: BuildContext) -> ATCL:
        if context.tokenizer is None:
            raise AdvembedError("objective atcl needs the tokenizer (its complete-word mask)")
        return cls(context.tokenizer, settings=settings, seed=context.seed,
                   token_level=context.token_level, cut_stream=context.cut_stream)

    def state_dict(self):
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state):
        self.generator.set_state(state["generator"])

    def candidate_mask(self, inputs: dict[str, Any]) -> torch.Tensor:
        ids = inputs["input_ids"]
        attention = inputs.get("attention_mask", torch.ones_like(ids))
        return complete_word_mask(ids, attention, self.flags, cut_edges=self.cut_stream)

    def perturbation_mask(self, inputs, mask):
        candidates = self.candidate_mask(inputs)
        scores = torch.rand(candidates.shape, generator=self.generator).to(candidates.device)
        scores = scores.masked_fill(~candidates, -1.0)
        chosen = scores.argmax(dim=1)
        one = torch.zeros_like(candidates)
        one[torch.arange(len(chosen), device=one.device), chosen] = True
        has_word = candidates.any(dim=1)
        one &= has_word.unsqueeze(1)
        self.chosen = (chosen, has_word)
        return one.unsqueeze(-1).to(mask.dtype) * mask

    def loss(self, context: ObjectiveContext) -> torch.Tensor:
        s = self.settings
        if self.token_level:
            return s.beta * self._token_level_loss(context)
        clean = self.representation(context.clean, context.inputs)
        adversarial = self.representation(context.adversarial, context.inputs)
        rows = (self.chosen[1].nonzero().squeeze(1) if self.chosen is not None
                else torch.arange(clean.shape[0]))  # the perturbed sentences
        rows = rows.to(clean.device)
        if clean.shape[0] < 2 and s.beta and not self._warned_alone:
            import warnings

            warnings.warn("ATCL: a batch of one sentence has no in-batch negative, so β·L_cont "
                          "is 0 for it (use a batch size of 2 or more; a last partial batch "
                          "of one costs one step's term)", stacklevel=2)
            self._warned_alone = True
        return s.beta * token_contrastive_loss(clean[rows], adversarial[rows], clean, rows,
                                               s.num_negatives, s.tau, generator=self.generator)

    def _token_level_loss(self, context: ObjectiveContext) -> torch.Tensor:
        """Token-level tasks (language modelling): eq. 6 on the final states ``h`` of the
        perturbed token, before the output layer."""
        if self.chosen is None:
            raise AdvembedError("ATCL's token-level loss needs its perturbation mask first")
        position, has_word = self.chosen
        clean = input_token_states(context.clean)
        adversarial = input_token_states(context.adversarial)
        real = context.inputs.get("attention_mask", torch.ones(clean.shape[:2])).bool()
        rows = has_word.nonzero().squeeze(1)
        flat = torch.full(real.shape, -1, dtype=torch.long, device=clean.device)
        flat[real] = torch.arange(int(real.sum()), device=clean.device)
        own = flat[rows, position[rows]]
        return token_contrastive_loss(
            clean[rows, position[rows]], adversarial[rows, position[rows]], clean[real], own,
            self.settings.num_negatives, self.settings.tau, generator=self.generator)
