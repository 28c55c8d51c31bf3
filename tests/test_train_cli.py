"""End to end: ``advembed train / eval / predict`` on a tiny local model and small files."""

from __future__ import annotations

import csv
import hashlib
import json
import random
from pathlib import Path

import pytest
import torch
from conftest import make_tiny_model_dir, package_path

from advembed.cli import main
from advembed.objectives.carl import CARL

POSITIVE = "great good brilliant best fun funny love".split()
NEGATIVE = "bad awful boring dull terrible worst hate".split()
FILLER = "the movie film story plot is was very and it this".split()


def _sentence(rng: random.Random, label: int) -> str:
    cue = rng.choice(POSITIVE if label else NEGATIVE)
    words = rng.sample(FILLER, 4) + [cue]
    rng.shuffle(words)
    return " ".join(words)


def write_sentiment_csv(path: Path, n: int = 120, seed: int = 0, pair: bool = False) -> Path:
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "second", "label"] if pair else ["sentence", "label"])
        for i in range(n):
            label = i % 2
            name = "positive" if label else "negative"
            row = [_sentence(rng, label)]
            if pair:
                row.append(_sentence(rng, label))
            writer.writerow(row + [name])
    return path


@pytest.fixture()
def data_csv(tmp_path) -> Path:
    return write_sentiment_csv(tmp_path / "reviews.csv", n=320)


def _train(tmp_path, model_dir, data, name, *extra):
    out = tmp_path / "runs" / name
    argv = ["train", "--dataset", str(data), "--model", str(model_dir), "--output", str(out),
            "--epochs", "2", "--batch-size", "8", "--lr", "3e-3", "--seed", "7", "--no-progress",
            "--text-column", "sentence", *extra]
    return main(argv), out


def test_train_writes_a_complete_run_and_is_reproducible(tmp_path, tiny_model_dir, data_csv):
    code, run = _train(tmp_path, tiny_model_dir, data_csv, "a")
    assert code == 0
    config = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert (run / "model" / "model.safetensors").is_file()
    assert not (run / "checkpoints").exists()
    assert config["label_names"] == ["negative", "positive"]
    assert config["seed"] == 7 and config["dataset"] == str(data_csv)
    weights = tiny_model_dir / "model.safetensors"  # the initial weights it started from
    assert config["model_source_sha256"] == {"model.safetensors": hashlib.sha256(
        weights.read_bytes()).hexdigest()}
    assert len(metrics["dev"]) == 2  # dev evaluation every epoch
    for key in ("accuracy", "macro_f1", "loss"):
        assert key in metrics["test"] and key in metrics["best_dev"]
    assert metrics["best_dev"]["accuracy"] == max(row["accuracy"] for row in metrics["dev"])
    assert metrics["test"]["accuracy"] > 0.7  # the cue words make this task easy
    # Same seed (and threads, recorded: float sums change order with them) → same metrics.
    assert config["torch_threads"] == torch.get_num_threads()
    code, again = _train(tmp_path, tiny_model_dir, data_csv, "b")
    assert code == 0
    assert json.loads((again / "metrics.json").read_text())["test"] == metrics["test"]


def test_a_randomly_initialised_run_records_no_initial_weights(tmp_path, tiny_model_dir,
                                                               data_csv):
    assert (tiny_model_dir / "model.safetensors").is_file()  # there, but never loaded
    code, run = _train(tmp_path, tiny_model_dir, data_csv, "r", "--model-init", "random",
                       "--epochs", "1", "--limit", "40")
    assert code == 0
    assert json.loads((run / "config.json").read_text())["model_source_sha256"] == {}


