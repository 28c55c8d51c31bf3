"""VAA (paper 002): the vulnerability vector by hand, FGSM against the predicted label, the
two-stage model (A frozen, B from A, the projection's shape), ``train --method vaa`` end to
end, and Theorem 1 with its corollaries by simulation."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
from conftest import tiny_batch, tiny_model

from advembed.adapter import EmbeddingAdapter
from advembed.cli import main
from advembed.errors import AdvembedError
from advembed.vaa.features import predicted_labels, vulnerability_features
from advembed.vaa.model import VulnerabilityAwareModel
from advembed.vaa.theory import (
    simulated_accuracy,
    theorem1_accuracy,
    theorem1_area,
)


class LinearToy(torch.nn.Module):
    """logits = W · Σ_t m_t e_t + b: its cross-entropy gradient is known in closed form; A⁻ is
    the pooled sum (what its ``classifier`` reads)."""

    def __init__(self) -> None:
        super().__init__()
        self.classifier = torch.nn.Linear(2, 2)
        with torch.no_grad():
            self.classifier.weight.copy_(torch.tensor([[1.0, 2.0], [-0.5, 1.0]]))
            self.classifier.bias.copy_(torch.tensor([0.1, -0.2]))

    def forward(self, inputs_embeds, attention_mask, **_):
        pooled = (inputs_embeds * attention_mask.unsqueeze(-1)).sum(1)
        return SimpleNamespace(logits=self.classifier(pooled))


def _toy_inputs():
    # Two real tokens and one padding token whose embedding must never move.
    embeds = torch.tensor([[[0.5, -1.0], [2.0, 0.25], [9.0, 9.0]]])
    return embeds, {"attention_mask": torch.tensor([[1, 1, 0]])}


def _hand_v3(norm: str, epsilon: float, source: str = "logits",
             sign: float = 1.0) -> list[float]:
    """V3 for the toy by hand.  pooled = (2.5, −0.75); V1 = W·pooled + b = (1.1, −2.2);
    A predicts label 0, so ∂J/∂logits = (−p1, p1) with p1 = σ(−3.3), and every real token's
    gradient is g = p1 · (W[1] − W[0]) = p1 · (−1.5, −1.0).  L2 (eq. 5): one norm over the
    example, ‖g‖ = p1·√(2·3.25), so each token moves by ε·(−1.5, −1.0)/√6.5; L∞ (eq. 4): by
    ε·sign(g) = ε·(−1, −1).  Two tokens move: the pooled shift is twice a token's.  ``sign``
    −1: the step against label 1 instead, g = −p0 · (−1.5, −1.0) — the other way."""
    v1 = [1.0 * 2.5 + 2.0 * -0.75 + 0.1, -0.5 * 2.5 + 1.0 * -0.75 - 0.2]
    if norm == "l2":
        token = [sign * epsilon * -1.5 / math.sqrt(6.5), sign * epsilon * -1.0 / math.sqrt(6.5)]
    else:
        token = [-sign * epsilon, -sign * epsilon]
    shift = [2 * token[0], 2 * token[1]]
    if source == "hidden":  # A⁻: the pooled sum itself, (2.5, −0.75), and its shifted twin
        return [2.5, -0.75, 2.5 + shift[0], -0.75 + shift[1], -shift[0], -shift[1]]
    v2 = [v1[0] + 1.0 * shift[0] + 2.0 * shift[1], v1[1] - 0.5 * shift[0] + 1.0 * shift[1]]
    return v1 + v2 + [v1[0] - v2[0], v1[1] - v2[1]]


@pytest.mark.parametrize("source", ["hidden", "logits"])
@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_vulnerability_vector_matches_the_hand_computation(norm, source):
    """Fails if FGSM attacked another label than the prediction (the gold label 1 here would
    move the other way), if L2 normalised per token (each token would move by ε, not ε/√2 of
    the example's norm), if padding moved, if ΔV were V2 − V1, or if V1, V2 came from the wrong
    place: A⁻'s output (what the classifier reads, the paper's) or A's logits."""
    embeds, inputs = _toy_inputs()
    v3 = vulnerability_features(LinearToy(), embeds, inputs, norm=norm, epsilon=0.3,
                                source=source)
    assert v3.shape == (1, 6)
    assert v3[0].tolist() == pytest.approx(_hand_v3(norm, 0.3, source), abs=1e-5)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_a_decision_threshold_decides_which_label_fgsm_attacks(norm):
    """The toy's P(label 1) = σ(−3.3) = 0.0356: at A's threshold 0.03 A predicts label 1 (a
    QA run's dev threshold can sit that low), so the step goes against label 1, the other way
    from the argmax's; at 0.04 (and without one) A predicts label 0.  Fails if the threshold
    were ignored, compared the wrong way, or applied to P(label 0)."""
    embeds, inputs = _toy_inputs()
    for threshold, sign in ((0.03, -1.0), (0.04, 1.0), (None, 1.0)):
        v3 = vulnerability_features(LinearToy(), embeds, inputs, norm=norm, epsilon=0.3,
                                    source="logits", threshold=threshold)
        assert v3[0].tolist() == pytest.approx(_hand_v3(norm, 0.3, "logits", sign), abs=1e-5)
    with pytest.raises(AdvembedError, match="a decision threshold needs 2 classes, not 3"):
        predicted_labels(torch.zeros(1, 3), 0.5)


