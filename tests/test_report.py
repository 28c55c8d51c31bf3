"""``advembed report``: fake run directories written by hand, no model, no network."""

from __future__ import annotations

import json
import random
import re
import statistics
from pathlib import Path

import pytest

from advembed.cli import main
from advembed.report.plots import sweep_curve
from advembed.report.runs import group_runs, load_runs

EPSILONS = (0.02, 0.075, 0.1)
LABELS = ["negative", "positive"]


def make_run(root: Path, name: str, *, method: str, seed: int, test_accuracy: float,
             objective: str | None = "ce", attacks: bool = True,
             word_attack: bool = False) -> Path:
    """A run directory like ``advembed train`` + ``advembed attack`` leave behind."""
    run = root / name
    run.mkdir(parents=True)
    config = {"dataset": "mr", "model": "bert-base-uncased", "method": method, "seed": seed,
              "label_names": LABELS, "epochs": 2, "lr": 2e-5, "batch_size": 32,
              "method_options": {"epsilon": 0.1} if method != "none" else {}}
    if objective is not None:
        config["objective"] = objective
    split = {"accuracy": test_accuracy, "macro_f1": test_accuracy - 0.01, "loss": 0.4,
             "ece": round(0.03 + seed / 100, 4)}
    metrics = {"dev": [{"epoch": 1, "step": 10, **split}], "best_dev": split, "test": split,
               "train": {"steps": 20, "loss": 0.5, "seconds": 12.5 + seed, "examples": 640},
               "parameters": 109_483_778, "collapsed": False}
    _dump(run / "config.json", config)
    _dump(run / "metrics.json", metrics)
    if attacks:
        _write_attacks(run, test_accuracy, seed)
    if word_attack:
        _dump(run / "attack-textfooler.json",
              {"original_accuracy": test_accuracy, "attack_accuracy": 0.21, "success_rate": 0.75,
               "mean_queries": 88.5, "mean_perturbed_percent": 14.2,
               "attack_accuracy_rescaled": 0.17})
    return run


def _write_attacks(run: Path, accuracy: float, seed: int) -> None:
    results = [{"epsilon": eps, "accuracy": accuracy - 2 * eps, "cosine": eps / 2,
                "euclidean": eps * 3, "examples": 100, "seconds": 1.0} for eps in EPSILONS]
    _dump(run / "attack-pgd.json",
          {"attack": "pgd", "dataset": "mr", "split": "test", "examples": 100, "seed": 0,
           "norm": "l2", "steps": 3, "alpha_ratio": 0.5, "results": results, "seconds": 3.0})
    rng = random.Random(seed)
    records = [{"label": i % 2, "predicted": i % 2, "F1": rng.random(),
                "F2": rng.gauss(0.3 + 0.3 * (i % 2), 0.1)} for i in range(60)]
    (run / "attack-vulnerability.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    per_label = {name: {"F1": {"mean": 0.5, "median": 0.5}, "F2": {"mean": 0.4, "median": 0.4}}
                 for name in LABELS}
    _dump(run / "attack-vulnerability.json",
          {"attack": "vulnerability", "norm": "l2", "epsilon": 0.02, "per_label": per_label,
           "auc": {"F1": 0.52, "F2": 0.81}, "examples": 60, "seconds": 1.0})


def _dump(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload), encoding="utf-8")


def _three_runs(tmp_path: Path) -> list[Path]:
    runs = tmp_path / "runs"
    return [make_run(runs, "freelb-carl-s1", method="freelb", objective="carl", seed=1,
                     test_accuracy=0.80),
            make_run(runs, "freelb-carl-s2", method="freelb", objective="carl", seed=2,
                     test_accuracy=0.84),
            make_run(runs, "none-s1", method="none", objective=None, seed=1,
                     test_accuracy=0.78, word_attack=True)]


