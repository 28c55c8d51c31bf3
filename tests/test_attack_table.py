"""``benchmarks/attack_table.py`` (and ``vda_table.py`` on it): the figures each run's attack
summaries hold, their mean ± std over seeds and the gains over plain paired by seed, checked
against values computed by hand on fake run folders."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    """The benchmark script ``name`` as a module; ``sys.path`` is left as it was (the scripts
    put the checkout's ``src`` first, which must not shadow a mutated copy under test)."""
    saved = list(sys.path)
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


@pytest.fixture(scope="module")
def attack_table():
    return _load("attack_table")


def _run(root: Path, name: str, clean: float, pgd: dict, pwws: tuple | None, auc=None) -> None:
    run = root / name
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps(
        {"test": {"accuracy": clean}, "train": {"seconds": 100.0}}))
    (run / "attack-pgd.json").write_text(json.dumps(
        {"examples": 50, "results": [{"epsilon": e, "accuracy": a} for e, a in pgd.items()]}))
    if pwws:
        (run / "attack-pwws.json").write_text(json.dumps(
            {"attack_accuracy": pwws[0], "attack_accuracy_rescaled": pwws[1], "examples": 40,
             "mean_queries": 55.5, "mean_perturbed_percent": 7.5}))
    if auc:
        (run / "attack-vulnerability.json").write_text(json.dumps({"auc": auc}))


def _pwws_over(run: Path, figure: float, temperatures: list[str]) -> None:
    """A PWWS summary whose headline figure is the lowest over ``temperatures``."""
    (run / "attack-pwws.json").write_text(json.dumps(
        {"attack_accuracy": figure, "attack_accuracy_rescaled": figure, "examples": 40,
         "mean_queries": 5.0, "mean_perturbed_percent": 5.0,
         "temperatures": {t: {} for t in temperatures}}))


def _pwws_table(attack_table, tmp_path: Path, datasets: list[str], seeds: list[str],
                methods: list[str]) -> list[str]:
    """The lines of the PWWS table of the runs in ``tmp_path``, made without attacking."""
    args = attack_table.parser().parse_args(
        ["--runs-dir", str(tmp_path), "--datasets", *datasets, "--seeds", *seeds,
         "--no-attack", "--methods", *methods, "--attacks", "pwws",
         "--out", str(tmp_path / "t.md")])
    assert attack_table.main(args) == 0
    return (tmp_path / "t.md").read_text().splitlines()


def test_table_means_and_paired_gains(attack_table, tmp_path):
    _run(tmp_path, "bp-none-s13", 0.90, {0.02: 0.70, 0.1: 0.30}, (0.20, 0.15), {"F1": 0.3})
    _run(tmp_path, "bp-none-s14", 0.80, {0.02: 0.60, 0.1: 0.20}, (0.30, 0.25), {"F1": 0.5})
    _run(tmp_path, "bp-freelb-s13", 0.93, {0.02: 0.75, 0.1: 0.40}, (0.22, 0.22))
    _run(tmp_path, "bp-freelb-s14", 0.82, {0.02: 0.64, 0.1: 0.20}, None)
    args = attack_table.parser().parse_args(
        ["--runs-dir", str(tmp_path), "--datasets", "bp", "--seeds", "13", "14", "--no-attack",
         "--attacks", "pgd", "vulnerability", "pwws", "--summary", str(tmp_path / "s.json"),
         "--out", str(tmp_path / "t.md")])
    assert attack_table.main(args) == 0
    lines = (tmp_path / "t.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| dataset | method | seeds"))
    assert header == ("| dataset | method | seeds | clean test acc | PGD ε=0.02 acc | "
                      "PGD ε=0.1 acc | vulnerability AUC F1 | vulnerability AUC F2 | "
                      "PWWS acc under attack | train s |")
    # plain: clean 0.85 ± 0.0707; PGD 0.65 ± 0.0707 and 0.25 ± 0.0707; AUC F1 0.4 ± 0.1414;
    # PWWS headline is the rescaled figure: 0.15, 0.25 -> 0.20 ± 0.0707
    assert ("| bp | none | 2 | 0.8500 ± 0.0707 | 0.6500 ± 0.0707 | 0.2500 ± 0.0707 | "
            "0.4000 ± 0.1414 | – | 0.2000 ± 0.0707 | 100 |") in lines
    # FreeLB has PWWS on seed 13 only: one value, marked as such, not a mean
    assert ("| bp | freelb | 2 | 0.8750 ± 0.0778 | 0.6950 ± 0.0778 | 0.3000 ± 0.1414 | – | – | "
            "0.2200 (1 seed) | 100 |") in lines
    assert "Test examples attacked per run: bp: PGD 50, PWWS 40." in lines
    # gains paired by seed, in points: clean +3, +2; PGD 0.02 +5, +4; PGD 0.1 +10, 0;
    # PWWS only seed 13: 0.22 - 0.15 = +7
    assert ("| bp | freelb | 2.50 ± 0.71 | 4.50 ± 0.71 | 5.00 ± 7.07 | 7.00 (1 seed) |"
            in lines)
    rows = json.loads((tmp_path / "s.json").read_text())
    seed13 = next(r for r in rows if r["method"] == "freelb" and r["seed"] == 13)
    assert seed13["pwws_attack_acc"] == 0.22 and seed13["pgd_acc@0.1"] == 0.40
    plain13 = next(r for r in rows if r["method"] == "none" and r["seed"] == 13)
    assert (plain13["pwws_attack_acc"], plain13["pwws_attack_acc_rescaled"]) == (0.20, 0.15)


