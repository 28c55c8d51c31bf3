"""The Trainer path under DDP: 2 CPU processes (gloo) end with identical parameters."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("method", ["fgm", "freelb"])
def test_two_process_ddp_keeps_replicas_identical(tmp_path, method):
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent / "src")}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", str(29500 + (os.getpid() % 1000)),
               str(HERE / "ddp_worker.py"), method, str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    first = torch.load(tmp_path / "rank0.pt")
    second = torch.load(tmp_path / "rank1.pt")
    initial = _initial_parameters()
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name
    # Training really moved the parameters (the replicas are not trivially equal).
    assert not torch.equal(first["classifier.weight"], initial["classifier.weight"])


def _initial_parameters():
    sys.path.insert(0, str(HERE))
    from conftest import tiny_model

    return {n: p.detach() for n, p in tiny_model("bert", dropout=0.1).named_parameters()}
