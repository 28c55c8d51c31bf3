"""``benchmarks/quality.py``'s table: the gain over plain training is paired by seed (a
method's run minus plain's of the same seed), checked against values computed by hand on
fake run folders where the difference of the means would give another figure."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from test_attack_table import _load


def _run(root: Path, name: str, metric: str, dev: float, test: float,
         data: dict | None = None) -> None:
    run = root / name
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps(
        {"best_dev": {metric: dev}, "test": {metric: test}, "train": {"seconds": 60.0}}))
    (run / "config.json").write_text(json.dumps({"method_settings": {}}
                                                | ({"data_sha256": data} if data else {})))


def _args(tmp_path: Path, metric: str, methods: list[str]) -> argparse.Namespace:
    return argparse.Namespace(
        datasets=["help-qa-en"], methods=methods, seeds=[13, 14, 15], runs_dir=tmp_path,
        metric=metric, reference=False, limit=None, model="scratch:esim", epochs=3.0,
        batch_size=32, lr=1e-3, task="qa-matching", machine="test")


def _row(table: str, method: str) -> list[str]:
    line = next(x for x in table.splitlines() if x.startswith(f"| help-qa-en | {method} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_the_gain_over_plain_is_paired_by_seed_in_points(tmp_path):
    """Plain has seeds 13 and 14 (F1 0.50, 0.60), FGM all three (0.53, 0.58, 0.70): paired
    +3 and −2 points → 0.50 ± 3.54; FGM's seed 15 has no plain run to pair with.  (The
    difference of the means, 0.6033 − 0.55, would read +5.33.)"""
    quality = _load("quality")
    for seed, f1 in ((13, 0.50), (14, 0.60)):
        _run(tmp_path, f"help-qa-en-none-s{seed}", "f1", 0.5, f1)
    for seed, f1 in ((13, 0.53), (14, 0.58), (15, 0.70)):
        _run(tmp_path, f"help-qa-en-fgm-s{seed}", "f1", 0.5, f1)
    table = quality.aggregate(_args(tmp_path, "f1", ["none", "fgm"]))
    fgm = _row(table, "fgm")
    assert fgm[2] == "3" and fgm[4] == "0.6033 ± 0.0874"
    assert fgm[5] == "+0.50 ± 3.54 (2 of 3 seeds)"  # the Δ's seeds are not the row's
    assert _row(table, "none")[5] == ""
    alone = quality.aggregate(_args(tmp_path, "f1", ["fgm"]))  # no plain row to pair with
    assert _row(alone, "fgm")[5] == "no none runs"
    assert "mean ± sample std (n − 1)" in table
    assert "in points" in table


def test_a_perplexity_gain_stays_in_the_metric_s_own_units(tmp_path):
    """Perplexity is not a fraction: plain 100 / 120, method 90 / 125 → −10 and +5, so the
    cell is −2.50 ± 10.61, not ×100."""
    quality = _load("quality")
    for seed, (plain, mine) in {13: (100.0, 90.0), 14: (120.0, 125.0)}.items():
        _run(tmp_path, f"help-qa-en-none-s{seed}", "perplexity", plain, plain)
        _run(tmp_path, f"help-qa-en-fgm+atcl-s{seed}", "perplexity", mine, mine)
    table = quality.aggregate(_args(tmp_path, "perplexity", ["none", "fgm+atcl"]))
    assert _row(table, "fgm+atcl")[5] == "-2.50 ± 10.61"
    assert "in points" not in table


def test_a_method_with_an_epoch_suffix_trains_that_many_epochs_under_its_own_name():
    """``freeat@9`` is ``advembed train --method freeat --epochs 9`` written to its own run
    folder (``…-freeat@9-s13``), so it sits in a table beside ``freeat`` at ``--epochs 3``;
    its method options are FreeAT's."""
    from advembed.cli import build_parser
    from advembed.cli.train import config_from_args

    quality = _load("quality")
    args = argparse.Namespace(model="scratch:esim", epochs=3.0, batch_size=32, lr=1e-3,
                              runs_dir=Path("runs"), limit=None, max_steps=None,
                              objective_options={}, task="qa-matching")

    def config(method: str):
        command = quality.train_command(args, "help-qa-en", method, 13, {"replays": 2})
        return config_from_args(build_parser().parse_args(command[command.index("train"):]))

    nine, three = config("freeat@9"), config("freeat")
    assert (nine.method, nine.epochs, three.epochs) == ("freeat", 9.0, 3.0)
    assert nine.output == str(Path("runs") / "help-qa-en-freeat@9-s13")
    assert nine.method_options == {"replays": 2}
    assert quality.method_name("freelb+carl@6") == "freelb"


