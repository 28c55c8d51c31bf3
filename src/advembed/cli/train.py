"""``advembed train``: fine-tune a model, plain or adversarially."""

from __future__ import annotations

import argparse
import sys

from advembed.cli.options import add_data_group, add_settings, chosen, refuse_foreign
from advembed.errors import AdvembedError

NAME = "train"


def _classes():
    from advembed.methods import REGISTRY as METHODS
    from advembed.objectives import REGISTRY as OBJECTIVES

    return METHODS, OBJECTIVES


def add(sub) -> None:
    from advembed.data.options import DataOptions
    from advembed.methods import METHODS
    from advembed.objectives import OBJECTIVES
    from advembed.tasks import REGISTRY as TASKS
    from advembed.training.config import TrainConfig

    p = sub.add_parser(NAME, help="fine-tune a model (plain or adversarial)",
                       description="Fine-tune a model on a dataset; with no options, the "
                       "packaged MiniLM on mr.")
    add_data_group(p, train=True)
    add_settings(p.add_argument_group("training"), [TrainConfig], skip=DataOptions.flags(),
                 choices={"--method": METHODS, "--objective": OBJECTIVES, "--task": list(TASKS)})
    methods, objectives = _classes()
    add_settings(p.add_argument_group("method hyper-parameters (defaults per method)"),
                 [cls.Settings for cls in methods.values()])
    add_settings(p.add_argument_group("objective hyper-parameters"),
                 [cls.Settings for cls in objectives.values()])


def config_from_args(args: argparse.Namespace):
    """The :class:`TrainConfig` the flags describe; flags of another method or objective are
    one-line errors."""
    from advembed.training.config import TrainConfig

    methods, objectives = _classes()
    from advembed.methods.presets import PRESETS

    options = chosen(args, TrainConfig)
    recorded = _recorded(options)
    options = {k: v for k, v in recorded.items() if k not in OPTION_GROUPS} | options
    preset = PRESETS.get(options.get("preset"))
    if preset and options.get("method", preset.method) != preset.method:
        raise AdvembedError(f"--preset {options['preset']} trains with --method "
                            f"{preset.method}, not {options['method']}")
    method = _method_of(options)
    objective = options.get("objective", "ce")
    method_cls = methods.get(method)
    method_options = {}
    augment = options.get("augment")
    if method_cls is not None:
        # --augment vda takes VDA's flags beside the method's own
        others = [c.Settings for name, c in methods.items() if not (augment and name == augment)]
        refuse_foreign(args, method_cls.Settings, others)
        method_options = _given_or_recorded(recorded, "method_options",
                                            chosen(args, method_cls.Settings),
                                            _recorded_method(recorded) == method)
    augment_options = {}
    if augment:
        from advembed.vda import VDASettings, refused_augment

        if method in ("none", "vda", "vaa"):
            raise AdvembedError(refused_augment(method))
        augment_options = _given_or_recorded(recorded, "augment_options",
                                             chosen(args, VDASettings),
                                             recorded.get("augment") == augment)
    objective_cls = objectives.get(objective)
    used = objective_cls.Settings if objective_cls is not None else _NoObjective
    refuse_foreign(args, used, [c.Settings for c in objectives.values()],
                   hint="needs --objective {owner}")
    objective_options = _given_or_recorded(
        recorded, "objective_options", chosen(args, objective_cls.Settings) if objective_cls
        else {}, recorded.get("objective") == objective)
    return TrainConfig(**options, method_options=method_options,
                       objective_options=objective_options, augment_options=augment_options)


OPTION_GROUPS = ("method_options", "objective_options", "augment_options")


def _recorded(options: dict) -> dict:
    """With ``--resume --output X``: what the interrupted run was started with (an option
    given now overrides it, and a different one is then refused by the resume check)."""
    if not (options.get("resume") and options.get("output")):
        return {}
    from advembed.training.resume import recorded_options

    return recorded_options(options["output"])


def _method_of(options: dict) -> str:
    """The method ``options`` train: ``--method``, else the preset's, else ``none`` (a default
    is not recorded, so a preset's run that named no ``--method`` trained its preset's)."""
    from advembed.methods.presets import PRESETS

    preset = PRESETS.get(options.get("preset"))
    return options.get("method") or (preset.method if preset else "none")


def _recorded_method(recorded: dict) -> str | None:
    """The method the resumed run trained (``None`` for a new run)."""
    return _method_of(recorded) if recorded else None


def _given_or_recorded(recorded: dict, group: str, given: dict, same: bool) -> dict:
    """A group's options given now over the ones the resumed run recorded, where it trained
    the same method (objective, augmentation); another one keeps only what is given."""
    return {**(recorded.get(group) or {}), **given} if same else given


def run(args: argparse.Namespace) -> int:
    from advembed.runs import read_run
    from advembed.tasks import get_task
    from advembed.training.run import run_training

    config = config_from_args(args)
    metrics = run_training(config)
    task = get_task(config.task)
    task.load_run_state(read_run(config.output_dir())[0])  # e.g. the BLEU signature it recorded
    print(f"run {config.output_dir()}: {task.summary(metrics)} "
          f"({metrics['train']['seconds']:.0f} s training)")
    if metrics.get("collapsed") and config.collapse_guard:
        print(f"advembed train: collapsed (dev at a trivial predictor's score): stopped at step "
              f"{metrics['train']['steps']}; --no-collapse-guard trains it to the end",
              file=sys.stderr)
    elif metrics.get("collapsed"):
        print("advembed train: collapsed: its best dev score is a trivial predictor's",
              file=sys.stderr)
    return 0


class _NoObjective:
    """Stands for ``--objective ce``: it has no options."""

    owner = "objective 'ce'"

    @staticmethod
    def declared():
        return []
