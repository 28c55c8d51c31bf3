"""Objectives: what is learned from the adversarial sample, beyond its cross-entropy.

An objective adds a loss term computed from the clean and the adversarial forward passes of
any adversary (``advembed train --method freelb --objective carl``).  The training method calls
it once per step, on its final adversarial pass, through :class:`ObjectiveContext`.

* :class:`CARL` (paper 001 §3.2): contrastive loss between clean and adversarial sentence
  representations with two memory banks of negatives of other labels.
* :class:`RAR` (paper 001 §3.3): reconstruct the original tokens from the adversarial token
  states through a small head whose output layer *is* the input embedding matrix.
* :class:`ATCL` (paper 004 §3): FGM on one randomly chosen complete word per sentence, a down-
  weighted adversarial loss and a cosine contrastive loss against in-batch negatives.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from advembed.errors import AdvembedError


@dataclass
class ObjectiveContext:
    """What an objective sees on a training step."""

    model: torch.nn.Module
    inputs: dict[str, Any]
    adversarial: Any  # model outputs on x + δ, with hidden_states
    clean: Any | None  # model outputs on x, with hidden_states (if ``needs_clean``)
    example_index: torch.Tensor | None
    step: int


def sentence_representation(outputs) -> torch.Tensor:
    """Final hidden state of the first token (``[CLS]``/``<s>``), as in papers 001 and 004."""
    return outputs.hidden_states[-1][:, 0]


class Objective:
    """Base class.  ``adversarial_weight`` scales the adversarial cross-entropy."""

    name = "ce"
    needs_clean = False
    needs_example_index = False
    adversarial_weight = 1.0

    def perturbation_mask(self, inputs: dict[str, Any], mask: torch.Tensor) -> torch.Tensor:
        """Where δ may be non-zero (default: every real token)."""
        return mask

    def loss(self, context: ObjectiveContext) -> torch.Tensor:
        raise NotImplementedError

    def attach(self, model: torch.nn.Module) -> None:
        """Register trainable parameters on ``model`` (so any optimiser picks them up)."""

    def learning_rates(self) -> list[tuple[list[torch.nn.Parameter], float]]:
        """Parameters that train at their own learning rate: ``[(params, lr), ...]``.

        :class:`~advembed.trainer.AdvTrainer` moves them into their own optimiser groups (same
        schedule, same weight decay); in your own loop use :func:`param_groups`.
        """
        return []


# ----------------------------------------------------------------------------- CARL


def _pair_scores(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor,
                 tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``a·p/τ`` as ``(B,)`` and ``a·n_j/τ`` as ``(B, m)``."""
    return ((anchor * positive).sum(-1) / tau,
            torch.einsum("bd,bmd->bm", anchor, negatives) / tau)


def carl_contrastive_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negatives: torch.Tensor,
    tau: float,
    *,
    include_positive: bool = False,
) -> torch.Tensor:
    """One direction of eq. 2: ``-log h(a, p) / Σ_j h(a, n_j)`` with ``h = exp(x·y/τ)``.

    ``anchor``, ``positive``: ``(B, d)``; ``negatives``: ``(B, m, d)``.  Computed in log space
    (log-sum-exp), mean over the batch.  Eq. 2's denominator sums the negatives only;
    ``include_positive=True`` adds the positive (the InfoNCE form).
    """
    positive_score, negative_scores = _pair_scores(anchor, positive, negatives, tau)
    if include_positive:
        negative_scores = torch.cat([positive_score[:, None], negative_scores], dim=1)
    return (torch.logsumexp(negative_scores, dim=1) - positive_score).mean()


