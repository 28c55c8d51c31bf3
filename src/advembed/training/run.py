"""Fine-tuning orchestration on ``transformers.Trainer``.

``run_training(TrainConfig(...))`` asks the task for the data and model, trains with dev
evaluation every epoch, keeps the best checkpoint by the task's metric, evaluates it on test
and writes the run directory (``config.json``, ``metrics.json``, ``model/`` as safetensors)
atomically.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advembed.distributed import launched_processes
from advembed.errors import AdvembedError
from advembed.methods.presets import embedding_norm
from advembed.runs import (
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_DIR,
    WEIGHTS_FILE,
    Resumable,
    RunWriter,
    WriteFailed,
    sha256_of,
    write_json,
)
from advembed.tasks import SPLITS, LoadedModel, Task, get_task
from advembed.training.base_run import base_run_record, model_to_train
from advembed.training.callbacks import BestModel, CollapseGuard, LogLines
from advembed.training.config import TrainConfig
from advembed.training.outcome import final_metrics
from advembed.training.resume import check_settings, resume_point
from advembed.vda import check_for_run, refused_augment


@dataclass
class Built:
    """What a run trains: the task, its data and model, the encoded splits, the method."""

    task: Task
    data: Any
    loaded: LoadedModel
    encoded: dict[str, Any]
    method: Any
    method_settings: Any
    objective_settings: Any
    config: TrainConfig  # as run: the default --max-length capped at the model's positions
    embedding_norm: float  # of the model before training (presets are sized by it)


@dataclass
class Schedule:
    epochs: float
    steps_per_epoch: int
    total_steps: int

    @property
    def eval_every(self) -> int:
        return min(self.steps_per_epoch, self.total_steps)


def build_method(config: TrainConfig, model, tokenizer=None, train_labels=None,
                 total_steps: int | None = None, task: Task | None = None):
    """``(method or None, its effective settings, the objective's effective settings)`` for
    ``config.method`` (``none`` = plain fine-tuning) with ``config.objective`` (``ce`` =
    adversarial cross-entropy only)."""
    from advembed.methods import build_training_method, method_settings
    from advembed.objectives import build_objective, objective_settings

    chosen = objective_settings(config.objective, config.objective_options)
    objective = build_objective(
        config.objective, model, tokenizer=tokenizer, train_labels=train_labels,
        total_steps=total_steps, seed=config.seed, settings=chosen,
        representation=task.representation if task is not None else None,
        token_level=task is not None and task.token_level,
        cut_stream=task is not None and task.cut_stream,
    )
    settings = method_settings(config.method, config.method_options, objective=objective)
    augment = augment_settings(config)
    if augment is not None and config.method in ("none", "vda", "vaa"):
        raise AdvembedError(refused_augment(config.method))
    vda = augment if augment is not None else settings if config.method == "vda" else None
    if vda is not None:
        check_for_run(vda, task, config.dataset, config.split_seed)
    if config.method == "none" and objective is None:
        return None, settings, chosen
    method = build_training_method(config.method, model, objective=objective, settings=settings,
                                   augment=augment, tokenizer=tokenizer)
    method.cut_stream = bool(task is not None and task.cut_stream)
    return method, settings, chosen


def augment_settings(config: TrainConfig):
    """VDA's effective settings under ``--augment vda`` (None without ``--augment``)."""
    if not config.augment:
        return None
    from advembed.vda import VDASettings

    return VDASettings.from_options(config.augment_options)


def build(config: TrainConfig) -> Built:
    """Load the data and the model, encode the splits and build the method (in this order:
    the seeded head initialisation and the objective's parameters depend on it)."""
    from transformers import set_seed

    if config.augment_limit and not config.augment_file:
        raise AdvembedError("--augment-limit needs --augment-file")
    task = get_task(config.task)
    data = task.load_data(config.data_options(), limit=config.limit, seed=config.split_seed)
    if config.augment_file:
        from advembed.data.augment import augmented

        data = augmented(data, Path(config.augment_file), limit=config.augment_limit,
                         seed=config.seed)
    set_seed(config.seed)
    loaded = model_to_train(config, task, data)
    config = fit_max_length(config, loaded)
    task.use_max_length(config.max_length)
    norm = embedding_norm(loaded.model)
    if config.preset:
        config = apply_preset(config, loaded.model)
    encoded = {split: task.encode(data.splits[split], loaded.tokenizer,
                                  max_length=config.max_length, with_index=split == "train")
               for split in SPLITS}
    per_step = examples_per_step(config)
    planned = config.max_steps or math.ceil(
        math.ceil(len(encoded["train"]) / per_step) * config.epochs)
    method, method_settings, objective_settings = build_method(
        config, loaded.model, loaded.tokenizer, task.train_labels(data), planned, task)
    objective = getattr(method, "objective", None)
    idle = objective and objective.schedule_warning(
        math.ceil(len(encoded["train"]) / per_step), planned)
    if idle:
        warnings.warn(idle, stacklevel=2)
    return Built(task, data, loaded, encoded, method, method_settings, objective_settings,
                 config, norm)


def fit_max_length(config: TrainConfig, loaded: LoadedModel) -> TrainConfig:
    """``--max-length`` must fit the model's positions: given explicitly beyond them it is an
    error; the default (128) is capped at them, and the run records the length it used."""
    positions = [getattr(loaded.model.config, "max_position_embeddings", None),
                 getattr(loaded.tokenizer, "model_max_length", None)]
    limit = min((p for p in positions if isinstance(p, int) and 0 < p < 1_000_000), default=None)
    if limit is None or config.max_length <= limit:
        return config
    if config.max_length != TrainConfig().max_length:
        raise AdvembedError(f"option --max-length {config.max_length} is beyond the model's "
                            f"{limit} positions")
    return dataclasses.replace(config, max_length=limit)


def apply_preset(config: TrainConfig, model) -> TrainConfig:
    """The preset's method and settings, sized to ``model``; method flags given explicitly
    override them."""
    from advembed.methods.presets import preset_options

    method, options, _ = preset_options(config.preset, model)
    if config.method not in ("none", method):
        raise AdvembedError(f"--preset {config.preset} trains with --method {method}, not "
                            f"{config.method}")
    return dataclasses.replace(config, method=method,
                               method_options=options | dict(config.method_options))


def examples_per_step(config: TrainConfig) -> int:
    """Training examples one optimiser step consumes: every micro-batch of every process (under
    DDP each process reads its own share of an epoch)."""
    return config.batch_size * config.gradient_accumulation_steps * launched_processes()


def schedule(config: TrainConfig, built: Built) -> Schedule:
    """Epochs and steps; FreeAT replays each minibatch m times and divides the epochs by m
    (Shafahi et al.)."""
    replays = getattr(built.method, "replays", 1)
    if replays > 1 and config.gradient_accumulation_steps > 1:
        raise AdvembedError("method freeat does not combine with --gradient-accumulation-steps")
    per_step = examples_per_step(config)
    epochs = config.epochs / replays
    steps_per_epoch = max(1, math.ceil(len(built.encoded["train"]) / per_step)) * replays
    total_steps = config.max_steps or math.ceil(steps_per_epoch * epochs)
    return Schedule(epochs, steps_per_epoch, total_steps)


def training_arguments(config: TrainConfig, plan: Schedule, staging: Path):
    """The Trainer's arguments.  The best model is kept by :class:`BestModel` (not the
    Trainer's ``load_best_model_at_end``), so checkpoints can come at any ``save_steps``."""
    import torch
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(staging / "checkpoints"),
        num_train_epochs=plan.epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.lr,
        weight_decay=config.weight_decay,
        warmup_ratio=config.warmup_ratio,
        eval_strategy="steps",
        eval_steps=plan.eval_every,
        save_strategy="steps",
        save_steps=config.save_steps or plan.eval_every,
        save_total_limit=1,
        logging_steps=max(1, min(50, plan.eval_every)),
        seed=config.seed,
        data_seed=config.seed,
        group_by_length=config.group_by_length,
        report_to="none",
        disable_tqdm=not config.progress,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        save_safetensors=True,
    )


