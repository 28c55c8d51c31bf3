"""The search behind ``--preset robust``: FreeLB++ sizes picked by robustness, not by clean
accuracy (issue 12).

Every grid point is a FreeLB run on the dataset's training split (one seed); the score is its
accuracy under PWWS on a fixed, seeded sample of the **dev** split, with the logits also divided
by 100 and 1/100 (the lowest of the three), subject to clean dev accuracy no lower than plain
fine-tuning's minus ``--max-drop``.  The test split is not used for selection (each run scores
it, as ``advembed train`` does, but only dev figures are read).  Step size and random start
are multiples of the model's mean word-embedding norm (as the preset declares them).

    python benchmarks/search_robust.py --dataset mr --jobs 4 --out docs/search-robust.md

Writes the table to ``--out`` (the committed one: ``docs/search-robust.md``) and every point
with the choice beside it as JSON (same name, ``.json``), only when ``--out`` is given and whole
or not at all; the table is always printed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality  # noqa: E402
from attack_table import attack_summary  # noqa: E402
from summary_stats import write_atomic  # noqa: E402

GRID = {"steps": (5, 10, 20), "alpha": (0.028, 0.056, 0.112), "init_mag": (0.047,),
        "warmup_steps": (0, 50)}
"""``alpha`` and ``init_mag`` as multiples of the embedding norm (0.028 ≈ FreeLB's 0.03 on the
default MiniLM); FreeLB++ keeps the clean loss and no norm bound."""


def points(grid: dict) -> list[dict]:
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def absolute(point: dict, norm: float) -> dict:
    return point | {"alpha": point["alpha"] * norm, "init_mag": point["init_mag"] * norm,
                    "epsilon": 0.0, "clean_pass": True}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    quality.add_search_arguments(parser)
    parser.add_argument("--sample", type=int, default=200, help="dev examples PWWS attacks")
    parser.add_argument("--max-drop", type=float, default=0.01,
                        help="largest clean dev accuracy drop from plain fine-tuning")
    parser.add_argument("--attack-workers", type=int, default=1)
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "search-robust")
    parser.add_argument("--out", type=Path,
                        help="write the table here and the points beside it as .json (the "
                             "committed ones: docs/search-robust.md/.json); else only printed")
    parser.add_argument("--text-column", help="for a CSV/TSV/JSONL --dataset")
    for key, values in GRID.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=float, nargs="+",
                            default=list(values), help=f"grid values (default {values})")
    args = parser.parse_args()
    grid = {key: [int(v) if key in ("steps", "warmup_steps") else v
                  for v in getattr(args, key)] for key in GRID}
    args.rerun, args.objective_options = False, {}
    args.runs_dir.mkdir(parents=True, exist_ok=True)

    from advembed.methods.presets import embedding_norm
    from advembed.models import load_classifier

    norm = embedding_norm(load_classifier(args.model, ["a", "b"]).model)
    grid = [("none", {})] + [("freelb", point) for point in points(grid)]

    def run(item):
        method, point = item
        local = argparse.Namespace(**vars(args))
        tag = "plain" if method == "none" else "-".join(f"{k}{v:g}" for k, v in point.items())
        local.runs_dir = args.runs_dir / tag
        local.runs_dir.mkdir(parents=True, exist_ok=True)
        options = absolute(point, norm) if method == "freelb" else {}
        quality.run_one(local, args.dataset, method, args.seed, options)
        folder = local.runs_dir / quality.run_name(args.dataset, method, args.seed)
        metrics = folder / "metrics.json"
        if not metrics.is_file():
            return tag, point, None, None
        quality.check_reused(args, folder)
        dev = json.loads(metrics.read_text())["best_dev"]["accuracy"]
        summary = attack_summary(folder, "pwws", args.sample, args.attack_workers, split="dev")
        check_sample(folder, summary, args.sample)
        return tag, point, dev, summary

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(run, grid))
    write(rows, norm, args)
    return 0


def check_sample(folder: Path, summary: dict | None, sample: int) -> None:
    """A reused dev attack summary must cover this search's sample (not a smoke test's)."""
    if summary is None:
        return
    sizes = json.loads((folder / "config.json").read_text()).get("split_sizes") or {}
    expected = min(sample, sizes.get("dev", sample))
    if summary.get("examples") != expected:
        raise SystemExit(f"{folder}: its dev PWWS summary attacked {summary.get('examples')} "
                         f"examples, not this search's {expected}: delete "
                         "attack-pwws-dev.json to attack it again")


def write(rows, norm: float, args) -> None:
    plain = next(dev for tag, _, dev, _ in rows if tag == "plain")
    if plain is None:  # no floor to apply: every point would pass it
        raise SystemExit("search_robust.py: plain fine-tuning has no dev accuracy (its run "
                         f"failed: see its log under {args.runs_dir}/plain); nothing written")
    floor = plain - args.max_drop
    scored = [(tag, point, dev, attack["attack_accuracy"], attack["attack_accuracy_rescaled"])
              for tag, point, dev, attack in rows if dev is not None and attack]
    if not any(row[0] != "plain" for row in scored):
        raise SystemExit("search_robust.py: no grid point finished training and its attack "
                         f"(see the logs under {args.runs_dir}); nothing written")
    eligible = [row for row in scored if row[0] != "plain" and row[2] >= floor]
    best = max(eligible, key=lambda row: (row[4], row[2]), default=None)
    lines = ["# The search behind `--preset robust`", "",
             f"Generated by `python benchmarks/search_robust.py {' '.join(sys.argv[1:])}`; "
             "do not edit by hand.", "",
             f"`{args.dataset}` dev only; seed {args.seed}; PWWS on {args.sample} dev examples "
             f"(seed 0); embedding norm {norm:.4f}; clean dev floor {floor:.4f} (plain "
             f"{plain} − {args.max_drop}).", "",
             "| point | clean dev | PWWS dev | PWWS dev, rescaled (lowest) | eligible |",
             "|---|---|---|---|---|"]
    for tag, _, dev, acc, rescaled in scored:
        ok = "plain" if tag == "plain" else ("yes" if dev >= floor else "no")
        lines.append(f"| {tag} | {dev:.4f} | {acc:.4f} | {rescaled:.4f} | {ok} |")
    lines += ["", f"Chosen: `{best[0]}`." if best else "No point met the clean-accuracy floor."]
    if args.out:
        write_atomic(args.out, "\n".join(lines) + "\n")
        write_atomic(args.out.with_suffix(".json"), json.dumps(
            {"embedding_norm": norm, "plain_dev": plain, "rows": scored,
             "chosen": best[1] if best else None}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
