"""CARL (paper 001 §3.2, eq. 2–5): contrastive learning between clean and adversarial
representations, with negatives of other labels read from two memory banks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from advembed.distributed import gather_rows, logsumexp_and_count, process_rank
from advembed.errors import AdvembedError
from advembed.modes import eval_mode
from advembed.objectives.base import BuildContext, Objective, ObjectiveContext
from advembed.settings import Settings, setting


@dataclass(frozen=True)
class CARLSettings(Settings):
    """τ and M from paper 001 §4.3; the warm-up stands for its "until the model is about to
    be stable" (Table 3), counted in optimiser steps.  m = 64 negatives is ours, not the
    paper's 16,000 (20,000 for YelpP): drawn with replacement from the rows of other labels,
    it keeps a CPU step cheap; ``--carl-negatives`` sets the paper's value.  Eq. 2 is then
    computed exactly over the m drawn negatives; the paper "uses" NCE to approximate its
    softmax, which its m = 16,000 needs and ours does not (``nce`` gives it, with Z estimated
    once per direction)."""

    owner = "objective 'carl'"
    tau: float = setting(0.07, "--carl-tau", "CARL: temperature τ of h = exp(x·y/τ)", minimum=0,
                         exclusive_minimum=True, paper="paper 001 §4.3")
    momentum: float = setting(0.5, "--carl-momentum", "CARL: memory-bank momentum M (eq. 5)",
                              minimum=0, maximum=1, paper="paper 001 §4.3")
    num_negatives: int = setting(64, "--carl-negatives", "CARL: negatives m per example",
                                 minimum=1)
    warmup: float = setting(1 / 3, "--carl-warmup", "CARL: steps before the banks start "
                            "filling (< 1: a fraction of training); L_D starts once they are "
                            "full, within the first whole epoch after the one the warm-up ends "
                            "in, so Table 3's step counts (the step L_D starts) less one or two "
                            "epochs' steps", minimum=0,
                            paper="paper 001 Table 3 (the step L_D starts, less the bank filling)")
    weight: float = setting(1.0, "--carl-weight", "CARL: weight of L_D", minimum=0)
    nce: bool = setting(False, "--carl-nce", "CARL: approximate eq. 2's softmax by "
                        "noise-contrastive estimation")
    normalize: bool = setting(True, "--carl-normalize", "CARL: L2-normalise representations "
                              "and bank rows")
    include_positive: bool = setting(False, "--carl-include-positive", "CARL: add the positive "
                                     "to eq. 2's denominator (InfoNCE)")


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
    Monte-Carlo estimate, fixed afterwards as in Tian et al.'s code).  Under DDP the mean is
    over the pairs of every process (the global batch), so all replicas hold the same Z."""
    positive_score, negative_scores = _pair_scores(anchor, positive, negatives, tau)
    scores = torch.cat([positive_score[:, None], negative_scores], dim=1).detach()
    total, count = logsumexp_and_count(scores)
    return float(math.log(num_data) + total - math.log(count))


def first_occurrences(index: torch.Tensor) -> torch.Tensor:
    """Positions of the first occurrence of each value of ``index``, in order: a row given
    twice in one update takes its first value, not whichever write lands last (undefined on
    GPU).  Under DDP that happens when the training set is smaller than one global batch:
    accelerate then pads the batch with the epoch's first examples."""
    if index.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    _, inverse = torch.unique(index, return_inverse=True)
    positions = torch.arange(index.numel())
    first = torch.full((int(inverse.max()) + 1,), index.numel(), dtype=torch.long)
    first = first.scatter_reduce(0, inverse, positions, reduce="amin")
    return first.sort().values


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
        """Eq. 5 on rows ``index``; a row whose new value is not finite (from a step the
        non-finite guard or the fp16 scaler skips) is left as it was, so one bad step cannot
        poison the bank for the rest of training."""
        finite = torch.isfinite(values.detach()).all(-1).cpu()
        index = index.cpu()[finite]
        values = values.detach().float().cpu()[finite]
        first = first_occurrences(index)  # DDP pads the last batch by repeating examples
        index, values = index[first], values[first]
        old = self.rows[index]
        new = torch.where(self.filled[index, None], self.momentum * old +
                          (1 - self.momentum) * values, values)
        if self.normalize:
            new = F.normalize(new, dim=-1)
        self.rows[index] = new
        self.filled[index] = True

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        return self.rows[index.cpu()]