@pytest.mark.parametrize("source", ["hidden", "logits"])
@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_each_example_of_a_batch_is_attacked_on_its_own(norm, source):
    """A second example beside the toy: one real token at (−2, 0.5), so V1 = A⁻ = (−2, 0.5)
    and logits (−0.9, 1.3) — A predicts label 1, ∂J/∂logits = (p0, −p0), p0 = σ(−2.2), and
    g = p0 · (W[0] − W[1]) = p0 · (1.5, 1.0): under L2 the token moves by ε·(1.5, 1.0)/√3.25
    (its own norm: one norm over the batch would shrink it by p0's share), under L∞ by ε·(1, 1)
    (the first example's step goes the other way).  Fails if the norm spanned the batch, if
    both examples took one label, or if a sign were taken across the batch."""
    embeds, inputs = _toy_inputs()
    second = torch.tensor([[[-2.0, 0.5], [-3.0, 0.5], [7.0, 7.0]]])
    embeds = torch.cat([embeds, second])
    inputs = {"attention_mask": torch.tensor([[1, 1, 0], [1, 0, 0]])}
    v3 = vulnerability_features(LinearToy(), embeds, inputs, norm=norm, epsilon=0.3,
                                source=source)
    shift = ([0.3 * 1.5 / math.sqrt(3.25), 0.3 * 1.0 / math.sqrt(3.25)] if norm == "l2"
             else [0.3, 0.3])
    if source == "hidden":
        expected = [-2.0, 0.5, -2.0 + shift[0], 0.5 + shift[1], -shift[0], -shift[1]]
    else:
        v1 = [-0.9, 1.3]
        v2 = [v1[0] + 1.0 * shift[0] + 2.0 * shift[1], v1[1] - 0.5 * shift[0] + shift[1]]
        expected = v1 + v2 + [v1[0] - v2[0], v1[1] - v2[1]]
    assert v3[0].tolist() == pytest.approx(_hand_v3(norm, 0.3, source), abs=1e-5)
    assert v3[1].tolist() == pytest.approx(expected, abs=1e-5)


def test_the_vulnerability_ignores_the_gold_label():
    """Paper 002 attacks y_pred (the gold label is unknown at test time): the two-stage
    model's output must not depend on the labels it is given."""
    model = VulnerabilityAwareModel.from_model_a(tiny_model("bert", num_labels=3, seed=1)).eval()
    with torch.no_grad():
        model.projection.weight.normal_(0, 1.0, generator=torch.Generator().manual_seed(0))
    batch = tiny_batch(num_labels=3)
    without = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    predicted = without.argmax(-1)
    for gold in ((predicted + 1) % 3, (predicted + 2) % 3):
        assert torch.equal(model(**batch | {"labels": gold}).logits, without)


