"""VDA (paper 003): the mixture of eq. 2–5, the regularised loss of eq. 1, 6, 7, the sparse
form, the ablations and the composition with an adversary (``--augment vda``)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_batch, tiny_config, tiny_model

from advembed.errors import AdvembedError
from advembed.methods import build_training_method
from advembed.vda import VDASettings, VirtualAugmenter, substitutes
from advembed.vda.mixture import replaceable

W = torch.tensor([[1.0, -2.0], [0.5, 3.0], [-1.5, 0.25], [2.0, 1.0]])
LOGITS = torch.tensor([[[2.0, 0.5, -1.0, 0.0]]])  # one position of a 4-word vocabulary
SPECIAL = [0, 1, 2, 3, 4]


def _mix(top_k=0, noise_on="logits", variance=0.0, form="mixture", seed=0):
    subs = substitutes(LOGITS, torch.ones(1, 1, dtype=torch.bool), variance=variance,
                       noise_on=noise_on, top_k=top_k, form=form,
                       generator=torch.Generator().manual_seed(seed))
    return subs, subs.embed(W, torch.zeros(1, 1, 2))[0, 0]


def test_the_mixture_by_hand():
    # p = softmax(2, .5, -1, 0) = (.7101, .1584, .0354, .0961); ê = p·M_E (eq. 5)
    _, dense = _mix()
    assert dense.tolist() == pytest.approx([0.9285, -0.8399], abs=1e-4)
    # top-2: (.7101, .1584) renormalised to (.8176, .1824)
    _, sparse = _mix(top_k=2)
    assert sparse.tolist() == pytest.approx([0.9088, -1.0879], abs=1e-4)
    # the literal eq. 4 takes the softmax of the probabilities themselves
    _, literal = _mix(noise_on="probabilities")
    assert literal.tolist() == pytest.approx([0.6116, 0.1510], abs=1e-4)
    # the argmax substitute is one row of M_E
    _, argmax = _mix(form="argmax")
    assert argmax.tolist() == W[0].tolist()


def test_sigma_zero_gives_back_the_mlm_distribution_exactly():
    logits = torch.randn(2, 3, 50, generator=torch.Generator().manual_seed(1)) * 3
    subs = substitutes(logits, torch.ones(2, 3, dtype=torch.bool), variance=0.0)
    assert subs.dense
    assert torch.allclose(subs.weights, logits.softmax(-1), atol=1e-7)


def test_the_noise_has_the_variance_asked_for():
    logits = torch.zeros(1, 1, 20000)
    base = substitutes(logits, torch.ones(1, 1, dtype=torch.bool), variance=0.0)
    noisy = substitutes(logits, torch.ones(1, 1, dtype=torch.bool), variance=0.04,
                        generator=torch.Generator().manual_seed(0))
    # weights ∝ exp(ε): log-ratios to the uniform weights are ε up to a constant; std σ = 0.2
    spread = (noisy.weights.log() - base.weights.log()).std().item()
    assert spread == pytest.approx(0.2, abs=0.01)


def test_the_literal_eq4_on_a_large_vocabulary_is_near_uniform():
    vocab = 30522
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(vocab, 8, generator=generator)
    logits = torch.full((1, 1, vocab), -5.0)
    logits[0, 0, 7] = 15.0  # the MLM is sure: word 7, probability 1 - 6e-5
    kept = torch.ones(1, 1, dtype=torch.bool)
    literal = substitutes(logits, kept, variance=1e-2, noise_on="probabilities",
                          generator=generator)
    assert literal.weights.max().item() < 3.0 / vocab  # even the sure word has ~e/V
    mixed = literal.embed(embeddings, torch.zeros(1, 1, 8))[0, 0]
    assert torch.allclose(mixed, embeddings.mean(0), atol=0.02)  # ≈ the mean embedding
    default = substitutes(logits, kept, variance=1e-2, generator=generator)
    assert torch.allclose(default.embed(embeddings, torch.zeros(1, 1, 8))[0, 0],
                          embeddings[7], atol=1e-3)


def test_sparse_equals_dense_when_k_is_the_vocabulary_and_is_close_for_large_k():
    generator = torch.Generator().manual_seed(3)
    vocab, dim = 400, 6
    embeddings = torch.randn(vocab, dim, generator=generator)
    logits = torch.randn(2, 5, vocab, generator=generator) * 4
    kept = torch.ones(2, 5, dtype=torch.bool)
    original = torch.zeros(2, 5, dim)
    dense = substitutes(logits, kept, variance=0.0).embed(embeddings, original)
    full = substitutes(logits, kept, variance=0.0, top_k=vocab).embed(embeddings, original)
    assert torch.allclose(full, dense, atol=1e-5)
    top = substitutes(logits, kept, variance=0.0, top_k=64).embed(embeddings, original)
    tail = 1 - logits.softmax(-1).topk(64, dim=-1).values.sum(-1)  # mass left out
    bound = 2 * tail * embeddings.norm(dim=-1).max()
    assert ((top - dense).norm(dim=-1) <= bound + 1e-5).all()
    assert (top - dense).norm(dim=-1).max() < 0.05


def _model(seed=0):
    """A tiny classifier whose logits differ between inputs (weights at std 0.5, not 0.02)."""
    from transformers import AutoModelForSequenceClassification

    config = tiny_config("bert", dropout=0.0)
    config.initializer_range = 0.5
    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_config(config)


def _augmenter(model, seed=0, **options):
    torch.manual_seed(7)
    mlm = BertMLM()
    return VirtualAugmenter(model, VDASettings(**options), mlm=mlm, special_ids=SPECIAL,
                            generator=torch.Generator().manual_seed(seed)), mlm


def BertMLM():  # noqa: N802 - a tiny masked LM with the classifier's vocabulary
    from transformers import BertForMaskedLM

    return BertForMaskedLM(tiny_config("bert"))


def _by_hand_virtual(model, mlm, batch, top_k, variance, seed):
    """Ê computed here from the equations, independently of advembed.vda."""
    with torch.no_grad():
        logits = mlm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                     token_type_ids=batch["token_type_ids"]).logits
    if top_k:
        ids = logits.topk(top_k, dim=-1).indices
    else:  # dense: the whole vocabulary in order
        ids = torch.arange(logits.shape[-1]).expand(*logits.shape[:-1], logits.shape[-1])
    log_p = logits.log_softmax(-1).gather(-1, ids)
    noise = torch.randn(ids.shape, generator=torch.Generator().manual_seed(seed))
    weights = (log_p + noise * variance ** 0.5).softmax(-1)
    matrix = model.get_input_embeddings().weight
    mixed = (weights.unsqueeze(-1) * matrix[ids]).sum(-2)
    special = torch.isin(batch["input_ids"], torch.tensor(SPECIAL))
    keep = special | (batch["attention_mask"] == 0)
    return torch.where(keep.unsqueeze(-1), matrix[batch["input_ids"]], mixed)


def _skl(a, b):
    p, q = a.softmax(-1), b.softmax(-1)
    return ((p * (p / q).log()).sum(-1) + (q * (q / p).log()).sum(-1)).mean()


def test_vda_step_is_eq1_with_eq6_and_eq7():
    model = _model()
    batch = tiny_batch(batch=3, length=8)
    augmenter, mlm = _augmenter(model, seed=5, weight=0.4, top_k=6, variance=0.04)
    method = build_training_method("vda", model, augment=augmenter)
    loss = method.step(model, batch)
    with torch.no_grad():
        virtual = _by_hand_virtual(model, mlm, batch, 6, 0.04, 5)
        inputs = {k: v for k, v in batch.items() if k != "input_ids"}
        clean = model(**batch)
        on_virtual = model(inputs_embeds=virtual, **inputs).logits
    expected = clean.loss + 0.4 * _skl(clean.logits, on_virtual)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert (0.4 * _skl(clean.logits, on_virtual)).item() > 1e-6  # the term is not vanishing


@pytest.mark.parametrize("top_k", [6, 0])
def test_the_step_gradient_is_eq1s_through_both_predictions_and_every_embedding_row(top_k):
    """The gradient of ``CE(f(E), y) + λ·sKL(f(E), f(Ê))`` by autograd on the hand-built Ê,
    through the clean and the virtual prediction, the mixed rows and the rows kept at special
    positions — sparse (k = 6) and dense (the whole vocabulary)."""
    model = _model()
    batch = tiny_batch(batch=3, length=8)
    augmenter, mlm = _augmenter(model, seed=5, weight=0.4, top_k=top_k, variance=0.04)
    build_training_method("vda", model, augment=augmenter).step(model, batch)
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    virtual = _by_hand_virtual(model, mlm, batch, top_k, 0.04, 5)
    inputs = {k: v for k, v in batch.items() if k != "input_ids"}
    clean = model(**batch)
    on_virtual = model(inputs_embeds=virtual, **inputs).logits
    (clean.loss + 0.4 * _skl(clean.logits, on_virtual)).backward()
    for mine, by_hand in zip(got, (p.grad for p in model.parameters()), strict=True):
        assert torch.allclose(mine, by_hand, atol=1e-4)  # float32 sums: ~1e-5 apart


def test_the_literal_form_is_refused_on_a_sparse_mixture():
    with pytest.raises(AdvembedError, match="give --vda-top-k 0, not 64"):
        VDASettings(noise_on="probabilities")  # the default top_k = 64
    assert VDASettings(noise_on="probabilities", top_k=0).top_k == 0


def test_the_sample_form_draws_in_proportion_and_argmax_takes_the_likeliest():
    logits = LOGITS.expand(1, 4000, 4)
    kept = torch.ones(1, 4000, dtype=torch.bool)
    drawn = substitutes(logits, kept, variance=0.0, form="sample",
                        generator=torch.Generator().manual_seed(1)).ids.flatten()
    share = torch.bincount(drawn, minlength=4) / 4000.0
    assert torch.allclose(share, LOGITS[0, 0].softmax(-1), atol=0.025)  # (.710, .158, .035, .096)
    likeliest = substitutes(logits, kept, variance=0.0, form="argmax").ids.flatten()
    assert (likeliest == 0).all()


def _noise(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_with_noise_argmax_and_sample_follow_the_noisy_distribution():
    """Table 4's argmax and sampled substitutes read eq. 4's noisy p′ (σ² = 1 here, so the
    noise often reorders the four words), not the MLM's p.  Catches: either form reading p."""
    logits = LOGITS.expand(1, 2000, 4)
    kept = torch.ones(1, 2000, dtype=torch.bool)
    noisy = logits.log_softmax(-1) + _noise((1, 2000, 4), 3) * 1.0  # √σ² = 1
    picked = substitutes(logits, kept, variance=1.0, form="argmax",
                         generator=torch.Generator().manual_seed(3)).ids[..., 0]
    assert torch.equal(picked, noisy.argmax(-1))
    assert (picked != 0).float().mean() > 0.1  # p's argmax alone would be word 0 everywhere
    generator = torch.Generator().manual_seed(5)
    drawn = substitutes(logits, kept, variance=1.0, form="sample", generator=generator).ids
    generator = torch.Generator().manual_seed(5)  # the same draws: the noise, then the words
    weights = (logits.log_softmax(-1) + torch.randn((1, 2000, 4), generator=generator)
               ).softmax(-1)
    expected = torch.multinomial(weights.reshape(-1, 4), 1, generator=generator)
    assert torch.equal(drawn.flatten(), expected.flatten())