def test_report_compares_runs_in_html_and_markdown(tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["report", *map(str, _three_runs(tmp_path)), "--out", str(out)])
    assert code == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert str(out / "report.html") in capsys.readouterr().out

    assert html.count('src="data:image/png;base64,') == 3
    # The template escapes text, not the inline style sheet.
    assert 'font-family: system-ui, -apple-system, "Segoe UI"' in html and "&#34;" not in html
    assert markdown.endswith("vulnerability_sweep.py)._\n") and not markdown.endswith("\n\n")
    assert not re.search(r"""(src|href)\s*=\s*["']?https?://""", html, re.IGNORECASE)
    for png in re.findall(r"\]\(([^)]+\.png)\)", markdown):
        assert (out / png).read_bytes().startswith(b"\x89PNG")
    assert len(list(out.glob("*.png"))) == 3

    mean, std = statistics.fmean([0.80, 0.84]), statistics.stdev([0.80, 0.84])
    assert f"{mean:.4f} ± {std:.4f}" in markdown
    for text in (markdown, html):
        assert "freelb+carl" in text
        assert "| none |" in markdown and ">none</td>" in html
        for eps in EPSILONS:
            assert f"PGD acc ε={eps:g}" in text
        assert "textfooler acc" in text
    assert not list(out.glob(".*.tmp"))
    # the ECE column reads each run's test ECE (0.04 and 0.05: 0.0450 ± 0.0071), and the
    # rescaled word attack its own figure, beside the plain one
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in
            markdown.splitlines() if line.startswith("| freelb+carl") or
            line.startswith("| none |")}
    header = next(line for line in markdown.splitlines() if line.startswith("| configuration"))
    columns = header.split(" | ")
    assert rows["freelb+carl"][columns.index("test ECE")] == "0.0450 ± 0.0071"
    assert rows["none"][columns.index("test ECE")] == "0.0400"
    assert rows["none"][columns.index("textfooler acc")] == "0.2100"
    assert rows["none"][columns.index("textfooler acc rescaled")] == "0.1700"


def test_report_of_a_run_without_attacks_skips_plots_with_a_note(tmp_path):
    run = make_run(tmp_path / "runs", "plain", method="fgm", seed=0, test_accuracy=0.7,
                   attacks=False)
    out = tmp_path / "report"
    assert main(["report", str(run), "--out", str(out)]) == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "data:image/png" not in html
    assert html.count("skipped:") == 4 and markdown.count("skipped:") == 4
    assert "0.7000" in markdown and "PGD acc" not in markdown
    assert not list(out.glob("*.png"))


def test_report_rerun_removes_plots_that_are_now_skipped(tmp_path):
    out = tmp_path / "report"
    assert main(["report", *map(str, _three_runs(tmp_path)), "--out", str(out)]) == 0
    plain = make_run(tmp_path / "runs", "plain", method="fgm", seed=0, test_accuracy=0.7,
                     attacks=False)
    assert main(["report", str(plain), "--out", str(out)]) == 0
    assert not list(out.glob("*.png"))