def test_a_cell_with_fewer_runs_than_its_row_says_how_many(attack_table, tmp_path):
    _run(tmp_path, "bp-none-s13", 0.90, {0.1: 0.30}, (0.20, 0.15))
    _run(tmp_path, "bp-none-s14", 0.80, {0.1: 0.20}, (0.30, 0.25))
    _run(tmp_path, "bp-none-s15", 0.70, {0.1: 0.40}, None)
    args = attack_table.parser().parse_args(
        ["--runs-dir", str(tmp_path), "--datasets", "bp", "--methods", "none", "--no-attack",
         "--attacks", "pgd", "pwws", "--out", str(tmp_path / "t.md")])
    assert attack_table.main(args) == 0
    # PWWS on two of the three runs: 0.15, 0.25 -> 0.20 ± 0.0707, and it says so
    assert ("| bp | none | 3 | 0.8000 ± 0.1000 | 0.3000 ± 0.1000 | "
            "0.2000 ± 0.0707 (2 of 3 seeds) | 100 |") in (tmp_path / "t.md").read_text(
        ).splitlines()


def test_a_figure_attacked_at_one_temperature_only_is_marked(attack_table, tmp_path):
    """A summary from before the rescaled attack has no ``attack_accuracy_rescaled``: its T = 1
    figure stands in, marked † in the table and in every gain it enters, with the note."""
    _run(tmp_path, "bp-none-s13", 0.90, {0.1: 0.30}, None)
    (tmp_path / "bp-none-s13" / "attack-pwws.json").write_text(json.dumps(
        {"attack_accuracy": 0.12, "examples": 40, "mean_queries": 50.0,
         "mean_perturbed_percent": 7.0}))
    _run(tmp_path, "bp-robust-s13", 0.86, {0.1: 0.35}, (0.31, 0.27))
    _run(tmp_path, "bp-freelb-s13", 0.88, {0.1: 0.32}, (0.25, 0.25))
    (tmp_path / "bp-freelb-s13" / "attack-pwws.json").unlink()
    lines = _pwws_table(attack_table, tmp_path, ["bp"], ["13"], ["none", "freelb", "robust"])
    assert "| bp | none | 1 | 0.9000 (1 seed) | 0.1200 (1 seed) † | 100 |" in lines
    assert "| bp | robust | 1 | 0.8600 (1 seed) | 0.2700 (1 seed) | 100 |" in lines
    # robust - plain: clean 0.86 - 0.90 = -4 points; PWWS 0.27 - 0.12 = +15, marked
    assert "| bp | robust | -4.00 (1 seed) | 15.00 (1 seed) † |" in lines
    assert lines[-1] == attack_table.T1_NOTE


