"""The grid searches (``benchmarks/search_robust.py``, ``search_defaults.py``): a failed plain
run cannot silently lift the clean-accuracy floor, and a finished run or attack summary left by
a smoke test in the same runs folder is refused, not scored as this search's point."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from test_attack_table import _load


@pytest.fixture(scope="module")
def search_robust():
    return _load("search_robust")


@pytest.fixture(scope="module")
def quality():
    return _load("quality")


def _args(tmp_path: Path, **changes) -> argparse.Namespace:
    values = {"dataset": "mr", "seed": 13, "sample": 200, "max_drop": 0.01, "out": None,
              "runs_dir": tmp_path, "lr": 2e-5, "batch_size": 32, "epochs": 3.0, "limit": None,
              "max_steps": None}
    return argparse.Namespace(**(values | changes))


def _attack(accuracy: float) -> dict:
    return {"attack_accuracy": accuracy, "attack_accuracy_rescaled": accuracy}


def test_without_a_plain_dev_figure_nothing_is_chosen_or_written(search_robust, tmp_path):
    rows = [("plain", {}, None, None), ("steps5", {"steps": 5}, 0.60, _attack(0.39)),
            ("steps10", {"steps": 10}, 0.85, _attack(0.11))]
    out = tmp_path / "search.md"
    with pytest.raises(SystemExit, match="plain fine-tuning has no dev accuracy"):
        search_robust.write(rows, 1.07, _args(tmp_path, out=out))
    assert not out.exists()
    rows[0] = ("plain", {}, 0.87, _attack(0.10))
    search_robust.write(rows, 1.07, _args(tmp_path, out=out))
    chosen = json.loads(out.with_suffix(".json").read_text())["chosen"]
    assert chosen is None  # 0.60 and 0.85 are both under the floor 0.86 (0.87 − 0.01)
    rows[2] = ("steps10", {"steps": 10}, 0.865, _attack(0.11))
    search_robust.write(rows, 1.07, _args(tmp_path, out=out))
    assert json.loads(out.with_suffix(".json").read_text())["chosen"] == {"steps": 10}
    with pytest.raises(SystemExit, match="no grid point finished"):
        search_robust.write(rows[:1], 1.07, _args(tmp_path, out=out))


def test_a_smoke_tests_run_or_attack_sample_is_refused(search_robust, quality, tmp_path):
    run = tmp_path / "mr-none-s13"
    run.mkdir()
    config = {"lr": 2e-5, "batch_size": 32, "epochs": 3.0, "limit": None, "max_steps": None,
              "split_sizes": {"dev": 1057}}
    (run / "config.json").write_text(json.dumps(config))
    quality.check_reused(_args(tmp_path), run)
    search_robust.check_sample(run, {"examples": 200}, 200)
    (run / "config.json").write_text(json.dumps(config | {"limit": 16}))
    with pytest.raises(SystemExit, match="trained with limit 16, not this search's None"):
        quality.check_reused(_args(tmp_path), run)
    with pytest.raises(SystemExit, match="trained with max_steps None, not this search's 2"):
        quality.check_reused(_args(tmp_path, limit=16, max_steps=2), run)
    with pytest.raises(SystemExit, match="attacked 16 examples, not this search's 200"):
        search_robust.check_sample(run, {"examples": 16}, 200)
    (run / "config.json").write_text(json.dumps(config | {"split_sizes": {"dev": 40}}))
    search_robust.check_sample(run, {"examples": 40}, 200)  # a dev split under the sample