def carl_nce_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negatives: torch.Tensor,
    tau: float,
    *,
    log_z: float,
    num_data: int,
) -> torch.Tensor:
    """One direction of eq. 2 with the NCE approximation the paper cites (Gutmann & Hyvärinen
    2010; Wu et al. 2018, as in Tian et al. 2020's contrastive distillation).

    The softmax over all ``N = num_data`` training examples is replaced by a binary task:
    with ``x = exp(a·y/τ) / Z`` and the uniform noise distribution ``P_n = 1/N``, a pair is
    "data" with probability ``D(y) = x / (x + m·P_n)``; the loss is
    ``-[log D(p) + Σ_j log(1 − D(n_j))]`` per anchor, mean over the batch.  ``log_z`` is
    ``log Z``, the normalising constant (see :meth:`CARL.loss` for its estimate).  Computed as
    ``log D = logsigmoid(s/τ − log Z − log(m/N))`` and ``log(1 − D) = logsigmoid(−…)``, so it
    never overflows.
    """
    shift = log_z + math.log(negatives.shape[1] / num_data)
    positive_score, negative_scores = _pair_scores(anchor, positive, negatives, tau)
    per_anchor = (F.logsigmoid(positive_score - shift)
                  + F.logsigmoid(shift - negative_scores).sum(1))
    return -per_anchor.mean()


def estimate_log_z(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor,
                   tau: float, num_data: int) -> float:
    """``log Z`` with ``Z = N · mean exp(score/τ)`` over one batch's pairs (Wu et al. 2018's
    Monte-Carlo estimate, fixed afterwards as in Tian et al.'s code)."""
    positive_score, negative_scores = _pair_scores(anchor, positive, negatives, tau)
    scores = torch.cat([positive_score[:, None], negative_scores], dim=1).detach()
    return float(math.log(num_data) + torch.logsumexp(scores.flatten().float(), 0)
                 - math.log(scores.numel()))


class MemoryBank:
    """One row per training example, updated by eq. 5: ``B[i] = M·B[i] + (1 − M)·R_i``.

    A row's first write copies ``R_i`` (no momentum from an empty row).  With ``normalize``
    the rows are re-normalised to unit length after each update (as in the contrastive
    distillation memory CARL adapts).
    """

    def __init__(self, size: int, dim: int, momentum: float = 0.5, normalize: bool = True):
        self.rows = torch.zeros(size, dim)
        self.filled = torch.zeros(size, dtype=torch.bool)
        self.momentum, self.normalize = momentum, normalize

    def update(self, index: torch.Tensor, values: torch.Tensor) -> None:
        index = index.cpu()
        values = values.detach().float().cpu()
        old = self.rows[index]
        new = torch.where(self.filled[index, None], self.momentum * old +
                          (1 - self.momentum) * values, values)
        if self.normalize:
            new = F.normalize(new, dim=-1)
        self.rows[index] = new
        self.filled[index] = True

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        return self.rows[index.cpu()]


