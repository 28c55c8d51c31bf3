"""ESIM / BiLSTM on GloVe (``--model scratch:esim``): GloVe rows where the word is known, masks
that make padding irrelevant, every adversary through ``inputs_embeds``, save and load."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

import advembed.esim
from advembed.esim import ESIMConfig, ESIMForSequenceClassification, esim_classifier
from advembed.methods import build_training_method

WORDS = ["the", "movie", "was", "great", "awful", "film", "a", "story"]
TEXTS = ["the movie was great", "an awful film", "a great story", "the story was awful zzqx"]


def _glove():
    generator = torch.Generator().manual_seed(0)
    return WORDS, torch.randn(len(WORDS), 6, generator=generator)


def _model(seed=0):
    torch.manual_seed(seed)
    model, tokenizer = esim_classifier(["negative", "positive"], TEXTS, glove=_glove())
    return model.eval(), tokenizer


def test_rows_come_from_glove_where_it_knows_the_word():
    model, tokenizer = _model()
    words, vectors = _glove()
    weight = model.get_input_embeddings().weight
    vocab = tokenizer.get_vocab()
    for word in ("great", "awful", "story"):
        assert torch.equal(weight[vocab[word]], vectors[words.index(word)])
    assert weight[vocab["zzqx"]].abs().sum() > 0  # unknown to GloVe: random, not zero
    assert torch.equal(weight[tokenizer.pad_token_id], torch.zeros(6))
    known = sum(w in WORDS for w in vocab if not w.startswith("["))
    assert model.glove_coverage == pytest.approx(known / (len(vocab) - 5))


def test_padding_never_changes_an_examples_logits():
    model, tokenizer = _model()
    pair = ("the movie was great", "a story")
    alone = tokenizer([pair[0]], [pair[1]], return_tensors="pt")
    batch = tokenizer([pair[0], "an awful film was the story"], [pair[1], "the great movie a"],
                      return_tensors="pt", padding=True)
    with torch.no_grad():
        one = model(**alone).logits[0]
        padded = model(**batch).logits[0]
        single = model(**tokenizer(["a great story"], return_tensors="pt")).logits[0]
        single_padded = model(**tokenizer(["a great story", "the movie was awful film"],
                                          return_tensors="pt", padding=True)).logits[0]
    assert torch.allclose(one, padded, atol=1e-5)
    assert torch.allclose(single, single_padded, atol=1e-5)


def test_the_second_sentence_matters_and_alignment_uses_both():
    model, tokenizer = _model()
    with torch.no_grad():
        a = model(**tokenizer(["the movie was great"], ["a story"], return_tensors="pt")).logits
        b = model(**tokenizer(["the movie was great"], ["awful film"], return_tensors="pt")).logits
    assert not torch.allclose(a, b)


# two pairs, the second padded: [CLS] 5 6 9 [SEP] | 7 8 [SEP] and [CLS] 10 [SEP] | 11 [SEP];
# the first sentence has 5 and 3 tokens, the second 3 and 2
PAIR = {"input_ids": torch.tensor([[2, 5, 6, 9, 3, 7, 8, 3], [2, 10, 3, 11, 3, 0, 0, 0]]),
        "token_type_ids": torch.tensor([[0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 0, 0, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0, 0]])}


def _tiny(seed=0):
    """ESIM with hidden size 2 (states of 4, enhanced vectors of 16, pooled sentences of 8)."""
    torch.manual_seed(seed)
    config = ESIMConfig(vocab_size=12, embedding_size=3, hidden_size=2, num_labels=2)
    return ESIMForSequenceClassification(config).eval()


def test_each_sentence_of_a_pair_is_encoded_alone():
    model = _tiny()
    seen = []
    model.encoder.register_forward_pre_hook(
        lambda module, args: seen.append(nn.utils.rnn.pad_packed_sequence(args[0], True)))
    with torch.no_grad():
        model(**PAIR)
    (first, first_lengths), (second, second_lengths) = seen
    assert first_lengths.tolist() == [5, 3] and second_lengths.tolist() == [3, 2]
    weight = model.get_input_embeddings().weight
    assert torch.equal(first[0], weight[[2, 5, 6, 9, 3]])
    assert torch.equal(first[1, :3], weight[[2, 10, 3]])
    assert torch.equal(second[0], weight[[7, 8, 3]])
    assert torch.equal(second[1, :2], weight[[11, 3]])


def test_the_enhancement_is_a_a_tilde_their_difference_and_their_product():
    model = _tiny()
    seen = []
    model.projection.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    a = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    a_tilde = torch.tensor([[[0.5, -1.0, 2.0, 0.0]]])
    with torch.no_grad():
        model._compose(a, a_tilde, torch.tensor([[True]]), torch.tensor([1]))
    # m = [a; ã; a − ã; a ⊙ ã]
    assert seen[0].tolist() == [[[1.0, 2.0, 3.0, 4.0, 0.5, -1.0, 2.0, 0.0,
                                  0.5, 3.0, 1.0, 4.0, 0.5, -2.0, 6.0, 0.0]]]


def test_the_projection_is_a_relu_of_a_linear_map():
    model = _tiny()
    with torch.no_grad():
        linear = model.projection[0]
        linear.weight.zero_()
        linear.weight[0, 0], linear.weight[1, 0] = 1.0, -1.0
        linear.bias.copy_(torch.tensor([0.0, 0.5]))
        out = model.projection(torch.tensor([[2.0] + [7.0] * 15, [-3.0] + [7.0] * 15]))
    # pre-activations [2, −1.5] and [−3, 3.5]
    assert out.tolist() == [[2.0, 0.0], [0.0, 3.5]]


def test_the_pair_head_reads_v_a_then_v_b(monkeypatch):
    model = _tiny()
    # each sentence's composed-and-pooled vector replaced by its length, so [v_a; v_b] is known
    monkeypatch.setattr(model, "_compose", lambda x, aligned, mask, lengths:
                        lengths[:, None].float().expand(-1, 8))
    seen = []
    model.pair_head.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    with torch.no_grad():
        model(**PAIR)
    assert seen[0].tolist() == [[5.0] * 8 + [3.0] * 8, [3.0] * 8 + [2.0] * 8]


def _by_the_equations(model, ids, types, mask):
    """One pair's pooled vector and logits by Chen et al. (2017)'s equations, with the model's
    weights and LSTMs, each sentence alone and unpadded."""
    embeds = model.get_input_embeddings().weight[ids]
    real, second = mask.bool(), types.bool()
    a = model.encoder(embeds[real & ~second][None])[0][0]
    b = model.encoder(embeds[real & second][None])[0][0]
    e = a @ b.T
    a_tilde, b_tilde = e.softmax(1) @ b, e.softmax(0).T @ a
    projection, head, classifier = model.projection[0], model.pair_head[0], model.classifier
    negative = []

    def v(x, x_tilde):
        m = torch.cat([x, x_tilde, x - x_tilde, x * x_tilde], -1)
        projected = m @ projection.weight.T + projection.bias
        negative.append(bool((projected < 0).any()))  # so the ReLU matters
        composed = model.composer(torch.relu(projected)[None])[0][0]
        return torch.cat([composed.mean(0), composed.max(0).values])

    pooled = torch.tanh(torch.cat([v(a, a_tilde), v(b, b_tilde)]) @ head.weight.T + head.bias)
    assert all(negative)
    return pooled, pooled @ classifier.weight.T + classifier.bias


def test_a_pair_forward_follows_the_esim_equations():
    model = _tiny()
    with torch.no_grad():
        out = model(**PAIR, output_hidden_states=True)
        for row in range(2):
            pooled, logits = _by_the_equations(model, *(PAIR[k][row] for k in (
                "input_ids", "token_type_ids", "attention_mask")))
            assert torch.allclose(out.hidden_states[-1][row, 0], pooled, atol=1e-6)
            assert torch.allclose(out.logits[row], logits, atol=1e-6)


def test_a_single_sentence_forward_is_a_bilstm_pooled_then_a_tanh_layer():
    """The single-sentence form: BiLSTM states of the real tokens, [mean; max] over them, a
    tanh layer, the classifier — by hand with the model's own weights."""
    model = _tiny()
    ids, mask = torch.tensor([[2, 5, 6, 9, 3, 0]]), torch.tensor([[1, 1, 1, 1, 1, 0]])
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        states = model.encoder(model.get_input_embeddings().weight[ids[0, :5]][None])[0][0]
        head = model.single_head[0]
        pooled = torch.tanh(torch.cat([states.mean(0), states.max(0).values]) @ head.weight.T
                            + head.bias)
        assert bool((pooled.abs() > 0.05).any()) and bool((pooled.abs() < 0.999).all())
    assert torch.allclose(out.hidden_states[-1][0, 0], pooled, atol=1e-6)
    assert torch.allclose(out.logits[0], pooled @ model.classifier.weight.T
                          + model.classifier.bias, atol=1e-6)


