"""Issue 13's comparison (paper 003 Table 2): plain, VDA, FreeLB, FreeLB+VDA, SMART, SMART+VDA.

For every finished run ``RUNS_DIR/DATASET-METHOD-sSEED`` (trained by ``benchmarks/quality.py
--methods none vda freelb freelb+vda smart smart+vda``), the word attacks PWWS and BERT-Attack
(with the MLM ``advembed mlm build`` made) on a seeded sample of the test split (1000 examples
as in the paper, the whole split where smaller) are run if their summaries are missing; then
every run's clean test accuracy and accuracy under each attack — the headline, the lowest over
the logit temperatures the attacker tries — go into ``benchmarks/results/vda/summary.json``
(one row per run) and a mean ± std table into ``--out``.

    python benchmarks/vda_table.py --runs-dir runs/vda --datasets mr cr --seeds 13 14 15
    python benchmarks/vda_table.py --runs-dir runs/vda --no-attack     # tables only
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from summary_stats import mean_std, paired_points, write_atomic  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["none", "vda", "freelb", "freelb+vda", "smart", "smart+vda"]
ATTACKS = {"pwws": "pwws_attack_acc", "bert-attack": "bert_attack_acc"}


def attack(run: Path, recipe: str, n_examples: int, workers: int) -> None:
    command = [sys.executable, "-m", "advembed.cli", "attack", "--run", str(run), "--attack",
               recipe, "--n-examples", str(n_examples), "--workers", str(workers),
               "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{recipe} on {run} failed: {done.stderr.strip().splitlines()[-1]}")


def row(run: Path, dataset: str, method: str, seed: int) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    out = {"dataset": dataset, "method": method, "seed": seed,
           "clean_test_acc": metrics["test"]["accuracy"],
           "train_seconds": metrics["train"]["seconds"]}
    for recipe, key in ATTACKS.items():
        path = run / f"attack-{recipe}.json"
        summary = json.loads(path.read_text()) if path.is_file() else None
        out[key] = summary.get("attack_accuracy_rescaled", summary["attack_accuracy"]) if (
            summary) else None
        if summary:
            out[f"{key}_t1"] = summary["attack_accuracy"]
            out[f"{recipe}_examples"] = summary["examples"]
            out[f"{recipe}_mean_queries"] = summary["mean_queries"]
            out[f"{recipe}_perturbed_percent"] = summary["mean_perturbed_percent"]
    return out


def table(rows: list[dict], machine: str) -> str:
    lines = ["# VDA against plain, FreeLB and SMART (issue 13; paper 003 Table 2)", "",
             f"Written by `benchmarks/vda_table.py` from the runs' own files; machine: {machine}. "
             "Accuracy under attack is the lowest over the logit temperatures the attacker "
             "tries (1, 100, 0.01).", "",
             "| dataset | method | seeds | clean test acc | PWWS acc under attack | "
             "BERT-Attack acc under attack | train s |",
             "|---|---|---|---|---|---|---|"]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        for method in METHODS:
            group = [r for r in rows if r["dataset"] == dataset and r["method"] == method]
            if not group:
                continue
            lines.append(
                f"| {dataset} | {method} | {len(group)} | "
                f"{mean_std([r['clean_test_acc'] for r in group])} | "
                f"{mean_std([r['pwws_attack_acc'] for r in group])} | "
                f"{mean_std([r['bert_attack_acc'] for r in group])} | "
                f"{statistics.mean(r['train_seconds'] for r in group):.0f} |")
    return "\n".join(lines + gains(rows)) + "\n"


def paired(rows: list[dict], dataset: str, method: str, key: str) -> list[float]:
    """Per-seed differences ``method`` − plain in points, over seeds where both have ``key``."""
    def by_seed(name):
        return {r["seed"]: r[key] for r in rows if r["dataset"] == dataset
                and r["method"] == name and r.get(key) is not None}

    return paired_points(by_seed(method), by_seed("none"))


def gains(rows: list[dict]) -> list[str]:
    """The table of gains over plain training paired by seed (the two runs of a seed start
    from the same initial head), as ``vaa_table.py`` gives VAA's."""
    lines = ["", "Gains over plain (`none`) of the same seed, in accuracy points, mean ± std "
             "over the seeds where both runs have the figure:", "",
             "| dataset | method | Δ clean test | Δ PWWS | Δ BERT-Attack |",
             "|---|---|---|---|---|"]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        for method in METHODS[1:]:
            cells = [paired(rows, dataset, method, key) for key in
                     ("clean_test_acc", "pwws_attack_acc", "bert_attack_acc")]
            if any(cells):
                lines.append(f"| {dataset} | {method} | "
                             + " | ".join(mean_std(c, digits=2) for c in cells) + " |")
    return lines if len(lines) > 5 else []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, required=True)
    parser.add_argument("--datasets", nargs="+", default=["mr", "cr"])
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15])
    parser.add_argument("--n-examples", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-attack", action="store_true", help="only collect and write")
    parser.add_argument("--machine", default="this machine")
    parser.add_argument("--summary", type=Path,
                        help="write the rows as JSON to this file (the committed one: "
                             "benchmarks/results/vda/summary.json); not written without it")
    parser.add_argument("--out", type=Path,
                        help="write the table to this file (the committed one: "
                             "docs/results-vda.md); without it the table is only printed, so a "
                             "run for a few datasets or methods never overwrites another table")
    args = parser.parse_args()
    rows = []
    for dataset in args.datasets:
        for method in args.methods:
            for seed in args.seeds:
                run = args.runs_dir / f"{dataset}-{method}-s{seed}"
                if not (run / "metrics.json").is_file():
                    continue
                for recipe in ATTACKS:
                    if not args.no_attack and not (run / f"attack-{recipe}.json").is_file():
                        attack(run, recipe, args.n_examples, args.workers)
                rows.append(row(run, dataset, method, seed))
    if not rows:
        sys.exit(f"no finished runs under {args.runs_dir}")
    text = table(rows, args.machine)
    if args.summary:
        write_atomic(args.summary, json.dumps(rows, indent=2) + "\n")
    if args.out:
        write_atomic(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