class CARL(Objective):
    """CARL (paper 001 §3.2, eq. 2–5): ``L_D = L_D^o + L_D^a`` on top of the adversary's loss.

    R is the final hidden state of the first token.  For each example, ``num_negatives`` (m)
    examples **of other labels** are sampled uniformly from the training set and their
    representations read from the memory banks: ``L_D^a`` anchors on ``R_adv`` against
    ``R`` (positive) and ``B_orig[negatives]``; ``L_D^o`` anchors on ``R`` against ``R_adv``
    and ``B_adv[negatives]``.  ``h(x1, x2) = exp(x1·x2/τ)`` on L2-normalised representations
    (choice: the paper's τ = 0.07 on raw 384-d vectors saturates; the contrastive-distillation
    loss it adapts normalises).  Schedule: nothing before ``warmup_steps`` (the paper's
    "until the model is about to be stable", Table 3); then the banks are filled by the
    training steps themselves — one pass over every training example — and the contrastive
    term is used once every row has been written (``fill_banks`` fills them at once instead).
    Banks are updated on every step after warm-up with momentum M (eq. 5).

    ``nce=True`` replaces eq. 2's softmax by the NCE approximation the paper cites
    (:func:`carl_nce_loss`); ``Z`` is estimated once per direction on the first active step
    and then held fixed.
    """

    name = "carl"
    needs_clean = True
    needs_example_index = True

    def __init__(self, labels: list[int] | torch.Tensor, *, dim: int, tau: float = 0.07,
                 momentum: float = 0.5, num_negatives: int = 64, warmup_steps: int = 0,
                 weight: float = 1.0, normalize: bool = True, include_positive: bool = False,
                 nce: bool = False, seed: int = 0) -> None:
        self.labels = torch.as_tensor(labels, dtype=torch.long).cpu()
        if self.labels.numel() == 0:
            raise AdvembedError("CARL needs the labels of the training examples")
        self.tau, self.num_negatives, self.warmup_steps = tau, num_negatives, warmup_steps
        self.weight, self.normalize, self.include_positive = weight, normalize, include_positive
        self.nce = nce
        self.log_z: dict[str, float] = {}  # NCE's normalising constants, per direction
        self.orig = MemoryBank(len(self.labels), dim, momentum, normalize)
        self.adv = MemoryBank(len(self.labels), dim, momentum, normalize)
        self.generator = torch.Generator().manual_seed(seed)
        self._pools = {}
        for label in self.labels.unique().tolist():
            pool = (self.labels != label).nonzero().flatten()
            if pool.numel() == 0:
                raise AdvembedError("CARL needs at least two labels in the training data")
            self._pools[label] = pool

    @property
    def active(self) -> bool:
        return bool(self.orig.filled.all())

    def sample_negatives(self, labels: torch.Tensor) -> torch.Tensor:
        """``(B, m)`` training-set indices, each of a label different from its row's."""
        labels = labels.cpu()
        negatives = torch.empty(len(labels), self.num_negatives, dtype=torch.long)
        for label in labels.unique().tolist():  # one draw per label present, not per row
            rows = labels == label
            pool = self._pools[label]
            picks = torch.randint(0, pool.numel(), (int(rows.sum()), self.num_negatives),
                                  generator=self.generator)
            negatives[rows] = pool[picks]
        return negatives

    def _prepare(self, representation: torch.Tensor) -> torch.Tensor:
        return F.normalize(representation, dim=-1) if self.normalize else representation

    def _direction(self, key: str, anchor: torch.Tensor, positive: torch.Tensor,
                   negatives: torch.Tensor) -> torch.Tensor:
        if not self.nce:
            return carl_contrastive_loss(anchor, positive, negatives, self.tau,
                                         include_positive=self.include_positive)
        num_data = len(self.labels)
        if key not in self.log_z:
            self.log_z[key] = estimate_log_z(anchor, positive, negatives, self.tau, num_data)
        return carl_nce_loss(anchor, positive, negatives, self.tau, log_z=self.log_z[key],
                             num_data=num_data)

    def loss(self, context: ObjectiveContext) -> torch.Tensor:
        adversarial = sentence_representation(context.adversarial)
        zero = adversarial.sum() * 0.0
        if context.step < self.warmup_steps:
            return zero
        if context.example_index is None:
            raise AdvembedError("CARL needs example indices in each batch ('example_index')")
        index = context.example_index
        clean = self._prepare(sentence_representation(context.clean))
        adversarial = self._prepare(adversarial)
        value = zero
        if self.active:
            negatives = self.sample_negatives(self.labels[index.cpu()])
            device = clean.device
            from_orig = self.orig[negatives.flatten()].view(*negatives.shape, -1).to(device)
            from_adv = self.adv[negatives.flatten()].view(*negatives.shape, -1).to(device)
            l_a = self._direction("a", adversarial, clean, from_orig.to(clean.dtype))
            l_o = self._direction("o", clean, adversarial, from_adv.to(clean.dtype))
            value = self.weight * (l_a + l_o)
        self.orig.update(index, clean)
        self.adv.update(index, adversarial)
        return value

    @torch.no_grad()
    def fill_banks(self, model: torch.nn.Module, batches) -> None:
        """Fill both banks with clean representations of every training example at once."""
        was_training = model.training
        model.eval()
        try:
            for batch in batches:
                index = batch.pop("example_index")
                batch = {k: v for k, v in batch.items() if k != "labels"}
                outputs = model(**batch, output_hidden_states=True)
                representation = self._prepare(sentence_representation(outputs))
                self.orig.update(index, representation)
                self.adv.update(index, representation)
        finally:
            model.train(was_training)


# ----------------------------------------------------------------------------- RAR


