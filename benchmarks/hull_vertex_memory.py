"""Peak memory of ASCC's vertex lookup with synonyms in pieces: advembed's slot-by-slot sum
(:func:`advembed.hull.vertex_embeddings`) against the all-at-once form that builds the
``(B, L, K, P, d)`` piece tensor, each measured with its backward in a fresh process (peak
resident memory rise, ``ru_maxrss``), on random ids of the given shape::

    python benchmarks/hull_vertex_memory.py                  # BERT-base-sized: d 768, V 30522
    python benchmarks/hull_vertex_memory.py --dim 384 --batch 32 --length 64

Prints both rises and their ratio, and whether the two forms give the same vertices.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

import torch

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))


def all_at_once(embedding, ids: torch.Tensor) -> torch.Tensor:
    """The reference: every piece's embedding at once, then the masked mean."""
    embeds = embedding(ids.clamp(min=0))
    present = (ids >= 0).unsqueeze(-1).to(embeds.dtype)
    return (embeds * present).sum(-2) / present.sum(-2).clamp(min=1)


def measure(form: str, shape: list[int], vocab: int, dim: int) -> dict:
    """One form's peak RSS rise (MiB) and a checksum of its vertices, in this process."""
    from advembed.hull import vertex_embeddings

    torch.manual_seed(0)
    embedding = torch.nn.Embedding(vocab, dim)
    ids = torch.randint(0, vocab, shape)
    ids[..., 1:][torch.rand(*shape[:-1], shape[-1] - 1) < 0.7] = -1  # most synonyms one piece
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    vertices = (vertex_embeddings if form == "slots" else all_at_once)(embedding, ids)
    vertices.sum().backward()
    rise = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return {"rise_mib": rise, "checksum": vertices.double().sum().item()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--entries", type=int, default=17, help="K: the word and 16 synonyms")
    parser.add_argument("--pieces", type=int, default=3)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--vocab", type=int, default=30522)
    parser.add_argument("--form", choices=("slots", "at-once"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = [args.batch, args.length, args.entries, args.pieces]
    if args.form:  # the child process: one measurement, as JSON
        print(json.dumps(measure(args.form, shape, args.vocab, args.dim)))
        return
    found = {}
    for form in ("at-once", "slots"):
        child = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--form", form],
                               capture_output=True, text=True, check=True)
        found[form] = json.loads(child.stdout.strip().splitlines()[-1])
    ratio = found["slots"]["rise_mib"] / found["at-once"]["rise_mib"]
    same = abs(found["slots"]["checksum"] - found["at-once"]["checksum"]) < 1e-3
    print(f"ids {tuple(shape)}, d {args.dim}: all at once +{found['at-once']['rise_mib']:.0f} "
          f"MiB, slot by slot +{found['slots']['rise_mib']:.0f} MiB (ratio {ratio:.2f}); "
          f"same vertices: {same}")


if __name__ == "__main__":
    main()
