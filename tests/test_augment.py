"""Adversarial data augmentation's file reading and its --augment-limit sample."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from advembed.cli import main
from advembed.data.augment import augmented
from advembed.data.base import Example, TextDataset
from advembed.errors import AdvembedError


def _records(path: Path, n: int) -> Path:
    """n successful records (one repeated text among them) and a failed one."""
    lines = [{"status": "successful", "text": f"adversarial {i}", "text_pair": None,
              "label": i % 2} for i in range(n)]
    lines.append({"status": "successful", "text": "adversarial 0", "text_pair": None,
                  "label": 0})
    lines.append({"status": "failed", "text": "kept out", "text_pair": None, "label": 1})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _data() -> TextDataset:
    train = [Example("clean a", 0), Example("clean b", 1), Example("clean c", 0)]
    return TextDataset("toy", ["negative", "positive"],
                       {"train": train, "dev": train[:1], "test": train[:1]}, "toy")


def test_augment_limit_adds_a_seeded_sample_in_file_order(tmp_path):
    path = _records(tmp_path / "a.jsonl", 9)
    every = augmented(_data(), path).splits["train"]
    assert [e.text for e in every[3:]] == [f"adversarial {i}" for i in range(9)]
    samples = []
    for seed in (0, 1, 2, 3):
        train = augmented(_data(), path, limit=4, seed=seed).splits["train"]
        assert [e.text for e in train[:3]] == ["clean a", "clean b", "clean c"]
        added = train[3:]
        assert len(added) == 4 and len({e.text for e in added}) == 4
        numbers = [int(e.text.split()[1]) for e in added]
        assert numbers == sorted(numbers)
        assert all(e.label == n % 2 for e, n in zip(added, numbers, strict=True))
        assert augmented(_data(), path, limit=4, seed=seed).splits["train"] == train
        samples.append(tuple(numbers))
    assert len(set(samples)) > 1
    # a limit at or above what the file holds takes every distinct successful text
    assert augmented(_data(), path, limit=9, seed=5).splits["train"] == every
    assert augmented(_data(), path, limit=50, seed=5).splits["train"] == every


def test_augment_limit_is_recorded_and_needs_a_file(tmp_path, tiny_model_dir, capsys):
    from test_train_cli import write_sentiment_csv

    data = write_sentiment_csv(tmp_path / "data.csv", n=60)
    path = _records(tmp_path / "a.jsonl", 9)
    out = tmp_path / "run"
    argv = ["train", "--dataset", str(data), "--text-column", "sentence", "--model",
            str(tiny_model_dir), "--max-steps", "1", "--no-progress"]
    assert main([*argv, "--output", str(out), "--augment-file", str(path),
                 "--augment-limit", "5"]) == 0
    config = json.loads((out / "config.json").read_text())
    plain = tmp_path / "plain"
    assert main([*argv, "--output", str(plain)]) == 0
    train = json.loads((plain / "config.json").read_text())["split_sizes"]["train"]
    assert config["augment_limit"] == 5
    assert config["split_sizes"]["train"] == train + 5
    # the run records the data it saw: the augmented training split, the same dev and test
    seen = json.loads((plain / "config.json").read_text())["data_sha256"]
    assert config["data_sha256"]["train"] != seen["train"]
    assert {k: config["data_sha256"][k] for k in ("dev", "test")} == \
        {k: seen[k] for k in ("dev", "test")}
    other = tmp_path / "other-seed"  # the sample of 5 is drawn with the run's --seed
    assert main([*argv, "--output", str(other), "--augment-file", str(path),
                 "--augment-limit", "5", "--seed", "14"]) == 0
    assert json.loads((other / "config.json").read_text())["seed"] != config["seed"]
    assert json.loads((other / "config.json").read_text())["data_sha256"]["train"] != \
        config["data_sha256"]["train"]
    capsys.readouterr()
    assert main([*argv, "--output", str(tmp_path / "x"), "--augment-limit", "5"]) == 2
    assert capsys.readouterr().err.strip().endswith("--augment-limit needs --augment-file")
    assert not (tmp_path / "x").exists()
    with pytest.raises(SystemExit) as stopped:
        main([*argv, "--output", str(tmp_path / "y"), "--augment-file", str(path),
              "--augment-limit", "0"])
    assert stopped.value.code == 2
    assert "argument --augment-limit: must be >= 1" in capsys.readouterr().err


def test_an_unconfirmed_success_is_not_an_adversarial_example(tmp_path):
    from advembed.data.augment import adversarial_examples

    lines = [{"status": "successful", "text": "confirmed", "text_pair": None, "label": 1,
              "flip_confirmed": True},
             {"status": "successful", "text": "not confirmed", "text_pair": None, "label": 0,
              "flip_confirmed": False},
             {"status": "successful", "text": "older file", "text_pair": None, "label": 0}]
    path = tmp_path / "attack-pwws-train.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert [e.text for e in adversarial_examples(path, ["n", "p"])] == ["confirmed", "older file"]


def test_records_of_dev_or_test_examples_are_refused(tmp_path):
    """A file made by attacking the test split (the attack's default) or another split seed
    would train on adversarial versions of the sentences the run is scored on."""
    train = [Example("clean a", 0), Example("clean b", 1)]
    data = TextDataset("toy", ["negative", "positive"],
                       {"train": train, "dev": [Example("held dev", 0)],
                        "test": [Example("held test", 1)]}, "toy")
    path = tmp_path / "attack-pwws.jsonl"

    def record(original, text):
        return {"status": "successful", "text": text, "text_pair": None, "label": 0,
                "original_text": original, "original_text_pair": None}

    path.write_text(json.dumps(record("clean a", "unsoiled a")) + "\n")
    assert [e.text for e in augmented(data, path).splits["train"]][-1] == "unsoiled a"
    for held in ("held dev", "held test"):
        path.write_text(json.dumps(record("clean a", "unsoiled a")) + "\n"
                        + json.dumps(record(held, "kept " + held)) + "\n")
        with pytest.raises(AdvembedError, match=f"line 2 attacks a dev or test example "
                                                f"\\('{held}'\\): make the file with "
                                                "`advembed attack --split train`"):
            augmented(data, path)


def _one_record(path: Path, **fields) -> Path:
    record = {"status": "successful", "text": "adversarial", "text_pair": None, "label": 0}
    path.write_text(json.dumps({"status": "successful", "text": "fine", "label": 1}) + "\n"
                    + json.dumps(record | fields) + "\n")
    return path


@pytest.mark.parametrize(("fields", "message"), [
    ({"text": ["a"]}, "'text' must be a non-empty string, got [\"a\"]"),
    ({"text": None}, "'text' must be a non-empty string, got null"),
    ({"text": ""}, "'text' must be a non-empty string, got \"\""),
    ({"text": " "}, "'text' must be a non-empty string, got \" \""),
    ({"text_pair": ["b"]}, "'text_pair' must be a non-empty string or null, got [\"b\"]"),
    ({"original_text": ["c"]}, "'original_text' must be a string or null, got [\"c\"]"),
    ({"label": 1.7}, "'label' must be an integer label index, got 1.7"),
    ({"label": True}, "'label' must be an integer label index, got true"),
    ({"label": "positive"}, "'label' must be an integer label index, got \"positive\""),
    ({"label": [1]}, "'label' must be an integer label index, got [1]"),
])
def test_a_bad_record_field_is_one_line_naming_file_and_line(tmp_path, fields, message):
    path = _one_record(tmp_path / "a.jsonl", **fields)
    with pytest.raises(AdvembedError) as caught:
        augmented(_data(), path)
    assert str(caught.value) == f"--augment-file {path} line 2: {message}"


def test_integral_labels_in_other_spellings_are_still_read(tmp_path):
    for label in (1, 1.0, "1"):
        path = _one_record(tmp_path / "a.jsonl", label=label)
        assert augmented(_data(), path).splits["train"][-1] == Example("adversarial", 1)


def test_a_records_pairing_must_match_the_datasets(tmp_path):
    """A pair record in single-sentence data would silently make the run a pair run; a
    record without a pair in pair data would train on half an example."""
    path = _one_record(tmp_path / "a.jsonl", text_pair="second")
    with pytest.raises(AdvembedError, match=re.escape(
            f"--augment-file {path} line 2 has a text_pair but the dataset is "
            "single-sentence data")):
        augmented(_data(), path)
    pairs = [Example("a", 0, "x"), Example("b", 1, "y")]
    pair_data = TextDataset("pairs", ["no", "yes"],
                            {"train": pairs, "dev": pairs[:1], "test": pairs[1:]})
    record = {"status": "successful", "text": "adversarial", "text_pair": "second", "label": 0}
    path.write_text(json.dumps(record) + "\n")
    assert augmented(pair_data, path).splits["train"][-1] == Example("adversarial", 0, "second")
    path.write_text(json.dumps(record) + "\n" + json.dumps(record | {"text_pair": None}) + "\n")
    with pytest.raises(AdvembedError, match=re.escape(
            f"--augment-file {path} line 2 has no text_pair but the dataset is "
            "sentence-pair data")):
        augmented(pair_data, path)
