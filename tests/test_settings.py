"""Settings declared once: the machinery (validation, flags, records) and, over every
registered method and objective, that each setting reaches the CLI, validation, the method
and ``config.json`` without any per-method code.  A new method or objective is tested here by
adding it to its registry."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from conftest import tiny_batch, tiny_config, tiny_model, tiny_synonyms

from advembed.cli import build_parser
from advembed.cli.train import config_from_args
from advembed.errors import AdvembedError
from advembed.methods import REGISTRY as METHODS
from advembed.methods import build_training_method, method_settings
from advembed.objectives import REGISTRY as OBJECTIVES
from advembed.objectives import build_objective
from advembed.settings import Flag, Settings, setting


@dataclasses.dataclass(frozen=True)
class Toy(Settings):
    owner = "method 'toy'"
    size: float = setting(0.5, Flag("--toy-size", "a size", minimum=0, maximum=1,
                                    exclusive_maximum=True))
    count: int = setting(3, "--toy-count", "a count", minimum=1)
    norm: str = setting("l2", "--toy-norm", "a norm", choices=("l2", "linf"))
    radii: tuple[float, ...] = setting((0.1, 0.2), "--toy-radii", "radii", minimum=0)
    cap: int | None = setting(None, "--toy-cap", "an optional cap", minimum=1)
    on: bool = setting(False, "--toy-on", "a switch")


def test_settings_validate_types_ranges_and_choices_naming_the_flag():
    assert Toy(count=4.0).count == 4 and isinstance(Toy(count=4.0).count, int)
    assert Toy(radii=[0, 1]).radii == (0.0, 1.0) and Toy(radii=0.3).radii == (0.3,)
    for bad, message in [({"size": 1.0}, "--toy-size must be in [0, 1) for method 'toy', got 1"),
                         ({"count": 0}, "--toy-count must be >= 1 for method 'toy', got 0"),
                         ({"count": 2.5}, "--toy-count must be an integer"),
                         ({"size": math.nan}, "--toy-size must be a finite number"),
                         ({"size": math.inf}, "--toy-size must be a finite number"),
                         ({"norm": "l3"}, "--toy-norm must be one of l2, linf"),
                         ({"radii": [0.1, -1]}, "--toy-radii must be >= 0"),
                         ({"on": "yes"}, "--toy-on must be true or false"),
                         ({"count": None}, "--toy-count needs a value")]:
        with pytest.raises(AdvembedError, match=message.replace("(", r"\(").replace(")", r"\)")
                           .replace("[", r"\[")):
            Toy(**bad)
    assert Toy(cap=None).cap is None


def test_from_options_as_dict_and_explicit():
    toy = Toy.from_options({"count": 7}, Toy(size=0.25))
    assert toy.as_dict() == {"size": 0.25, "count": 7, "norm": "l2", "radii": [0.1, 0.2],
                             "cap": None, "on": False}
    assert toy.explicit() == {"size": 0.25, "count": 7}
    with pytest.raises(AdvembedError, match=r"option --other does not apply to method 'toy' "
                                            r"\(it takes: --toy-size, --toy-count"):
        Toy.from_options({"other": 1}, flag_of={"other": "--other"})


def _another_value(item):
    """A valid value of a declared setting that differs from its default."""
    flag, default, kind = item.flag, item.default, item.type
    if kind is bool:
        return not default
    if flag.choices:
        return next(c for c in flag.choices if c != default)
    if kind is int or kind == int | None:
        return (default or 1) + 1
    if kind is str or kind == str | None:
        return f"{default or 'runs/elsewhere'}-other"
    value = (default or 0.0) + 0.25
    if flag.maximum is not None and value >= flag.maximum:
        value = (flag.maximum + (flag.minimum or 0.0)) / 2
    return value


def _cli_words(item, value) -> list[str]:
    if isinstance(value, bool):
        return [item.flag.name if value else "--no-" + item.flag.name.removeprefix("--")]
    return [item.flag.name, str(value)]


def _items(registry):
    return [(name, item) for name, cls in registry.items() for item in cls.Settings.declared()]


@pytest.mark.parametrize(("name", "item"), _items(METHODS),
                         ids=lambda v: v if isinstance(v, str) else v.name)
def test_every_method_setting_goes_from_flag_to_method_and_record(name, item):
    value = _another_value(item)
    if name == "fgsm" and item.name == "norm":  # FGSM is defined for L∞ only: its own check
        with pytest.raises(AdvembedError, match="FGSM is defined for --adv-norm linf"):
            method_settings(name, {"norm": value})
        return
    companion = []
    if name == "vda" and item.name == "noise_on":  # the literal eq. 4 is whole-vocabulary only
        with pytest.raises(AdvembedError, match="give --vda-top-k 0"):
            method_settings(name, {"noise_on": value})
        companion = ["--vda-top-k", "0"]
    args = build_parser().parse_args(["train", "--method", name, *_cli_words(item, value),
                                      *companion])
    config = config_from_args(args)
    settings = method_settings(name, config.method_options)
    assert getattr(settings, item.name) == value or (
        getattr(settings, item.name) == pytest.approx(value)), item.flag.name
    model, extra = tiny_model(), {}
    if name == "vda":  # a tiny masked LM instead of loading the one --vda-mlm names
        from transformers import BertForMaskedLM

        from advembed.vda import VirtualAugmenter

        mlm = BertForMaskedLM(tiny_config("bert"))
        extra["augment"] = VirtualAugmenter(model, settings, mlm=mlm, special_ids=[0])
    if name == "ascc":  # a random synonym table instead of the tokenizer's WordNet one
        extra["synonyms"] = tiny_synonyms(model)
    if name == "vaa":  # model B, around A
        from advembed.vaa.model import VulnerabilityAwareModel

        model = VulnerabilityAwareModel.from_model_a(model)
    method = build_training_method(name, model, **extra, **config.method_options)
    assert method.settings == settings  # the method runs with exactly these
    recorded = settings.as_dict()[item.name]  # what config.json records
    assert recorded == value or recorded == pytest.approx(value)


@pytest.mark.parametrize(("name", "item"), _items(OBJECTIVES),
                         ids=lambda v: v if isinstance(v, str) else v.name)
def test_every_objective_setting_goes_from_flag_to_objective(name, item):
    value = _another_value(item)
    args = build_parser().parse_args(["train", "--method", "fgm", "--objective", name,
                                      *_cli_words(item, value)])
    config = config_from_args(args)
    objective = build_objective(name, tiny_model(), tokenizer=_Tokenizer(),
                                train_labels=[0, 1, 0, 1], total_steps=12,
                                **config.objective_options)
    assert getattr(objective.settings, item.name) == pytest.approx(value), item.flag.name


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_refuses_out_of_range_values_and_foreign_flags(name):
    cls = METHODS[name]
    for item in cls.Settings.declared():
        if item.flag.minimum is not None:
            below = item.flag.minimum - (1 if item.type is int else 0.5)
            with pytest.raises(AdvembedError, match=f"option {item.flag.name} must be"):
                build_training_method(name, tiny_model(), **{item.name: below})
    foreign = next(i for other in METHODS.values() for i in other.Settings.declared()
                   if i.flag.name not in cls.Settings.flags())
    value = _cli_words(foreign, _another_value(foreign))[1:]
    args = build_parser().parse_args(["train", "--method", name, foreign.flag.name, *value])
    with pytest.raises(AdvembedError, match=f"{foreign.flag.name} does not apply to method "
                                            f"'{name}'"):
        config_from_args(args)

@pytest.mark.parametrize(("name", "zero_allowed"), [("fgsm", False), ("fgm", False),
                                                    ("freeat", False), ("vaa", False),
                                                    ("pgd", True), ("freelb", True)])
def test_a_zero_epsilon_is_unbounded_where_it_is_a_ball_and_refused_where_it_is_the_step(
        name, zero_allowed):
    """``--adv-epsilon 0`` is PGD's and FreeLB's unbounded ball, but FGSM's, FGM's, FreeAT's
    and VAA's step itself (δ = 0: plain training twice over).  One shared flag: the parser
    admits what any method admits, and each method's settings check their own range."""
    args = build_parser().parse_args(["train", "--method", name, "--adv-epsilon", "0"])
    if zero_allowed:
        assert method_settings(name, config_from_args(args).method_options).epsilon == 0
    else:
        with pytest.raises(AdvembedError, match=f"--adv-epsilon must be > 0 for method '{name}'"):
            method_settings(name, config_from_args(args).method_options)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--method", name, "--adv-epsilon", "-1"])



