"""Robustness under white-box k-PGD attacks in embedding space, and representation drift.

For each ε the attack runs k projected steps against the gold label (L2 per example or L∞)
with step size α (``--adv-alpha``, else ``alpha_ratio · ε``); it reports accuracy on the
attacked inputs and, as in paper 001's Table 4, the mean cosine similarity and Euclidean
distance between each example's clean and adversarial representation (the task's: the final
hidden state of the first token for classification).  ε = 0 is no attack: accuracy is the
clean accuracy and the drift is zero.

Accuracy under attack at ε counts an example as broken when the attack at ε *or at any
smaller ε in the list* flipped it: a δ found for a smaller ball also lies in the larger one, so
the reported accuracy is that of the strongest attack found, and it never increases with ε.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from advembed.adapter import EmbeddingAdapter
from advembed.adversaries import PGD
from advembed.evaluation.loop import device_of, encoded_batches, eval_mode, progress_bar, to_device
from advembed.evaluation.settings import PGDAttackSettings
from advembed.tasks import Task, get_task


@dataclass
class PGDResult:
    epsilon: float
    accuracy: float
    cosine: float
    euclidean: float
    examples: int
    seconds: float

    def as_dict(self) -> dict[str, float]:
        return {"epsilon": self.epsilon, "accuracy": self.accuracy, "cosine": self.cosine,
                "euclidean": self.euclidean, "examples": self.examples,
                "seconds": round(self.seconds, 2)}


@dataclass
class _BatchOutcome:
    """Per example of one batch at one ε: correct under attack (gold label), drift."""

    wrong: torch.Tensor
    cosine: torch.Tensor
    distance: torch.Tensor


def attack_batch(adapter: EmbeddingAdapter, task: Task, batch: dict, epsilon: float,
                 settings: PGDAttackSettings) -> _BatchOutcome:
    """k-PGD at ``epsilon`` on one batch (ε = 0: no attack) and its drift."""
    with torch.no_grad():
        embeds = adapter.embed(batch)
        clean = adapter.forward(batch, output_hidden_states=True)
    mask = adapter.mask(batch, embeds)
    if epsilon > 0:
        adversary = PGD(epsilon=epsilon, alpha=settings.step_size(epsilon), steps=settings.steps,
                        norm=settings.norm)
        delta = adversary.find(lambda d: adapter.forward(batch, d).loss, embeds, mask)
    else:
        delta = torch.zeros_like(embeds)
    with torch.no_grad():
        attacked = adapter.forward(batch, delta, output_hidden_states=True)
    r_clean = task.representation(clean, batch).float()
    r_adv = task.representation(attacked, batch).float()
    decided = task.decision_logits(attacked.logits).argmax(-1)  # QA matching: its threshold
    return _BatchOutcome(wrong=(decided != batch["labels"]).cpu(),
                         cosine=F.cosine_similarity(r_clean, r_adv, dim=-1),
                         distance=(r_clean - r_adv).norm(dim=-1))


def pgd_robustness(
    model: torch.nn.Module,
    tokenizer,
    examples: Sequence,
    settings: PGDAttackSettings | None = None,
    *,
    task: Task | None = None,
    batch_size: int = 32,
    max_length: int = 128,
    progress: bool = True,
    indices: Sequence[int] | None = None,
    on_record=None,
) -> tuple[list[PGDResult], list[dict]]:
    """Attack every example at every ε; return per-ε results and per-example records.

    Batch by batch, each batch at every ε in increasing order (an example broken at a smaller ε
    stays broken), so an example's record is complete when its batch is: ``on_record``
    receives it then (numbered by ``indices``, default 0, 1, …)."""
    settings = settings or PGDAttackSettings()
    task = task or get_task()
    adapter = EmbeddingAdapter(model)
    device = device_of(model)
    batches = encoded_batches(task, examples, tokenizer, batch_size=batch_size,
                              max_length=max_length)
    indices = list(range(len(examples)) if indices is None else indices)
    epsilons = sorted(settings.epsilon)
    seconds = dict.fromkeys(epsilons, 0.0)
    records, offset = [], 0
    with eval_mode(model), progress_bar(progress, total=len(epsilons) * len(batches),
                                        desc="pgd attack", unit="batch") as bar:
        for batch in batches:
            batch = to_device(batch, device)
            rows = [{"index": i} for i in indices[offset:offset + len(batch["input_ids"])]]
            broken = torch.zeros(len(rows), dtype=torch.bool)
            for epsilon in epsilons:
                started = time.perf_counter()
                outcome = attack_batch(adapter, task, batch, epsilon, settings)
                broken |= outcome.wrong
                for j, row in enumerate(rows):
                    row[f"eps={epsilon:g}"] = {"correct": bool(~broken[j]),
                                               "cosine": float(outcome.cosine[j]),
                                               "euclidean": float(outcome.distance[j])}
                seconds[epsilon] += time.perf_counter() - started
                bar.update(1)
            for row in rows:
                records.append(row)
                if on_record is not None:
                    on_record(row)
            offset += len(rows)
    return pgd_results(records, epsilons, seconds), records


def pgd_results(records: Sequence[dict], epsilons: Sequence[float],
                seconds: dict[float, float] | None = None) -> list[PGDResult]:
    """Accuracy under attack and mean drift per ε, from the per-example records."""
    results = []
    count = len(records)
    for epsilon in sorted(epsilons):
        rows = [record[f"eps={epsilon:g}"] for record in records]
        results.append(PGDResult(
            epsilon, sum(r["correct"] for r in rows) / count,
            sum(r["cosine"] for r in rows) / count, sum(r["euclidean"] for r in rows) / count,
            count, (seconds or {}).get(epsilon, 0.0)))
    return results