def test_vda_table_keeps_its_methods_and_word_attacks(attack_table):
    vda = _load("vda_table")
    args = attack_table.parser(vda.METHODS, vda.ATTACKS, vda.TITLE).parse_args(
        ["--runs-dir", "x"])
    assert args.attacks == ["pwws", "bert-attack"] and args.methods == vda.METHODS
    with pytest.raises(SystemExit):
        attack_table.parser(vda.METHODS, vda.ATTACKS, vda.TITLE).parse_args(
            ["--runs-dir", "x", "--attacks", "pgd"])


def test_runs_come_from_the_first_folder_that_holds_them(attack_table, tmp_path):
    """Several ``--runs-dir``: a run missing from the first folder is taken from the next, and
    where both hold it the first wins; each summary row names the folder it came from."""
    first, second = tmp_path / "robust", tmp_path / "vda"
    _run(first, "bp-robust-s13", 0.86, {0.1: 0.35}, (0.31, 0.27))
    _run(first, "bp-none-s14", 0.70, {0.1: 0.20}, (0.10, 0.05))
    _run(second, "bp-none-s13", 0.90, {0.1: 0.30}, (0.20, 0.15))
    _run(second, "bp-none-s14", 0.80, {0.1: 0.25}, (0.30, 0.25))
    args = attack_table.parser().parse_args(
        ["--runs-dir", str(first), str(second), "--datasets", "bp", "--seeds", "13", "14",
         "--methods", "none", "robust", "--attacks", "pwws", "--no-attack",
         "--summary", str(tmp_path / "s.json")])
    assert attack_table.main(args) == 0
    rows = {(r["method"], r["seed"]): r for r in json.loads((tmp_path / "s.json").read_text())}
    assert rows["none", 13]["clean_test_acc"] == 0.90
    assert rows["none", 13]["run"] == (second / "bp-none-s13").as_posix()
    assert rows["none", 14]["clean_test_acc"] == 0.70  # the first folder's, not 0.80
    assert rows["robust", 13]["run"] == (first / "bp-robust-s13").as_posix()
    assert ("robust", 14) not in rows


def test_quality_trains_a_preset_name_with_the_preset_and_its_flags():
    """``quality.py --methods robust`` is ``advembed train --preset robust`` (FreeLB with the
    preset's sizes), flags from ``--method-options {"robust": …}`` overriding them; a method's
    own name stays ``--method``."""
    import argparse

    from advembed.cli import build_parser
    from advembed.cli.train import config_from_args

    quality = _load("quality")
    args = argparse.Namespace(model="default", epochs=3.0, batch_size=32, lr=2e-5,
                              runs_dir=Path("runs"), limit=None, max_steps=None,
                              objective_options={})

    def config(method: str, options: dict):
        command = quality.train_command(args, "cr", method, 13, options)
        return config_from_args(build_parser().parse_args(command[command.index("train"):]))

    robust = config("robust", {"steps": 5})
    assert (robust.preset, robust.method_options) == ("robust", {"steps": 5})
    assert robust.output == str(Path("runs") / "cr-robust-s13")
    freelb = config("freelb", {})
    assert (freelb.preset, freelb.method) == (None, "freelb")