@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_takes_a_step_with_its_defaults(name, tmp_path, tiny_model_dir,
                                                     monkeypatch):
    if name == "vda":  # its default MLM is the built one: stand a tiny one in its place
        from transformers import AutoTokenizer, BertForMaskedLM

        import advembed.mlm.load

        BertForMaskedLM(tiny_config("bert")).save_pretrained(tmp_path / "mlm")
        AutoTokenizer.from_pretrained(str(tiny_model_dir)).save_pretrained(tmp_path / "mlm")
        monkeypatch.setattr(advembed.mlm.load, "built_mlm_dir", lambda: tmp_path / "mlm")
    model = tiny_model(dropout=0.1)
    model.train()
    extra = {}
    if name == "ascc":  # WordNet's synonyms of the tiny vocabulary's words (film ~ movie)
        from transformers import AutoTokenizer

        extra["tokenizer"] = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    if name == "vaa":  # model B around A; on A itself it is refused
        from advembed.vaa.model import VulnerabilityAwareModel

        with pytest.raises(AdvembedError, match="method vaa trains model B"):
            build_training_method(name, model)
        model = VulnerabilityAwareModel.from_model_a(model).train()
    loss = build_training_method(name, model, **extra).step(model, tiny_batch())
    assert math.isfinite(float(loss))
    head = model.model_b.classifier if name == "vaa" else model.classifier
    assert all(p.grad is not None for p in head.parameters())