def test_stage_two_starts_from_a_and_has_the_papers_projection():
    a = tiny_model("bert", num_labels=3, seed=1).eval()
    model = VulnerabilityAwareModel.from_model_a(a, placement="add").eval()
    for name, value in a.state_dict().items():
        assert torch.equal(model.model_b.state_dict()[name], value)
        assert torch.equal(model.model_a.state_dict()[name], value)
    embedding = a.get_input_embeddings().embedding_dim
    assert model.projection.weight.shape == (embedding, 3 * a.config.hidden_size)  # A⁻: R^h
    logits_form = VulnerabilityAwareModel.from_model_a(a, features="logits")
    assert logits_form.projection.weight.shape == (embedding, 3 * 3)  # A's 3 logits
    assert not any(p.requires_grad for p in model.model_a.parameters())
    batch = tiny_batch(num_labels=3)
    # Under "add" with the projection at zero, B starts as exactly A.
    assert torch.allclose(model(**batch).logits, a(**batch).logits, atol=1e-6)
    model.train()
    assert not model.model_a.training and model.model_b.training  # A: no dropout, ever


@pytest.mark.parametrize("placement", ["position", "add"])
def test_an_embedding_attack_moves_both_models_inputs(placement):
    """δ on the embeddings B reads is applied to A's embeddings of the same tokens too, the
    gradient reaches δ, A gets none, and hidden states line up with the input tokens."""
    model = VulnerabilityAwareModel.from_model_a(tiny_model("bert", num_labels=2, seed=3),
                                                 placement=placement).eval()
    with torch.no_grad():
        model.projection.weight.normal_(0, 1.0, generator=torch.Generator().manual_seed(1))
    batch = tiny_batch()
    adapter = EmbeddingAdapter(model)
    clean = adapter.embed(batch)
    delta = (0.5 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(2))
             * adapter.mask(batch, clean)).requires_grad_(True)
    outputs = adapter.forward(batch, delta, output_hidden_states=True)
    outputs.loss.backward()
    assert delta.grad is not None and delta.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.model_a.parameters())
    last = outputs.hidden_states[-1]
    assert last.shape[:2] == batch["input_ids"].shape
    # The first token's state is the one B's head reads (VAA's extra position is dropped).
    pooled = model.model_b.bert.pooler(last)
    assert torch.allclose(model.model_b.classifier(pooled), outputs.logits, atol=1e-5)
    segments = {"attention_mask": batch["attention_mask"],
                "token_type_ids": batch["token_type_ids"]}
    embeds_a = model.model_a.get_input_embeddings()(batch["input_ids"]) + delta.detach()
    expected = model.projection(vulnerability_features(model.model_a, embeds_a, segments))
    clean_a = model.model_a.get_input_embeddings()(batch["input_ids"])
    unperturbed = model.projection(vulnerability_features(model.model_a, clean_a, segments))
    got = model.vulnerability(batch["input_ids"], clean + delta.detach(), segments)
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, unperturbed, atol=1e-3)


# --- Theorem 1 and its corollaries -----------------------------------------------------------

@pytest.mark.parametrize("n, d, sigma", [(2, 1.0, 0.7), (3, 0.8, 1.3), (5, 2.0, 0.9)])
def test_theorem1_matches_simulation(n, d, sigma):
    """P = (1 − 2S)/n + 2S with S = Φ(d/2σ) − ½, against the accuracy of the nearest-mean
    classifier on 200,000 samples, within 4 standard errors; the formula with S in place of
    2S (a plausible misreading) is further off than that."""
    samples = 200_000
    simulated = simulated_accuracy(n, d, sigma, samples=samples, seed=0)
    predicted = theorem1_accuracy(n, d, sigma)
    tolerance = 4 * math.sqrt(predicted * (1 - predicted) / samples)
    assert abs(simulated - predicted) < tolerance
    area = theorem1_area(d, sigma)
    assert abs(simulated - ((1 - area) / n + area)) > tolerance


