"""k-PGD robustness, drift and VAA vulnerability on tiny models; the attack command."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

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
    # radii given out of order are attacked in order: an example broken at a smaller ε still
    # counts as broken at every larger one
    shuffled, _ = pgd_robustness(model, tokenizer, examples,
                                 PGDAttackSettings(epsilon=[3.0, 0.2, 0.0, 1.0, 0.05, 0.5],
                                                   steps=3), progress=False)
    assert [r.accuracy for r in shuffled] == pytest.approx(accuracies)


def test_vulnerability_hand_computed_example():
    clean = torch.tensor([[2.0, 0.0, -1.0]])
    adversarial = torch.tensor([[0.5, 1.0, 0.0]])
    f1, f2 = vulnerability_from_logits(clean, adversarial)
    psi = torch.softmax(adversarial, -1)[0]
    phi = torch.softmax(clean, -1)[0]
    assert f2.item() == pytest.approx(-math.log(psi[0].item()), rel=1e-6)  # i* = 0
    assert f1.item() == pytest.approx(-(phi * psi.log()).sum().item(), rel=1e-6)
    assert f2.item() >= 0 and f1.item() >= 0
    assert (f1.item(), f2.item()) == (pytest.approx(1.144177, rel=1e-5),
                                      pytest.approx(1.180270, rel=1e-5))  # by hand, float64
    same_f1, same_f2 = vulnerability_from_logits(clean, clean)
    assert same_f2.item() == pytest.approx(-math.log(phi[0].item()), rel=1e-6)
    # no attack: F1 is φ's entropy, −Σ φ log φ with φ = (0.8438, 0.1142, 0.0420)
    assert same_f1.item() == pytest.approx(0.524267, rel=1e-5)
    # a decision other than the argmax (QA's threshold) is F2's i*: −log ψ₁, not −log ψ₀
    _, decided_f2 = vulnerability_from_logits(clean, adversarial, torch.tensor([1]))
    assert decided_f2.item() == pytest.approx(0.680270, rel=1e-5)


def test_vulnerability_auc_by_hand_binary_and_one_vs_rest():
    """Paper 002 §4.2: the ROC AUC of the label from F1 (or F2) alone, label 1 positive, ties
    counting one half; beyond two labels, one label against the rest, and the mean of
    max(AUC, 1 − AUC) (the plain mean is 0.5 for balanced labels whatever the scores)."""
    binary = [{"label": y, "F1": f1, "F2": f2} for y, f1, f2 in
              ((0, 0.1, 0.6), (0, 0.4, 0.2), (1, 0.35, 0.2), (1, 0.8, 0.1))]
    # F1: label-1 scores beat label-0 in 3 of 4 pairs (0.35 < 0.4); F2: 0.2 ties 0.2 → ½,
    # 0.1 loses both, 0.2 loses to 0.6 → 0.5 of 4
    assert vulnerability_auc(binary, 2) == {"F1": 0.75, "F2": 0.125}
    rows = [{"label": y, "F1": f1, "F2": 0.0} for y, f1 in
            ((0, 0.1), (1, 0.5), (2, 0.9), (0, 0.3), (1, 0.2), (2, 0.7))]
    f1 = vulnerability_auc(rows, 3)["F1"]
    # label 0 {0.1, 0.3} beats {0.5, 0.9, 0.2, 0.7} in 1 of 8 pairs; label 1 {0.5, 0.2}
    # in 3 of 8; label 2 {0.9, 0.7} in all 8
    assert f1["per_label"] == {"0": 0.125, "1": 0.375, "2": 1.0}
    # max(AUC, 1 − AUC): 0.875, 0.625, 1.0
    assert f1["separation"] == pytest.approx(2.5 / 3)
    # three balanced, perfectly ordered labels: 0 and 2 are set apart (AUC 0 and 1), the
    # middle one cannot be by one threshold (0.5); a plain mean would say 0.5
    ordered = vulnerability_auc([{"label": i % 3, "F1": float(i % 3), "F2": 0.0}
                                 for i in range(9)], 3)["F1"]
    assert ordered["separation"] == pytest.approx(2.5 / 3)
    assert vulnerability_auc([{"label": i % 3, "F1": 1.0, "F2": 0.0} for i in range(9)],
                             3)["F1"]["separation"] == pytest.approx(0.5)


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


class _LinearToy(torch.nn.Module):
    """Every word embeds to ``row`` (2-d); the encoder is the identity, so the representation
    is the first token's embedding; logits ``[Σ_t x_t·a, 0]`` with ``a = (1, −2)`` summed over
    every position (padding included); cross-entropy loss.  Keeps the last embeddings it ran."""

    def __init__(self, row, vocab: int) -> None:
        super().__init__()
        self.embeddings = torch.nn.Embedding(vocab, 2)
        with torch.no_grad():
            self.embeddings.weight.copy_(torch.tensor(row).expand(vocab, 2))
        self.a = torch.tensor([1.0, -2.0])

    def get_input_embeddings(self):
        return self.embeddings

    def forward(self, inputs_embeds, labels=None, output_hidden_states=False, **unused):
        self.last_embeds = inputs_embeds.detach()
        s = (inputs_embeds @ self.a).sum(1)
        logits = torch.stack([s, torch.zeros_like(s)], dim=-1)
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return SimpleNamespace(logits=logits, loss=loss, hidden_states=(inputs_embeds,))


def test_pgd_drift_is_cosine_and_distance_of_the_representations_by_hand(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = _LinearToy([3.0, 4.0], len(tokenizer))
    # [CLS] good movie [SEP], gold 0: s = 4·(3 − 8) = −20, ∂L/∂x_t = (p0 − 1)·a, so L∞ PGD
    # (α = 0.5, 3 steps, ε = 1) ends at δ_t = ε·sign(−a) = (−1, 1): R = (3, 4) → R̃ = (2, 5).
    # (The logits (−20, 0) → (−32, 0) keep their direction: their cosine would be 1.)
    results, records = pgd_robustness(
        model, tokenizer, [Example("good movie", 0)],
        PGDAttackSettings(epsilon=(0.0, 1.0), steps=3, norm="linf"), progress=False)
    assert results[1].cosine == pytest.approx((3 * 2 + 4 * 5) / (5 * math.sqrt(29)), rel=1e-6)
    assert results[1].euclidean == pytest.approx(math.sqrt(2), rel=1e-6)  # not its square, 2
    assert records[0]["eps=1"]["euclidean"] == pytest.approx(math.sqrt(2), rel=1e-6)


def test_vulnerability_l2_step_is_normalised_per_example_by_hand(tiny_model_dir):
    """Eq. 5: ``Ẽ = E + ε·g/‖g‖₂`` with one norm *per example*, over its real tokens.  Rows
    of 4 and 3 real tokens (+1 pad) in one batch, ε = 0.5: each token moves by
    −ε·a/√(5n), so s̃ = 4 − ε·√(5n) — 1.7639 and 2.0635; one norm over the whole batch
    would give 4 − ε·n·√5/√7 = 2.3096 and 2.7322."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = _LinearToy([1.0, 0.0], len(tokenizer))
    examples = [Example("good movie", 1), Example("fun", 0)]
    records = vulnerability_scores(model, tokenizer, examples,
                                   VulnerabilitySettings(epsilon=0.5, norm="l2"),
                                   progress=False)
    phi0 = 1 / (1 + math.exp(-4.0))  # s = 4 on both rows (padding counts): predicted 0
    for record, n in zip(records, (4, 3), strict=True):
        s_adv = 4.0 - 0.5 * math.sqrt(5 * n)
        psi0 = 1 / (1 + math.exp(-s_adv))
        assert record["predicted"] == 0
        assert record["F2"] == pytest.approx(-math.log(psi0), rel=1e-5)
        assert record["F1"] == pytest.approx(
            -(phi0 * math.log(psi0) + (1 - phi0) * math.log(1 - psi0)), rel=1e-5)
    assert torch.allclose(model.last_embeds[1, 3], torch.tensor([1.0, 0.0]))  # pad unmoved