def test_an_objectives_method_defaults_are_what_the_method_runs_and_records():
    from advembed.objectives import ATCL

    settings = method_settings("fgm", objective=ATCL)
    assert settings.epsilon == 0.03  # paper 004 §5.1, not FGM's own 0.1
    assert method_settings("fgm", {"epsilon": 0.2}, objective=ATCL).epsilon == 0.2
    assert method_settings("pgd", objective=ATCL).epsilon == 0.1  # only FGM is overridden


def test_carl_warmup_has_one_default_whichever_way_it_is_built():
    from advembed.objectives import CARL

    labels = [0, 1, 0, 1]
    built = build_objective("carl", tiny_model(), train_labels=labels, total_steps=30)
    direct = CARL(labels, dim=16, total_steps=30)
    assert built.warmup_steps == direct.warmup_steps == 10  # a third of 30 steps
    assert CARL(labels, dim=16, warmup=4).warmup_steps == 4  # >= 1: a number of steps
    with pytest.raises(AdvembedError, match="warm-up .* is a fraction of training"):
        CARL(labels, dim=16)


def test_generated_docs_are_up_to_date():
    """README's method and objective tables and docs/settings.md come from the settings
    classes (`python -m advembed.docs` rewrites them)."""
    from advembed.docs import generated

    for path, content in generated().items():
        assert path.read_text(encoding="utf-8") == content, (
            f"{path.name} is stale: run python -m advembed.docs")


class _Tokenizer:
    """Just what RAR and ATCL read from a tokenizer."""

    all_special_ids = [0, 1, 2, 3, 4]

    def __len__(self):
        return 6

    def convert_ids_to_tokens(self, ids):
        return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good"][: len(ids)]


@pytest.mark.parametrize(("command", "old", "new"), [
    ("attack", ["--epsilons", "0.1", "0.2", "--steps", "5", "--alpha-ratio", "0.25", "--norm",
                "linf"],
     ["--adv-epsilon", "0.1", "0.2", "--adv-steps", "5", "--adv-alpha-ratio", "0.25",
      "--adv-norm", "linf"]),
    ("attack", ["--epsilon", "0.05"], ["--adv-epsilon", "0.05"]),
    ("reconstruct", ["--epsilon", "0.2", "--alpha", "0.1", "--steps", "2"],
     ["--adv-epsilon", "0.2", "--adv-alpha", "0.1", "--adv-steps", "2"]),
])
def test_old_perturbation_flags_are_aliases_of_the_shared_group(command, old, new):
    from advembed.cli.options import chosen
    from advembed.evaluation.settings import (
        PGDAttackSettings,
        ReconstructSettings,
        VulnerabilitySettings,
    )

    base = [command, "--run", "r"] + (["--attack", "pgd"] if command == "attack" else [])
    parser = build_parser()
    classes = ([ReconstructSettings] if command == "reconstruct"
               else [PGDAttackSettings, VulnerabilitySettings])
    for cls in classes:
        if cls is VulnerabilitySettings and len(old) > 2:
            continue
        assert chosen(parser.parse_args(base + old), cls) == \
            chosen(parser.parse_args(base + new), cls) != {}


def test_the_robust_preset_is_sized_to_the_models_embeddings(tmp_path, tiny_model_dir):
    """FreeLB++: its step and random start are multiples of the mean word-embedding norm, so
    a model with embeddings twice as large gets twice the budget; flags given override it."""
    from advembed.methods.presets import PRESETS, embedding_norm, preset_options

    model = tiny_model()
    norm = embedding_norm(model)
    rows = model.get_input_embeddings().weight.detach()
    assert norm == pytest.approx(float(rows.norm(dim=-1).mean()))
    method, options, used = preset_options("robust", model)
    assert method == "freelb" and used == norm
    assert options["alpha"] == pytest.approx(PRESETS["robust"].relative["alpha"] * norm, rel=1e-5)
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(2.0)
    _, doubled, _ = preset_options("robust", model)
    assert doubled["alpha"] == pytest.approx(2 * options["alpha"], rel=1e-5)
    assert doubled["steps"] == options["steps"] == 10 and doubled["clean_pass"] is True
    args = build_parser().parse_args(["train", "--preset", "robust", "--adv-steps", "4"])
    config = config_from_args(args)
    assert config.output_dir().name.startswith("mr-robust-") and config.method_options == {
        "steps": 4}
    from advembed.training.run import apply_preset

    sized = apply_preset(config, model)  # the flag given beats the preset's value
    assert sized.method == "freelb" and sized.method_options["steps"] == 4
    assert sized.method_options["alpha"] == pytest.approx(doubled["alpha"], rel=1e-5)
    for method in ("none", "fgm"):  # a method given is the user's, not the preset's to change
        args = build_parser().parse_args(["train", "--preset", "robust", "--method", method])
        with pytest.raises(AdvembedError, match=f"--preset robust trains with --method freelb, "
                                                f"not {method}"):
            config_from_args(args)