def test_corollaries_2_to_5():
    d, sigma = 1.2, 0.8
    area = theorem1_area(d, sigma)
    by_n = [theorem1_accuracy(n, d, sigma) for n in range(2, 12)]
    assert all(a > b for a, b in zip(by_n, by_n[1:], strict=False))  # Corollary 2
    assert by_n[0] == pytest.approx(area + 0.5)  # Corollary 3: the maximum at n = 2
    assert theorem1_accuracy(10_000, d, sigma) == pytest.approx(2 * area, abs=1e-3)
    by_d = [theorem1_accuracy(4, step / 4, sigma) for step in range(1, 40)]
    assert all(a < b for a, b in zip(by_d, by_d[1:], strict=False))  # Corollary 4
    assert theorem1_accuracy(4, 1e-9, sigma) == pytest.approx(1 / 4)  # Corollary 5
    assert theorem1_accuracy(4, 60.0, sigma) == pytest.approx(1.0)


# --- the command line -----------------------------------------------------------------------

def test_train_method_vaa_end_to_end(tmp_path, tiny_trained_run, capsys):
    """Stage two from a finished run: A's weights stay as written, the run records A and its
    checksum, and eval and predict of the saved VAA run give what training measured."""
    from safetensors.torch import load_file

    base = json.loads((tiny_trained_run / "config.json").read_text())
    out = tmp_path / "vaa"
    argv = ["train", "--dataset", base["dataset"], "--text-column", "sentence", "--method",
            "vaa", "--base-run", str(tiny_trained_run), "--output", str(out), "--epochs", "1",
            "--batch-size", "8", "--lr", "3e-3", "--seed", "7", "--no-progress"]
    assert main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["base_run"] == str(tiny_trained_run.resolve())
    assert config["base_run_sha256"] == base["model_sha256"]
    assert config["method_settings"] == {"base_run": str(tiny_trained_run), "epsilon": 0.02,
                                         "norm": "l2", "placement": "add",
                                         "features": "hidden"}
    saved = load_file(str(out / "model" / "model.safetensors"))
    a = load_file(str(tiny_trained_run / "model" / "model.safetensors"))
    assert all(torch.equal(saved[f"model_a.{name}"], value) for name, value in a.items())
    assert any(not torch.equal(saved[f"model_b.{name}"], value) for name, value in a.items())
    metrics = json.loads((out / "metrics.json").read_text())
    capsys.readouterr()
    assert main(["eval", "--run", str(out)]) == 0
    assert f"accuracy {metrics['test']['accuracy']:.4f}" in capsys.readouterr().out
    assert main(["predict", "--run", str(out), "a great fun film"]) == 0
    first = capsys.readouterr().out
    assert main(["predict", "--run", str(out), "a great fun film"]) == 0
    assert capsys.readouterr().out == first