def test_runs_are_attacked_seed_by_seed_and_tabled_method_by_method(attack_table, tmp_path,
                                                                     monkeypatch):
    """A time-limited call (the device scripts) attacks every method of the first seed before
    any of the next, so a cut leaves whole seeds unattacked; the summary keeps dataset → method
    → seed order."""
    for name in ("bp-none-s13", "bp-none-s14", "bp-robust-s13", "bp-robust-s14"):
        _run(tmp_path, name, 0.8, {0.1: 0.3}, None)
    attacked = []

    def fake_attack(run, recipe, n_examples, workers, split):
        assert split == "test"
        attacked.append(run.name)
        (run / f"attack-{recipe}.json").write_text(json.dumps(
            {"attack_accuracy": 0.2, "attack_accuracy_rescaled": 0.1, "examples": 40,
             "mean_queries": 50.0, "mean_perturbed_percent": 5.0}))

    monkeypatch.setattr(attack_table, "attack", fake_attack)
    args = attack_table.parser().parse_args(
        ["--runs-dir", str(tmp_path), "--datasets", "bp", "--seeds", "13", "14",
         "--methods", "none", "robust", "--attacks", "pwws", "--summary", str(tmp_path / "s.json")])
    assert attack_table.main(args) == 0
    assert attacked == ["bp-none-s13", "bp-robust-s13", "bp-none-s14", "bp-robust-s14"]
    rows = json.loads((tmp_path / "s.json").read_text())
    assert [(r["method"], r["seed"]) for r in rows] == [
        ("none", 13), ("none", 14), ("robust", 13), ("robust", 14)]


def test_figures_over_different_temperatures_are_marked_where_they_meet(attack_table, tmp_path):
    """Plain attacked over T = 1, 100, 0.01 and VDA with ``--temperatures 1`` on ``bp``: the
    gain that pairs them is marked (each row, one run, is not); on ``cq`` every run has T = 1
    only — nothing to mark."""
    for dataset, temperatures in (("bp", {"none": ["1", "100", "0.01"], "vda": ["1"]}),
                                  ("cq", {"none": ["1"], "vda": ["1"]})):
        for method, figure in (("none", 0.10), ("vda", 0.20)):
            name = f"{dataset}-{method}-s13"
            _run(tmp_path, name, 0.9, {0.1: 0.3}, None)
            _pwws_over(tmp_path / name, figure, temperatures[method])
    lines = _pwws_table(attack_table, tmp_path, ["bp", "cq"], ["13"], ["none", "vda"])
    assert "| bp | none | 1 | 0.9000 (1 seed) | 0.1000 (1 seed) | 100 |" in lines
    assert "| bp | vda | 1 | 0.9000 (1 seed) | 0.2000 (1 seed) | 100 |" in lines
    assert "| bp | vda | 0.00 (1 seed) | 10.00 (1 seed) † |" in lines
    assert "| cq | vda | 1 | 0.9000 (1 seed) | 0.2000 (1 seed) | 100 |" in lines
    assert "| cq | vda | 0.00 (1 seed) | 10.00 (1 seed) |" in lines
    assert lines[-1] == attack_table.T1_NOTE


def test_the_same_temperatures_in_another_order_or_an_unpaired_seed_mark_nothing(attack_table,
                                                                                 tmp_path):
    """Plain over 1, 100, 0.01 and VDA over 1, 0.01, 100 (the same set) on seed 13; VDA's
    seed 14, at T = 1 only, has no plain run to pair with: the gain is not marked."""
    for method, seed, temperatures in (("none", 13, ["1", "100", "0.01"]),
                                       ("vda", 13, ["1", "0.01", "100"]), ("vda", 14, ["1"])):
        name = f"dr-{method}-s{seed}"
        _run(tmp_path, name, 0.9, {0.1: 0.3}, None)
        _pwws_over(tmp_path / name, 0.2, temperatures)
    lines = _pwws_table(attack_table, tmp_path, ["dr"], ["13", "14"], ["none", "vda"])
    assert "| dr | vda | 0.00 (1 seed) | 0.00 (1 seed) |" in lines