def test_the_literal_form_adds_its_noise_to_the_probabilities_by_hand():
    """Eq. 4 literally on a 4-word vocabulary, σ² = 0.25: p′ = softmax(p + ε) with p the MLM's
    probabilities (0.710, 0.158, 0.035, 0.096), ê = p′·W.  Catches: the noise dropped, or added
    to the log-probabilities."""
    subs, mixed = _mix(noise_on="probabilities", variance=0.25, seed=11)
    weights = (LOGITS[0, 0].softmax(-1) + _noise((1, 1, 4), 11)[0, 0] * 0.5).softmax(-1)
    assert torch.allclose(subs.weights[0, 0], weights, atol=1e-6)
    assert torch.allclose(mixed, weights @ W, atol=1e-6)
    assert not torch.allclose(weights, LOGITS[0, 0].softmax(-1).softmax(-1), atol=1e-3)


def test_the_paper_defaults():
    """Paper 003 §5: σ² = 1e-2 and λ = 1 (tuned in {1e-3, 4e-3, 1e-2, 4e-2} and {0.04, 0.1,
    0.4, 1, 4}), one virtual sample, the noise on the log-probabilities, the mixture with sKL."""
    settings = VDASettings()
    assert (settings.variance, settings.weight, settings.samples) == (1e-2, 1.0, 1)
    assert (settings.noise_on, settings.form, settings.loss) == ("logits", "mixture", "skl")


