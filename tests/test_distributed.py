"""Every method and objective under DDP (2 CPU processes, gloo): the replicas end identical,
and CARL's memory banks equal a one-process run over the same global batches."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import package_path
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent
CONFIGS = ["fgsm", "fgm", "pgd", "freeat", "yopo", "freelb", "smart", "freelb+carl",
           "freelb+rar", "fgm+atcl",
           "fgm@nan"]  # one process's loss not finite at one step: both skip it, or they part
BANKS = "fgm+carl:4"  # deterministic (FGM starts at zero), the 4 global batches fill the banks
SAVED = "fgm@ckpt"  # FGM with a checkpoint every 4 steps: every rank writes its own state
TOKEN_LEVEL = ["lm-none", "lm-fgm"]  # language modelling, accumulation 2, unequal lengths


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory):
    """One torchrun for every configuration (its start-up is the slow part), then the CARL
    configuration again in one process with the global batch size."""
    out = tmp_path_factory.mktemp("ddp")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCELERATE_")} | {
        "OMP_NUM_THREADS": "1", "PYTHONPATH": package_path()}  # no inherited bf16 or the like
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", str(29500 + (os.getpid() % 1000)),
               str(HERE / "ddp_worker.py"), str(out), *CONFIGS, BANKS, SAVED, *TOKEN_LEVEL]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    single = subprocess.run([sys.executable, str(HERE / "ddp_worker.py"), "--single", str(out),
                             BANKS, "fgm", *TOKEN_LEVEL], capture_output=True, text=True,
                            env=env, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    return out


@pytest.mark.parametrize("config", CONFIGS)
def test_two_process_ddp_keeps_replicas_identical(ddp_runs, config):
    first = load_file(str(ddp_runs / f"{config}-rank0.safetensors"))
    second = load_file(str(ddp_runs / f"{config}-rank1.safetensors"))
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name
    # Training really moved the parameters (the replicas are not trivially equal).
    assert not torch.equal(first["classifier.weight"], _initial_parameters()["classifier.weight"])


def test_ddp_fgm_equals_one_process_over_the_same_global_batches(ddp_runs):
    """FGM from zero is deterministic and its δ normalised per example: 2 processes × 4
    examples, gradients averaged by DDP, end where one process with batches of 8 does (up to
    float rounding).  Summed instead of averaged gradients — twice the step — would not."""
    ddp = load_file(str(ddp_runs / "fgm-rank0.safetensors"))
    single = load_file(str(ddp_runs / "fgm-single.safetensors"))
    initial = _initial_parameters()
    for name in single:
        assert torch.allclose(ddp[name], single[name], atol=2e-5), name
    moved = (single["classifier.weight"] - initial["classifier.weight"]).abs().max()
    assert moved > 1e-2  # far above the tolerance: a doubled step could not pass


@pytest.mark.parametrize("config", TOKEN_LEVEL)
def test_a_token_level_loss_under_ddp_and_accumulation_equals_one_batch(ddp_runs, config):
    """One SGD step of a language model over 8 rows of 2–12 tokens: 2 processes × 2
    accumulated micro-batches of 2 rows, each micro-batch weighted by its share of the global
    batch's target tokens (× the processes, which DDP then averages), equal one process with
    the batch of 8 — plainly and under FGM.  Weighting each micro-batch by 1/4 would not."""
    ddp = [load_file(str(ddp_runs / f"{config}-rank{rank}.safetensors")) for rank in (0, 1)]
    single = load_file(str(ddp_runs / f"{config}-single.safetensors"))
    for name in single:
        assert torch.equal(ddp[0][name], ddp[1][name]), name
        assert torch.allclose(ddp[0][name], single[name], atol=1e-6), name


def test_checkpoints_under_ddp_hold_every_ranks_state_and_are_complete(ddp_runs):
    """Checkpoints every 4 of 8 steps, with process 0's model write and process 1's state
    write each delayed by the worker: each checkpoint holds both ranks' random and method
    state and is marked complete after them (process 1 used to write into a folder process 0
    had not made yet, and fail; process 0 marked it complete without waiting)."""
    folder = ddp_runs / f"{SAVED}-checkpoints"
    kept = sorted(p.name for p in folder.glob("checkpoint-*"))
    assert kept == ["checkpoint-4", "checkpoint-8"]
    for checkpoint in kept:
        names = {p.name for p in (folder / checkpoint).iterdir()}
        assert {"complete.json", "rng_0.json", "rng_1.json", "method_0.json",
                "method_1.json"} <= names, names
        # marked complete only once the late rank's files were in (the worker delays them)
        complete = (folder / checkpoint / "complete.json").stat().st_mtime
        assert complete >= (folder / checkpoint / "method_1.json").stat().st_mtime
    first = load_file(str(ddp_runs / f"{SAVED}-rank0.safetensors"))
    second = load_file(str(ddp_runs / f"{SAVED}-rank1.safetensors"))
    assert all(torch.equal(first[n], second[n]) for n in first)


def test_carl_banks_under_ddp_equal_a_one_process_run(ddp_runs):
    """Each process writes the rows of the whole global batch: after 4 global batches of 8 the
    banks are full (CARL becomes active) and match the one-process banks row for row.  Without
    the gathering each process would fill only its own half of the rows.  (FGM from zero and no
    active CARL term yet: both runs follow the same trajectory, up to float rounding.)"""
    ddp = [load_file(str(ddp_runs / f"{BANKS}-rank{rank}.safetensors")) for rank in (0, 1)]
    single = load_file(str(ddp_runs / f"{BANKS}-single.safetensors"))
    for replica in ddp:
        assert bool(replica["bank.filled"].all()) and bool(single["bank.filled"].all())
        for bank in ("bank.orig", "bank.adv"):
            assert torch.allclose(replica[bank], single[bank], atol=1e-5), bank


def _initial_parameters():
    sys.path.insert(0, str(HERE))
    from conftest import tiny_model

    torch.manual_seed(0)
    return {n: p.detach() for n, p in tiny_model("bert", dropout=0.0).named_parameters()}


def _sgd_steps(tmp_path, model, rows, method, per_device: int, accumulation: int,
               steps: int) -> None:
    """``steps`` plain-SGD optimiser steps of ``AdvTrainer`` over ``rows`` in order."""
    from transformers import TrainingArguments

    from advembed.training.trainer import AdvTrainer

    args = TrainingArguments(
        output_dir=str(tmp_path / f"ga{accumulation}"), per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accumulation, max_steps=steps, learning_rate=0.5,
        optim="sgd", lr_scheduler_type="constant", warmup_ratio=0.0, weight_decay=0.0,
        report_to="none", save_strategy="no", disable_tqdm=True, use_cpu=True, seed=0,
        dataloader_drop_last=False)
    trainer = AdvTrainer(model=model, args=args, train_dataset=rows, method=method)
    trainer._get_train_sampler = lambda *a, **k: torch.utils.data.SequentialSampler(rows)
    trainer.train()


@pytest.mark.parametrize("method", ["fgm", "freelb"])
def test_trainer_gradient_accumulation_equals_a_double_batch(tmp_path, method):
    """AdvTrainer: 2 micro-batches of 4 with accumulation == 1 batch of 8 (one SGD step)."""
    sys.path.insert(0, str(HERE))
    from conftest import tiny_batch, tiny_model

    from advembed.methods import build_training_method

    batch = tiny_batch(batch=8, length=9, seed=4)
    rows = [{k: v[i] for k, v in batch.items()} for i in range(8)]
    options = {"fgm": {"epsilon": 0.2}, "freelb": {"init_mag": 0.0, "alpha": 0.2}}[method]

    def train(per_device: int, accumulation: int):
        model = tiny_model("bert", dropout=0.0)
        _sgd_steps(tmp_path, model, rows, build_training_method(method, model, **options),
                   per_device, accumulation, steps=1)
        return {n: p.detach().clone() for n, p in model.named_parameters()}

    whole = train(8, 1)
    accumulated = train(4, 2)
    initial = {n: p.detach() for n, p in tiny_model("bert", dropout=0.0).named_parameters()}
    assert not torch.equal(whole["classifier.weight"], initial["classifier.weight"])
    for name in whole:
        assert torch.allclose(whole[name], accumulated[name], atol=1e-5), name


def test_plain_accumulation_on_a_model_taking_any_keyword_equals_a_double_batch(tmp_path):
    """No method: the stock step.  A classifier whose forward takes ``**kwargs`` (ESIM, Llama,
    Qwen, ModernBERT) is handed ``num_items_in_batch`` and ignores it; the stock step then
    skips dividing by the accumulation steps, and 2 micro-batches gave twice the gradient."""
    sys.path.insert(0, str(HERE))
    from conftest import tiny_batch, tiny_config
    from transformers import BertForSequenceClassification

    class AnyKeyword(BertForSequenceClassification):
        def forward(self, input_ids=None, attention_mask=None, token_type_ids=None,
                    labels=None, **_):
            return super().forward(input_ids=input_ids, attention_mask=attention_mask,
                                   token_type_ids=token_type_ids, labels=labels)

    batch = tiny_batch(batch=8, length=9, seed=4)
    rows = [{k: v[i] for k, v in batch.items()} for i in range(8)]

    def train(per_device: int, accumulation: int):
        torch.manual_seed(0)
        model = AnyKeyword(tiny_config("bert", 2, 0.0))
        _sgd_steps(tmp_path, model, rows, None, per_device, accumulation, steps=1)
        return model.classifier.weight.detach().clone()

    torch.manual_seed(0)
    initial = AnyKeyword(tiny_config("bert", 2, 0.0)).classifier.weight.detach()
    whole, accumulated = train(8, 1), train(4, 2)
    assert not torch.equal(whole, initial)
    torch.testing.assert_close(accumulated - initial, whole - initial, atol=1e-6, rtol=1e-4)


def test_under_deepspeed_the_loss_is_not_divided_by_the_accumulation_steps_twice():
    """advembed scales each micro-batch's loss itself; DeepSpeed's engine would divide it by
    the accumulation steps again unless passed ``scale_wrt_gas=False`` (the stock Trainer's
    fix); other backends take no such option."""
    from types import SimpleNamespace

    from accelerate.utils import DistributedType

    from advembed.training.trainer import AdvTrainer

    trainer = AdvTrainer.__new__(AdvTrainer)  # only the accelerator is read
    trainer.accelerator = SimpleNamespace(distributed_type=DistributedType.DEEPSPEED)
    assert trainer._backward_options() == {"scale_wrt_gas": False}
    for other in (DistributedType.NO, DistributedType.MULTI_GPU, DistributedType.MULTI_CPU):
        trainer.accelerator = SimpleNamespace(distributed_type=other)
        assert trainer._backward_options() == {}


def test_a_warm_up_counts_optimiser_steps_under_accumulation(tmp_path):
    """FGM with one plain warm-up step, two optimiser steps: 2 micro-batches of 4 per step
    give the weights of batches of 8 — the warm-up covers the first step's *two* micro-batches,
    not one of them (``steps_done`` counts micro-batches; warm-ups count optimiser steps)."""
    sys.path.insert(0, str(HERE))
    from conftest import tiny_batch, tiny_model

    from advembed.methods import build_training_method

    batch = tiny_batch(batch=16, length=9, seed=4)
    rows = [{k: v[i] for k, v in batch.items()} for i in range(16)]

    def train(per_device: int, accumulation: int):
        model = tiny_model("bert", dropout=0.0)
        method = build_training_method("fgm", model, epsilon=0.2, warmup_steps=1)
        _sgd_steps(tmp_path, model, rows, method, per_device, accumulation, steps=2)
        assert method.micro_steps == accumulation and method.optimizer_step == 1  # the last
        return {n: p.detach().clone() for n, p in model.named_parameters()}

    whole, accumulated = train(8, 1), train(4, 2)
    for name in whole:
        assert torch.allclose(whole[name], accumulated[name], atol=1e-5), name


def test_a_warm_up_ends_at_an_optimiser_step_even_after_a_short_last_step(tmp_path):
    """10 examples, micro-batches of 2, accumulation 2: each epoch is steps of 2, 2 and 1
    micro-batches.  A warm-up of 3 optimiser steps is the whole first epoch (5 micro-batches);
    counting micro-batches over 2 would take a sixth, and mix plain and adversarial
    micro-batches in the second epoch's first step."""
    sys.path.insert(0, str(HERE))
    from conftest import tiny_batch, tiny_model

    from advembed.methods import build_training_method

    batch = tiny_batch(batch=10, length=9, seed=4)
    rows = [{k: v[i] for k, v in batch.items()} for i in range(10)]
    model = tiny_model("bert", dropout=0.0)
    method = build_training_method("fgm", model, epsilon=0.2, warmup_steps=3)
    adversarial, step = [], method._step

    def counting(*args, **kwargs):
        adversarial.append(method.optimizer_step)
        return step(*args, **kwargs)

    method._step = counting
    _sgd_steps(tmp_path, model, rows, method, per_device=2, accumulation=2, steps=6)
    assert method.steps_done == 10
    assert adversarial == [3, 3, 4, 4, 5]


def test_an_epoch_of_a_ddp_run_is_shared_by_its_processes(monkeypatch):
    from advembed.training.config import TrainConfig
    from advembed.training.run import examples_per_step

    config = TrainConfig(batch_size=8, gradient_accumulation_steps=3)
    assert examples_per_step(config) == 24
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it, before the process group
    assert examples_per_step(config) == 48
