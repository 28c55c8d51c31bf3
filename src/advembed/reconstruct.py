"""RAR as a generator of text adversarial samples (paper 001, Table 6).

Dev sentences are attacked in embedding space with k-PGD against the gold label; the RAR
reconstructor (trained with ``--objective rar``) decodes the adversarial token states back to
tokens by argmax; the decoded text is re-scored by the model, and each sample records whether
its prediction flipped.  Special tokens and padding keep their original ids.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from transformers import DataCollatorWithPadding

from advembed.adapter import EmbeddingAdapter
from advembed.adversaries import PGD
from advembed.errors import AdvembedError
from advembed.objectives import RECONSTRUCTOR_NAME, Reconstructor, real_token_mask
from advembed.runs import MODEL_DIR, read_run


def load_reconstructor(model, model_dir: Path) -> Reconstructor:
    """The reconstructor saved beside the model (keys ``advembed_reconstructor.*``)."""
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
                                  embeddings.num_embeddings)
    reconstructor.load_state_dict(state)
    return reconstructor


def reconstruct_run(
    run: Path,
    *,
    dataset: str | None = None,
    split: str = "dev",
    n_examples: int = 200,
    epsilon: float = 0.1,
    alpha: float = 0.05,
    steps: int = 3,
    batch_size: int = 32,
    out: Path | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Attack, decode and re-score; write ``reconstruct-SPLIT.jsonl`` and return a summary."""
    from advembed.attack import sample_examples
    from advembed.encoding import EncodedDataset
    from advembed.inference import predict_logits
    from advembed.models import load_saved_classifier
    from advembed.train import run_split

    config, _ = read_run(run)
    loaded = load_saved_classifier(Path(run) / MODEL_DIR)
    model, tokenizer = loaded.model, loaded.tokenizer
    reconstructor = load_reconstructor(model, Path(run) / MODEL_DIR)
    examples = run_split(config, split, dataset=dataset)
    chosen = sample_examples(examples, n_examples, seed)
    max_length = config.get("max_length", 128)
    encoded = EncodedDataset(chosen, tokenizer, max_length=max_length)
    collate = DataCollatorWithPadding(tokenizer)
    adapter = EmbeddingAdapter(model)
    adversary = PGD(epsilon=epsilon, alpha=alpha, steps=steps)
    special = set(tokenizer.all_special_ids)
    model.eval()
    started = time.perf_counter()
    decoded: list[str] = []
    changed_fraction: list[float] = []
    for start in range(0, len(encoded), batch_size):
        batch = collate([encoded[i] for i in range(start, min(start + batch_size, len(encoded)))])
        with torch.no_grad():
            embeds = adapter.embed(batch)
        mask = adapter.mask(batch, embeds)
        delta = adversary.find(lambda d, b=batch: adapter.forward(b, d).loss, embeds, mask)
        with torch.no_grad():
            states = adapter.forward(batch, delta, output_hidden_states=True).hidden_states[-1]
            predicted = reconstructor(states, model.get_input_embeddings().weight).argmax(-1)
        real = real_token_mask(batch, special)
        ids = torch.where(real, predicted, batch["input_ids"])
        for row in range(ids.shape[0]):
            keep = batch["attention_mask"][row].bool() & real[row]
            changed = (ids[row][keep] != batch["input_ids"][row][keep]).float()
            changed_fraction.append(changed.mean().item() if changed.numel() else 0.0)
            decoded.append(_decode_first_segment(tokenizer, ids[row], batch, row))
    from advembed.data import Example

    rebuilt = [Example(text=text, label=e.label, text_pair=e.text_pair)
               for text, e in zip(decoded, chosen, strict=True)]
    before = predict_logits(model, tokenizer, chosen, max_length=max_length).argmax(-1)
    after = predict_logits(model, tokenizer, rebuilt, max_length=max_length).argmax(-1)
    names = config["label_names"]
    records = []
    for i, example in enumerate(chosen):
        records.append({
            "original": example.text,
            "reconstructed": decoded[i],
            "label": names[example.label],
            "original_prediction": names[int(before[i])],
            "reconstructed_prediction": names[int(after[i])],
            "flipped": bool(before[i] != after[i]),
            # A text-form adversarial sample (Table 6): the original is classified correctly and
            # the decoded text is not.
            "adversarial": bool(before[i] == example.label and after[i] != example.label),
            "changed_tokens": round(changed_fraction[i], 4),
        })
    out = Path(out) if out else Path(run) / f"reconstruct-{split}.jsonl"
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    os.replace(tmp, out)
    flips = sum(r["flipped"] for r in records)
    return {
        "examples": len(records),
        "flipped": flips,
        "flip_rate": flips / len(records),
        "originally_correct": int((before == torch.tensor([e.label for e in chosen])).sum()),
        "adversarial": sum(r["adversarial"] for r in records),
        "mean_changed_tokens": sum(changed_fraction) / len(changed_fraction),
        "seconds": round(time.perf_counter() - started, 2),
        "out": str(out),
        "epsilon": epsilon, "alpha": alpha, "steps": steps,
    }


def _decode_first_segment(tokenizer, ids: torch.Tensor, batch, row: int) -> str:
    """Decode the first sentence of the row (for pairs, the second keeps its original text)."""
    attention = batch["attention_mask"][row].bool()
    types = batch.get("token_type_ids")
    keep = attention if types is None else attention & (types[row] == 0)
    return tokenizer.decode(ids[keep].tolist(), skip_special_tokens=True).strip()