def test_the_word_vocabulary_is_lower_cased_and_capped_at_the_most_frequent():
    from advembed.esim import SPECIAL_TOKENS, word_tokenizer

    tokenizer = word_tokenizer(["The cat sat", "the cat ran", "a dog"], max_vocab=2)
    assert len(tokenizer) == len(SPECIAL_TOKENS) + 2  # "the" and "cat", twice each
    assert tokenizer.tokenize("THE Cat") == ["the", "cat"]
    assert tokenizer.convert_tokens_to_ids(["sat"]) == [tokenizer.unk_token_id]


@pytest.mark.parametrize("method", ["fgm", "pgd", "freelb", "smart", "yopo"])
def test_every_adversary_reaches_the_glove_embeddings(method):
    model, tokenizer = _model()
    model.train()
    batch = dict(tokenizer(TEXTS[:2], TEXTS[2:], return_tensors="pt", padding=True))
    batch["labels"] = torch.tensor([1, 0])
    loss = build_training_method(method, model).step(model, batch)
    assert torch.isfinite(loss)
    assert model.get_input_embeddings().weight.grad.abs().sum() > 0
    assert model.classifier.weight.grad.abs().sum() > 0


def test_rar_is_refused_on_esim_which_has_no_state_per_token():
    """ESIM's last hidden state is its pooled vector: RAR, which reconstructs each token from
    its own final state, is a one-line error (an IndexError inside RAR before); CARL and ATCL,
    which read the pooled representation, are built."""
    from advembed.errors import AdvembedError
    from advembed.objectives import build_objective

    model, tokenizer = _model()
    with pytest.raises(AdvembedError, match="objective rar reconstructs each token from its "
                                            "final state; ESIMForSequenceClassification has no"):
        build_training_method("fgm", model, objective=build_objective(
            "rar", model, tokenizer=tokenizer))
    build_objective("atcl", model, tokenizer=tokenizer)


