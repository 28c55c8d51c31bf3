"""FreeAT's minibatch replay in the Trainer, and skipping into the middle of it on resume."""

from __future__ import annotations

import transformers.trainer as hf_trainer


class ReplayLoader:
    """Yield every batch of ``loader`` ``replays`` times in a row (FreeAT's minibatch replay).

    The Trainer steps the optimiser after each yielded batch, so each replay gets its own
    parameter update, and an epoch counts ``replays × len(loader)`` steps.
    """

    def __init__(self, loader, replays: int, first: int | None = None) -> None:
        self.loader = loader
        self.replays = replays
        self.first = replays if first is None else first  # replays left of the first batch

    def __len__(self) -> int:
        return len(self.loader) * self.replays - (self.replays - self.first)

    def __iter__(self):
        for index, batch in enumerate(self.loader):
            for _ in range(self.first if index == 0 else self.replays):
                yield batch

    def skipping(self, steps: int) -> ReplayLoader:
        """This loader without its first ``steps`` yielded batches."""
        whole, partial = divmod(steps, self.replays)
        inner = _accelerate_skip(self.loader, whole) if whole else self.loader
        return ReplayLoader(inner, self.replays, self.replays - partial)

    def __getattr__(self, name: str):
        return getattr(self.loader, name)


_accelerate_skip = hf_trainer.skip_first_batches


def skip_first_batches(dataloader, num_batches: int = 0):
    """accelerate's ``skip_first_batches``, aware of :class:`ReplayLoader`: a resumed FreeAT run
    skips whole replayed minibatches, and replays a partly replayed one only for its remaining
    replays.  (Installed in ``transformers.trainer``, which calls this name when it resumes.)"""
    if isinstance(dataloader, ReplayLoader):
        return dataloader.skipping(num_batches)
    return _accelerate_skip(dataloader, num_batches)


hf_trainer.skip_first_batches = skip_first_batches
