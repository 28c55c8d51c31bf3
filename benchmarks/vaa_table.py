"""Issue 16's comparison (paper 002 Table 3): plain against VAA, per model, dataset and seed.

For every (model, dataset, seed) three ``advembed train`` runs are made under ``--runs-dir``
(each skipped when it already finished, each in its own process, ``--jobs`` at a time):

* ``plain`` — model A, plain fine-tuning (``--method none``);
* ``continued`` — A trained the same epochs again without VAA (``--model A/model``): the
  control with the same training budget as B, which VAA must beat to be credited with a gain;
* ``vaa`` — model B, ``--method vaa --base-run A`` (placement ``add``, FGSM L2 ε = 0.02).

Then the runs' own ``metrics.json`` give a mean ± std table of dev and test accuracy and the
per-seed paired differences (VAA − plain, VAA − continued), with the paper's claimed gains
beside them, written to ``--out`` (and ``benchmarks/results/vaa/summary.json``).

    python benchmarks/vaa_table.py --models minilm esim --datasets cr bbc-match --jobs 2
    python benchmarks/vaa_table.py --aggregate-only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from summary_stats import mean_std, paired_points, replace_block, write_atomic  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# the model, its learning rate and epochs: MiniLM at the shipped fine-tuning defaults; ESIM
# from scratch at the rate and epochs chosen on cr's and bbc-match's dev split (lr 4e-4, 1e-3,
# 3e-3 over 15 epochs, seed 13: 1e-3 best on both)
MODELS = {"minilm": ("default", 2e-5, 3), "esim": ("scratch:esim", 1e-3, 15)}
STAGES = ("plain", "continued", "vaa")
# paper 002 Table 3, test accuracy gain of VAA (points): QQP, SNLI, MultiNLI matched/mismatched
PAPER_GAIN = {"esim": "QQP +1.16, SNLI +0.24, MNLI +0.28 / +0.06",
              "minilm": "BERT-base: QQP +1.40, SNLI +0.17, MNLI +0.44 / +0.74"}


def run_name(model: str, dataset: str, stage: str, seed: int) -> str:
    """Run folder names; MiniLM's keep the names of the runs made before this script."""
    tag = "" if model == "minilm" else f"{model}-"
    suffix = {"plain": "none", "continued": "none-continued", "vaa": "vaa-add"}[stage]
    return f"{dataset}-{tag}{suffix}-s{seed}"


def train_command(args, model: str, dataset: str, stage: str, seed: int) -> list[str]:
    source, lr, epochs = MODELS[model]
    base = args.runs_dir / run_name(model, dataset, "plain", seed)
    command = [sys.executable, "-m", "advembed.cli", "train", "--dataset", dataset,
               "--seed", str(seed), "--lr", str(lr), "--epochs", str(epochs),
               "--output", str(args.runs_dir / run_name(model, dataset, stage, seed)),
               "--no-progress", "--overwrite"]
    if stage == "plain":
        return command + ["--model", source, "--method", "none"]
    if stage == "continued":
        return command + ["--model", str(base / "model"), "--method", "none"]
    return command + ["--method", "vaa", "--base-run", str(base), "--vaa-placement", "add"]


def finished(args, model: str, dataset: str, stage: str, seed: int) -> bool:
    return (args.runs_dir / run_name(model, dataset, stage, seed) / "metrics.json").is_file()