def test_a_row_trained_longer_pairs_with_plain_trained_as_long(tmp_path):
    """``freeat@9`` pairs with ``none@9`` (0.62 − 0.60 = +2.00 points), not with ``none`` at
    the default epochs (which would read +7.00); ``none@9`` itself pairs with ``none``
    (+5.00): what the longer schedule gives plain training."""
    quality = _load("quality")
    for method, f1 in (("none", 0.55), ("none@9", 0.60), ("freeat", 0.47), ("freeat@9", 0.62)):
        _run(tmp_path, f"help-qa-en-{method}-s13", "f1", 0.5, f1)
    table = quality.aggregate(_args(tmp_path, "f1", ["none", "freeat", "none@9", "freeat@9"]))
    assert _row(table, "freeat@9")[5] == "+2.00 (1 seed)"
    assert _row(table, "none@9")[5] == "+5.00 (1 seed)"
    assert _row(table, "freeat")[5] == "-8.00 (1 seed)"
    assert "`m@E` pairs with `none@E`" in table


def test_an_epoch_suffix_that_is_not_a_number_is_a_one_line_error(monkeypatch, capsys):
    """``freeat@nine`` stops ``quality.py`` before any run starts, naming the method word."""
    quality = _load("quality")
    monkeypatch.setattr("sys.argv", ["quality.py", "--methods", "none", "freeat@nine"])
    with pytest.raises(SystemExit):
        quality.main()
    assert "--methods freeat@nine: the epochs after @ must be a number" in capsys.readouterr().err


def test_runs_that_saw_different_data_are_never_averaged_into_one_row(tmp_path):
    """A dataset rebuilt between runs (help-qa v2 → v3) gives other splits: the table refuses
    to pair or average them, in one line naming two such runs; runs from before fingerprints
    were recorded are unknown, not different."""
    quality = _load("quality")
    old, new = {"train": "a", "dev": "b", "test": "c"}, {"train": "a", "dev": "b", "test": "d"}
    _run(tmp_path, "help-qa-en-none-s13", "f1", 0.5, 0.55, data=old)
    _run(tmp_path, "help-qa-en-none-s14", "f1", 0.5, 0.56)  # recorded nothing
    _run(tmp_path, "help-qa-en-fgm-s13", "f1", 0.5, 0.57, data=old)
    assert "| help-qa-en | fgm |" in quality.aggregate(_args(tmp_path, "f1", ["none", "fgm"]))
    _run(tmp_path, "help-qa-en-fgm-s14", "f1", 0.5, 0.58, data=new)
    with pytest.raises(SystemExit, match="runs of help-qa-en saw different data .*"
                                         "help-qa-en-fgm-s13 and help-qa-en-fgm-s14"):
        quality.aggregate(_args(tmp_path, "f1", ["none", "fgm"]))
    limited = _args(tmp_path, "f1", ["none", "fgm"])
    limited.limit = 100  # each seed draws its own subset: nothing to compare
    assert "| help-qa-en | fgm |" in quality.aggregate(limited)


def test_reference_rows_only_where_the_runs_say_which_splits_they_scored(tmp_path, monkeypatch,
                                                                         capsys):
    """The reference rows are checked against the runs' data_sha256, or for older runs their
    split_sizes; runs that record neither, or disagree, get none (one line); --limit none."""
    quality = _load("quality")
    calls = []
    monkeypatch.setattr(quality, "reference_lines", lambda dataset, metric, **check:
                        calls.append(check) or [f"| {dataset} | *reference* | – |"])
    args = _args(tmp_path, "f1", ["none"])
    args.reference = True
    fingerprint = {"train": "a", "dev": "b", "test": "c"}
    _run(tmp_path, "help-qa-en-none-s13", "f1", 0.5, 0.55, data=fingerprint)
    assert "*reference*" in quality.aggregate(args)
    assert calls.pop() == {"expected": fingerprint}
    sizes = {"train": 90, "dev": 10, "test": 12}
    for seed in (13, 14):
        config = tmp_path / f"help-qa-en-none-s{seed}" / "config.json"
        if not config.parent.exists():
            _run(tmp_path, config.parent.name, "f1", 0.5, 0.55)
        config.write_text(json.dumps({"method_settings": {}, "split_sizes": sizes}))
    assert "*reference*" in quality.aggregate(args)
    assert calls.pop() == {"expected_sizes": sizes}
    _run(tmp_path, "help-qa-en-none-s15", "f1", 0.5, 0.55)  # records neither
    with pytest.raises(SystemExit, match="record no data_sha256 and not all their split_sizes"):
        quality.aggregate(args)
    args.limit = 50
    assert "*reference*" not in quality.aggregate(args) and not calls
    assert "no reference rows for help-qa-en under --limit" in capsys.readouterr().err