def test_dev_split_summaries_are_read_and_named(attack_table, tmp_path):
    for name, clean, dev_acc, sample in (("bp-none-s13", 0.90, 0.12, 0.88),
                                         ("bp-vda-s13", 0.85, 0.27, 0.86)):
        _run(tmp_path, name, clean, {0.02: 0.5}, (0.50, 0.50))  # test figures: not read
        (tmp_path / name / "attack-pwws-dev.json").write_text(json.dumps(
            {"attack_accuracy": dev_acc, "attack_accuracy_rescaled": dev_acc, "examples": 200,
             "original_accuracy": sample, "mean_queries": 9.0, "mean_perturbed_percent": 3.0,
             "temperatures": {"1": {}}}))
    args = attack_table.parser().parse_args(
        ["--runs-dir", str(tmp_path), "--datasets", "bp", "--methods", "none", "vda",
         "--seeds", "13", "--no-attack", "--attacks", "pwws", "--split", "dev",
         "--summary", str(tmp_path / "s.json"), "--out", str(tmp_path / "t.md")])
    assert attack_table.main(args) == 0
    rows = {r["method"]: r for r in json.loads((tmp_path / "s.json").read_text())}
    assert rows["vda"]["pwws_attack_acc_rescaled"] == 0.27
    assert rows["vda"]["pwws_sample_clean_acc"] == 0.86 and rows["vda"]["attack_split"] == "dev"
    text = (tmp_path / "t.md").read_text()
    assert "| bp | vda | 1 | 0.8500 (1 seed) | 0.2700 (1 seed) |" in text
    assert "| bp | vda | -5.00 (1 seed) | 15.00 (1 seed) |" in text  # paired on dev figures
    assert "Dev examples attacked per run: bp: PWWS 200." in text
    assert "not test" in text and "temperatures the attacker tried: 1." in text


def test_runs_attacked_with_another_sample_or_budget_are_named_under_the_table(
        attack_table, tmp_path):
    """Three runs' PWWS summaries: two at sample seed 0, one at seed 1 (another sample); one
    at budget 0.3; one older summary without ``settings``, which is not held against the
    others.  The note names the field and the runs of each value; runs that agree get none."""
    summaries = {"none-s13": {"seed": 0, "settings": {"max_perturbed": 0.4}},
                 "none-s14": {"seed": 1, "settings": {"max_perturbed": 0.3}},
                 "none-s15": {"seed": 0}}
    rows = []
    for name, sample in summaries.items():
        _run(tmp_path, f"mr-{name}", 0.8, {0.1: 0.5}, (0.2, 0.1))
        path = tmp_path / f"mr-{name}" / "attack-pwws.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | sample))
        rows.append(attack_table.row(tmp_path / f"mr-{name}", "mr", "none",
                                     int(name[-2:]), ["pwws"]))
    notes = attack_table.attacked_differently(rows, ["pwws"])
    assert [n.split("`")[1] for n in notes] == ["seed", "settings"]
    assert f"0: {(tmp_path / 'mr-none-s13').as_posix()}, {(tmp_path / 'mr-none-s15').as_posix()}" \
        in notes[0] and f"1: {(tmp_path / 'mr-none-s14').as_posix()}" in notes[0]
    assert attack_table.attacked_differently([rows[0], rows[2]], ["pwws"]) == []
    table = attack_table.table(rows, ["none"], ["pwws"], "t", "attack_table.py", "here")
    assert table.rstrip().endswith("their figures are not one attack's.")


def test_drift_reuses_only_the_same_pgd_attack_and_picks_rows_by_radius():
    """A cached ``attack-pgd.json`` is reused only with the table's norm, steps, step size,
    every radius asked for (in any order), seed 0 of test and the sample size asked for (or
    the whole, smaller test split); anything else is attacked again."""
    from advembed.evaluation.settings import PGDAttackSettings

    drift = _load("drift")
    settings = PGDAttackSettings(epsilon=(0.02, 0.1), steps=3)
    cached = {"norm": "l2", "steps": 3, "alpha_ratio": settings.alpha_ratio,
              "alpha": settings.alpha, "split": "test", "seed": 0, "examples": 1000,
              "split_size": 1066, "results": [{"epsilon": e} for e in (0.1, 0.01, 0.02)]}
    assert drift.reusable(cached, settings, 1000)
    assert drift.reusable(cached | {"examples": 360, "split_size": 360}, settings, 1000)
    for change in ({"norm": "linf"}, {"steps": 10}, {"alpha": 0.5}, {"seed": 1},
                   {"split": "dev"}, {"examples": 100}, {"results": [{"epsilon": 0.02}]}):
        assert not drift.reusable(cached | change, settings, 1000), change