def run_all(args) -> int:
    """Runs every missing run, ``--jobs`` at a time, a stage only after its model A."""
    pending = [(m, d, stage, s) for d in args.datasets for m in args.models for s in args.seeds
               for stage in STAGES if not finished(args, m, d, stage, s)]
    lock, failures = threading.Lock(), []
    env = os.environ | {"PYTHONPATH": str(ROOT / "src") + os.pathsep
                        + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": str(args.threads)}

    def next_job():
        with lock:
            for job in list(pending):
                m, d, stage, s = job
                if finished(args, *job):  # another process finished it meanwhile
                    pending.remove(job)
                    continue
                failed_base = (m, d, "plain", s) in failures
                if stage == "plain" or finished(args, m, d, "plain", s) or failed_base:
                    pending.remove(job)
                    return None if failed_base else job
            return "wait" if pending else None

    def worker():
        while (job := next_job()) is not None:
            if job == "wait":
                time.sleep(5)
                continue
            name = run_name(job[0], job[1], job[2], job[3])
            started = time.perf_counter()
            with (args.runs_dir / f"{name}.log").open("w") as handle:
                code = subprocess.call(train_command(args, *job), stdout=handle,
                                       stderr=subprocess.STDOUT, env=env)
            print(f"{name}: exit {code}, {time.perf_counter() - started:.0f} s", flush=True)
            if code:
                with lock:
                    failures.append(job)

    args.runs_dir.mkdir(parents=True, exist_ok=True)
    threads = [threading.Thread(target=worker) for _ in range(args.jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 1 if failures else 0


def rows(args) -> list[dict]:
    out = []
    for model in args.models:
        for dataset in args.datasets:
            for seed in args.seeds:
                for stage in STAGES:
                    run = args.runs_dir / run_name(model, dataset, stage, seed)
                    if not (run / "metrics.json").is_file():
                        continue
                    metrics = json.loads((run / "metrics.json").read_text())
                    out.append({"model": model, "dataset": dataset, "stage": stage,
                                "seed": seed, "dev_acc": metrics["best_dev"]["accuracy"],
                                "test_acc": metrics["test"]["accuracy"],
                                "train_seconds": metrics["train"]["seconds"],
                                "run": run.name})
    return out


def paired(table: list[dict], model: str, dataset: str, split: str, against: str) -> list:
    """Per-seed differences VAA − ``against`` in points, over seeds where both finished."""
    def by_seed(stage):
        return {r["seed"]: r[f"{split}_acc"] for r in table if (r["model"], r["dataset"],
                r["stage"]) == (model, dataset, stage)}
    return paired_points(by_seed("vaa"), by_seed(against))


def markdown(table: list[dict], machine: str) -> str:
    lines = ["# VAA against plain training (issue 16; paper 002 Table 3)", "",
             "Written by `benchmarks/vaa_table.py` from the runs' own files; do not edit by "
             f"hand. Machine: {machine}. `plain` is model A; `continued` is A trained the same "
             "epochs again without VAA (the control with B's training budget); `vaa` is B. "
             "Gains are per-seed paired differences in accuracy points, mean ± std.", "",
             "| model | dataset | seeds | plain dev / test | continued dev / test | "
             "VAA dev / test | VAA − plain test | VAA − continued dev | VAA − continued test "
             "| paper's test gain |", "|---|---|---|---|---|---|---|---|---|---|"]
    for model in dict.fromkeys(r["model"] for r in table):
        for dataset in dict.fromkeys(r["dataset"] for r in table if r["model"] == model):
            def cell(stage, split, model=model, dataset=dataset):
                return mean_std([r[f"{split}_acc"] for r in table if (
                    r["model"], r["dataset"], r["stage"]) == (model, dataset, stage)])
            seeds = len({r["seed"] for r in table if (r["model"], r["dataset"], r["stage"]) == (
                model, dataset, "vaa")})
            lines.append(
                f"| {model} | {dataset} | {seeds} | "
                + " | ".join(f"{cell(stage, 'dev')} / {cell(stage, 'test')}"
                             for stage in STAGES)
                + f" | {mean_std(paired(table, model, dataset, 'test', 'plain'), digits=2)} | "
                f"{mean_std(paired(table, model, dataset, 'dev', 'continued'), digits=2)} | "
                f"{mean_std(paired(table, model, dataset, 'test', 'continued'), digits=2)} | "
                f"{PAPER_GAIN[model]} |")
    return "\n".join(lines) + "\n"


def update_readme(path: Path, text: str) -> None:
    """The table's rows (from its header on) between the README's vaa markers."""
    replace_block(path, "<!-- vaa:start -->", "<!-- vaa:end -->", text[text.index("| model |"):])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--datasets", nargs="+", default=["cr", "bbc-match"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[13, 14, 15])
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time")
    parser.add_argument("--threads", type=int, default=1, help="OMP threads per run")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "vaa")
    parser.add_argument("--out", type=Path,
                        help="write the table to this file (the committed one: "
                             "docs/results-vaa.md); without it the table is only printed, so a "
                             "run for a few models or datasets never overwrites another table")
    parser.add_argument("--summary", type=Path,
                        help="write the rows as JSON to this file (the committed one: "
                             "benchmarks/results/vaa/summary.json); not written without it")
    parser.add_argument("--machine", default=f"{platform.machine()}, {os.cpu_count()} CPUs")
    parser.add_argument("--aggregate-only", action="store_true")
    parser.add_argument("--readme", type=Path,
                        help="also write the table between <!-- vaa:start/end --> of this file")
    args = parser.parse_args()
    code = 0 if args.aggregate_only else run_all(args)
    table = rows(args)
    if not table:  # a mistyped --runs-dir: never an empty table over the committed one
        raise SystemExit(f"vaa_table.py: no finished runs in {args.runs_dir}; nothing written")
    text = markdown(table, args.machine)
    if args.summary:
        write_atomic(args.summary, json.dumps(table, indent=1) + "\n")
    if args.out:
        write_atomic(args.out, text)
    if args.readme:
        update_readme(args.readme, text)
    print(text)
    return code


if __name__ == "__main__":
    sys.exit(main())