def test_report_bad_run_path_is_a_one_line_error(tmp_path, capsys):
    missing = tmp_path / "no-such-run"
    assert main(["report", str(missing), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(missing) in err and "does not exist" in err

    not_a_run = tmp_path / "empty"
    not_a_run.mkdir()
    assert main(["report", str(not_a_run), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(not_a_run) in err and "config.json is missing" in err
    assert not (tmp_path / "r" / "report.html").exists()


def test_report_rejects_the_same_run_twice(tmp_path, capsys):
    run = make_run(tmp_path / "runs", "a", method="fgm", seed=0, test_accuracy=0.7)
    assert main(["report", str(run), str(run), "--out", str(tmp_path / "r")]) == 2
    assert "given twice" in capsys.readouterr().err


def test_report_tells_configurations_apart_and_reads_multiclass_auc(tmp_path):
    runs = tmp_path / "runs"
    a = make_run(runs, "a", method="fgm", seed=0, test_accuracy=0.7)
    b = make_run(runs, "b", method="fgm", seed=0, test_accuracy=0.6)
    config = json.loads((b / "config.json").read_text())
    config["method_options"] = {"epsilon": 0.5}
    _dump(b / "config.json", config)
    vulnerability = json.loads((b / "attack-vulnerability.json").read_text())
    vulnerability["auc"]["F2"] = {"per_label": {"0": 0.6, "1": 0.3, "2": 0.75},
                                    "separation": 0.65}
    _dump(b / "attack-vulnerability.json", vulnerability)
    out = tmp_path / "report"
    assert main(["report", str(a), str(b), "--out", str(out)]) == 0
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "| fgm [epsilon=0.1] |" in markdown and "| fgm [epsilon=0.5] |" in markdown
    assert "0.6500" in markdown and "0.8100" in markdown


def _write_sweep(run: Path, aucs: dict[tuple[str, float, str], float]) -> None:
    rows = [{"norm": norm, "epsilon": eps, "criterion": criterion, "auc": auc,
             "theorem1": {"n": 2}, "examples": 60} for (norm, eps, criterion), auc in aucs.items()]
    _dump(run / "vulnerability-sweep.json", {"split": "test", "examples": 60, "rows": rows})


def test_report_draws_the_vulnerability_sweep_averaged_over_seeds(tmp_path):
    runs = tmp_path / "runs"
    first = make_run(runs, "vaa-a-s1", method="none", seed=1, test_accuracy=0.8, attacks=False)
    second = make_run(runs, "vaa-a-s2", method="none", seed=2, test_accuracy=0.82,
                      attacks=False)
    _write_sweep(first, {("l2", 0.02, "F1"): 0.30, ("l2", 0.005, "F1"): 0.61,
                         ("l2", 0.02, "F2"): 0.75, ("linf", 0.01, "F1"): 0.55})
    _write_sweep(second, {("l2", 0.02, "F1"): 0.42, ("l2", 0.02, "F2"): 0.65})
    (group,) = group_runs(load_runs([first, second]))
    # ε sorted; 0.02 is averaged over both seeds (sample std), 0.005 only seed 1 swept (std 0)
    curve = sweep_curve(group, "l2", "F1")
    assert [eps for eps, _, _ in curve] == [0.005, 0.02]
    assert curve[0][1:] == (0.61, 0.0)
    assert abs(curve[1][1] - 0.36) < 1e-12 and abs(curve[1][2] - 0.0848528137) < 1e-9
    assert abs(sweep_curve(group, "l2", "F2")[0][1] - 0.70) < 1e-12
    assert sweep_curve(group, "linf", "F2") == []
    dev = make_run(runs, "vaa-a-s3", method="none", seed=3, test_accuracy=0.8, attacks=False)
    _write_sweep(dev, {("l2", 0.02, "F1"): 0.99})
    sweep = json.loads((dev / "vulnerability-sweep.json").read_text())
    _dump(dev / "vulnerability-sweep.json", sweep | {"split": "dev"})
    assert load_runs([dev])[0].vulnerability_sweep == []  # a dev sweep is not plotted

    out = tmp_path / "report"
    assert main(["report", str(first), str(second), "--out", str(out)]) == 0
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "](vulnerability-auc.png)" in markdown and "Figure 3b" in markdown
    assert (out / "vulnerability-auc.png").read_bytes().startswith(b"\x89PNG")
    assert markdown.count("skipped:") == 3


def test_report_rejects_a_sweep_file_without_rows(tmp_path, capsys):
    run = make_run(tmp_path / "runs", "a", method="none", seed=0, test_accuracy=0.7,
                   attacks=False)
    _dump(run / "vulnerability-sweep.json", {"rows": [{"norm": "l2", "epsilon": 0.02}]})
    assert main(["report", str(run), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "vulnerability-sweep.json" in err and "criterion" in err
    assert not (tmp_path / "r" / "report.html").exists()


def test_a_figure_only_some_seeds_have_says_so_and_labels_never_collide_across_datasets(
        tmp_path):
    """Two freelb+carl seeds, only the first with a word attack (0.21 → ``0.2100 (1 of 2
    seeds)``, not a bare two-seed figure); the PGD explanation names α and the sample; the
    same configuration on another model and dataset gets the model in its label, and the same
    configuration on two datasets keeps its bare label."""
    from advembed.report.columns import build_columns

    runs_dir = tmp_path / "runs"
    first = make_run(runs_dir, "a-s1", method="freelb", objective="carl", seed=1,
                     test_accuracy=0.80, word_attack=True)
    second = make_run(runs_dir, "a-s2", method="freelb", objective="carl", seed=2,
                      test_accuracy=0.84)
    groups = group_runs(load_runs([first, second]))
    column = next(c for c in build_columns(groups[0].runs) if c.header == "textfooler acc")
    assert column.cell(groups[0]) == "0.2100 (1 of 2 seeds)"
    pgd = next(c for c in build_columns(groups[0].runs) if c.header.startswith("PGD acc"))
    assert "l2 norm, 3 steps, α = 0.5·ε, 100 test examples" in pgd.explanation

    other = make_run(runs_dir, "b-s1", method="none", objective=None, seed=1,
                     test_accuracy=0.7)
    config = json.loads((other / "config.json").read_text())
    _dump(other / "config.json", config | {"dataset": "cr", "model": "scratch:esim"})
    same = make_run(runs_dir, "c-s1", method="none", objective=None, seed=1, test_accuracy=0.7)
    moved = make_run(runs_dir, "d-s1", method="none", objective=None, seed=1, test_accuracy=0.7)
    config = json.loads((moved / "config.json").read_text())
    _dump(moved / "config.json", config | {"dataset": "cr"})
    labels = sorted((g.label, g.dataset) for g in group_runs(load_runs([other, same, moved])))
    assert labels == [("none [bert-base-uncased]", "cr"), ("none [bert-base-uncased]", "mr"),
                      ("none [scratch:esim]", "cr")]
    labels = sorted((g.label, g.dataset) for g in group_runs(load_runs([same, moved])))
    assert labels == [("none", "cr"), ("none", "mr")]


@pytest.mark.parametrize(("summary", "fragment"), [
    ({"results": "x"}, "attack-pgd.json': 'results' must be a list"),
    ({"results": [{"epsilon": "a"}]}, "attack-pgd.json': 'results' must be a list"),
])
def test_a_hand_edited_attack_summary_is_one_line_and_writes_nothing(tmp_path, capsys, summary,
                                                                      fragment):
    run = make_run(tmp_path / "runs", "a", method="none", seed=0, test_accuracy=0.7)
    _dump(run / "attack-pgd.json", summary)
    assert main(["report", str(run), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and fragment in err
    assert not (tmp_path / "r").exists()



def test_the_clean_vs_attack_plot_shows_the_headline_lowest_over_temperatures(tmp_path):
    """0.21 at T = 1, 0.17 the lowest over temperatures: the plot must show 0.17 (the figure
    that keeps an over-confident model from looking robust); an old summary without the
    rescaled figure falls back to its T = 1 one."""
    from advembed.report.plots import _attack_sources
    from advembed.report.runs import load_runs

    new = make_run(tmp_path, "new", method="freelb", seed=13, test_accuracy=0.85,
                   attacks=False, word_attack=True)
    old = make_run(tmp_path, "old", method="none", seed=13, test_accuracy=0.84,
                   attacks=False, word_attack=True)
    summary = json.loads((old / "attack-textfooler.json").read_text())
    del summary["attack_accuracy_rescaled"]
    _dump(old / "attack-textfooler.json", summary)
    runs = load_runs([new, old])
    (label, getter), = _attack_sources(runs)
    assert "lowest over temperatures" in label
    assert [getter(run) for run in runs] == [0.17, 0.21]


def test_the_rescaled_column_names_the_temperatures_and_flags_runs_attacked_at_others(tmp_path):
    from advembed.report.columns import build_columns
    from advembed.report.runs import load_runs

    three = make_run(tmp_path, "three", method="freelb", seed=13, test_accuracy=0.85,
                     attacks=False, word_attack=True)
    one = make_run(tmp_path, "one", method="none", seed=13, test_accuracy=0.84,
                   attacks=False, word_attack=True)
    for run, temperatures in ((three, ("1", "100", "0.01")), (one, ("1",))):
        summary = json.loads((run / "attack-textfooler.json").read_text())
        summary["temperatures"] = {t: {"attack_accuracy": 0.2} for t in temperatures}
        _dump(run / "attack-textfooler.json", summary)

    def meaning(runs):
        column, = [c for c in build_columns(load_runs(runs)) if c.header.endswith("rescaled")]
        return column.explanation

    assert "(temperatures 0.01, 1, 100)" in meaning([three])
    assert "runs attacked at different temperatures: (0.01, 1, 100); (1)" in meaning([three, one])


def _edit(run: Path, **changes) -> Path:
    config = json.loads((run / "config.json").read_text())
    _dump(run / "config.json", config | changes)
    return run


def test_runs_are_seeds_of_one_row_only_when_everything_but_the_seed_agrees(tmp_path, capsys):
    """Another learning rate is another row (its label says which); a per-seed path (a
    continued run's model, VAA's base run, relative or absolute) is one configuration; the
    same seed twice, or two test sets, is refused rather than averaged."""
    runs = tmp_path / "runs"
    a = _edit(make_run(runs, "a-s1", method="fgm", seed=1, test_accuracy=0.70),
              model="runs/base-s1/model", method_options={"base_run": "runs/base-s1"})
    b = _edit(make_run(runs, "a-s2", method="fgm", seed=2, test_accuracy=0.80),
              model="/abs/runs/base-s2/model", method_options={"base_run": "/abs/runs/base-s2"})
    c = _edit(make_run(runs, "c-s1", method="fgm", seed=1, test_accuracy=0.60),
              model="runs/base-s1/model", method_options={"base_run": "runs/base-s1"}, lr=1e-4)
    groups = group_runs(load_runs([a, b, c]))
    assert [(len(g.runs), g.label) for g in groups] == [(2, "fgm [lr=2e-05]"),
                                                        (1, "fgm [lr=0.0001]")]
    out = tmp_path / "report"
    assert main(["report", str(a), str(b), str(c), "--out", str(out)]) == 0
    assert "| fgm [lr=2e-05] | mr | 2 | 0.7500 ± 0.0707 |" in (out / "report.md").read_text()

    twin = _edit(make_run(runs, "twin", method="fgm", seed=2, test_accuracy=0.9),
                 model="runs/base-s2/model", method_options={"base_run": "runs/base-s2"})
    assert main(["report", str(a), str(b), str(twin), "--out", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err.strip()
    assert "same configuration and seed 2" in err and "\n" not in err
    _edit(a, data_sha256={"test": "1" * 64}, split_sizes={"test": 100})
    _edit(b, data_sha256={"test": "2" * 64}, split_sizes={"test": 100})
    assert main(["report", str(a), str(b), "--out", str(tmp_path / "r3")]) == 2
    assert "different test sets" in capsys.readouterr().err
    _edit(b, data_sha256=None)  # a run from before the sha256 was recorded: the same set
    assert len(group_runs(load_runs([a, b]))) == 1
    _edit(a, dataset="/x/data/train.csv")  # two files of one name in two folders: two
    _edit(b, dataset="/y/data/train.csv")  # datasets, whatever their paths' ends
    assert len(group_runs(load_runs([a, b]))) == 2
    _edit(a, dataset="mr")
    _edit(b, dataset="mr")
    _edit(b, split_sizes={"test": 90}, task="qa-matching")
    labels = [g.label for g in group_runs(load_runs([a, b]))]
    assert labels == ["fgm [task=classification; test examples=100]",
                      "fgm [task=qa-matching; test examples=90]"]


@pytest.mark.parametrize("damage", ["dangling link", "folder", "options list", "jsonl list"])
def test_an_unreadable_or_hand_edited_run_file_is_one_line_naming_it(tmp_path, capsys, damage):
    run = make_run(tmp_path / "runs", "a", method="fgm", seed=0, test_accuracy=0.7)
    if damage == "dangling link":
        (run / "attack-bae.json").symlink_to(tmp_path / "nowhere.json")
        named = "attack-bae.json"
    elif damage == "folder":
        (run / "attack-bae.json").mkdir()
        named = "attack-bae.json"
    elif damage == "options list":
        _edit(run, method_options=["x"])
        named = "config.json': 'method_options' must be a JSON object"
    else:
        (run / "attack-vulnerability.jsonl").write_text('{"F1": 1}\n[1, 2]\n')
        named = "attack-vulnerability.jsonl' line 2 is not a JSON object"
    assert main(["report", str(run), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and named in err
    assert not (tmp_path / "r").exists()
