"""Robustness under white-box k-PGD attacks in embedding space, and representation drift.

For each ε the attack runs k projected steps against the gold label (L2 per example or L∞)
with step size ``alpha_ratio · ε``; it reports accuracy on the attacked inputs and, as in
paper 001's Table 4, the mean cosine similarity and Euclidean distance between each example's
clean and adversarial sentence representation (final hidden state of the first token).
ε = 0 is no attack: accuracy is the clean accuracy and the drift is zero.

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
from transformers import DataCollatorWithPadding

from advembed.adapter import EmbeddingAdapter
from advembed.adversaries import PGD
from advembed.encoding import EncodedDataset


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


def pgd_robustness(
    model: torch.nn.Module,
    tokenizer,
    examples: Sequence,
    epsilons: Sequence[float] = (0.02, 0.075, 0.1),
    *,
    steps: int = 3,
    alpha_ratio: float = 0.5,
    norm: str = "l2",
    batch_size: int = 32,
    max_length: int = 128,
    progress: bool = True,
) -> tuple[list[PGDResult], list[dict]]:
    """Attack every example at every ε; return per-ε results and per-example records."""
    adapter = EmbeddingAdapter(model)
    device = next(model.parameters()).device
    encoded = EncodedDataset(examples, tokenizer, max_length=max_length)
    collate = DataCollatorWithPadding(tokenizer)
    batches = [collate([encoded[i] for i in range(s, min(s + batch_size, len(encoded)))])
               for s in range(0, len(encoded), batch_size)]
    was_training = model.training
    model.eval()
    results, records = [], [{"index": i} for i in range(len(examples))]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(epsilons) * len(batches), desc="pgd attack", unit="batch")
    broken = torch.zeros(len(examples), dtype=torch.bool)
    try:
        for epsilon in sorted(epsilons):
            started = time.perf_counter()
            correct, cosine, distance, offset = 0, 0.0, 0.0, 0
            for batch in batches:
                batch = {k: v.to(device) for k, v in batch.items()}
                with torch.no_grad():
                    embeds = adapter.embed(batch)
                    clean = adapter.forward(batch, output_hidden_states=True)
                mask = adapter.mask(batch, embeds)
                if epsilon > 0:
                    adversary = PGD(epsilon=epsilon, alpha=alpha_ratio * epsilon, steps=steps,
                                    norm=norm)
                    delta = adversary.find(lambda d, b=batch: adapter.forward(b, d).loss,
                                           embeds, mask)
                else:
                    delta = torch.zeros_like(embeds)
                with torch.no_grad():
                    attacked = adapter.forward(batch, delta, output_hidden_states=True)
                r_clean = clean.hidden_states[-1][:, 0].float()
                r_adv = attacked.hidden_states[-1][:, 0].float()
                cos = F.cosine_similarity(r_clean, r_adv, dim=-1)
                dist = (r_clean - r_adv).norm(dim=-1)
                predicted = attacked.logits.argmax(-1)
                rows = slice(offset, offset + len(predicted))
                broken[rows] |= (predicted != batch["labels"]).cpu()
                hit = ~broken[rows]
                correct += int(hit.sum())
                cosine += float(cos.sum())
                distance += float(dist.sum())
                for j in range(len(hit)):
                    records[offset + j][f"eps={epsilon:g}"] = {
                        "correct": bool(hit[j]), "cosine": round(float(cos[j]), 5),
                        "euclidean": round(float(dist[j]), 5)}
                offset += len(hit)
                if bar is not None:
                    bar.update(1)
            count = len(examples)
            results.append(PGDResult(epsilon, correct / count, cosine / count, distance / count,
                                     count, time.perf_counter() - started))
    finally:
        model.train(was_training)
        if bar is not None:
            bar.close()
    return results, records


def vulnerability_scores(
    model: torch.nn.Module,
    tokenizer,
    examples: Sequence,
    *,
    epsilon: float = 0.02,
    norm: str = "l2",
    batch_size: int = 32,
    max_length: int = 128,
    progress: bool = True,
) -> list[dict]:
    """VAA's vulnerability of every example (paper 002, eq. 1–5).

    One FGSM step against the model's own *predicted* label: ``Ẽ = E + ε·g/‖g‖₂`` (L2, eq. 5,
    norm per example) or ``E + ε·sign(g)`` (L∞, eq. 4).  With O, Õ the clean and adversarial
    logits, φ = softmax(O), ψ = softmax(Õ), i* = argmax φ:
    ``F1 = −Σ φ_i log ψ_i`` and ``F2 = −log ψ_{i*}``.  Eq. 1 prints ψ's numerator as e^{O_i};
    we read it as e^{Õ_i} (the softmax of the adversarial logits) — otherwise F1/F2 compare
    unnormalised quantities and F2 can be negative.  Both are then ≥ 0.
    """
    from advembed.adversaries import FGM, FGSM

    adapter = EmbeddingAdapter(model)
    device = next(model.parameters()).device
    encoded = EncodedDataset(examples, tokenizer, max_length=max_length)
    collate = DataCollatorWithPadding(tokenizer)
    adversary = FGSM(epsilon=epsilon) if norm == "linf" else FGM(epsilon=epsilon, norm="l2")
    was_training = model.training
    model.eval()
    records: list[dict] = []
    starts = range(0, len(encoded), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="vulnerability", unit="batch")
    try:
        for start in starts:
            batch = collate([encoded[i] for i in range(start, min(start + batch_size,
                                                                   len(encoded)))])
            batch = {k: v.to(device) for k, v in batch.items()}
            gold = batch.pop("labels")
            with torch.no_grad():
                embeds = adapter.embed(batch)
                clean_logits = adapter.forward(batch).logits.float()
            predicted = clean_logits.argmax(-1)
            target = dict(batch, labels=predicted)
            mask = adapter.mask(batch, embeds)
            delta = adversary.find(lambda d, b=target: adapter.forward(b, d).loss, embeds, mask)
            with torch.no_grad():
                adversarial_logits = adapter.forward(batch, delta).logits.float()
            f1, f2 = vulnerability_from_logits(clean_logits, adversarial_logits)
            for j in range(len(gold)):
                records.append({"label": int(gold[j]), "predicted": int(predicted[j]),
                                "F1": float(f1[j]), "F2": float(f2[j])})
    finally:
        model.train(was_training)
    return records


def vulnerability_from_logits(
    clean_logits: torch.Tensor, adversarial_logits: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(F1, F2)`` per row from clean logits O and adversarial logits Õ (see above)."""
    phi = torch.softmax(clean_logits, dim=-1)
    log_psi = torch.log_softmax(adversarial_logits, dim=-1)
    f1 = -(phi * log_psi).sum(-1)
    f2 = -log_psi.gather(-1, phi.argmax(-1, keepdim=True)).squeeze(-1)
    return f1, f2


def vulnerability_auc(records: list[dict], num_labels: int) -> dict[str, float | dict]:
    """ROC AUC of F1 and F2 as predictors of the gold label (one-vs-rest beyond two labels).

    Binary: the AUC of the score for label 1 (below 0.5 means label 0 is the more
    vulnerable one).  Multi-class: the AUC per label and their mean.
    """
    import numpy as np
    from sklearn.metrics import roc_auc_score

    labels = np.array([r["label"] for r in records])
    result: dict[str, float | dict] = {}
    for key in ("F1", "F2"):
        scores = np.array([r[key] for r in records])
        if num_labels == 2:
            result[key] = (float(roc_auc_score(labels, scores))
                           if len(set(labels.tolist())) == 2 else float("nan"))
            continue
        per_label = {}
        for label in range(num_labels):
            positive = labels == label
            if positive.any() and (~positive).any():
                per_label[str(label)] = float(roc_auc_score(positive, scores))
        result[key] = {"per_label": per_label,
                       "mean": float(np.mean(list(per_label.values()))) if per_label else
                       float("nan")}
    return result
