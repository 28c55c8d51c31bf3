"""Batched classifier inference with dynamic padding (``eval``, ``predict``, attacks)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from transformers import DataCollatorWithPadding

from advembed.encoding import EncodedDataset
from advembed.modes import eval_mode


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module,
    tokenizer,
    examples: Sequence,
    *,
    batch_size: int = 64,
    max_length: int = 128,
    progress: bool = False,
) -> np.ndarray:
    """Logits of ``model`` on ``examples``, shape ``(len(examples), num_labels)``."""
    dataset = EncodedDataset(examples, tokenizer, max_length=max_length)
    collator = DataCollatorWithPadding(tokenizer)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collator)
    device = next(model.parameters()).device
    outputs = []
    if progress:
        from tqdm.auto import tqdm

        loader = tqdm(loader, desc="predict", unit="batch")
    with eval_mode(model):
        for batch in loader:
            batch.pop("labels", None)
            batch = {key: value.to(device) for key, value in batch.items()}
            outputs.append(model(**batch).logits.float().cpu())
    if not outputs:
        return np.zeros((0, model.config.num_labels), dtype=np.float32)
    return torch.cat(outputs).numpy()
