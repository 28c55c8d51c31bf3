"""One evaluation loop: a task's examples as padded batches on the model's device, in
evaluation mode, with an optional progress bar."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch

from advembed.modes import eval_mode

__all__ = ["device_of", "encoded_batches", "eval_mode", "progress_bar", "to_device"]


def device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {key: value.to(device) if torch.is_tensor(value) else value
            for key, value in batch.items()}


def encoded_batches(task, examples: Sequence, tokenizer, *, batch_size: int,
                    max_length: int) -> list[dict[str, Any]]:
    """``examples`` encoded by ``task`` and collated into batches of ``batch_size``, in order
    (padded on the CPU; move each with :func:`to_device`)."""
    encoded = task.encode(examples, tokenizer, max_length=max_length)
    collate = task.collator(tokenizer)
    return [collate([encoded[i] for i in range(start, min(start + batch_size, len(encoded)))])
            for start in range(0, len(encoded), batch_size)]


class progress_bar:  # noqa: N801 - used like a function, a context manager
    """A tqdm bar when ``enabled``, else a silent stand-in with the same ``update``."""

    def __init__(self, enabled: bool, **tqdm_options: Any) -> None:
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(**tqdm_options)

    def update(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def set_postfix(self, **values: Any) -> None:
        if self.bar is not None:
            self.bar.set_postfix(**values)

    def __enter__(self) -> progress_bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def iterate(items: Iterable, bar: progress_bar) -> Iterator:
    """``items``, advancing ``bar`` by one after each."""
    for item in items:
        yield item
        bar.update(1)
