"""RAR as a generator of text adversarial samples (paper 001, Table 6).

Dev sentences are attacked in embedding space with k-PGD against the gold label; the RAR
reconstructor (trained with ``--objective rar``) decodes the adversarial token states back to
tokens by argmax; the decoded text is re-scored by the model, and each sample records whether
its prediction flipped.  Special tokens and padding keep their original ids.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from advembed.adapter import EmbeddingAdapter
from advembed.adversaries import PGD
from advembed.data.options import DataOptions
from advembed.errors import AdvembedError
from advembed.evaluation.loop import device_of, encoded_batches, eval_mode, to_device
from advembed.evaluation.runs import (
    load_run_model,
    read_checked_run,
    run_split,
    run_task,
    sample_examples,
)
from advembed.evaluation.settings import ReconstructSampleSettings, ReconstructSettings
from advembed.objectives.base import input_token_states
from advembed.objectives.rar import (
    RECONSTRUCTOR_NAME,
    Reconstructor,
    real_token_mask,
    recorded_head,
)
from advembed.runs import MODEL_DIR, check_output_file, write_jsonl


def load_reconstructor(model, model_dir: Path, order: str = "listed") -> Reconstructor:
    """The reconstructor saved beside the model (keys ``advembed_reconstructor.*``), of the
    layer order it trained with (:func:`~advembed.objectives.rar.recorded_head`)."""
    from safetensors import safe_open

    weights = model_dir / "model.safetensors"
    prefix = RECONSTRUCTOR_NAME + "."
    state = {}
    if weights.is_file():
        with safe_open(str(weights), "pt") as handle:
            for key in handle.keys():
                if key.startswith(prefix):
                    state[key[len(prefix):]] = handle.get_tensor(key)
    if not state:
        raise AdvembedError(
            f"run '{model_dir.parent}' has no RAR reconstructor: train it with --objective rar"
        )
    embeddings = model.get_input_embeddings()
    reconstructor = Reconstructor(model.config.hidden_size, embeddings.embedding_dim,
                                  embeddings.num_embeddings, order)
    reconstructor.load_state_dict(state)
    return reconstructor.to(embeddings.weight.device)


def decode_adversarial(model, tokenizer, reconstructor, batches, settings: ReconstructSettings):
    """``(decoded first segments, share of changed tokens)`` per example of ``batches``."""
    adapter = EmbeddingAdapter(model)
    adversary = PGD(epsilon=settings.epsilon, alpha=settings.step_size(settings.epsilon),
                    steps=settings.steps, norm=settings.norm)
    special = set(tokenizer.all_special_ids)
    decoded: list[str] = []
    changed_fraction: list[float] = []
    device = device_of(model)
    for batch in batches:
        batch = to_device(batch, device)
        with torch.no_grad():
            embeds = adapter.embed(batch)
        mask = adapter.mask(batch, embeds)
        delta = adversary.find(lambda d, b=batch: adapter.forward(b, d).loss, embeds, mask)
        with torch.no_grad():
            states = input_token_states(adapter.forward(batch, delta, output_hidden_states=True))
            predicted = reconstructor(states, model.get_input_embeddings().weight).argmax(-1)
        real = real_token_mask(batch, special)
        ids = torch.where(real, predicted, batch["input_ids"])
        for row in range(ids.shape[0]):
            keep = batch["attention_mask"][row].bool() & real[row]
            changed = (ids[row][keep] != batch["input_ids"][row][keep]).float()
            changed_fraction.append(changed.mean().item() if changed.numel() else 0.0)
            decoded.append(_decode_first_segment(tokenizer, ids[row], batch, row))
    return decoded, changed_fraction


def reconstruct_run(run: Path, *, data: DataOptions | None = None,
                    settings: ReconstructSettings | None = None,
                    sample: ReconstructSampleSettings | None = None, out: Path | None = None,
                    **sample_options: Any) -> dict[str, Any]:
    """Attack, decode and re-score; write ``reconstruct-SPLIT.jsonl`` and return a summary."""
    from advembed.data import Example
    from advembed.inference import predict_logits

    settings = settings or ReconstructSettings()
    sample = ReconstructSampleSettings.from_options(sample_options, sample)
    if out is not None:
        check_output_file(out, "--out", replaces="reconstructed")
    config = read_checked_run(run)
    if config.get("task", "classification") not in ("classification", "qa-matching"):
        raise AdvembedError(f"run '{run}' is a {config['task']} run: `advembed reconstruct` "
                            "re-scores the decoded text with a classifier")
    loaded = load_run_model(run, config)
    model, tokenizer = loaded.model, loaded.tokenizer
    reconstructor = load_reconstructor(model, Path(run) / MODEL_DIR, recorded_head(config))
    chosen = sample_examples(run_split(config, sample.split, data), sample.n_examples,
                             sample.seed)
    max_length = config.get("max_length", 128)
    batches = encoded_batches(run_task(config), chosen, tokenizer, batch_size=sample.batch_size,
                              max_length=max_length)
    started = time.perf_counter()
    with eval_mode(model):
        decoded, changed = decode_adversarial(model, tokenizer, reconstructor, batches, settings)
    rebuilt = [Example(text=text, label=e.label, text_pair=e.text_pair)
               for text, e in zip(decoded, chosen, strict=True)]
    before = predict_logits(model, tokenizer, chosen, max_length=max_length).argmax(-1)
    after = predict_logits(model, tokenizer, rebuilt, max_length=max_length).argmax(-1)
    records = _records(chosen, decoded, changed, before, after, config["label_names"])
    out = Path(out) if out else Path(run) / f"reconstruct-{sample.split}.jsonl"
    write_jsonl(out, records)
    flips = sum(r["flipped"] for r in records)
    return {
        "examples": len(records),
        "flipped": flips,
        "flip_rate": flips / len(records),
        "originally_correct": int((before == torch.tensor([e.label for e in chosen])).sum()),
        "adversarial": sum(r["adversarial"] for r in records),
        "mean_changed_tokens": sum(changed) / len(changed),
        "seconds": round(time.perf_counter() - started, 2),
        "out": str(out),
        "epsilon": settings.epsilon, "alpha": settings.step_size(settings.epsilon),
        "steps": settings.steps,
    }


def _records(chosen, decoded, changed, before, after, names) -> list[dict[str, Any]]:
    return [{
        "original": example.text,
        "reconstructed": decoded[i],
        "label": names[example.label],
        "original_prediction": names[int(before[i])],
        "reconstructed_prediction": names[int(after[i])],
        "flipped": bool(before[i] != after[i]),
        # A text-form adversarial sample (Table 6): the original is classified correctly and
        # the decoded text is not.
        "adversarial": bool(before[i] == example.label and after[i] != example.label),
        "changed_tokens": round(changed[i], 4),
    } for i, example in enumerate(chosen)]


def _decode_first_segment(tokenizer, ids: torch.Tensor, batch, row: int) -> str:
    """Decode the first sentence of the row (for pairs, the second keeps its original text).
    The structural tokens ([CLS], [SEP], padding) are dropped, an unknown word's ``[UNK]`` is
    kept: it stands for a word of the sentence (never reconstructed, it keeps its id), and
    dropping it would delete that word from the re-scored text."""
    attention = batch["attention_mask"][row].bool()
    types = batch.get("token_type_ids")
    keep = attention if types is None else attention & (types[row] == 0)
    structural = sorted(set(tokenizer.all_special_ids) - {tokenizer.unk_token_id})
    keep = keep & ~torch.isin(ids, torch.tensor(structural, dtype=ids.dtype, device=ids.device))
    return tokenizer.decode(ids[keep].tolist(), skip_special_tokens=False).strip()