def warmup_steps(warmup: float, total_steps: int | None) -> int:
    """CARL's warm-up in steps: ``warmup`` itself when >= 1 (or 0), else that fraction of
    ``total_steps``."""
    if warmup == 0 or warmup >= 1:
        return int(warmup)
    if total_steps is None:
        raise AdvembedError(
            f"CARL's warm-up (--carl-warmup {warmup:g}) is a fraction of training: give "
            "total_steps, or the warm-up as a number of steps (>= 1, or 0)")
    return int(round(warmup * total_steps))


class CARL(Objective):
    """``L_D = L_D^o + L_D^a`` on top of the adversary's loss.

    R is the task's representation (the final hidden state of the first token for
    classification).  For each example, ``num_negatives`` (m) examples **of other labels** are
    sampled uniformly from the training set and their representations read from the memory
    banks: ``L_D^a`` anchors on ``R_adv`` against ``R`` (positive) and ``B_orig[negatives]``;
    ``L_D^o`` anchors on ``R`` against ``R_adv`` and ``B_adv[negatives]``.
    ``h(x1, x2) = exp(x1·x2/τ)`` on L2-normalised representations (choice: the paper's τ = 0.07
    on raw 384-d vectors saturates; the contrastive-distillation loss it adapts normalises).
    Schedule: nothing before the warm-up (the paper's "until the model is about to be stable",
    Table 3); then the banks are filled by the training steps themselves — one pass over every
    training example — and the contrastive term is used once every row has been written
    (``fill_banks`` fills them at once instead).  Banks are updated on every step after warm-up
    with momentum M (eq. 5).  Under DDP the rows of the whole global batch are gathered from
    every process before the update, so every replica's banks fill and stay identical; each
    process samples the negatives of its own examples.

    ``nce`` replaces eq. 2's softmax by the NCE approximation the paper cites
    (:func:`carl_nce_loss`); ``Z`` is estimated once per direction on the first active step
    and then held fixed.
    """

    name = "carl"
    Settings = CARLSettings
    paper = "paper 001 §3.2 (eq. 2–5)"
    summary = ("`L_D = L_D^o + L_D^a`: contrastive loss between the clean and adversarial "
               "representations with m negatives **of other labels** from two memory banks "
               "(momentum M, eq. 5), after a warm-up, once the banks have seen every training "
               "example; `--carl-nce` replaces the softmax by noise-contrastive estimation")
    needs_clean = True
    needs_example_index = True

    def __init__(self, labels: list[int] | torch.Tensor, *, dim: int,
                 settings: CARLSettings | None = None, total_steps: int | None = None,
                 seed: int = 0, **options) -> None:
        s = self.settings = CARLSettings.from_options(options, settings)
        self.warmup_steps = warmup_steps(s.warmup, total_steps)
        self.labels = torch.as_tensor(labels, dtype=torch.long).cpu()
        if self.labels.numel() == 0:
            raise AdvembedError("CARL needs the labels of the training examples")
        self.log_z: dict[str, float] = {}  # NCE's normalising constants, per direction
        self.orig = MemoryBank(len(self.labels), dim, s.momentum, s.normalize)
        self.adv = MemoryBank(len(self.labels), dim, s.momentum, s.normalize)
        self.generator = torch.Generator().manual_seed(seed + process_rank())  # per rank
        self._pools = {}
        for label in self.labels.unique().tolist():
            pool = (self.labels != label).nonzero().flatten()
            if pool.numel() == 0:
                raise AdvembedError("CARL needs at least two labels in the training data")
            self._pools[label] = pool

    @classmethod
    def build(cls, settings: CARLSettings, context: BuildContext) -> CARL:
        if context.train_labels is None:
            raise AdvembedError("objective carl needs the training labels (for its memory "
                                "banks)")
        inner = getattr(context.model, "module", context.model)
        return cls(context.train_labels, dim=inner.config.hidden_size, settings=settings,
                   total_steps=context.total_steps, seed=context.seed)

    def state_dict(self):
        return {"orig": self.orig.rows, "orig_filled": self.orig.filled, "adv": self.adv.rows,
                "adv_filled": self.adv.filled, "generator": self.generator.get_state(),
                "log_z": dict(self.log_z)}

    def load_state_dict(self, state):
        self.orig.rows, self.orig.filled = state["orig"].clone(), state["orig_filled"].clone()
        self.adv.rows, self.adv.filled = state["adv"].clone(), state["adv_filled"].clone()
        self.generator.set_state(state["generator"])
        self.log_z = dict(state["log_z"])

    def schedule_warning(self, steps_per_epoch: int, total_steps: int) -> str | None:
        """L_D acts once both banks hold a row of every training example.  Rows are written
        from the end of the warm-up on; the examples an epoch showed before the warm-up ended
        come back at random points of the next epoch, so the banks are certainly full only at
        the end of the first whole epoch after the one the warm-up ends in (step
        ``(⌈warm-up / epoch⌉ + 1) · epoch``).  A run no longer than that may be its method
        alone, with a clean pass wasted: warned."""
        epochs_of_warmup = math.ceil(self.warmup_steps / steps_per_epoch)
        full = (epochs_of_warmup + 1) * steps_per_epoch
        if full < total_steps:
            return None
        return (f"CARL's contrastive term may never act: it acts once the memory banks hold "
                f"every training example, filled from the end of the warm-up "
                f"({self.warmup_steps} steps, --carl-warmup {self.settings.warmup:g}) on, which "
                f"only the end of the next whole epoch ({steps_per_epoch} steps each) "
                f"guarantees, at step {full}, and the run has {total_steps}; lower "
                "--carl-warmup or train longer")

    @property
    def active(self) -> bool:
        return bool(self.orig.filled.all() and self.adv.filled.all())

    def sample_negatives(self, labels: torch.Tensor) -> torch.Tensor:
        """``(B, m)`` training-set indices, each of a label different from its row's."""
        labels = labels.cpu()
        m = self.settings.num_negatives
        negatives = torch.empty(len(labels), m, dtype=torch.long)
        for label in labels.unique().tolist():  # one draw per label present, not per row
            rows = labels == label
            pool = self._pools[label]
            picks = torch.randint(0, pool.numel(), (int(rows.sum()), m), generator=self.generator)
            negatives[rows] = pool[picks]
        return negatives

    def _prepare(self, representation: torch.Tensor) -> torch.Tensor:
        return F.normalize(representation, dim=-1) if self.settings.normalize else representation

    def _direction(self, key: str, anchor: torch.Tensor, positive: torch.Tensor,
                   negatives: torch.Tensor) -> torch.Tensor:
        s = self.settings
        if not s.nce:
            return carl_contrastive_loss(anchor, positive, negatives, s.tau,
                                         include_positive=s.include_positive)
        num_data = len(self.labels)
        if key not in self.log_z:
            self.log_z[key] = estimate_log_z(anchor, positive, negatives, s.tau, num_data)
        return carl_nce_loss(anchor, positive, negatives, s.tau, log_z=self.log_z[key],
                             num_data=num_data)

    def loss(self, context: ObjectiveContext) -> torch.Tensor:
        adversarial = self.representation(context.adversarial, context.inputs)
        zero = adversarial.sum() * 0.0
        if context.step < self.warmup_steps:
            return zero
        if context.example_index is None:
            raise AdvembedError("CARL needs example indices in each batch ('example_index'): "
                                "encode with EncodedDataset(..., with_index=True)")
        index = context.example_index
        clean = self._prepare(self.representation(context.clean, context.inputs))
        adversarial = self._prepare(adversarial)
        value = zero
        if self.active:
            negatives = self.sample_negatives(self.labels[index.cpu()])
            device = clean.device
            from_orig = self.orig[negatives.flatten()].view(*negatives.shape, -1).to(device)
            from_adv = self.adv[negatives.flatten()].view(*negatives.shape, -1).to(device)
            l_a = self._direction("a", adversarial, clean, from_orig.to(clean.dtype))
            l_o = self._direction("o", clean, adversarial, from_adv.to(clean.dtype))
            value = self.settings.weight * (l_a + l_o)
        # Under DDP every process writes the rows of the whole global batch, so the banks stay
        # identical across replicas (and equal to a one-process run over the same batches).
        self.remember(gather_rows(index.to(clean.device)), gather_rows(clean),
                      gather_rows(adversarial))
        return value

    def remember(self, rows: torch.Tensor, clean: torch.Tensor,
                 adversarial: torch.Tensor) -> None:
        """Eq. 5 on both banks for the same rows: a row whose clean *or* adversarial value is
        not finite is left out of both, so the banks fill together and ``active`` never uses
        an adversarial row that was never written (a zero vector as a negative)."""
        finite = (torch.isfinite(clean.detach()).all(-1) &
                  torch.isfinite(adversarial.detach()).all(-1))
        self.orig.update(rows[finite], clean[finite])
        self.adv.update(rows[finite], adversarial[finite])

    @torch.no_grad()
    def fill_banks(self, model: torch.nn.Module, batches) -> None:
        """Fill both banks with clean representations of every training example at once."""
        with eval_mode(model):
            for batch in batches:
                index = batch.pop("example_index")
                batch = {k: v for k, v in batch.items() if k != "labels"}
                outputs = model(**batch, output_hidden_states=True)
                representation = self._prepare(self.representation(outputs, batch))
                self.orig.update(index, representation)
                self.adv.update(index, representation)
