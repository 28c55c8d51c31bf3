"""``benchmarks/atcl_table.py``: paper 004's baseline / +Adv. only / +ATCL table from each
variant's run folders — means over seeds, changes against the baseline paired by seed, which
way they go for perplexity (lower is better) and BLEU (higher is better), and the paper's own
numbers — checked against values computed by hand on fake runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_attack_table import _load


@pytest.fixture(scope="module")
def atcl_table():
    return _load("atcl_table")


def _run(root: Path, variant: str, name: str, dev: float, test: float, **extra) -> None:
    run = root / variant / name
    run.mkdir(parents=True)
    metric = "perplexity" if name.startswith("bbc-lm") else "bleu"
    (run / "metrics.json").write_text(json.dumps(
        {"best_dev": {metric: dev}, "test": {metric: test, **extra},
         "train": {"seconds": 600.0 if variant == "base" else 1400.0}}))


def test_table_pairs_changes_by_seed_and_says_which_way_they_go(atcl_table, tmp_path):
    _run(tmp_path, "base", "bbc-lm-none-s13", 125.0, 120.0)
    _run(tmp_path, "base", "bbc-lm-none-s14", 133.0, 130.0)
    _run(tmp_path, "atcl5", "bbc-lm-fgm+atcl-s13", 114.0, 110.0)
    _run(tmp_path, "atcl5", "bbc-lm-fgm+atcl-s14", 129.0, 126.0)
    _run(tmp_path, "adv", "bbc-lm-fgm+atcl-s13", 130.0, 125.0)
    _run(tmp_path, "adv", "bbc-lm-fgm+atcl-s14", 131.0, 128.0)
    _run(tmp_path, "adv", "bbc-lm-fgm+atcl-s15", 140.0, 139.0)  # no baseline: not paired
    _run(tmp_path, "base", "help-en-de-none-s13", 11.0, 10.0, chrf=30.0)
    _run(tmp_path, "base", "help-en-de-none-s14", 13.0, 12.0, chrf=34.0)
    _run(tmp_path, "adv", "help-en-de-fgm+atcl-s13", 10.0, 9.0, chrf=29.0)
    _run(tmp_path, "adv", "help-en-de-fgm+atcl-s14", 11.0, 10.5, chrf=32.0)
    (tmp_path / "base" / "bbc-lm-none-s13" / "config.json").write_text(json.dumps(
        {"epochs": 3.0, "batch_size": 16, "lr": 5e-4, "max_length": 128, "method": "none",
         "objective": "ce", "method_settings": {}, "objective_settings": {}}))
    out, summary, readme = tmp_path / "t.md", tmp_path / "s.json", tmp_path / "README.md"
    readme.write_text("# R\n\n## Results\n<!-- atcl:start -->\nold\n<!-- atcl:end -->\nend\n")
    args = atcl_table.parser().parse_args(
        ["--runs-dir", str(tmp_path), "--datasets", "bbc-lm", "help-en-de", "--seeds", "13",
         "14", "15", "--aggregate-only", "--out", str(out), "--summary", str(summary),
         "--readme", str(readme)])
    assert atcl_table.main(args) == 0
    # the README gets the tables with each dataset as bold text, not a heading of its own
    text = readme.read_text()
    assert "<!-- atcl:start -->\n**bbc-lm**\n" in text and "\n**help-en-de**\n" in text
    assert "old" not in text and "## bbc-lm" not in text and text.endswith("end\n")
    lines = out.read_text().splitlines()

    def row(dataset, label):
        section = lines[lines.index(f"## {dataset}"):]
        return next(line for line in section if line.startswith(f"| {label} |"))

    # ATCL − baseline: −10, −4 → −7.00 ± 4.24, beyond the spread, lower perplexity: better
    assert row("bbc-lm", "+ATCL (n = 5)") == (
        "| +ATCL (n = 5) | 2 | 121.50 ± 10.61 | 118.00 ± 11.31 | -7.00 ± 4.24 | better | "
        "PTB 32.89 (-3.24); WikiText-103 22.59 (+0.17) | 1400 | 0 |")
    # +Adv: +5, −2 (seed 15 has no baseline) → +1.50 ± 4.95: within the spread
    assert row("bbc-lm", "+Adv. only (β = 0)").startswith(
        "| +Adv. only (β = 0) | 3 | 133.67 ± 5.51 | 130.67 ± 7.37 | 1.50 ± 4.95 (2 of 3 seeds) | "
        "within the seeds' spread | PTB 36.46 (+0.33); WikiText-103 21.67 (-0.75) |")
    assert row("bbc-lm", "baseline") == (
        "| baseline | 2 | 129.00 ± 5.66 | 125.00 ± 7.07 |  |  | PTB 36.13; WikiText-103 "
        "22.42 | 600 | 0 |")
    # BLEU: −1.0, −1.5 → −1.25 ± 0.35, beyond the spread, lower BLEU: worse; chrF beside it
    assert row("help-en-de", "+Adv. only (β = 0)") == (
        "| +Adv. only (β = 0) | 2 | 10.50 ± 0.71 | 9.75 ± 1.06 | 30.50 ± 2.12 | -1.25 ± 0.35 | "
        "worse | IWSLT En-De 25.04 (+0.43) | 1400 | 0 |")
    assert ("- baseline: epochs 3, batch 16, lr 0.0005, max length 128, method `none` {}, "
            "objective `ce` {}") in lines
    rows = json.loads(summary.read_text())
    assert len(rows) == 11
    assert {"dataset": "help-en-de", "variant": "adv", "seed": 14, "dev_bleu": 11.0,
            "test_bleu": 10.5, "train_seconds": 1400.0, "collapsed": False,
            "test_chrf": 32.0} in rows


def test_verdict_needs_two_seeds_and_a_change_beyond_their_spread(atcl_table):
    assert atcl_table.verdict([-2.0, -1.0], lower_is_better=True) == "better"
    assert atcl_table.verdict([-2.0, -1.0], lower_is_better=False) == "worse"
    assert atcl_table.verdict([-2.0, 1.0], lower_is_better=True) == "within the seeds' spread"
    assert atcl_table.verdict([-2.0], lower_is_better=True) == "one seed only"


def test_each_variant_trains_into_its_own_folder_with_its_objective_options(atcl_table,
                                                                             tmp_path):
    args = atcl_table.parser().parse_args(
        ["--runs-dir", str(tmp_path), "--datasets", "help-de-en", "--epochs", "2"])
    command = atcl_table.quality_command(args, "atcl20", "help-de-en", 14)
    assert command[command.index("--runs-dir") + 1] == str(tmp_path / "atcl20")
    assert json.loads(command[command.index("--objective-options") + 1]) == {
        "atcl": {"num_negatives": 20}}
    assert command[command.index("--task") + 1] == "translation"
    assert command[command.index("--metric") + 1] == "bleu"
    assert command[command.index("--methods") + 1] == "fgm+atcl"
    assert command[command.index("--seeds") + 1] == "14"


def test_a_file_dataset_needs_its_task_and_an_empty_folder_is_one_line(atcl_table, tmp_path):
    args = atcl_table.parser().parse_args(
        ["--runs-dir", str(tmp_path), "--datasets", "my.txt", "--aggregate-only"])
    with pytest.raises(SystemExit, match="my.txt: not a named LM or translation dataset"):
        atcl_table.main(args)
    args = atcl_table.parser().parse_args(
        ["--runs-dir", str(tmp_path), "--datasets", "bbc-lm", "--aggregate-only"])
    with pytest.raises(SystemExit, match="no finished runs under"):
        atcl_table.main(args)


def test_trivial_rows_score_predictors_that_ignore_their_input(atcl_table, tmp_path,
                                                               monkeypatch):
    """Translation, every n-gram precision equal and lengths matched, so BLEU is that share:
    dev targets "a b c d" twice and "x y z w" → the fixed sentence "a b c d" 2/3 = 66.67, the
    copy (one source of three is its target) 33.33; test → the fixed sentence (the first of
    two equally frequent) 50.00, the copy 100.  Language modelling: dev "a b" / "b c c" in
    blocks of the runs' 3 → 2√2 = 2.83 (test_lm), test "a a b" → targets 1 2 → 2.00."""
    from test_lm import _WordTokenizer

    from advembed.data.base import Example, TextDataset
    from advembed.tasks import get_task
    from advembed.tasks.base import LoadedModel

    dev = [Example("a b c d", text_pair="a b c d"), Example("q r s t", text_pair="x y z w"),
           Example("u v w k", text_pair="a b c d")]
    test = [Example("e f g h", text_pair="e f g h"), Example("m n o p", text_pair="m n o p")]
    data = TextDataset("toy", [], {"train": dev, "dev": dev, "test": test})
    monkeypatch.setattr(type(get_task("translation")), "load_data", lambda *a, **k: data)
    args = atcl_table.parser().parse_args(["--runs-dir", str(tmp_path), "--trivial"])
    (fixed, fixed_dev, fixed_test), (copy, copy_dev, copy_test) = atcl_table.trivial_scores(
        args, "help-en-de")
    assert "most frequent target" in fixed and "copy of the source" in copy
    assert fixed_dev["bleu"] == pytest.approx(200 / 3)
    assert copy_dev["bleu"] == pytest.approx(100 / 3)
    assert fixed_test["bleu"] == pytest.approx(50.0) and copy_test["bleu"] == pytest.approx(100)

    lm = type(get_task("lm"))
    text = TextDataset("toy", [], {"train": [Example("a b c")], "dev": [
        Example("a b"), Example("b c c")], "test": [Example("a a b")]})
    monkeypatch.setattr(lm, "load_data", lambda *a, **k: text)
    monkeypatch.setattr(lm, "build_model", lambda *a, **k: LoadedModel(None, _WordTokenizer(),
                                                                       "words"))
    config = tmp_path / "base" / "bbc-lm-none-s13" / "config.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"max_length": 3}))
    assert atcl_table.trivial_lines(args, "bbc-lm", "perplexity") == [
        "| *context-free: the split's unigram frequencies* | – | 2.83 | 2.00 |  |  |  |  |  |"]
    lines = atcl_table.trivial_lines(args, "help-en-de", "bleu")
    assert lines[1].startswith("| *a copy of the source* | – | 33.33 | 100.00 | 100.00 |")
    assert all(line.count("|") == 11 for line in lines)  # chrF: one column more

    # runs scored on other splits than today's build: no trivial rows beside them
    config.write_text(json.dumps({"max_length": 3, "data_sha256": text.fingerprints()}))
    assert atcl_table.trivial_lines(args, "bbc-lm", "perplexity")
    config.write_text(json.dumps({"max_length": 3, "split_sizes": {"dev": 3, "test": 1}}))
    with pytest.raises(SystemExit, match="not the data .*bbc-lm-none-s13 was scored on "
                                         r"\(split_sizes"):
        atcl_table.trivial_lines(args, "bbc-lm", "perplexity")