def test_unknown_words_are_replaced_and_structural_tokens_are_not(tmp_path, tiny_model_dir):
    """With the MLM's tokenizer (the load path), [CLS], [SEP], [PAD] and [MASK] keep their
    embedding; [UNK] stands for a real word the vocabulary lacks, and eq. 2–5 apply "to each
    position of the original sentence", so it is replaced like any word."""
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        BertConfig,
        BertForMaskedLM,
    )

    mlm_dir = tmp_path / "mlm"
    BertForMaskedLM(BertConfig.from_pretrained(str(tiny_model_dir))).save_pretrained(mlm_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    tokenizer.save_pretrained(mlm_dir)
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_model_dir))
    augmenter = VirtualAugmenter(model, VDASettings(mlm=str(mlm_dir)))
    structural = {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id,
                  tokenizer.mask_token_id}
    assert set(augmenter.special_ids.tolist()) == structural
    ids = torch.tensor([[tokenizer.cls_token_id, tokenizer.unk_token_id, 20,
                         tokenizer.sep_token_id]])
    assert replaceable(ids, None, augmenter.special_ids).tolist() == [[False, True, True, False]]


def test_positions_outside_the_attention_mask_are_not_replaced():
    ids = torch.tensor([[7, 8, 9, 10]])  # none of them special
    keep = replaceable(ids, torch.tensor([[1, 1, 1, 0]]), torch.tensor(SPECIAL))
    assert keep.tolist() == [[True, True, True, False]]