class Reconstructor(torch.nn.Module):
    """LayerNorm → GeLU → Linear(hidden → embedding size) → tied Linear(→ vocabulary).

    The last layer's weight is the model's input embedding matrix itself (fetched through
    ``get_input_embeddings()`` at call time, so it is the same storage and gets the gradient);
    only its bias belongs to the reconstructor.
    """

    def __init__(self, hidden_size: int, embedding_size: int, vocab_size: int) -> None:
        super().__init__()
        self.norm = torch.nn.LayerNorm(hidden_size)
        self.dense = torch.nn.Linear(hidden_size, embedding_size)
        self.bias = torch.nn.Parameter(torch.zeros(vocab_size))

    def forward(self, states: torch.Tensor, embedding_weight: torch.Tensor) -> torch.Tensor:
        hidden = self.dense(F.gelu(self.norm(states)))
        return F.linear(hidden, embedding_weight, self.bias)


RECONSTRUCTOR_NAME = "advembed_reconstructor"


def real_token_mask(inputs: dict[str, Any], special_ids: set[int]) -> torch.Tensor:
    """Boolean ``(B, L)``: real (attended) tokens that are not special tokens."""
    ids = inputs["input_ids"]
    mask = inputs.get("attention_mask", torch.ones_like(ids)).bool()
    if special_ids:
        special = torch.tensor(sorted(special_ids), device=ids.device)
        mask = mask & ~torch.isin(ids, special)
    return mask


class RAR(Objective):
    """RAR (paper 001 §3.3, eq. 7): ``w_r · L_R`` from the first step.

    ``L_R`` is the cross-entropy of the reconstructor's prediction from the adversarial final
    token states against the original token ids, on real positions only (no padding, no
    special tokens).  The reconstructor is registered on the model as ``advembed_reconstructor``
    so any optimiser built from ``model.parameters()`` trains it, and it is saved with the
    model (``advembed reconstruct`` uses it).

    ``lr`` (default 1e-3) is the learning rate of the reconstructor's own parameters (LayerNorm,
    the hidden → embedding layer, the output bias); the tied output weight is the embedding
    matrix and trains at the model's rate.  ``lr=None`` trains everything at the model's rate,
    as the paper does (one Adam learning rate, §4.3).  We depart from the paper here on
    measurement: its encoder is ALBERT, whose final states were pre-trained to predict tokens;
    on our sentence-embedding encoder a freshly initialised reconstructor at the fine-tuning
    rate (2e-5) learned little beyond frequent tokens (92.7 % of dev tokens decoded wrong after
    PGD on cr), while at 1e-3 it decodes readable text (21.4 %) at the same test accuracy
    (``docs/rar-samples-cr.md``).
    """

    name = "rar"

    def __init__(self, model: torch.nn.Module, special_ids: set[int], *, weight: float = 0.1,
                 lr: float | None = 1e-3):
        if lr is not None and lr <= 0:
            raise AdvembedError(f"RAR's reconstructor learning rate must be > 0, got {lr}")
        self.weight = weight
        self.lr = lr
        self.special_ids = set(special_ids)
        self.attach(model)

    def learning_rates(self) -> list[tuple[list[torch.nn.Parameter], float]]:
        if self.lr is None:
            return []
        return [(list(self.reconstructor.parameters()), self.lr)]

    def attach(self, model: torch.nn.Module) -> None:
        inner = getattr(model, "module", model)
        existing = getattr(inner, RECONSTRUCTOR_NAME, None)
        if existing is None:
            embeddings = inner.get_input_embeddings()
            config = inner.config
            existing = Reconstructor(config.hidden_size, embeddings.embedding_dim,
                                     embeddings.num_embeddings)
            existing.to(embeddings.weight.device)
            inner.add_module(RECONSTRUCTOR_NAME, existing)
        self.reconstructor = existing

    def logits(self, model: torch.nn.Module, token_states: torch.Tensor) -> torch.Tensor:
        inner = getattr(model, "module", model)
        return self.reconstructor(token_states, inner.get_input_embeddings().weight)

    def loss(self, context: ObjectiveContext) -> torch.Tensor:
        states = context.adversarial.hidden_states[-1]
        mask = real_token_mask(context.inputs, self.special_ids)
        if not mask.any():
            return states.sum() * 0.0
        logits = self.logits(context.model, states[mask])
        return self.weight * F.cross_entropy(logits.float(), context.inputs["input_ids"][mask])