def test_eval_and_predict_read_a_saved_run(tmp_path, tiny_model_dir, data_csv, capsys):
    code, run = _train(tmp_path, tiny_model_dir, data_csv, "c", "--method", "fgm",
                       "--adv-epsilon", "0.05")
    assert code == 0
    metrics = json.loads((run / "metrics.json").read_text())
    capsys.readouterr()
    assert main(["eval", "--run", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert main(["predict", "--run", str(run), "--json", "a great fun movie"]) == 0
    prediction = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(prediction["probabilities"]) == {"negative", "positive"}
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)
    assert prediction["label"] == max(prediction["probabilities"],
                                      key=prediction["probabilities"].get)


def test_eval_refuses_its_own_data_changed_since_and_data_of_the_other_kind(
        tmp_path, tiny_model_dir, data_csv, capsys):
    """A run scores its own splits only as they were (data_sha256): a reshuffled file or
    another --split-seed would move training examples into "test" without a word; naming
    --dataset scores the data as it is now.  Pair data for a single-sentence run is refused."""
    data = tmp_path / "data.csv"
    data.write_text(data_csv.read_text())
    code, run = _train(tmp_path, tiny_model_dir, data, "own", "--max-steps", "2")
    assert code == 0
    assert main(["eval", "--run", str(run)]) == 0
    capsys.readouterr()
    assert main(["eval", "--run", str(run), "--split-seed", "7"]) == 2
    assert "test split is not the one the run was scored on" in capsys.readouterr().err
    header, *rows = data_csv.read_text().splitlines()
    data.write_text("\n".join([header, *reversed(rows)]) + "\n")
    assert main(["eval", "--run", str(run), "--split", "dev"]) == 2
    error = capsys.readouterr().err.strip()
    assert "dev split is not the one the run was scored on" in error and "\n" not in error
    assert main(["eval", "--run", str(run), "--dataset", str(data), "--text-column",
                 "sentence"]) == 0
    pairs = write_sentiment_csv(tmp_path / "pairs.csv", pair=True)
    capsys.readouterr()
    assert main(["eval", "--run", str(run), "--dataset", str(pairs), "--text-column", "sentence",
                 "--text-pair-column", "second"]) == 2
    assert ("holds sentence pairs, but the run was trained on single sentences"
            in capsys.readouterr().err)


def test_sentence_pairs_train_and_predict(tmp_path, tiny_model_dir, capsys):
    data = write_sentiment_csv(tmp_path / "pairs.csv", pair=True)
    code, run = _train(tmp_path, tiny_model_dir, data, "pairs", "--text-pair-column", "second",
                       "--max-steps", "4", "--method", "freelb")
    assert code == 0
    assert json.loads((run / "config.json").read_text())["is_pair"] is True
    capsys.readouterr()
    assert main(["predict", "--run", str(run), "good"]) == 2
    assert "--pair" in capsys.readouterr().err
    assert main(["predict", "--run", str(run), "good", "--pair", "bad"]) == 0


def test_freeat_replays_each_batch_and_divides_epochs(tmp_path, tiny_model_dir, data_csv):
    code, run = _train(tmp_path, tiny_model_dir, data_csv, "freeat", "--method", "freeat",
                       "--adv-replays", "2", "--limit", "40")
    assert code == 0
    metrics = json.loads((run / "metrics.json").read_text())
    # --limit 40 → 40 training examples / batch 8 = 5 batches; 2 epochs / 2 replays = one
    # pass over the data, each batch replayed twice with an optimiser step per replay.
    assert metrics["train"]["examples"] == 40
    assert metrics["train"]["steps"] == 5 * 2


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--dataset", "nosuchdata"], "unknown dataset 'nosuchdata'"),
        (["--model", "/no/such/model"], "/no/such/model"),
        (["--epochs", "three"], "--epochs"),
        (["--batch-size", "0"], "--batch-size"),
        (["--text-column", "missing"], "missing"),
        (["--method", "fgm", "--adv-replays", "2"], "--adv-replays"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_run_dir(
    tmp_path, tiny_model_dir, data_csv, capsys, argv, fragment
):
    out = tmp_path / "runs" / "bad"
    base = {"--dataset": str(data_csv), "--model": str(tiny_model_dir)}
    for i in range(0, len(argv) - 1, 2):
        base.pop(argv[i], None)
    full = ["train", "--output", str(out), "--no-progress", "--max-steps", "1"]
    for key, value in base.items():
        full += [key, value]
    with pytest.raises(SystemExit) if argv[0] in ("--epochs", "--batch-size") else _no_raise():
        code = main(full + argv)
        assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err
    assert "Traceback" not in err
    assert not out.exists()
    if out.parent.exists():
        assert not [p for p in out.parent.iterdir() if p.name.startswith(".bad")]


def test_unknown_label_in_test_file_names_the_label(tmp_path, tiny_model_dir, capsys):
    folder = tmp_path / "folder"
    folder.mkdir()
    write_sentiment_csv(folder / "train.csv", n=40)
    write_sentiment_csv(folder / "dev.csv", n=10)
    test = write_sentiment_csv(folder / "test.csv", n=10)
    test.write_text(test.read_text() + "an odd one,neutral\n")
    code, run = _train(tmp_path, tiny_model_dir, folder, "labels")
    assert code == 2
    assert "neutral" in capsys.readouterr().err
    assert not run.exists()


def test_existing_output_is_refused_without_overwrite(tmp_path, tiny_model_dir, data_csv, capsys):
    code, run = _train(tmp_path, tiny_model_dir, data_csv, "twice", "--max-steps", "1")
    assert code == 0
    code, _ = _train(tmp_path, tiny_model_dir, data_csv, "twice", "--max-steps", "1")
    assert code == 2 and "already exists" in capsys.readouterr().err


def test_no_progress_prints_readable_log_lines_not_dictionaries(tmp_path, tiny_model_dir,
                                                                 data_csv, capsys):
    """``--no-progress`` (CI logs) prints one line per log, ``step N/M (epoch E): loss …``
    and ``…: dev accuracy …``, in place of the Trainer's printed dictionaries."""
    from advembed.training.callbacks import LogLines

    code, _ = _train(tmp_path, tiny_model_dir, data_csv, "lines")
    assert code == 0
    out = capsys.readouterr().out
    assert "{'loss'" not in out and "{'eval_" not in out
    lines = out.splitlines()
    assert any(line.startswith("step ") and ": loss " in line and ", lr " in line
               for line in lines)
    assert any(": dev " in line and "accuracy " in line for line in lines)
    assert LogLines.format(827, 2481, {"eval_loss": 0.58982, "eval_f1": 0.47736,
                                       "eval_runtime": 3.2, "epoch": 1.0}) == (
        "step 827/2481 (epoch 1.00): dev loss 0.5898, f1 0.4774")


def test_train_under_torchrun_is_one_line_pointing_to_adv_trainer(tmp_path, tiny_model_dir,
                                                                    data_csv, monkeypatch,
                                                                    capsys):
    """Every rank of ``torchrun --nproc_per_node 2 advembed train`` would take the run's lock
    and write the run: refused in one line, before anything is written."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    code, run = _train(tmp_path, tiny_model_dir, data_csv, "ddp")
    err = capsys.readouterr().err
    assert code == 2 and "this is one of 2 (torchrun / accelerate launch)" in err
    assert "advembed.AdvTrainer" in err and len(err.strip().splitlines()) == 1
    assert not run.exists() and not list(run.parent.glob(".ddp*"))


def test_training_failure_leaves_no_run_dir(tmp_path, tiny_model_dir, data_csv, monkeypatch):
    import advembed.training.trainer

    def boom(self, *args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(advembed.training.trainer.AdvTrainer, "training_step", boom)
    with pytest.raises(RuntimeError):
        _train(tmp_path, tiny_model_dir, data_csv, "broken")
    assert not (tmp_path / "runs" / "broken").exists()
    assert not list((tmp_path / "runs").glob(".broken*"))


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_local_model_directory_is_the_hub_code_path(tmp_path):
    from advembed.models import load_classifier

    model_dir = make_tiny_model_dir(tmp_path / "hub-like", num_labels=3)
    loaded = load_classifier(str(model_dir), ["a", "b", "c"])
    assert loaded.model.config.num_labels == 3
    assert loaded.model.config.id2label == {0: "a", 1: "b", 2: "c"}
    assert loaded.tokenizer("good movie")["input_ids"][0] == loaded.tokenizer.cls_token_id


@pytest.mark.parametrize(("script", "method"), [("own_loop.py", "freelb"),
                                                 ("own_loop.py", "freeat"),  # replays
                                                 ("with_trainer.py", None)])
def test_examples_run(tmp_path, tiny_model_dir, data_csv, script, method):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = os.environ | {"PYTHONPATH": package_path()}
    result = subprocess.run(
        [sys.executable, str(root / "examples" / script), "--model", str(tiny_model_dir),
         "--dataset", str(data_csv), "--limit", "48"] + (["--method", method] if method else []),
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert ("last loss" in result.stdout) or ("eval_accuracy" in result.stdout)


@pytest.mark.parametrize(("method", "objective"), [("freelb", "carl"), ("freelb", "rar"),
                                                   ("fgm", "atcl")])
def test_paper_compositions_train_from_the_cli(tmp_path, tiny_model_dir, data_csv, method,
                                               objective):
    extra = {"carl": ["--carl-warmup", "2", "--carl-negatives", "8", "--carl-nce"],
             "rar": ["--rar-lr", "0.002"]}.get(objective, [])
    code, run = _train(tmp_path, tiny_model_dir, data_csv, f"{method}-{objective}",
                       "--method", method, "--objective", objective, "--limit", "64", *extra)
    assert code == 0
    config = json.loads((run / "config.json").read_text())
    assert (config["method"], config["objective"]) == (method, objective)
    if objective == "rar":
        assert config["objective_options"] == {"lr": 0.002}
        assert config["objective_settings"] == {"weight": 0.1, "head": "listed", "lr": 0.002}
    elif objective == "carl":
        assert config["objective_settings"]["nce"] is True
    elif objective == "atcl":  # the defaults are recorded too
        assert config["objective_settings"] == {"alpha": 0.1, "beta": 0.1, "tau": 0.07,
                                                "num_negatives": 5}
        # ...and the method settings FGM really ran with: ATCL's ε = 0.03, not FGM's 0.1.
        assert config["method_settings"]["epsilon"] == 0.03
    if objective != "atcl":
        from advembed.methods import method_class

        assert config["method_settings"] == method_class(method).Settings().as_dict()
    from safetensors import safe_open

    with safe_open(str(run / "model" / "model.safetensors"), "pt") as handle:
        keys = list(handle.keys())
    assert any(k.startswith("advembed_reconstructor.") for k in keys) == (objective == "rar")


def test_a_carl_run_too_short_for_its_contrastive_term_is_warned_about(tmp_path, tiny_model_dir,
                                                                       data_csv):
    """At the default warm-up (a third of the run) the banks fill from step 3 and are certainly
    full only at the end of epoch 2 (step 16): a 1-epoch run never reaches L_D and would
    silently be FreeLB."""
    with pytest.warns(UserWarning, match=r"CARL's contrastive term may never act: it acts once "
                      r"the memory banks hold every training example, filled from the end of "
                      r"the warm-up \(3 steps, --carl-warmup 0\.333333\) on, which only the "
                      r"end of the next whole epoch \(8 steps each\) guarantees, at step 16, "
                      r"and the run has 8"):
        code, _ = _train(tmp_path, tiny_model_dir, data_csv, "short", "--method", "freelb",
                         "--objective", "carl", "--limit", "64", "--epochs", "1")
    assert code == 0


def test_carl_schedule_warning_rounds_the_warm_up_to_its_epoch_and_adds_one():
    carl = CARL([0, 1, 0, 1], dim=4, total_steps=30, warmup=1 / 3)  # warm-up: 10 steps
    assert carl.warmup_steps == 10
    # warm-up ends in epoch 1 (steps 0-18): full by the end of epoch 2, step 38 > 30
    assert "at step 38, and the run has 30" in carl.schedule_warning(19, 30)
    assert carl.schedule_warning(19, 39) is None
    assert "at step 20, and the run has 20" in carl.schedule_warning(10, 20)  # ends on a boundary
    assert carl.schedule_warning(10, 21) is None


def test_objective_option_without_its_objective_is_refused(tmp_path, tiny_model_dir, data_csv,
                                                            capsys):
    code, _ = _train(tmp_path, tiny_model_dir, data_csv, "x", "--method", "fgm",
                     "--carl-tau", "0.1")
    assert code == 2 and "--carl-tau needs --objective carl" in capsys.readouterr().err


def test_a_reconstructed_sentence_keeps_its_unknown_words(tiny_model_dir):
    from transformers import AutoTokenizer

    from advembed.evaluation.reconstruct import _decode_first_segment

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    batch = tokenizer(["the movie zzzqqq is great"], padding="max_length", max_length=12,
                      return_tensors="pt")
    ids = batch["input_ids"][0]
    assert tokenizer.unk_token_id in ids.tolist()  # the made-up word
    # [CLS], [SEP] and padding go; the unknown word stays where it was
    assert _decode_first_segment(tokenizer, ids, batch, 0) == "the movie [UNK] is great"


def test_reconstruct_writes_text_samples_and_flip_flags(tmp_path, tiny_model_dir, data_csv,
                                                        capsys):
    code, run = _train(tmp_path, tiny_model_dir, data_csv, "rar", "--method", "freelb",
                       "--objective", "rar", "--limit", "64")
    assert code == 0
    capsys.readouterr()
    assert main(["reconstruct", "--run", str(run), "--n-examples", "10"]) == 0
    assert "flip the prediction" in capsys.readouterr().out
    rows = [json.loads(line) for line in (run / "reconstruct-dev.jsonl").read_text().splitlines()]
    assert len(rows) == 10
    assert all(isinstance(r["flipped"], bool) and r["reconstructed"] for r in rows)
    assert all(0.0 <= r["changed_tokens"] <= 1.0 for r in rows)
    for r in rows:
        assert r["adversarial"] == (r["original_prediction"] == r["label"]
                                    and r["reconstructed_prediction"] != r["label"])
    # An --out that cannot be written is refused before the attack, leaving nothing behind.
    config_text = (run / "config.json").read_text()
    for out, message in ((tmp_path / "none" / "r.jsonl", "folder '" + str(tmp_path / "none")
                          + "' does not exist"), (run, "is a folder; give a file name"),
                         (data_csv / "r.jsonl", "is not a folder"),
                         (run / "config.json", "already exists and is not this command's")):
        before = sorted(p.name for p in tmp_path.iterdir())
        assert main(["reconstruct", "--run", str(run), "--out", str(out)]) == 2
        error = capsys.readouterr().err.strip()
        assert message in error and len(error.splitlines()) == 1, error
        assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not list(run.glob(".*.tmp")) and not list(tmp_path.glob(".*.tmp"))
    assert (run / "config.json").read_text() == config_text  # a typo overwrites nothing
    assert main(["reconstruct", "--run", str(run), "--n-examples", "2", "--out",
                 str(run / "reconstruct-dev.jsonl")]) == 0  # its own earlier output: replaced
    # A run without the reconstructor gets a one-line error.
    code, plain = _train(tmp_path, tiny_model_dir, data_csv, "plain", "--max-steps", "1")
    capsys.readouterr()
    assert main(["reconstruct", "--run", str(plain)]) == 2
    assert "--objective rar" in capsys.readouterr().err


def test_a_rar_run_records_its_head_and_runs_before_the_flag_read_as_listed(
        tmp_path, tiny_model_dir, data_csv):
    from advembed.evaluation.reconstruct import load_reconstructor
    from advembed.evaluation.runs import load_run_model
    from advembed.objectives.rar import recorded_head
    from advembed.runs import read_run

    code, run = _train(tmp_path, tiny_model_dir, data_csv, "mlm", "--method", "fgm",
                       "--objective", "rar", "--rar-head", "mlm", "--max-steps", "1")
    assert code == 0
    config = read_run(run)[0]
    assert config["objective_settings"]["head"] == "mlm" == recorded_head(config)
    loaded = load_run_model(run, config)
    assert load_reconstructor(loaded.model, run / "model", recorded_head(config)).order == "mlm"
    older = dict(config, objective_settings={k: v for k, v in
                                             config["objective_settings"].items() if k != "head"})
    assert recorded_head(older) == recorded_head({}) == "listed"  # trained before --rar-head
    assert recorded_head({"objective_settings": {"head": "mlm"}}) == "mlm"


def _train_argv(data, model_dir, out):
    return ["train", "--dataset", str(data), "--model", str(model_dir), "--output", str(out),
            "--epochs", "200", "--batch-size", "8", "--no-progress"]


def test_sigterm_keeps_checkpoints_and_stale_staging_is_cleaned(tmp_path, tiny_model_dir,
                                                                 data_csv):
    import os
    import signal
    import subprocess
    import sys
    import time

    runs = tmp_path / "runs"
    runs.mkdir()
    stale = runs / ".killed.partial-999999999"  # a process id that does not exist
    stale.mkdir()
    env = os.environ | {"PYTHONPATH": package_path()}
    process = subprocess.Popen(
        [sys.executable, "-m", "advembed.cli", "train", "--dataset", str(data_csv),
         "--model", str(tiny_model_dir), "--output", str(runs / "killed"), "--epochs", "200",
         "--batch-size", "8", "--no-progress"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        # generous: on a loaded 2-core machine the child's imports alone can take minutes
        deadline = time.time() + 600
        staging = runs / ".killed.partial"
        while time.time() < deadline and not list(
                staging.glob("checkpoints/checkpoint-*/complete.json")):
            time.sleep(0.2)
        assert not stale.exists()  # the new run removed the dead process's staging folder
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:  # never leave a 200-epoch training behind
            process.kill()
            process.wait()
    assert process.returncode == 130, err[-2000:]
    # Interrupted after its first checkpoints: nothing half-written under the run's name, the
    # lock released, the checkpoints kept for --resume (and said so on one line).
    assert sorted(p.name for p in runs.iterdir()) == [".killed.partial"]
    assert list((runs / ".killed.partial").glob("checkpoints/checkpoint-*/complete.json"))
    assert "--resume" in err
    again = _train_argv(data_csv, tiny_model_dir, runs / "killed")
    assert main(again) == 2  # not silently deleted: resume it or overwrite it


def test_the_robust_preset_trains_and_records_its_sized_settings(tmp_path, tiny_model_dir,
                                                                 data_csv):
    code, run = _train(tmp_path, tiny_model_dir, data_csv, "robust", "--preset", "robust",
                       "--max-steps", "3", "--limit", "40")
    assert code == 0
    config = json.loads((run / "config.json").read_text())
    assert (config["preset"], config["method"]) == ("robust", "freelb")
    settings = config["method_settings"]
    assert settings["steps"] == 10 and settings["clean_pass"] is True
    assert settings["alpha"] == pytest.approx(0.028 * config["embedding_norm"], rel=1e-5)


def test_a_full_disk_at_the_final_write_keeps_what_resume_needs(tmp_path, tiny_model_dir,
                                                                 monkeypatch, capsys):
    """metrics.json cannot be written: the checkpoints and the best model stay, and --resume
    finishes the run exactly as an uninterrupted one."""
    import errno

    import advembed.training.run as run_module

    data = write_sentiment_csv(tmp_path / "reviews.csv", n=60)
    argv = ["train", "--dataset", str(data), "--text-column", "sentence", "--model",
            str(tiny_model_dir), "--epochs", "2", "--batch-size", "8", "--lr", "3e-3",
            "--no-progress"]
    assert main([*argv, "--output", str(tmp_path / "whole")]) == 0
    original = run_module.write_json

    def full_disk(path, value):
        if Path(path).name == "metrics.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(path, value)

    monkeypatch.setattr(run_module, "write_json", full_disk)
    out = tmp_path / "run"
    assert main([*argv, "--output", str(out)]) != 0
    assert "--resume" in capsys.readouterr().err and not out.exists()
    staging = tmp_path / ".run.partial"
    assert (staging / "best" / "best.json").is_file() and any(staging.glob("checkpoints/*"))
    monkeypatch.setattr(run_module, "write_json", original)
    assert main([*argv, "--output", str(out), "--resume"]) == 0
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    resumed = json.loads((out / "metrics.json").read_text())
    assert resumed["test"] == pytest.approx(whole["test"], rel=1e-9)  # ECE sums: ~1e-16 apart
    assert resumed["best_dev"] == pytest.approx(whole["best_dev"], rel=1e-9)


def test_overwrite_replaces_a_finished_run_and_leaves_nothing_aside(tmp_path, tiny_model_dir):
    data = write_sentiment_csv(tmp_path / "reviews.csv", n=40)
    argv = ["train", "--dataset", str(data), "--text-column", "sentence", "--model",
            str(tiny_model_dir), "--max-steps", "2", "--batch-size", "8", "--no-progress",
            "--output", str(tmp_path / "run")]
    assert main(argv) == 0
    first = json.loads((tmp_path / "run" / "config.json").read_text())["seed"]
    assert main([*argv, "--seed", str(first + 1), "--overwrite"]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["seed"] == first + 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reviews.csv", "run"]


def test_a_model_from_scratch_at_the_fine_tuning_rate_gets_a_note():
    from advembed.training.config import TrainConfig
    from advembed.training.run import fine_tuning_rate_note

    assert fine_tuning_rate_note(TrainConfig(model="scratch:transformer")).startswith(
        "--model scratch:transformer trains from scratch, and --lr 2e-05 is the fine-tuning "
        "default")
    assert "--model default trains from scratch" in fine_tuning_rate_note(TrainConfig(task="lm"))
    for config in (TrainConfig(model="scratch:esim", lr=1e-3), TrainConfig()):
        assert fine_tuning_rate_note(config) is None


def test_predict_answers_each_text_and_reads_standard_input(tiny_trained_run, capsys,
                                                            monkeypatch):
    """Several texts: one answer line each, in order, as predict gives them one at a time;
    ``-`` reads standard input's lines; --pair with several texts is a one-line error."""
    import io

    texts = ["a great fun film", "a dull boring mess", "fine"]
    single = []
    for text in texts:
        assert main(["predict", "--run", str(tiny_trained_run), text]) == 0
        single.append(capsys.readouterr().out)
    assert main(["predict", "--run", str(tiny_trained_run), *texts]) == 0
    assert capsys.readouterr().out == "".join(single)
    monkeypatch.setattr("sys.stdin", io.StringIO("a great fun film\n\na dull boring mess\n"))
    assert main(["predict", "--run", str(tiny_trained_run), "-", "fine", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all("label" in json.loads(line) for line in lines)
    assert main(["predict", "--run", str(tiny_trained_run), "a", "b", "--pair", "c"]) == 2
    assert "--pair goes with one text, not 2" in capsys.readouterr().err
