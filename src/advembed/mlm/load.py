"""Find and load a masked LM: the one ``advembed mlm build`` made, a folder, or a hub name."""

from __future__ import annotations

from pathlib import Path

from advembed.errors import AdvembedError
from advembed.state_io import read_json_object

DEFAULT_MLM = "default"
"""The MLM ``advembed mlm build`` wrote under the cache (for the packaged MiniLM's vocabulary)."""


def built_mlm_dir() -> Path:
    """Where ``advembed mlm build`` keeps the finished model (``$ADVEMBED_CACHE/mlm/minilm``)."""
    from advembed.provider import cache_dir

    return cache_dir() / "mlm" / "minilm"


def resolve_mlm(spec: str) -> str:
    """``default`` → the built MLM (a one-line error saying how to build it when absent);
    anything else as ``--model`` resolves it (folder or hub name)."""
    from advembed.models import resolve_model

    if spec == DEFAULT_MLM:
        path = built_mlm_dir()
        if not (path / "config.json").is_file():
            raise AdvembedError(f"the default masked LM is not built yet ({path} is empty): run "
                                "`advembed mlm build` once, or name one with --mlm / --vda-mlm")
        return str(path)
    return resolve_model(spec)


def mlm_weights_sha256(spec: str) -> str | None:
    """The SHA-256 of a local masked LM's weights (for a built one, as its ``mlm_metrics.json``
    records it), so that an attack's summary says which build proposed its candidates — the
    default MLM changes when it is rebuilt; ``None`` for a hub name or an unresolvable spec."""
    try:
        path = Path(resolve_mlm(spec))
    except AdvembedError:
        return None
    recorded = _read_metrics(path).get("weights_sha256")
    if recorded:
        return recorded
    if (path / "model.safetensors").is_file():
        from advembed.provider import sha256_of

        return sha256_of(path / "model.safetensors")
    return None


def load_masked_lm(spec: str, flag: str = "--mlm"):
    """A masked LM (eval mode) and its tokenizer; refuse one whose MLM head is untrained.
    ``flag`` is the option that named ``spec``, for the one-line errors."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    path = resolve_mlm(spec)
    _check_built(Path(path))
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model, info = AutoModelForMaskedLM.from_pretrained(path, output_loading_info=True)
    except Exception as exc:  # noqa: BLE001 - a damaged tokenizer.json raises a bare Exception
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise AdvembedError(f"{flag}: cannot load masked LM '{spec}': {reason[:300]} (if "
                            "it is a built one, rebuild it with `advembed mlm build "
                            "--overwrite`)") from None
    if info.get("missing_keys"):
        raise AdvembedError(f"{flag}: masked LM '{spec}' has no trained masked-LM head (missing "
                            f"{info['missing_keys'][0]}, …): its candidates would be random")
    return model.eval(), tokenizer


def _check_built(path: Path) -> None:
    """For a built MLM (one with ``mlm_metrics.json``): its weights must be the ones the build
    recorded (else one line: replaced or damaged since), and one built from a corpus older
    than :data:`~advembed.mlm.corpus.CORPUS_VERSION` — which may have trained on near-copies
    of dev and test sentences (version 1: a quarter of mr's test sentences) — warns, with the
    command that rebuilds it."""
    import warnings

    from advembed.mlm.corpus import CORPUS_VERSION
    from advembed.provider import sha256_of

    metrics = _read_metrics(path)
    if not metrics:
        return
    weights = path / "model.safetensors"
    recorded = metrics.get("weights_sha256")
    if recorded and weights.is_file() and sha256_of(weights) != recorded:
        raise AdvembedError(f"the masked LM's weights in {weights} are not the ones its build "
                            f"recorded (sha256 {recorded[:12]}…): replaced or damaged since; "
                            "rebuild it with `advembed mlm build --overwrite`")
    version = metrics.get("corpus_version", 1)
    if version < CORPUS_VERSION:
        warnings.warn(f"the masked LM in {path} was built from corpus version {version}, which "
                      "held near-copies of dev and test sentences (a quarter of mr's test "
                      "sentences): rebuild it with `advembed mlm build --overwrite`",
                      stacklevel=2)


def check_mlm_split(spec: str, dataset: str | None, split_seed: int, flag: str) -> None:
    """A built MLM trained on the training splits of :data:`~advembed.mlm.corpus.DATASETS`
    drawn with one split seed (``mlm_metrics.json``'s ``split_seed``); under another the
    dev and test splits of those datasets (and of ``bbc-match``/``bbc-lm``) hold sentences it
    trained on, which the issue rules out: one line naming both seeds.  Another MLM, or
    another dataset, is not checked."""
    from advembed.mlm.corpus import ALSO_EVALUATED, DATASETS

    if dataset not in (*DATASETS, *ALSO_EVALUATED):
        return
    try:
        path = Path(resolve_mlm(spec))
    except AdvembedError:
        return  # not built: loading it says so
    recorded = _read_metrics(path).get("split_seed")
    if recorded is not None and recorded != split_seed:
        raise AdvembedError(
            f"{flag}: the masked LM in {path} trained on {dataset}'s (and the other named "
            f"datasets') training splits under --split-seed {recorded}; under --split-seed "
            f"{split_seed} their dev and test splits hold sentences it trained on: use "
            f"--split-seed {recorded}, or name another masked LM")


def _read_metrics(path: Path) -> dict:
    """A built MLM's ``mlm_metrics.json`` (``{}`` where there is none); a damaged one is one
    line naming the file, not a traceback."""
    metrics_file = path / "mlm_metrics.json"
    if not metrics_file.is_file():
        return {}
    return read_json_object(metrics_file, "the masked LM's metrics file",
                            "damaged since the build: rebuild it with "
                            "`advembed mlm build --overwrite`")