def test_save_and_load_give_the_same_model(tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model, tokenizer = _model()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    again = AutoTokenizer.from_pretrained(tmp_path)
    inputs = again(["the movie was great"], ["a story"], return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, model(**inputs).logits)


def test_esim_from_the_command_line(tmp_path, monkeypatch, capsys):
    from test_train_cli import write_sentiment_csv

    from advembed.cli import main

    monkeypatch.setattr(advembed.esim, "glove_vectors", _glove)
    data = write_sentiment_csv(tmp_path / "pairs.csv", n=80, pair=True)
    out = tmp_path / "run"
    assert main(["train", "--dataset", str(data), "--text-column", "sentence",
                 "--text-pair-column", "second", "--model", "scratch:esim", "--method", "fgm",
                 "--epochs", "2", "--batch-size", "8", "--lr", "3e-3", "--no-progress",
                 "--output", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["is_pair"] and "scratch:esim" in config["model_source"]
    assert main(["eval", "--run", str(out), "--json"]) == 0
    assert "accuracy" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # a saved ESIM run is a --model for a further run; in a fresh interpreter nothing has
    # imported advembed.esim, so this fails unless model loading registers ESIM itself
    code = ("import sys; from advembed.models import load_classifier; "
            "print(type(load_classifier(sys.argv[1], ['negative', 'positive']).model).__name__)")
    done = subprocess.run([sys.executable, "-c", code, str(out / "model")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ESIMForSequenceClassification"