def test_vaa_refuses_what_it_cannot_use(tmp_path, tiny_trained_run, tiny_model_dir, capsys):
    base = json.loads((tiny_trained_run / "config.json").read_text())
    common = ["train", "--dataset", base["dataset"], "--text-column", "sentence", "--epochs",
              "1", "--no-progress", "--output", str(tmp_path / "x")]
    cases = [
        (["--method", "vaa"], "needs --base-run"),
        (["--method", "vaa", "--base-run", str(tiny_trained_run), "--model",
          str(tiny_model_dir)], "--model and --model-init do not apply"),
        (["--method", "fgm", "--base-run", str(tiny_trained_run)], "--base-run does not apply"),
        (["--method", "vaa", "--base-run", str(tmp_path / "none")], "does not exist"),
        (["--method", "vaa", "--base-run", str(tiny_trained_run), "--objective", "carl"],
         "does not take an objective"),
        # another split seed: A's training examples would be in B's test split
        (["--method", "vaa", "--base-run", str(tiny_trained_run), "--split-seed", "1"],
         "was trained on other data (dev, test differ"),
        (["--method", "vaa", "--base-run", str(tiny_trained_run), "--limit", "20"],
         "was trained on other data (dev, test differ"),
    ]
    for extra, message in cases:
        capsys.readouterr()
        assert main(common + extra) == 2
        error = capsys.readouterr().err
        assert message in error and len(error.strip().splitlines()) == 1, error
    assert not (tmp_path / "x").exists()


def test_theorem1_fit_on_scores_drawn_as_the_theorem_assumes():
    """Fitted n, d, σ recover the generating ones, and the predicted accuracy equals the
    nearest-mean classifier's on the same scores within sampling error."""
    import numpy as np

    from advembed.vaa.theory import theorem1_fit

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 60_000)
    scores = 0.4 + 0.9 * labels + rng.normal(0, 0.6, len(labels))
    fit = theorem1_fit(scores.tolist(), labels.tolist())
    assert fit["n"] == 3
    assert fit["d"] == pytest.approx(0.9, abs=0.02)
    assert fit["sigma"] == pytest.approx(0.6, abs=0.01)
    assert fit["predicted_accuracy"] == pytest.approx(theorem1_accuracy(3, 0.9, 0.6), abs=0.01)
    assert fit["measured_accuracy"] == pytest.approx(fit["predicted_accuracy"], abs=0.01)


def test_theorem1_fit_compares_p_with_the_label_balanced_accuracy():
    """Three labels in shares 0.6 / 0.2 / 0.2, d = 0.9, σ = 0.6: the outer labels are right
    with 0.5 + S, the middle one with 2S (S = Φ(0.75) − ½ = 0.2734), so the label-balanced
    accuracy is eq. 9's P = 0.6979 while the accuracy over the examples is 0.6·0.7734 +
    0.2·0.5468 + 0.2·0.7734 = 0.7281."""
    import numpy as np

    from advembed.vaa.theory import theorem1_fit

    rng = np.random.default_rng(2)
    labels = rng.choice(3, size=120_000, p=[0.6, 0.2, 0.2])
    scores = 0.9 * labels + rng.normal(0, 0.6, len(labels))
    fit = theorem1_fit(scores.tolist(), labels.tolist())
    area = theorem1_area(0.9, 0.6)
    assert area == pytest.approx(0.2734, abs=1e-4)
    assert fit["balanced_accuracy"] == pytest.approx(theorem1_accuracy(3, 0.9, 0.6), abs=0.01)
    assert fit["balanced_accuracy"] == pytest.approx(fit["predicted_accuracy"], abs=0.01)
    assert fit["measured_accuracy"] == pytest.approx(0.6 * (0.5 + area) + 0.2 * 2 * area
                                                     + 0.2 * (0.5 + area), abs=0.01)