def test_the_mlm_scores_without_dropout_even_if_handed_over_in_training_mode():
    from transformers import BertForMaskedLM

    config = tiny_config("bert", dropout=0.5)
    mlm = BertForMaskedLM(config).train()
    augmenter = VirtualAugmenter(_model(), mlm=mlm, special_ids=SPECIAL)
    batch = tiny_batch(batch=2, length=7)
    assert torch.equal(augmenter.mlm_logits(batch), augmenter.mlm_logits(batch))


def test_ce_vda_and_k_samples_average_their_terms():
    model = _model()
    batch = tiny_batch(batch=3, length=8)
    augmenter, mlm = _augmenter(model, seed=2, weight=0.4, samples=2, top_k=6, loss="ce",
                                variance=0.04)
    loss = build_training_method("vda", model, augment=augmenter).step(model, batch)
    terms = []
    inputs = {k: v for k, v in batch.items() if k != "input_ids"}
    # the same two draws, in order, from the augmenter's generator sequence
    augmenter.generator = torch.Generator().manual_seed(2)
    adapter = build_training_method("none", model).adapter
    logits = augmenter.mlm_logits(batch)
    with torch.no_grad():
        for _ in range(2):
            virtual = augmenter.virtual_embeddings(adapter, batch, logits)
            terms.append(F.cross_entropy(model(inputs_embeds=virtual, **inputs).logits,
                                         batch["labels"]))
        clean = model(**batch).loss
    assert terms[0].item() != pytest.approx(terms[1].item())  # two different draws
    expected = clean + 0.4 * (terms[0] + terms[1]) / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_the_mlm_gets_no_gradient_and_the_embedding_rows_of_substitutes_do():
    model = _model()
    batch = tiny_batch(batch=2, length=7)
    augmenter, mlm = _augmenter(model, top_k=5)
    build_training_method("vda", model, augment=augmenter).step(model, batch)
    assert all(p.grad is None for p in mlm.parameters())
    grad = model.get_input_embeddings().weight.grad
    with torch.no_grad():
        logits = augmenter.mlm_logits(batch)
    real = batch["attention_mask"].bool() & ~torch.isin(batch["input_ids"], torch.tensor(SPECIAL))
    proposed = set(logits.topk(5, dim=-1).indices[real].flatten().tolist())
    only_substitutes = proposed - set(batch["input_ids"].flatten().tolist())
    assert only_substitutes
    assert all(grad[row].abs().sum() > 0 for row in only_substitutes)


def test_padding_and_special_tokens_keep_their_embedding():
    model = _model()
    batch = tiny_batch(batch=3, length=9)
    augmenter, _ = _augmenter(model, variance=0.04)
    adapter = build_training_method("none", model).adapter
    with torch.no_grad():
        virtual = augmenter.virtual_embeddings(adapter, batch)
        original = adapter.embed(batch)
    fixed = (batch["attention_mask"] == 0) | torch.isin(batch["input_ids"],
                                                         torch.tensor(SPECIAL))
    assert fixed.any() and (~fixed).any()
    assert torch.equal(virtual[fixed], original[fixed])
    assert not torch.allclose(virtual[~fixed], original[~fixed])


