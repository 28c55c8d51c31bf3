"""The model a run trains: the task's pretrained (or random) model, or, for a method that
trains on a finished run (VAA's stage two), a model built from that run's model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from advembed.errors import AdvembedError
from advembed.tasks import LoadedModel, Task
from advembed.training.config import TrainConfig


def model_to_train(config: TrainConfig, task: Task, data) -> LoadedModel:
    """``task.build_model`` for ``--model``, or the stage-two model of ``--method vaa``."""
    from advembed.methods import method_class, method_settings

    if not getattr(method_class(config.method), "needs_base_run", False):
        return task.build_model(config.model, data, random_init=config.model_init == "random")
    return vaa_model(config, task, data, method_settings(config.method, config.method_options))


def vaa_model(config: TrainConfig, task: Task, data, settings) -> LoadedModel:
    """Model A from ``settings.base_run`` (checked: finished, same task and labels, weights as
    written), frozen, and model B initialised from it (:mod:`advembed.vaa.model`)."""
    from advembed.evaluation.runs import open_run_model, read_checked_run
    from advembed.vaa.model import VulnerabilityAwareModel

    if settings.base_run is None:
        raise AdvembedError("method vaa needs --base-run RUN: the finished run whose model is "
                            "VAA's model A")
    defaults = TrainConfig()
    if config.model != defaults.model or config.model_init != defaults.model_init:
        raise AdvembedError("--model and --model-init do not apply to method vaa: models A and "
                            "B both come from --base-run")
    run = Path(settings.base_run)
    run_config = read_checked_run(run)
    if run_config.get("task", "classification") != task.name:
        raise AdvembedError(f"base run '{run}' was trained for task "
                            f"'{run_config.get('task')}', not '{task.name}'")
    task.check_run_data(run_config, data, config.dataset)
    _same_held_out(run, run_config, data, config)
    loaded = open_run_model(run, run_config)
    if getattr(loaded.model.config, "model_type", None) == "advembed-vaa":
        raise AdvembedError(f"base run '{run}' is itself a VAA run: give the run of model A")
    model = VulnerabilityAwareModel.from_model_a(
        loaded.model, placement=settings.placement, norm=settings.norm,
        epsilon=settings.epsilon, features=settings.features, base_run=str(run.resolve()),
        base_run_sha256=run_config.get("model_sha256"),
        threshold=run_config.get("qa_threshold"))  # A's dev threshold, where it decides by one
    room_for_v(loaded.tokenizer, settings.placement)
    return LoadedModel(model, loaded.tokenizer, f"{run} (VAA model A)")


def room_for_v(tokenizer: Any, placement: str) -> None:
    """Under ``position`` V takes one of the model's positions: the tokenizer's limit drops by
    one as the model's does, so that the length a run fits to both (RoBERTa's tokenizer limit
    is 2 under its positions) still leaves V its position at full length."""
    limit = getattr(tokenizer, "model_max_length", None)
    if placement == "position" and isinstance(limit, int) and 1 < limit < 1_000_000:
        tokenizer.model_max_length = limit - 1


def _same_held_out(run: Path, run_config: dict[str, Any], data, config: TrainConfig) -> None:
    """Model B's dev and test examples must be model A's: A never trained on them.  Another
    dataset with the same labels, another ``--split-seed`` or another ``--limit`` would put
    examples frozen A memorised into B's test split (its features there are then those of a
    model that saw them).  Runs that recorded no data fingerprints are checked by dataset and
    split seed."""
    recorded = run_config.get("data_sha256")
    if isinstance(recorded, dict) and {"dev", "test"} <= set(recorded):
        ours = data.fingerprints()
        differ = [split for split in ("dev", "test") if ours[split] != recorded[split]]
    else:
        differ = [name for name, ours in (("dataset", config.dataset),
                                          ("split_seed", config.split_seed))
                  if run_config.get(name) != ours]
    if differ:
        raise AdvembedError(
            f"base run '{run}' was trained on other data ({', '.join(differ)} differ: "
            f"dataset '{run_config.get('dataset')}', --split-seed "
            f"{run_config.get('split_seed')}, --limit {run_config.get('limit')}); model B must "
            "train on model A's data, or its dev and test would hold examples A trained on")


def base_run_record(model: Any) -> dict[str, Any]:
    """What ``config.json`` records of the run a model was built from (nothing otherwise)."""
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) != "advembed-vaa":
        return {}
    return {"base_run": config.base_run, "base_run_sha256": config.base_run_sha256}
