"""Word-substitution attacks over several processes.

The sample is cut into small chunks that ``workers`` processes (spawned, each with its own copy
of the run's model) attack independently; each example's attack issues exactly the queries it
would in one process, so the records are the same, only sooner.  Records reach ``on_record`` as
chunks finish (in any order; the caller sorts them by index).
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

_WORKER: dict[str, Any] = {}
CHUNK_LIMIT = 50
"""Most examples in one chunk: records are logged as chunks finish, so an interrupted attack
(``--resume``) loses at most ``workers × CHUNK_LIMIT`` examples' work (the running chunks:
:func:`gather` stops the workers at once) — not a quarter of a worker's share, which for
ADA's 8,452 training sentences would be about 1,000 each."""


def _start(run: str, max_length: int) -> None:
    """Per process: load the run's model once.  Ctrl-C reaches the whole process group: the
    workers ignore it, and the main process stops them (:func:`gather`)."""
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)

    from advembed.evaluation.runs import load_run_model, run_task
    from advembed.runs import read_run

    torch.set_num_threads(1)  # the processes share the cores
    config, _ = read_run(Path(run))
    loaded = load_run_model(Path(run), config)
    _WORKER.update(loaded=loaded, task=run_task(config), max_length=max_length)


def _attack_chunk(chunk: list[tuple[int, Any]], options, temperature: float):
    from advembed.evaluation.word_attack import run_word_attack

    loaded = _WORKER["loaded"]
    summary, records = run_word_attack(
        loaded.model, loaded.tokenizer, [example for _, example in chunk], options,
        max_length=_WORKER["max_length"], progress=False, task=_WORKER["task"],
        indices=[index for index, _ in chunk], temperature=temperature)
    return {key: summary[key] for key in ("model_calls", "inputs_scored")}, records


def chunked(items: list, workers: int) -> list[list]:
    """``items`` in order, cut into chunks of a quarter of a worker's share (so the workers
    finish together) but at most :data:`CHUNK_LIMIT`."""
    size = min(CHUNK_LIMIT, max(1, math.ceil(len(items) / (workers * 4))))
    return [items[start:start + size] for start in range(0, len(items), size)]


def gather(pool, function: Callable, arguments: Sequence[tuple],
           on_result: Callable[[Any], None]) -> None:
    """``function(*a)`` for each of ``arguments`` in ``pool``, ``on_result`` called with each
    result as it completes.  On an error, SIGTERM or Ctrl-C, the results that had finished
    are still handed over, the tasks not started are cancelled and the running workers
    stopped before the error is raised — leaving the pool's ``with`` would otherwise run every
    queued task to the end and throw their results away."""
    futures = [pool.submit(function, *args) for args in arguments]
    taken: set = set()
    try:
        for future in as_completed(futures):
            taken.add(future)
            on_result(future.result())
    except BaseException:
        for future in futures:
            if future not in taken and future.done() and not future.cancelled() \
                    and future.exception() is None:
                on_result(future.result())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        raise


def attack_in_processes(run: Path, examples: Sequence, indices: Sequence[int], options, *,
                        temperature: float, max_length: int, workers: int,
                        on_record: Callable[[dict], None] | None = None,
                        progress: bool = True) -> tuple[dict, list[dict]]:
    """``(query counts, records)`` of a word attack whose examples are shared by ``workers``
    processes."""
    from advembed.evaluation.loop import progress_bar

    pairs = list(zip(indices, examples, strict=True))
    chunks = chunked(pairs, workers)
    counts = {"model_calls": 0, "inputs_scored": 0}
    records: list[dict] = []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start,
                             initargs=(str(run), max_length)) as pool, \
            progress_bar(progress, total=len(pairs), unit="example",
                         desc=f"attack {options.attack} ×{workers}") as bar:
        def take(result) -> None:
            chunk_counts, chunk_records = result
            for key in counts:
                counts[key] += chunk_counts[key]
            for record in chunk_records:
                records.append(record)
                if on_record is not None:
                    on_record(record)
            bar.update(len(chunk_records))

        gather(pool, _attack_chunk, [(chunk, options, temperature) for chunk in chunks], take)
    return counts, sorted(records, key=lambda record: record["index"])