def _train_args(tmp_path: Path, rerun: bool = False) -> argparse.Namespace:
    return argparse.Namespace(model="scratch:esim", epochs=3.0, batch_size=32, lr=1e-3,
                              runs_dir=tmp_path, limit=None, max_steps=None,
                              objective_options={}, task="qa-matching", rerun=rerun)


def _checkpoint(tmp_path: Path, name: str, complete: bool = True) -> None:
    checkpoint = tmp_path / f".{name}.partial" / "checkpoints" / "checkpoint-40"
    checkpoint.mkdir(parents=True)
    if complete:
        (checkpoint / "complete.json").write_text("{}")


@pytest.mark.parametrize("refused", [False, True])
def test_a_stopped_run_goes_on_from_its_checkpoint_and_starts_again_if_refused(
        tmp_path, monkeypatch, refused):
    """A run with a complete checkpoint in its staging folder is trained with ``--resume``;
    when ``advembed train`` refuses that (other settings), it is trained again with
    ``--overwrite`` into the same log, which says why."""
    quality = _load("quality")
    _checkpoint(tmp_path, "help-qa-en-fgm-s13")
    calls = []

    def call(command, stdout, **_):
        calls.append(command)
        if refused and "--resume" in command:
            stdout.write("advembed train: error: the interrupted run was started with other "
                         "options (lr: 0.01 then, 0.001 now)\n")
            stdout.flush()
            return 2
        return 0

    monkeypatch.setattr(quality.subprocess, "call", call)
    name, code, _ = quality.run_one(_train_args(tmp_path), "help-qa-en", "fgm", 13, {})
    assert (name, code) == ("help-qa-en-fgm-s13", 0)
    flags = [("--resume" in c, "--overwrite" in c) for c in calls]
    assert flags == ([(True, False), (False, True)] if refused else [(True, False)])
    assert ("starting it again" in (tmp_path / f"{name}.log").read_text()) == refused


@pytest.mark.parametrize("case", ["no checkpoint", "incomplete checkpoint", "rerun"])
def test_a_run_without_a_checkpoint_to_go_on_from_starts_again(tmp_path, monkeypatch, case):
    """No staging folder, one whose only checkpoint is incomplete, or ``--rerun``: the run is
    trained with ``--overwrite`` (resuming would be refused, or is not wanted)."""
    quality = _load("quality")
    if case != "no checkpoint":
        _checkpoint(tmp_path, "help-qa-en-fgm-s13", complete=case == "rerun")
    calls = []
    monkeypatch.setattr(quality.subprocess, "call",
                        lambda command, **_: calls.append(command) or 0)
    quality.run_one(_train_args(tmp_path, rerun=case == "rerun"), "help-qa-en", "fgm", 13, {})
    assert len(calls) == 1 and "--overwrite" in calls[0] and "--resume" not in calls[0]


def test_a_run_trained_with_another_recipe_is_not_averaged_under_this_header(tmp_path):
    """Runs are found by name: one trained at lr 1e-3 among a table headed lr 2e-5 (or at
    other epochs, unless its method is written `m@E`) exits naming it."""
    quality = _load("quality")
    for seed in (13, 14):
        _run(tmp_path, f"help-qa-en-fgm-s{seed}", "f1", 0.5, 0.5)
    config = tmp_path / "help-qa-en-fgm-s14" / "config.json"
    config.write_text(json.dumps({"method_settings": {}, "lr": 0.001, "epochs": 3}))
    assert "| fgm |" in quality.aggregate(_args(tmp_path, "f1", ["fgm"]))  # the header's
    config.write_text(json.dumps({"method_settings": {}, "lr": 2e-5, "epochs": 3}))
    with pytest.raises(SystemExit, match="run help-qa-en-fgm-s14 trained with lr 2e-05, not the "
                                         "0.001 this table's header states"):
        quality.aggregate(_args(tmp_path, "f1", ["fgm"]))
    config.write_text(json.dumps({"method_settings": {}, "lr": 0.001, "epochs": 9}))
    with pytest.raises(SystemExit, match="trained with epochs 9, not the 3.0"):
        quality.aggregate(_args(tmp_path, "f1", ["fgm"]))