def run_training(config: TrainConfig) -> dict[str, Any]:
    """Train, evaluate and write the run directory; return the metrics dictionary.

    The run is written under a lock into a staging folder (:class:`~advembed.runs.RunWriter`)
    with resumable checkpoints every ``save_steps``; ``resume`` continues an interrupted run
    of the same ``output`` from its last complete checkpoint, to the same final metrics."""
    if launched_processes() > 1:
        raise AdvembedError(
            f"advembed train writes its run from one process, and this is one of "
            f"{launched_processes()} (torchrun / accelerate launch); for DDP, train with "
            "advembed.AdvTrainer in your own script (README: Python and Trainer usage)")
    output = config.output_dir()
    with RunWriter(output, overwrite=config.overwrite, resume=config.resume) as writer:
        checkpoint = resume_point(config, writer.staging)
        built = build(config)
        check_settings(config, writer.staging, settings_of(built, config),
                       base_run_record(built.loaded.model))
        note = fine_tuning_rate_note(config)
        if note:  # after every refusal, so that an error stays one line
            warnings.warn(note, stacklevel=2)
        config = built.config
        plan = schedule(config, built)
        trainer, best, collapse = make_trainer(config, built, plan, writer.staging)
        started = time.perf_counter()
        train_output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint
                                     else None)
        seconds = time.perf_counter() - started
        try:
            best.restore(trainer.model)
            metrics = final_metrics(trainer, built.task, built, train_output, seconds)
            metrics["collapsed"] = collapse.collapsed
            metrics["train"]["skipped_steps"] = trainer.guard.skipped
            if checkpoint is not None:
                metrics["train"]["resumed_from_step"] = int(checkpoint.name.rsplit("-", 1)[1])
            save_model(trainer, built, writer.staging, config, output, metrics)
        except (OSError, WriteFailed) as exc:
            raise Resumable(f"cannot write the run into '{writer.staging}' ({exc.strerror}); "
                            "free space, then run the same command with --resume") from None
    return metrics


