"""What objectives share across processes under DDP (``torch.distributed``), and nothing
when training runs in one process."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def launched_processes() -> int:
    """The processes this run was launched with (``torchrun``/``accelerate launch`` set
    ``WORLD_SIZE``), known before the process group exists; 1 for a plain run."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return max(1, int(os.environ.get("WORLD_SIZE", "1")))


def process_rank() -> int:
    """This process's rank (``torchrun`` sets ``RANK`` before the process group exists); 0
    for a plain run.  Objectives add it to their seed, so that each process draws its own
    words and negatives rather than the same ones as every other."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def any_process(flag: bool, device: torch.device | str | None = None) -> bool:
    """Whether ``flag`` holds on any process (one process: ``flag``): a decision every
    replica must take alike, such as skipping an optimiser step."""
    if world_size() == 1:
        return flag
    value = torch.tensor(int(flag), device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """The rows of ``tensor`` from every process, concatenated in rank order (detached; rows
    may differ in number between processes).  One process: ``tensor`` itself."""
    if world_size() == 1:
        return tensor.detach()
    tensor = tensor.detach().contiguous()
    sizes = [torch.zeros(1, dtype=torch.long, device=tensor.device)
             for _ in range(world_size())]
    dist.all_gather(sizes, torch.tensor([tensor.shape[0]], device=tensor.device))
    longest = int(max(size.item() for size in sizes))
    padded = torch.zeros((longest, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in range(world_size())]
    dist.all_gather(parts, padded)
    return torch.cat([part[: int(size.item())] for part, size in zip(parts, sizes, strict=True)])


def logsumexp_and_count(values: torch.Tensor) -> tuple[float, int]:
    """``(log Σ exp v, number of v)`` over ``values`` of every process."""
    flat = values.detach().flatten().float()
    local = torch.logsumexp(flat, 0).reshape(1)
    if world_size() == 1:
        return float(local), flat.numel()
    every = gather_rows(local)
    counts = gather_rows(torch.tensor([flat.numel()], device=flat.device))
    return float(torch.logsumexp(every, 0)), int(counts.sum())
