"""k-PGD robustness, drift and VAA vulnerability on tiny models; the attack command."""

from __future__ import annotations

import json
import math

import pytest
import torch

from advembed.cli import main
from advembed.data import Example
from advembed.evaluation.robustness import pgd_robustness
from advembed.evaluation.settings import PGDAttackSettings, VulnerabilitySettings
from advembed.evaluation.vulnerability import (
    vulnerability_auc,
    vulnerability_from_logits,
    vulnerability_scores,
)


def _model_and_examples(run):
    from advembed.data import load_dataset
    from advembed.models import load_saved_classifier

    config = json.loads((run / "config.json").read_text())
    data = load_dataset(config["dataset"], text_column="sentence")
    loaded = load_saved_classifier(run / "model")
    return loaded.model, loaded.tokenizer, data.splits["test"]


def test_pgd_accuracy_is_clean_at_zero_and_non_increasing_in_epsilon(tiny_trained_run):
    model, tokenizer, examples = _model_and_examples(tiny_trained_run)
    epsilons = [0.0, 0.05, 0.2, 0.5, 1.0, 3.0]
    results, records = pgd_robustness(model, tokenizer, examples,
                                      PGDAttackSettings(epsilon=epsilons, steps=3),
                                      progress=False)
    from advembed.inference import predict_logits

    clean = (predict_logits(model, tokenizer, examples).argmax(-1)
             == [e.label for e in examples]).mean()
    assert results[0].accuracy == pytest.approx(clean)
    accuracies = [r.accuracy for r in results]
    assert all(b <= a for a, b in zip(accuracies, accuracies[1:], strict=False))
    assert accuracies[-1] < accuracies[0]  # the attack does something
    assert results[0].cosine == pytest.approx(1.0, abs=1e-6)
    assert results[0].euclidean == pytest.approx(0.0, abs=1e-6)
    assert results[-1].euclidean > results[1].euclidean > 0
    assert len(records) == len(examples) and "eps=3" in records[0]


def test_vulnerability_hand_computed_example():
    clean = torch.tensor([[2.0, 0.0, -1.0]])
    adversarial = torch.tensor([[0.5, 1.0, 0.0]])
    f1, f2 = vulnerability_from_logits(clean, adversarial)
    psi = torch.softmax(adversarial, -1)[0]
    phi = torch.softmax(clean, -1)[0]
    assert f2.item() == pytest.approx(-math.log(psi[0].item()), rel=1e-6)  # i* = 0
    assert f1.item() == pytest.approx(-(phi * psi.log()).sum().item(), rel=1e-6)
    assert f2.item() >= 0 and f1.item() >= 0
    same_f1, same_f2 = vulnerability_from_logits(clean, clean)
    assert same_f2.item() == pytest.approx(-math.log(phi[0].item()), rel=1e-6)


def test_vulnerability_scores_are_non_negative_and_auc_is_computed(tiny_trained_run):
    model, tokenizer, examples = _model_and_examples(tiny_trained_run)
    records = vulnerability_scores(model, tokenizer, examples, VulnerabilitySettings(epsilon=0.5),
                                   progress=False)
    assert len(records) == len(examples)
    assert all(r["F1"] >= 0 and r["F2"] >= 0 for r in records)
    auc = vulnerability_auc(records, 2)
    assert 0.0 <= auc["F1"] <= 1.0 and 0.0 <= auc["F2"] <= 1.0
    three = vulnerability_auc([{"label": i % 3, "F1": float(i % 3), "F2": 1.0}
                               for i in range(9)], 3)
    assert three["F1"]["per_label"]["2"] == pytest.approx(1.0)


def test_attack_command_writes_results_into_the_run(tiny_trained_run, capsys):
    assert main(["attack", "--run", str(tiny_trained_run), "--attack", "pgd",
                 "--epsilons", "0", "0.5", "--n-examples", "20"]) == 0
    summary = json.loads((tiny_trained_run / "attack-pgd.json").read_text())
    assert [r["epsilon"] for r in summary["results"]] == [0.0, 0.5]
    assert summary["examples"] == 20
    lines = (tiny_trained_run / "attack-pgd.jsonl").read_text().splitlines()
    assert len(lines) == 20
    assert main(["attack", "--run", str(tiny_trained_run), "--attack", "vulnerability",
                 "--n-examples", "20"]) == 0
    vulnerability = json.loads((tiny_trained_run / "attack-vulnerability.json").read_text())
    assert set(vulnerability["per_label"]) <= {"negative", "positive"}
    capsys.readouterr()
    assert main(["attack", "--run", str(tiny_trained_run), "--attack", "textfooler"]) == 2
    assert "unknown attack 'textfooler'" in capsys.readouterr().err


def test_pgd_attack_runs_on_sentence_pairs(tiny_model_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_model_dir))
    examples = [Example("good movie", 1, "great film"), Example("bad plot", 0, "awful")]
    results, _ = pgd_robustness(model, tokenizer, examples, PGDAttackSettings(epsilon=(0.0, 0.1)),
                                progress=False)
    assert [r.examples for r in results] == [2, 2]
