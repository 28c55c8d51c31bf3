"""ESIM / BiLSTM on GloVe (``--model scratch:esim``): GloVe rows where the word is known, masks
that make padding irrelevant, every adversary through ``inputs_embeds``, save and load."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import advembed.esim
from advembed.esim import esim_classifier
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