def make_trainer(config: TrainConfig, built: Built, plan: Schedule, staging: Path):
    """``(AdvTrainer, best-model keeper, collapse guard)`` for a built run."""
    from advembed.training.trainer import AdvTrainer

    task = built.task
    baseline = task.collapse_baseline(built.data.splits["dev"], built.loaded.tokenizer,
                                      max_length=config.max_length)
    collapse = CollapseGuard(baseline,
                             metric=task.best_metric, greater_is_better=task.greater_is_better,
                             active=built.method is not None, stop=config.collapse_guard)
    best = BestModel(staging / "best", metric=task.best_metric,
                     greater_is_better=task.greater_is_better)
    trainer = AdvTrainer(
        model=built.loaded.model,
        args=training_arguments(config, plan, staging),
        train_dataset=built.encoded["train"],
        eval_dataset=built.encoded["dev"],
        data_collator=task.collator(built.loaded.tokenizer),
        compute_metrics=task.compute_metrics,
        preprocess_logits_for_metrics=getattr(task, "preprocess_logits_for_metrics", None),
        method=built.method,
        task=task,
        callbacks=[collapse, best],
    )
    if not config.progress:  # readable lines in place of the printed log dictionaries
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(LogLines())
    return trainer, best, collapse


def save_model(trainer, built: Built, staging: Path, config: TrainConfig, output: Path,
               metrics: dict[str, Any]) -> None:
    """The final model (finite weights only), its tokenizer, ``config.json`` with the weights'
    sha256, and ``metrics.json``."""
    import torch

    if not all(bool(torch.isfinite(p).all()) for p in built.loaded.model.parameters()):
        raise AdvembedError("the trained weights are not finite; nothing was written (lower "
                            "--lr or the perturbation size)")
    trainer.save_model(str(staging / MODEL_DIR))
    built.loaded.tokenizer.save_pretrained(str(staging / MODEL_DIR))
    record = run_record(config, built, output) | {
        "model_sha256": sha256_of(staging / MODEL_DIR / WEIGHTS_FILE),
        "trainer_arguments": json.loads(trainer.args.to_json_string()),
    }
    write_json(staging / CONFIG_FILE, record)
    write_json(staging / METRICS_FILE, metrics)
    # only now that every file is written: a failure above leaves the checkpoints and the best
    # model that --resume needs
    for leftover in ("best", "request.json"):
        path = staging / leftover
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    if not config.keep_checkpoints:
        shutil.rmtree(staging / "checkpoints", ignore_errors=True)