@pytest.mark.parametrize("arch", ["bert", "roberta", "distilbert"])
def test_a_minus_is_what_each_architectures_classifier_reads(arch):
    """BERT's head reads the pooled output, RoBERTa's every position (its first token is A⁻'s
    output), DistilBERT's the pre-classifier's: V1 has the hidden width h in each."""
    from advembed.vaa.features import head_width

    a = tiny_model(arch, num_labels=2, seed=2).eval()
    model = VulnerabilityAwareModel.from_model_a(a).eval()
    width = head_width(a)
    assert model.projection.weight.shape[1] == 3 * width
    batch = {k: v for k, v in tiny_batch().items() if k != "labels"}
    if arch == "distilbert":
        batch.pop("token_type_ids", None)
    v3 = vulnerability_features(a, a.get_input_embeddings()(batch["input_ids"]),
                                {"attention_mask": batch["attention_mask"]})
    assert v3.shape == (len(batch["input_ids"]), 3 * width)
    with torch.no_grad():  # A⁻ computed here from each architecture's own modules
        mask = {"attention_mask": batch["attention_mask"]}
        if arch == "bert":
            v1 = a.bert(batch["input_ids"], **mask).pooler_output
        elif arch == "roberta":
            v1 = a.roberta(batch["input_ids"], **mask).last_hidden_state[:, 0]
        else:
            first = a.distilbert(batch["input_ids"], **mask).last_hidden_state[:, 0]
            v1 = torch.relu(a.pre_classifier(first))
    assert torch.allclose(v3[:, :width], v1, atol=1e-5)
    assert torch.isfinite(model(**batch).logits).all()


def test_a_vaa_config_saved_before_the_feature_source_existed_reads_logits():
    from advembed.vaa.model import VAAConfig

    a = tiny_model("bert", num_labels=3, seed=1)
    config = VAAConfig(base_config=a.config.to_dict(), num_labels=3)  # no vaa_features key
    assert config.vaa_features == "logits"
    assert VulnerabilityAwareModel(config).projection.weight.shape[1] == 3 * 3


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_position_placement_leaves_v_a_position_at_the_longest_length_a_run_fits(arch):
    """RoBERTa's tokenizer allows 2 positions fewer than its model (its padding offset): the
    length a run fits to the model and tokenizer must leave V's position free in both."""
    from advembed.tasks import LoadedModel
    from advembed.training.base_run import room_for_v
    from advembed.training.config import TrainConfig
    from advembed.training.run import fit_max_length

    a = tiny_model(arch, num_labels=2, seed=2).eval()
    b = VulnerabilityAwareModel.from_model_a(a, placement="position").eval()
    offset = 2 if arch == "roberta" else 0
    tokenizer = SimpleNamespace(model_max_length=a.config.max_position_embeddings - offset)
    room_for_v(tokenizer, "position")
    config = fit_max_length(TrainConfig(), LoadedModel(b, tokenizer, "A"))
    assert config.max_length == a.config.max_position_embeddings - offset - 1
    batch = tiny_batch(batch=2, length=config.max_length)
    batch.pop("labels")
    if arch == "roberta":
        batch.pop("token_type_ids")
    with torch.no_grad():
        assert torch.isfinite(b(**batch).logits).all()
    unchanged = SimpleNamespace(model_max_length=77)
    room_for_v(unchanged, "add")
    assert unchanged.model_max_length == 77


def test_a_vaa_run_resumes_only_from_the_model_a_it_started_with(tmp_path, tiny_trained_run,
                                                                  monkeypatch, capsys):
    """Interrupted, its base run retrained (other weights, its sha256 recorded anew), then
    resumed: the checkpoint holds the old model A, so the resume is refused in one line."""
    import shutil

    from safetensors.torch import load_file, save_file

    import advembed.training.run as run_module
    from advembed.runs import sha256_of

    base = tmp_path / "a"
    shutil.copytree(tiny_trained_run, base)
    config = json.loads((base / "config.json").read_text())
    out = tmp_path / "b"
    argv = ["train", "--dataset", config["dataset"], "--text-column", "sentence", "--method",
            "vaa", "--base-run", str(base), "--output", str(out), "--epochs", "1",
            "--save-steps", "2", "--no-progress"]

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(run_module, "final_metrics", killed)
        assert main(argv) == 130
    weights = base / "model" / "model.safetensors"
    state = load_file(str(weights))
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key] = state[key] + 0.01
    save_file(state, str(weights), metadata={"format": "pt"})
    (base / "config.json").write_text(json.dumps(config | {"model_sha256": sha256_of(weights)}))
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 2
    error = capsys.readouterr().err.strip()
    assert "is not the one this run started from" in error and "\n" not in error