def test_augment_adds_vdas_term_to_the_adversarys_gradient():
    """FreeLB + VDA = FreeLB's gradient + the gradient of λ·sKL(f(E), f(Ê)) on its own pass."""

    def grads(method_name, augment):
        model = _model(seed=3)
        batch = tiny_batch(batch=3, length=8, seed=4)
        augmenter = _augmenter(model, seed=9, weight=0.4)[0] if augment else None
        torch.manual_seed(11)  # FreeLB's random start
        if method_name == "vda-term":
            adapter = build_training_method("none", model).adapter
            clean = adapter.forward(batch)
            augmenter.term(adapter, batch, clean.logits).backward()
        else:
            build_training_method(method_name, model, augment=augmenter).step(model, batch)
        return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
                          for p in model.parameters()])

    alone, term, both = grads("freelb", False), grads("vda-term", True), grads("freelb", True)
    assert term.abs().sum() > 0
    assert torch.allclose(both, alone + term, atol=1e-6)


def test_the_adversarial_warm_up_delays_the_adversary_and_not_vdas_term():
    """FreeLB + VDA with one warm-up step: the first step is plain CE's gradient + VDA's term
    (no FreeLB), not plain CE alone."""

    def grads(method_name, augment, **options):
        model = _model(seed=3)
        batch = tiny_batch(batch=3, length=8, seed=4)
        augmenter = _augmenter(model, seed=9, weight=0.4)[0] if augment else None
        torch.manual_seed(11)
        build_training_method(method_name, model, augment=augmenter, **options).step(model,
                                                                                     batch)
        return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
                          for p in model.parameters()])

    plain, vda_alone = grads("none", False), grads("vda", True, weight=0.4)
    warm = grads("freelb", True, warmup_steps=1)
    assert not torch.allclose(warm, plain, atol=1e-6)
    assert torch.allclose(warm, vda_alone, atol=1e-6)  # plain CE + λ·sKL: VDA's own step


def test_a_masked_lm_of_another_vocabulary_is_refused():
    from transformers import BertForMaskedLM

    config = tiny_config("bert")
    config.vocab_size = 99
    with pytest.raises(AdvembedError, match="same vocabulary"):
        VirtualAugmenter(tiny_model(), mlm=BertForMaskedLM(config), special_ids=SPECIAL)


def test_vda_from_the_command_line(tmp_path, tiny_model_dir, capsys):
    from test_train_cli import write_sentiment_csv
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from advembed.cli import main

    data = write_sentiment_csv(tmp_path / "reviews.csv", n=40)
    mlm_dir = tmp_path / "mlm"
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig.from_pretrained(str(tiny_model_dir))).save_pretrained(mlm_dir)
    AutoTokenizer.from_pretrained(str(tiny_model_dir)).save_pretrained(mlm_dir)
    common = ["--dataset", str(data), "--text-column", "sentence", "--model",
              str(tiny_model_dir), "--max-steps", "2", "--batch-size", "8", "--no-progress"]
    out = tmp_path / "vda"
    assert main(["train", *common, "--method", "vda", "--vda-mlm", str(mlm_dir),
                 "--vda-variance", "0.04", "--output", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["method_settings"]["variance"] == 0.04
    assert config["method_settings"]["top_k"] == 64
    capsys.readouterr()
    out = tmp_path / "literal"  # the literal eq. 4 on the default sparse mixture: one line
    assert main(["train", *common, "--method", "vda", "--vda-mlm", str(mlm_dir),
                 "--vda-noise-on", "probabilities", "--output", str(out)]) != 0
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "give --vda-top-k 0" in error[0] and not out.exists()
    out = tmp_path / "freelb-vda"
    assert main(["train", *common, "--method", "freelb", "--augment", "vda", "--vda-mlm",
                 str(mlm_dir), "--vda-weight", "0.4", "--output", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["augment_settings"]["weight"] == 0.4 and config["augment"] == "vda"
    capsys.readouterr()
    assert main(["train", *common, "--method", "freelb", "--vda-weight", "0.4"]) == 2
    assert "--vda-weight does not apply to method 'freelb'" in capsys.readouterr().err
    assert main(["train", *common, "--augment", "vda"]) == 2
    assert "needs an adversarial --method" in capsys.readouterr().err
    assert main(["train", *common, "--method", "vaa", "--augment", "vda"]) == 2
    assert "--augment vda does not go with --method vaa" in capsys.readouterr().err
    assert main(["train", *common, "--method", "vda", "--vda-mlm", str(tiny_model_dir)]) == 2
    assert "no trained masked-LM head" in capsys.readouterr().err