# ----------------------------------------------------------------------------- ATCL

_ALPHA = re.compile(r"^[^\W\d_]{2,}$")  # letters only, at least two of them
_WORDISH = re.compile(r"[^\W_]")  # contains a letter or digit


@dataclass(frozen=True)
class WordFlags:
    """Per vocabulary id: starts a word / continues a word / letters-only (≥ 2 letters)."""

    start: torch.Tensor
    continuation: torch.Tensor
    alpha: torch.Tensor


def word_flags(tokenizer) -> WordFlags:
    """Classify every vocabulary entry for ATCL's complete-word mask.

    Schemes: WordPiece (continuations start with ``##``), byte-level BPE (word starts carry
    ``Ġ``) and SentencePiece (``▁``).  In the marker schemes a piece without the marker that
    holds a letter or digit continues the previous word; punctuation pieces neither start nor
    continue a word.  Special tokens are none of these.
    """
    size = len(tokenizer)
    tokens = tokenizer.convert_ids_to_tokens(list(range(size)))
    special = set(tokenizer.all_special_ids)
    def uses(prefix: str) -> bool:
        return any(t is not None and t.startswith(prefix) for t in tokens)

    # WordPiece if it has "##" pieces, or no marker at all (a vocabulary of whole words).
    marker = None if uses("##") else ("Ġ" if uses("Ġ") else ("▁" if uses("▁") else None))
    wordpiece = marker is None
    start = torch.zeros(size, dtype=torch.bool)
    continuation = torch.zeros(size, dtype=torch.bool)
    alpha = torch.zeros(size, dtype=torch.bool)
    for i, token in enumerate(tokens):
        if token is None or i in special:
            continue
        if wordpiece:
            is_cont = token.startswith("##")
            text = token[2:] if is_cont else token
            is_start = not is_cont
        else:
            has_marker = token.startswith(marker)
            text = token[len(marker):] if has_marker else token
            is_start = has_marker
            is_cont = not has_marker and bool(_WORDISH.search(text))
        start[i], continuation[i] = is_start, is_cont
        alpha[i] = bool(_ALPHA.match(text))
    return WordFlags(start, continuation, alpha)


