"""Models trained from scratch (``--model scratch:transformer``): the vocabulary comes from the
training split only, the model is randomly initialised and seeded, pairs are encoded as pairs,
every adversary reaches its embeddings, and a run saves and reloads."""

from __future__ import annotations

import json

import pytest
import torch
from test_train_cli import write_sentiment_csv

from advembed.cli import main
from advembed.data import Example
from advembed.errors import AdvembedError
from advembed.methods import build_training_method
from advembed.scratch import TRANSFORMER_SIZES, scratch_classifier
from advembed.tasks import get_task


class _Data:
    label_names = ["negative", "positive"]

    def __init__(self, train, test):
        self.splits = {"train": train, "dev": train[:4], "test": test}


def _data():
    train = [Example(f"the film was {w} and {w}", i % 2) for i, w in
             enumerate(["great", "awful", "great", "awful", "fun", "dull"] * 3)]
    test = [Example("a zyzzyva quokka film", 1)]
    return _Data(train, test)


def test_the_vocabulary_is_learned_from_the_training_split_only():
    loaded = get_task().build_model("scratch:transformer", _data())
    vocab = loaded.tokenizer.get_vocab()
    assert {"great", "awful", "film"} <= set(vocab)
    assert "zyzzyva" not in vocab and "quokka" not in vocab  # test-only words
    assert loaded.model.config.vocab_size == len(loaded.tokenizer)
    assert loaded.model.config.hidden_size == TRANSFORMER_SIZES["hidden_size"]
    ids = loaded.tokenizer("the film", "was great")
    words = loaded.tokenizer.convert_ids_to_tokens(ids["input_ids"])
    assert words == ["[CLS]", "the", "film", "[SEP]", "was", "great", "[SEP]"]
    assert ids["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1]


def test_the_vocabulary_reads_both_sentences_of_a_pair_and_any_case():
    """Pairs: the second sentences' words are in the vocabulary too; the WordPiece is
    lower-cased, so "The Film GREAT" is read as the training words, not as [UNK]s."""
    train = [Example(f"the film was {w}", i % 2, f"a {p} story") for i, (w, p) in
             enumerate([("great", "quokka"), ("awful", "zyzzyva")] * 6)]
    loaded = get_task().build_model("scratch:transformer", _Data(train, train[:2]))
    vocab = set(loaded.tokenizer.get_vocab())
    assert {"quokka", "zyzzyva", "story"} <= vocab  # only in the second sentences
    pieces = loaded.tokenizer.tokenize("The Film GREAT")
    assert pieces == ["the", "film", "great"]


def test_scratch_models_are_random_and_seeded():
    torch.manual_seed(1)
    first, _ = scratch_classifier("scratch:transformer", ["a", "b"], ["x y z"] * 4)
    torch.manual_seed(1)
    again, _ = scratch_classifier("scratch:transformer", ["a", "b"], ["x y z"] * 4)
    torch.manual_seed(2)
    other, _ = scratch_classifier("scratch:transformer", ["a", "b"], ["x y z"] * 4)
    weight = "bert.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(first.state_dict()[weight], again.state_dict()[weight])
    assert not torch.equal(first.state_dict()[weight], other.state_dict()[weight])
    with pytest.raises(AdvembedError, match="unknown model 'scratch:lstm'"):
        scratch_classifier("scratch:lstm", ["a", "b"], ["x"])


@pytest.mark.parametrize("method", ["fgm", "pgd", "freelb", "yopo", "smart"])
def test_every_adversary_reaches_a_scratch_models_embeddings(method):
    loaded = get_task().build_model("scratch:transformer", _data())
    batch = loaded.tokenizer(["the film was great", "awful"], padding=True, return_tensors="pt")
    batch["labels"] = torch.tensor([1, 0])
    trainer = build_training_method(method, loaded.model)
    loss = trainer.step(loaded.model, dict(batch))
    assert torch.isfinite(loss)
    assert loaded.model.get_input_embeddings().weight.grad.abs().sum() > 0


def test_a_scratch_run_trains_saves_and_reloads(tmp_path, capsys):
    data = write_sentiment_csv(tmp_path / "reviews.csv", n=240)
    out = tmp_path / "scratch"
    argv = ["train", "--dataset", str(data), "--text-column", "sentence", "--model",
            "scratch:transformer", "--lr", "1e-3", "--epochs", "3", "--batch-size", "8",
            "--seed", "7", "--no-progress", "--output", str(out)]
    assert main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert config["model"] == "scratch:transformer"
    assert metrics["test"]["accuracy"] > 0.7  # the cue words make this task easy
    capsys.readouterr()
    assert main(["eval", "--run", str(out)]) == 0
    assert f"accuracy {metrics['test']['accuracy']:.4f}" in capsys.readouterr().out


def test_the_collapse_guard_stops_a_run_at_chance_unless_told_to_train_it_to_the_end(tmp_path,
                                                                                    capsys):
    """FreeLB at MiniLM's sizes keeps the tiny scratch Transformer at chance (README): with the
    guard it stops after the first judged evaluation; with --no-collapse-guard it trains every
    epoch and is marked collapsed by its best dev score."""
    data = write_sentiment_csv(tmp_path / "reviews.csv", n=160)
    argv = ["train", "--dataset", str(data), "--text-column", "sentence", "--model",
            "scratch:transformer", "--lr", "1e-3", "--epochs", "2", "--batch-size", "8",
            "--seed", "7", "--no-progress", "--method", "freelb"]
    dev = {}
    for guard in ("--collapse-guard", "--no-collapse-guard"):
        out = tmp_path / guard
        with pytest.warns(UserWarning, match="training collapsed"):
            assert main([*argv, guard, "--output", str(out)]) == 0
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["collapsed"] is True
        dev[guard] = [entry["accuracy"] for entry in metrics["dev"]]
        said = capsys.readouterr().err  # the summary says so, not only a buried warning
        assert ("stopped at step" in said) == (guard == "--collapse-guard")
        assert "advembed train: collapsed" in said
    assert len(dev["--collapse-guard"]) == 1 and len(dev["--no-collapse-guard"]) == 2
    assert max(dev["--no-collapse-guard"]) <= 0.51
