"""Opt-in (``pytest -m slow``): the real packaged encoder on real ``mr`` sentences."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


def test_default_model_is_minilm_with_a_fresh_head():
    from advembed.models import load_classifier

    loaded = load_classifier("default", ["negative", "positive"])
    config = loaded.model.config
    assert (config.model_type, config.hidden_size, config.num_hidden_layers) == ("bert", 384, 6)
    norms = loaded.model.get_input_embeddings().weight.norm(dim=1)
    assert norms.mean().item() == pytest.approx(1.07, abs=0.05)


def test_short_real_run_learns_mr(tmp_path):
    from advembed.cli import main

    out = tmp_path / "mr-fgm"
    assert main(["train", "--method", "fgm", "--limit", "600", "--max-steps", "60",
                 "--output", str(out), "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.7
