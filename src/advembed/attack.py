"""``advembed attack``: robustness of a saved run, written into the run directory.

* ``pgd``: white-box k-PGD on word embeddings at several ε (accuracy under attack, cosine and
  Euclidean drift of the sentence representation) — paper 001 §4.5.
* ``vulnerability``: VAA's F1/F2 under an FGSM with the predicted label, per gold label, and
  their ROC AUC as label predictors — paper 002 §4.2.
* ``pwws``, ``bert-attack``, ``bae``: black-box word-substitution attacks on the text, run by
  TextAttack (:mod:`advembed.word_attack`) — paper 003 §5.1.3.  Pairs: the second sentence.

Each writes ``attack-NAME.json`` (summary) and ``attack-NAME.jsonl`` (one line per example)
atomically.  The examples are a seeded sample of ``n_examples`` from the split.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from advembed.errors import AdvembedError
from advembed.runs import MODEL_DIR, read_run, write_json
from advembed.word_attack import WORD_ATTACKS, WordAttackOptions

ATTACKS = ("pgd", "vulnerability", *WORD_ATTACKS)


def sample_examples(examples: list, n: int, seed: int) -> list:
    """A seeded sample of at most ``n`` examples, in their original order."""
    if n >= len(examples):
        return list(examples)
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed))
    return [examples[i] for i in sorted(order[:n].tolist())]


def run_attack(
    run: Path,
    attack: str,
    *,
    dataset: str | None = None,
    split: str = "test",
    n_examples: int = 1000,
    seed: int = 0,
    epsilons: tuple[float, ...] = (0.02, 0.075, 0.1),
    steps: int = 3,
    alpha_ratio: float = 0.5,
    norm: str = "l2",
    vulnerability_epsilon: float = 0.02,
    batch_size: int = 32,
    word_options: WordAttackOptions | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run ``attack`` on a saved run and write its results; return the summary."""
    from advembed.models import load_saved_classifier
    from advembed.perturbation import check_norm
    from advembed.robustness import pgd_robustness, vulnerability_auc, vulnerability_scores
    from advembed.train import run_split

    if attack not in ATTACKS:
        raise AdvembedError(f"unknown attack '{attack}'; choose one of {', '.join(ATTACKS)}")
    if attack in WORD_ATTACKS:
        word_options = word_options or WordAttackOptions()
        word_options.attack = attack
        word_options.resolved()  # bad options fail before anything is loaded
    else:
        check_norm(norm)
    if any(e < 0 for e in epsilons):
        raise AdvembedError(f"--epsilons must be >= 0, got {list(epsilons)}")
    config, _ = read_run(run)
    examples = sample_examples(run_split(config, split, dataset=dataset), n_examples, seed)
    loaded = load_saved_classifier(Path(run) / MODEL_DIR)
    if torch.cuda.is_available():
        loaded.model.cuda()
    max_length = config.get("max_length", 128)
    started = time.perf_counter()
    summary: dict[str, Any] = {"attack": attack, "dataset": dataset or config["dataset"],
                               "split": split, "examples": len(examples), "seed": seed}
    if attack == "pgd":
        results, records = pgd_robustness(loaded.model, loaded.tokenizer, examples, epsilons,
                                          steps=steps, alpha_ratio=alpha_ratio, norm=norm,
                                          batch_size=batch_size, max_length=max_length,
                                          progress=progress)
        summary |= {"norm": norm, "steps": steps, "alpha_ratio": alpha_ratio,
                    "results": [r.as_dict() for r in results]}
    elif attack in WORD_ATTACKS:
        from advembed.word_attack import run_word_attack

        word_summary, records = run_word_attack(loaded.model, loaded.tokenizer, examples,
                                                word_options, max_length=max_length,
                                                progress=progress)
        summary |= word_summary
    else:
        records = vulnerability_scores(loaded.model, loaded.tokenizer, examples,
                                       epsilon=vulnerability_epsilon, norm=norm,
                                       batch_size=batch_size, max_length=max_length,
                                       progress=progress)
        per_label = {}
        for index, name in enumerate(config["label_names"]):
            rows = [r for r in records if r["label"] == index]
            if rows:
                per_label[name] = {key: {"mean": statistics.fmean(r[key] for r in rows),
                                         "median": statistics.median(r[key] for r in rows)}
                                   for key in ("F1", "F2")}
        summary |= {"norm": norm, "epsilon": vulnerability_epsilon, "per_label": per_label,
                    "auc": vulnerability_auc(records, len(config["label_names"]))}
    summary["seconds"] = round(time.perf_counter() - started, 2)
    _write_jsonl(Path(run) / f"attack-{attack}.jsonl", records)
    write_json(Path(run) / f"attack-{attack}.json", summary)
    return summary


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    os.replace(tmp, path)