def test_vulnerability_linf_step_is_epsilon_times_the_gradient_sign_on_real_tokens(
        tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = _LinearToy([1.0, 0.0], len(tokenizer))
    examples = [Example("good movie", 1), Example("fun", 0)]  # 4 tokens; 3 tokens + 1 pad
    records = vulnerability_scores(model, tokenizer, examples,
                                   VulnerabilitySettings(epsilon=0.5, norm="linf"),
                                   progress=False)
    # s = 4·(1·1) = 4 for both rows (padding counts): predicted 0, ∂L/∂x_t = (p0 − 1)·a, so
    # δ_t = 0.5·sign(−a) = (−0.5, 0.5) on each real token and 0 on the padding.
    delta = model.last_embeds - torch.tensor([1.0, 0.0])
    step = torch.tensor([-0.5, 0.5])
    assert torch.allclose(delta[0], step.expand(4, 2))
    assert torch.allclose(delta[1], torch.stack([step, step, step, torch.zeros(2)]))
    # s̃ = 4 − 3·0.5·n: −2 (n = 4) and −0.5 (n = 3); F2 = −log ψ_0 = log(1 + e^{−s̃})
    assert [r["predicted"] for r in records] == [0, 0]
    assert records[0]["F2"] == pytest.approx(math.log(1 + math.exp(2.0)), rel=1e-5)
    assert records[1]["F2"] == pytest.approx(math.log(1 + math.exp(0.5)), rel=1e-5)


def test_binary_vulnerability_auc_is_the_chance_label_1_scores_higher_by_hand():
    records = [{"label": 0, "F1": 0.1, "F2": 0.9}, {"label": 0, "F1": 0.4, "F2": 0.2},
               {"label": 1, "F1": 0.35, "F2": 0.3}, {"label": 1, "F1": 0.8, "F2": 0.1}]
    auc = vulnerability_auc(records, 2)
    # F1: of the (label 1, label 0) pairs, 0.35 > 0.1, 0.8 > 0.1, 0.8 > 0.4 but 0.35 < 0.4
    assert auc["F1"] == pytest.approx(3 / 4)
    # F2: only 0.3 > 0.2 of the four pairs
    assert auc["F2"] == pytest.approx(1 / 4)


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


def test_an_attack_on_other_data_never_replaces_the_runs_own_figures(tiny_trained_run, tmp_path,
                                                                     capsys):
    """``attack --dataset other.csv`` writes ``attack-pgd-on-other.json``; the run's own
    ``attack-pgd.json`` stays as it was, and the report reads only that one as the run's."""
    import shutil

    from test_train_cli import write_sentiment_csv

    from advembed.report.runs import load_run

    run = tmp_path / "run"
    shutil.copytree(tiny_trained_run, run)
    common = ["attack", "--run", str(run), "--attack", "pgd", "--epsilons", "0", "0.5",
              "--no-progress"]
    assert main([*common, "--n-examples", "20"]) == 0
    own = (run / "attack-pgd.json").read_text()
    other = write_sentiment_csv(tmp_path / "other.csv", n=40, seed=5)
    capsys.readouterr()
    assert main([*common, "--n-examples", "12", "--dataset", str(other),
                 "--text-column", "sentence"]) == 0
    assert f"written to {run}/attack-pgd-on-other.json" in capsys.readouterr().out
    assert (run / "attack-pgd.json").read_text() == own
    assert json.loads((run / "attack-pgd-on-other.json").read_text())["dataset"] == str(other)
    assert load_run(run).pgd == json.loads(own) and not load_run(run).word_attacks
    word = {"dataset": str(other), "split": "test", "attack_accuracy": 0.5}
    (run / "attack-pwws-on-other.json").write_text(json.dumps(word))
    assert not load_run(run).word_attacks  # another dataset's word attack is skipped too
    own_data = load_run(run).config["dataset"]
    (run / "attack-pwws-on-own.json").write_text(json.dumps(word | {"dataset": own_data}))
    assert not load_run(run).word_attacks  # --dataset given: not the run's own figure
    (run / "attack-pwws.json").write_text(json.dumps(word | {"dataset": own_data}))
    assert list(load_run(run).word_attacks) == ["pwws"]
    # the run's own dataset named again, with another split seed: its test split holds
    # training examples, so the summary goes beside the run's own, never over it
    capsys.readouterr()
    assert main([*common, "--n-examples", "12", "--dataset", own_data, "--split-seed", "5",
                 "--text-column", "sentence"]) == 0
    assert (run / "attack-pgd.json").read_text() == own
    assert f"attack-pgd-on-{Path(own_data).stem}.json" in capsys.readouterr().out


def test_pgd_attack_runs_on_sentence_pairs(tiny_model_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_model_dir))
    examples = [Example("good movie", 1, "great film"), Example("bad plot", 0, "awful")]
    results, _ = pgd_robustness(model, tokenizer, examples, PGDAttackSettings(epsilon=(0.0, 0.1)),
                                progress=False)
    assert [r.examples for r in results] == [2, 2]
