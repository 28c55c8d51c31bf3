"""Training state on disk without pickle: tensors in safetensors, everything else in JSON.

:func:`save_state` writes ``NAME.safetensors`` (every tensor, flattened) and ``NAME.json``
(the rest, with a reference where each tensor was), each atomically; :func:`load_state` reads
them back into the same structure.  It covers what a checkpoint holds: optimizer and scheduler
state dicts (integer keys), RNG states (Python tuples, NumPy arrays, torch byte tensors) and a
method's own state (tensors, generators' states, counters).  Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from advembed.errors import AdvembedError

_TENSOR, _TUPLE, _ARRAY, _ITEMS = "__tensor__", "__tuple__", "__ndarray__", "__items__"


def encode(value: Any, tensors: dict[str, torch.Tensor], path: str = "") -> Any:
    """``value`` as JSON-ready data; its tensors are moved into ``tensors`` by path."""
    if torch.is_tensor(value):
        key = path or "value"
        tensors[key] = value.detach().cpu().contiguous()
        return {_TENSOR: key}
    if isinstance(value, np.ndarray):
        return {_ARRAY: value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {_TUPLE: [encode(v, tensors, f"{path}/{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode(v, tensors, f"{path}/{i}") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: encode(v, tensors, f"{path}/{k}") for k, v in value.items()}
        return {_ITEMS: [[encode(k, tensors, f"{path}/k{i}"), encode(v, tensors, f"{path}/{i}")]
                         for i, (k, v) in enumerate(value.items())]}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in a checkpoint")


def decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(value, list):
        return [decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if _TENSOR in value:
        return tensors[value[_TENSOR]]
    if _TUPLE in value:
        return tuple(decode(v, tensors) for v in value[_TUPLE])
    if _ARRAY in value:
        return np.array(value[_ARRAY], dtype=value["dtype"])
    if _ITEMS in value:
        return {decode(k, tensors): decode(v, tensors) for k, v in value[_ITEMS]}
    return {k: decode(v, tensors) for k, v in value.items()}


def save_state(folder: Path, name: str, state: Any) -> None:
    """Write ``state`` as ``folder/NAME.safetensors`` + ``folder/NAME.json`` (atomically)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    tensors: dict[str, torch.Tensor] = {}
    payload = encode(state, tensors)
    if tensors:
        tmp = folder / f".{name}.safetensors.tmp"
        save_file(tensors, str(tmp))
        os.replace(tmp, folder / f"{name}.safetensors")
    tmp = folder / f".{name}.json.tmp"
    tmp.write_text(json.dumps(payload), encoding="utf-8")
    os.replace(tmp, folder / f"{name}.json")


def load_state(folder: Path, name: str) -> Any:
    """Read what :func:`save_state` wrote; a missing or corrupt file is a one-line error."""
    from safetensors import SafetensorError  # a damaged header of the right size
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        payload = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        weights = folder / f"{name}.safetensors"
        tensors = load_file(str(weights)) if weights.is_file() else {}
        return decode(payload, tensors)
    except (OSError, ValueError, KeyError, SafetensorError) as exc:
        raise AdvembedError(f"checkpoint file {folder / name}.* cannot be read "
                            f"({type(exc).__name__}: {str(exc)[:120]})") from None


def read_json_object(path: Path, what: str, remedy: str) -> dict[str, Any]:
    """The JSON object in ``path``; one line naming ``what`` and ``path`` and saying the
    ``remedy`` when it cannot be read, is not JSON, or holds another JSON value."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError included
        raise AdvembedError(f"{what} '{path}' cannot be read ({exc}); {remedy}") from None
    if not isinstance(value, dict):
        raise AdvembedError(f"{what} '{path}' holds no JSON object; {remedy}")
    return value