def complete_word_mask(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, flags: WordFlags
) -> torch.Tensor:
    """Boolean ``(B, L)``: tokens that are a whole word by themselves (ATCL's mask ℳ).

    Kept: letters-only tokens (≥ 2 letters) that start a word and are not followed by a
    continuation piece.  Dropped: special tokens, padding, punctuation and symbols, numbers,
    single characters, and every piece of a word split into sub-words.  A continuation-looking
    piece right after a special token or punctuation starts a word (RoBERTa's first word has
    no ``Ġ``).
    """
    start = flags.start.to(input_ids.device)[input_ids]
    cont = flags.continuation.to(input_ids.device)[input_ids]
    alpha = flags.alpha.to(input_ids.device)[input_ids]
    real = attention_mask.bool()
    after_boundary = torch.ones_like(real)
    after_boundary[:, 1:] = ~(start[:, :-1] | cont[:, :-1])
    word_start = start | (cont & after_boundary)
    followed_by_piece = torch.zeros_like(real)
    followed_by_piece[:, :-1] = cont[:, 1:] & real[:, 1:]
    return real & word_start & ~followed_by_piece & alpha


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
    negative).  Works for sentence-level ``(B, d)`` and flattened token-level ``(B·L, d)``
    representations alike.  Eq. 6's denominator holds the negatives only.
    """
    count = anchor.shape[0]
    if count < 2:
        return anchor.sum() * 0.0
    n = min(num_negatives, count - 1)
    scores = torch.rand(count, count - 1, generator=generator).to(anchor.device)
    picks = scores.argsort(dim=1)[:, :n]  # positions among the other rows
    others = torch.arange(count, device=anchor.device)[None, :].expand(count, -1)
    keep = others != torch.arange(count, device=anchor.device)[:, None]
    other_index = others[keep].view(count, count - 1)
    negative_index = torch.gather(other_index, 1, picks)
    a = F.normalize(anchor.float(), dim=-1)
    p = F.normalize(positive.float(), dim=-1)
    negatives = F.normalize(pool.float(), dim=-1)[negative_index]  # (count, n, d)
    positive_score = (a * p).sum(-1) / tau
    negative_scores = torch.einsum("kd,knd->kn", a, negatives) / tau
    return (torch.logsumexp(negative_scores, dim=1) - positive_score).mean()


class ATCL(Objective):
    """ATCL (paper 004 §3, eq. 1, 5–7): ``L + α·L_adv + β·L_cont``.

    Perturbation: one token per sentence, chosen uniformly among the complete-word tokens
    (``complete_word_mask``), gets an FGM step of norm ε **in the direction that increases the
    loss** (eq. 1 prints ``e − ε·g/‖g‖``; with J the training cost that would lower the loss
    and not be adversarial, so we read it as the usual FGM ascent).  Use with ``--method fgm``
    (its per-example norm over this one-token mask is the token's norm, = ε).  Sentences with
    no complete word are not perturbed.  ``L_cont``: anchor = clean representation, positive =
    adversarial representation, n negatives from the other clean representations in the
    batch (eq. 6, cosine similarity, τ).  Defaults from §5.1: α = β = 0.1, ε = 0.03, τ = 0.07.
    """

    name = "atcl"
    needs_clean = True
    method_defaults = {"fgm": {"epsilon": 0.03}}  # §5.1: ε = 0.03

    def __init__(self, tokenizer, *, alpha: float = 0.1, beta: float = 0.1, tau: float = 0.07,
                 num_negatives: int = 5, seed: int = 0) -> None:
        self.adversarial_weight = alpha
        self.beta, self.tau, self.num_negatives = beta, tau, num_negatives
        self.flags = word_flags(tokenizer)
        self.generator = torch.Generator().manual_seed(seed)

    def candidate_mask(self, inputs: dict[str, Any]) -> torch.Tensor:
        ids = inputs["input_ids"]
        attention = inputs.get("attention_mask", torch.ones_like(ids))
        return complete_word_mask(ids, attention, self.flags)

    def perturbation_mask(self, inputs, mask):
        candidates = self.candidate_mask(inputs)
        scores = torch.rand(candidates.shape, generator=self.generator).to(candidates.device)
        scores = scores.masked_fill(~candidates, -1.0)
        chosen = scores.argmax(dim=1)
        one = torch.zeros_like(candidates)
        one[torch.arange(len(chosen), device=one.device), chosen] = True
        one &= candidates.any(dim=1, keepdim=True)
        return one.unsqueeze(-1).to(mask.dtype) * mask

    def loss(self, context: ObjectiveContext) -> torch.Tensor:
        clean = sentence_representation(context.clean)
        adversarial = sentence_representation(context.adversarial)
        return self.beta * atcl_contrastive_loss(clean, adversarial, clean, self.num_negatives,
                                                 self.tau, generator=self.generator)


OBJECTIVES = ("ce", "carl", "rar", "atcl")

# objective → its options: (CLI flag, keyword, type, default, help)
OBJECTIVE_OPTIONS: dict[str, list[tuple[str, str, type, Any, str]]] = {
    "carl": [
        ("--carl-tau", "tau", float, 0.07, "CARL: temperature τ of h = exp(x·y/τ)"),
        ("--carl-momentum", "momentum", float, 0.5, "CARL: memory-bank momentum M (eq. 5)"),
        ("--carl-negatives", "num_negatives", int, 64, "CARL: negatives m per example"),
        ("--carl-warmup", "warmup", float, 1 / 3,
         "CARL: plain-adversarial steps before the banks fill (< 1: fraction of training)"),
        ("--carl-weight", "weight", float, 1.0, "CARL: weight of L_D"),
        ("--carl-nce", "nce", bool, False,
         "CARL: approximate eq. 2's softmax by noise-contrastive estimation"),
    ],
    "rar": [
        ("--rar-weight", "weight", float, 0.1, "RAR: weight w_r of L_R"),
        ("--rar-lr", "lr", float, 1e-3,
         "RAR: peak learning rate of the reconstructor's own parameters"),
    ],
    "atcl": [
        ("--atcl-alpha", "alpha", float, 0.1, "ATCL: weight α of the adversarial loss"),
        ("--atcl-beta", "beta", float, 0.1, "ATCL: weight β of the contrastive loss"),
        ("--atcl-tau", "tau", float, 0.07, "ATCL: temperature τ"),
        ("--atcl-negatives", "num_negatives", int, 5, "ATCL: negatives n from the batch"),
    ],
}


def objective_settings(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Every option of objective ``name``: its defaults updated with ``options`` (validated);
    runs record this in ``config.json`` as ``objective_settings``."""
    if name == "ce":
        return {}
    if name not in OBJECTIVE_OPTIONS:
        raise AdvembedError(f"unknown objective '{name}'; choose one of {', '.join(OBJECTIVES)}")
    known = {keyword: default for _, keyword, _, default, _ in OBJECTIVE_OPTIONS[name]}
    for keyword in options:
        if keyword not in known:
            raise AdvembedError(f"option '{keyword}' does not apply to objective '{name}'")
    settings = known | {k: v for k, v in options.items() if v is not None}
    for keyword, value in settings.items():
        if value is not None and value < 0:
            raise AdvembedError(f"objective option '{keyword}' must be >= 0, got {value}")
    return settings


def build_objective(
    name: str,
    model: torch.nn.Module,
    *,
    tokenizer=None,
    train_labels: list[int] | None = None,
    total_steps: int | None = None,
    seed: int = 0,
    **options: Any,
) -> Objective | None:
    """Build objective ``name`` (``ce`` = none: plain adversarial cross-entropy)."""
    if name == "ce":
        if options:
            raise AdvembedError(f"option {next(iter(options))} needs an --objective")
        return None
    settings = objective_settings(name, options)
    if name == "rar":
        if tokenizer is None:
            raise AdvembedError("objective rar needs the tokenizer (its special tokens)")
        return RAR(model, set(tokenizer.all_special_ids), weight=settings["weight"],
                   lr=settings["lr"])
    if name == "atcl":
        if tokenizer is None:
            raise AdvembedError("objective atcl needs the tokenizer (its complete-word mask)")
        return ATCL(tokenizer, alpha=settings["alpha"], beta=settings["beta"],
                    tau=settings["tau"], num_negatives=int(settings["num_negatives"]), seed=seed)
    if train_labels is None:
        raise AdvembedError("objective carl needs the training labels (for its memory banks)")
    warmup = settings.pop("warmup")
    if warmup < 1:
        warmup = int(round(warmup * (total_steps or 0)))
    inner = getattr(model, "module", model)
    return CARL(train_labels, dim=inner.config.hidden_size, tau=settings["tau"],
                nce=bool(settings["nce"]),
                momentum=settings["momentum"], num_negatives=int(settings["num_negatives"]),
                warmup_steps=int(warmup), weight=settings["weight"], seed=seed)


def param_groups(
    model: torch.nn.Module, lr: float, objective: Objective | None = None
) -> list[dict[str, Any]]:
    """Optimiser groups for your own loop: every trainable parameter at ``lr``, except those the
    objective trains at their own rate (``torch.optim.AdamW(param_groups(model, 2e-5, rar))``).
    """
    special = objective.learning_rates() if objective is not None else []
    taken = {id(p) for params, _ in special for p in params}
    groups = [{"params": [p for p in model.parameters() if p.requires_grad and id(p) not in taken],
               "lr": lr}]
    groups += [{"params": params, "lr": rate} for params, rate in special]
    return groups


__all__ = [
    "ATCL",
    "CARL",
    "OBJECTIVES",
    "RAR",
    "MemoryBank",
    "Objective",
    "param_groups",
    "ObjectiveContext",
    "Reconstructor",
    "atcl_contrastive_loss",
    "build_objective",
    "carl_contrastive_loss",
    "carl_nce_loss",
    "complete_word_mask",
    "word_flags",
]