def source_weights_sha256(source: str) -> dict[str, str]:
    """The sha256 of each weights file (``model*.safetensors``, ``pytorch_model*.bin``: shards
    too) of the folder the model was loaded from, so that a run says which initial weights it
    started from; ``{}`` for a model built from scratch or from another run."""
    folder = Path(source)
    if not folder.is_dir():
        return {}
    files = sorted(p for p in folder.iterdir()
                   if (p.name.startswith("model") and p.suffix == ".safetensors")
                   or (p.name.startswith("pytorch_model") and p.suffix == ".bin"))
    return {p.name: sha256_of(p) for p in files}


def settings_of(built: Built, config: TrainConfig) -> dict[str, Any]:
    """The run's effective settings by group (``None``: that group is not used)."""
    return {"method_settings": built.method_settings,
            "objective_settings": built.objective_settings,
            "augment_settings": augment_settings(config)}


def run_record(config: TrainConfig, built: Built, output: Path) -> dict[str, Any]:
    """``config.json``: the options, every effective method and objective setting, the data's
    description and the versions."""
    import torch
    import transformers

    from advembed import __version__

    return dataclasses.asdict(config) | {
        "embedding_norm": built.embedding_norm,
        **{group: s.as_dict() if s is not None else {}
           for group, s in settings_of(built, config).items()},
        "output": str(output),
        **built.task.run_state(),
        "model_source": built.loaded.source,
        "model_source_sha256": ({} if config.model_init == "random"
                                else source_weights_sha256(built.loaded.source)),
        **base_run_record(built.loaded.model),
        **built.task.record(built.data),
        **dataset_path(config.dataset),
        "split_sizes": {split: len(built.data.splits[split]) for split in SPLITS},
        "data_sha256": built.data.fingerprints(),  # what it trained and was scored on
        "torch_threads": torch.get_num_threads(),  # sums change order with it: same seed,
        "versions": {                              # same threads, same run on CPU
            "advembed": __version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
        },
    }


def dataset_path(dataset: str) -> dict[str, str]:
    """``dataset_path``: the absolute path of a dataset given as a relative file or folder, so
    that eval and attack find the run's data from any working directory."""
    from advembed.data.named import names

    path = Path(dataset).expanduser()
    if dataset.strip().lower() in names() or ":" in dataset or not path.exists():
        return {}  # a named dataset (read as such even beside a folder of its name), hf:, glue:
    return {"dataset_path": str(path.resolve())}


def fine_tuning_rate_note(config: TrainConfig) -> str | None:
    """A model trained from scratch (``scratch:*``, or the LM/translation default) at the
    fine-tuning default ``--lr`` barely moves in the epochs given: the note that says so."""
    scratch = config.model.startswith("scratch:") or (
        config.task in ("lm", "translation") and config.model == "default")
    if scratch and config.lr == TrainConfig().lr:
        return (f"--model {config.model} trains from scratch, and --lr {config.lr:g} is the "
                "fine-tuning default; models from scratch here use 5e-4 to 1e-3")
    return None
