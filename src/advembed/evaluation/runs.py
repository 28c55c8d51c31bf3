"""Reading a saved run back: its data split, its model, a seeded sample, its evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from advembed.data.base import SPLITS
from advembed.data.options import DataOptions
from advembed.errors import AdvembedError
from advembed.runs import MODEL_DIR, WEIGHTS_FILE, read_run, sha256_of
from advembed.tasks import LoadedModel, Task, get_task


def run_task(config: dict[str, Any]) -> Task:
    """The task a run was trained for (runs from before tasks existed: classification), with
    what it learned besides the weights (QA matching's threshold)."""
    task = get_task(config.get("task"))
    task.load_run_state(config)
    return task


def read_checked_run(run: Path) -> dict[str, Any]:
    """A finished run's ``config.json``, checked for what its task reads back."""
    config, _ = read_run(run)
    run_task(config).check_run_config(config, Path(run))
    return config


def run_split(config: dict[str, Any], split: str, data: DataOptions | None = None) -> list:
    """The examples of ``split`` for a saved run: its own dataset (same columns, split seed and
    ``--limit``) or another one the run's task accepts; one-line errors otherwise."""
    if split not in SPLITS:
        raise AdvembedError(f"unknown split '{split}'; choose one of {', '.join(SPLITS)}")
    data = data or DataOptions()
    same = data.dataset is None
    options = data.over(config)
    task = run_task(config)
    dataset = task.load_data(options)  # the task reads its own formats (a .txt corpus, …)
    if same and config.get("limit"):
        dataset = _limited(dataset, config, split)
    task.check_run_data(config, dataset, options.dataset)
    examples = dataset.splits[split]
    if not examples:
        raise AdvembedError(f"dataset '{options.dataset}' has an empty {split} split")
    if same:
        _check_unchanged(config, split, examples, options.dataset)
    return examples


def _limited(dataset, config: dict[str, Any], split: str):
    """The run's ``--limit`` subset: drawn with its split seed (since 2026-12-08), or, for a
    run made before whose fingerprint says so, with its training seed."""
    from advembed.data.base import examples_sha256

    limited = dataset.limit(config["limit"], seed=config.get("split_seed", 2024))
    recorded = (config.get("data_sha256") or {}).get(split)
    if recorded is not None and examples_sha256(limited.splits[split]) != recorded:
        older = dataset.limit(config["limit"], seed=config["seed"])
        if examples_sha256(older.splits[split]) == recorded:
            return older
    return limited


def _check_unchanged(config: dict[str, Any], split: str, examples: list, name: str) -> None:
    """The run's own split must be the one it was scored on (``data_sha256`` in its
    ``config.json``): an edited file or another ``--split-seed`` would silently move training
    examples into "test".  The train split of an ``--augment-file`` run held the augmented
    examples too, so it is not compared; runs from before the fingerprints are not either."""
    from advembed.data.base import examples_sha256

    recorded = (config.get("data_sha256") or {}).get(split)
    if recorded is None or (split == "train" and config.get("augment_file")):
        return
    if examples_sha256(examples) != recorded:
        raise AdvembedError(f"dataset '{name}': its {split} split is not the one the run was "
                            "scored on (the data changed since it was trained, or --split-seed "
                            "differs); give --dataset to score it on this data anyway")


def open_run_model(run: Path, config: dict[str, Any]) -> LoadedModel:
    """The model saved in ``run``, checked: its weights file is the one training wrote
    (sha256 in ``config.json``) and every weight is finite; one-line errors otherwise."""
    run = Path(run)
    task = run_task(config)
    task.check_run_config(config, run)
    weights = run / MODEL_DIR / WEIGHTS_FILE
    if not weights.is_file():
        raise AdvembedError(f"run '{run}' has no model weights ({MODEL_DIR}/{WEIGHTS_FILE} is "
                            "missing): train it again")
    expected = config.get("model_sha256")
    if expected is not None and sha256_of(weights) != expected:
        raise AdvembedError(f"run '{run}': {MODEL_DIR}/{WEIGHTS_FILE} is not the file training "
                            "wrote (its sha256 differs from config.json's): it was changed or "
                            "damaged; train the run again")
    try:
        loaded = task.load_saved(run / MODEL_DIR)
    except AdvembedError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to read the files is the run's
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise AdvembedError(f"run '{run}': its model cannot be loaded ({type(exc).__name__}: "
                            f"{reason})") from None
    if not all(bool(torch.isfinite(p).all()) for p in loaded.model.parameters()):
        raise AdvembedError(f"run '{run}' has non-finite weights (NaN or inf): train it again")
    return loaded


def load_run_model(run: Path, config: dict[str, Any] | None = None) -> LoadedModel:
    """The checked model of ``run`` (:func:`open_run_model`), on the GPU when there is one."""
    config = config if config is not None else read_run(run)[0]
    loaded = open_run_model(run, config)
    if torch.cuda.is_available():
        loaded.model.cuda()
    return loaded


def sample_examples(examples: list, n: int, seed: int) -> list:
    """A seeded sample of at most ``n`` examples, in their original order."""
    if n >= len(examples):
        return list(examples)
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed))
    return [examples[i] for i in sorted(order[:n].tolist())]


def evaluate_run(run: Path, *, data: DataOptions | None = None, split: str = "test",
                 batch_size: int = 64) -> dict[str, Any]:
    """Re-evaluate a saved run on a split of its own dataset or of another one."""
    config = read_checked_run(run)
    loaded = open_run_model(run, config)
    examples = run_split(config, split, data)
    result = run_task(config).evaluate(loaded.model, loaded.tokenizer, examples,
                                       batch_size=batch_size,
                                       max_length=config.get("max_length", 128), progress=True)
    name = (data.dataset if data is not None else None) or config["dataset"]
    return {"dataset": name, "split": split, "examples": len(examples)} | result
