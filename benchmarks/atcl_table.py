"""Issue 15's comparison (paper 004 Tables 2 and 6): the baseline, "+Adv. only" and +ATCL on
the token-level tasks, perplexity for language modelling and BLEU for translation.

Each variant is ``quality.py``'s method with objective options, trained into its own folder
``RUNS/VARIANT`` (``quality.py`` names runs by dataset, method and seed only, and +Adv. only
and +ATCL are both ``fgm+atcl``).  Every missing (variant, dataset, seed) run is trained as its
own ``quality.py`` process, ``--jobs`` at a time, the adversarial ones first (they cost about
2.3 plain steps each, so the queue ends evenly).  Then the runs' own ``metrics.json`` give a
mean ± std table of dev and test perplexity (or BLEU, with chrF beside it), the per-seed paired
change against the baseline, and the paper's own numbers and direction beside ours, written
to ``--out`` (and the rows to ``--summary``) only when those are given.

    python benchmarks/atcl_table.py --datasets bbc-lm --variants base adv atcl5 --epochs 1
    python benchmarks/atcl_table.py --aggregate-only --runs-dir benchmarks/results/atcl \
        --out docs/results-atcl.md --summary benchmarks/results/atcl/summary.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from summary_stats import mean_std, paired_points, replace_block, write_atomic  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# variant: (label, quality.py method, objective options)
VARIANTS = {
    "base": ("baseline", "none", {}),
    "adv": ("+Adv. only (β = 0)", "fgm+atcl", {"atcl": {"beta": 0}}),
    "atcl5": ("+ATCL (n = 5)", "fgm+atcl", {"atcl": {"num_negatives": 5}}),
    "atcl10": ("+ATCL (n = 10)", "fgm+atcl", {"atcl": {"num_negatives": 10}}),
    "atcl20": ("+ATCL (n = 20)", "fgm+atcl", {"atcl": {"num_negatives": 20}}),
}
# the task of each named dataset; a file needs --task
TASKS = {"bbc-lm": "lm", "help-en-de": "translation", "help-de-en": "translation",
         "help-en-fr": "translation", "help-fr-en": "translation"}
METRIC = {"lm": "perplexity", "translation": "bleu"}
LOWER_IS_BETTER = {"perplexity": True, "bleu": False}
# paper 004, test column of Table 2 (perplexity) and Table 6 (BLEU), per variant
PAPER = {
    "lm": {"PTB": [36.13, 36.46, 32.89, 29.08, 36.85],
           "WikiText-103": [22.42, 21.67, 22.59, 21.67, 20.61]},
    "help-en-de": {"IWSLT En-De": [24.61, 25.04, 24.63, 25.26, 24.74]},
    "help-de-en": {"IWSLT De-En": [30.34, 30.36, 31.34, 30.36, 30.13]},
    "help-en-fr": {"IWSLT En-Fr": [35.23, 35.02, 36.40, 35.60, 35.38]},
    "help-fr-en": {"IWSLT Fr-En": [34.51, 35.97, 35.35, 35.48, 35.46]},
}


def task_of(args, dataset: str) -> str:
    task = args.task or TASKS.get(dataset)
    if task is None:
        raise SystemExit(f"{dataset}: not a named LM or translation dataset; give --task")
    return task


def run_dir(args, variant: str, dataset: str, seed: int) -> Path:
    method = VARIANTS[variant][1]
    return args.runs_dir / variant / f"{dataset}-{method}-s{seed}"


def quality_command(args, variant: str, dataset: str, seed: int) -> list[str]:
    _, method, options = VARIANTS[variant]
    task = task_of(args, dataset)
    command = [sys.executable, str(ROOT / "benchmarks" / "quality.py"), "--task", task,
               "--metric", METRIC[task], "--datasets", dataset, "--seeds", str(seed),
               "--methods", method, "--objective-options", json.dumps(options),
               "--epochs", str(args.epochs), "--lr", str(args.lr),
               "--batch-size", str(args.batch_size), "--jobs", "1",
               "--runs-dir", str(args.runs_dir / variant)]
    if args.limit:
        command += ["--limit", str(args.limit)]
    if args.max_steps:
        command += ["--max-steps", str(args.max_steps)]
    return command


def run_all(args) -> int:
    """Trains every missing run, ``--jobs`` at a time, adversarial variants first."""
    jobs = [(v, d, s) for v in sorted(args.variants, key=lambda v: v == "base")
            for s in args.seeds for d in args.datasets
            if not (run_dir(args, v, d, s) / "metrics.json").is_file()]
    env = os.environ | {"OMP_NUM_THREADS": str(args.threads)}

    def train(job) -> int:
        variant, dataset, seed = job
        (args.runs_dir / variant).mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        code = subprocess.call(quality_command(args, *job), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT)
        print(f"{variant} {dataset} s{seed}: exit {code}, "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        return code

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        return 1 if any(list(pool.map(train, jobs))) else 0


def rows(args) -> list[dict]:
    out = []
    for dataset in args.datasets:
        metric = METRIC[task_of(args, dataset)]
        for variant in args.variants:
            for seed in args.seeds:
                path = run_dir(args, variant, dataset, seed) / "metrics.json"
                if not path.is_file():
                    continue
                metrics = json.loads(path.read_text())
                row = {"dataset": dataset, "variant": variant, "seed": seed,
                       f"dev_{metric}": metrics["best_dev"][metric],
                       f"test_{metric}": metrics["test"][metric],
                       "train_seconds": metrics["train"]["seconds"],
                       "collapsed": bool(metrics.get("collapsed"))}
                if metric == "bleu":
                    row["test_chrf"] = metrics["test"]["chrf"]
                out.append(row)
    return out


def change(table: list[dict], dataset: str, variant: str, key: str) -> list[float]:
    """Per-seed ``variant − baseline`` of ``key``, over the seeds both finished."""
    def by_seed(name):
        return {r["seed"]: r[key] for r in table if (r["dataset"], r["variant"]) == (
            dataset, name)}
    return paired_points(by_seed(variant), by_seed("base"), scale=1.0)


def verdict(changes: list[float], lower_is_better: bool) -> str:
    """Our direction against the baseline: better or worse only when the mean change exceeds
    the seeds' standard deviation, else within the seeds' spread."""
    if len(changes) < 2:
        return "–" if not changes else "one seed only"
    mean, std = statistics.mean(changes), statistics.stdev(changes)
    if abs(mean) <= std:
        return "within the seeds' spread"
    return "better" if (mean < 0) == lower_is_better else "worse"


def paper_cell(task_key: str, variant: str) -> str:
    index = list(VARIANTS).index(variant)
    cells = []
    for name, values in PAPER.get(task_key, {}).items():
        delta = "" if index == 0 else f" ({values[index] - values[0]:+.2f})"
        cells.append(f"{name} {values[index]:.2f}{delta}")
    return "; ".join(cells) or "–"


def same_held_out(args, dataset: str, data) -> None:
    """The trivial rows score today's build of ``dataset``: its dev and test must be the ones
    the runs were scored on (their ``data_sha256``, or ``split_sizes`` for runs made before
    fingerprints), else the script exits in one line rather than set other splits' scores
    beside the runs'."""
    today = data.fingerprints()
    sizes = {split: len(examples) for split, examples in data.splits.items()}
    for path in sorted(args.runs_dir.glob(f"*/{dataset}-*-s*/config.json")):
        config = json.loads(path.read_text())
        recorded, what, ours = config.get("data_sha256"), "data_sha256", today
        if not recorded:
            recorded, what, ours = config.get("split_sizes"), "split_sizes", sizes
        if recorded and any(recorded.get(s) != ours[s] for s in ("dev", "test")):
            raise SystemExit(f"atcl_table.py: {dataset} as built today is not the data "
                             f"{path.parent} was scored on ({what} in its config.json); the "
                             "trivial rows would score other splits")


def trivial_scores(args, dataset: str) -> list[tuple[str, dict, dict]]:
    """``--trivial``: ``(label, dev scores, test scores)`` of the predictors that ignore their
    input, the bar a model has to clear — for language modelling the best context-free one
    (each split's own unigram frequencies, with the tokenizer the default model trains, in
    blocks of the runs' ``--max-length``), for translation one fixed sentence (the split's most
    frequent target) and a copy of the source.  The first of each is the collapse guard's."""
    from advembed.data.options import DataOptions
    from advembed.tasks import get_task
    from advembed.tasks.translation import bleu_and_chrf, fixed_output

    task = get_task(task_of(args, dataset))
    data = task.load_data(DataOptions(dataset=dataset, split_seed=2024), limit=args.limit,
                          seed=2024)  # --limit draws with the split seed, as training does
    same_held_out(args, dataset, data)
    dev, test = data.splits["dev"], data.splits["test"]
    if task.name == "lm":
        configs = sorted(args.runs_dir.glob(f"base/{dataset}-none-s*/config.json"))
        max_length = json.loads(configs[0].read_text())["max_length"] if configs else 128
        tokenizer = task.build_model("default", data).tokenizer
        return [("context-free: the split's unigram frequencies", *(
            {"perplexity": task.collapse_baseline(split, tokenizer, max_length=max_length)}
            for split in (dev, test)))]

    def scored(outputs, split):
        return bleu_and_chrf(outputs(split), [e.text_pair for e in split])[0]
    return [(label, scored(outputs, dev), scored(outputs, test)) for label, outputs in [
        ("one fixed sentence: the split's most frequent target",
         lambda split: [fixed_output(split)] * len(split)),
        ("a copy of the source", lambda split: [e.text for e in split])]]


def trivial_lines(args, dataset: str, metric: str) -> list[str]:
    """The trivial predictors' rows, in the table's columns (scores only)."""
    lines = []
    for label, dev, test in trivial_scores(args, dataset):
        chrf = f" {test['chrf']:.2f} |" if metric == "bleu" else ""
        lines.append(f"| *{label}* | – | {dev[metric]:.2f} | {test[metric]:.2f} |{chrf}"
                     + "  |" * 5)  # change, ours, paper, train s, collapsed
    return lines


def markdown(args, table: list[dict]) -> str:
    lines = ["# Baseline, +Adv. only and +ATCL on the token-level tasks (issue 15; paper 004 "
             "Tables 2 and 6)", "",
             "Written by `benchmarks/atcl_table.py` from the runs' own files; do not edit by "
             f"hand. Machine: {args.machine}. Models from scratch (`--model default` of each "
             "task), FGM on one complete word; changes are per-seed paired differences against "
             "the baseline (perplexity: lower is better; BLEU: higher is better), mean ± std; "
             "\"ours\" says better or worse only when the mean change exceeds its std. The "
             "paper's column is its test score, its change against its baseline in brackets."
             + (" Rows in italics are predictors that ignore their input, each scored on the "
                "split itself (the first is the bar of the collapse guard)." if args.trivial
                else ""), ""]
    for dataset in args.datasets:
        metric = METRIC[task_of(args, dataset)]
        task_key = "lm" if metric == "perplexity" else dataset
        label = "perplexity" if metric == "perplexity" else "BLEU"
        extra = " test chrF |" if metric == "bleu" else ""
        lines += [f"## {dataset}", "",
                  f"| variant | seeds | dev {label} | test {label} |{extra} change in test "
                  f"{label} | ours | paper (test) | train s | collapsed |",
                  "|---|---|---|---|" + ("---|" if extra else "") + "---|---|---|---|---|"]
        for variant in args.variants:
            mine = [r for r in table if (r["dataset"], r["variant"]) == (dataset, variant)]
            if not mine:
                continue
            changes = change(table, dataset, variant, f"test_{metric}")
            chrf = f" {mean_std([r['test_chrf'] for r in mine], digits=2)} |" if extra else ""
            base = variant == "base"
            lines.append(
                f"| {VARIANTS[variant][0]} | {len(mine)} | "
                f"{mean_std([r[f'dev_{metric}'] for r in mine], digits=2)} | "
                f"{mean_std([r[f'test_{metric}'] for r in mine], digits=2)} |{chrf} "
                f"{'' if base else mean_std(changes, digits=2, of=len(mine))} | "
                f"{'' if base else verdict(changes, LOWER_IS_BETTER[metric])} | "
                f"{paper_cell(task_key, variant)} | "
                f"{statistics.mean(r['train_seconds'] for r in mine):.0f} | "
                f"{sum(r['collapsed'] for r in mine)} |")
        if args.trivial:
            lines += trivial_lines(args, dataset, metric)
        lines.append("")
    return "\n".join(lines + settings_lines(args))


def settings_lines(args) -> list[str]:
    """What each variant's runs trained with, read from their ``config.json`` (every distinct
    setting string, so runs that differ show it)."""
    lines = ["Settings, as the runs recorded them:", ""]
    for variant in args.variants:
        seen = set()
        for dataset in args.datasets:
            for seed in args.seeds:
                path = run_dir(args, variant, dataset, seed) / "config.json"
                if path.is_file():
                    c = json.loads(path.read_text())
                    seen.add(f"epochs {c['epochs']:g}, batch {c['batch_size']}, lr {c['lr']:g}, "
                             f"max length {c['max_length']}, method `{c['method']}` "
                             f"{json.dumps(c.get('method_settings', {}), sort_keys=True)}, "
                             f"objective `{c['objective']}` "
                             f"{json.dumps(c.get('objective_settings', {}), sort_keys=True)}")
        if seen:
            lines.append(f"- {VARIANTS[variant][0]}: " + " / ".join(sorted(seen)))
    return lines + [""]


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["bbc-lm"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[13, 14, 15])
    parser.add_argument("--task", choices=sorted(set(TASKS.values())),
                        help="the task of datasets that are files (named ones know theirs)")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time")
    parser.add_argument("--threads", type=int, default=1, help="OMP threads per run")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "atcl")
    parser.add_argument("--out", type=Path, help="write the table here (the committed one: "
                        "docs/results-atcl.md); without it the table is only printed")
    parser.add_argument("--summary", type=Path, help="write the rows as JSON here (the "
                        "committed one: benchmarks/results/atcl/summary.json)")
    parser.add_argument("--readme", type=Path,
                        help="also write the tables between <!-- atcl:start/end --> of this file")
    parser.add_argument("--machine", default=f"{os.cpu_count()} CPUs")
    parser.add_argument("--aggregate-only", action="store_true")
    parser.add_argument("--trivial", action="store_true",
                        help="add the scores of predictors that ignore their input (reads "
                        "each dataset; an LM's tokenizer is trained again)")
    return parser


def main(args: argparse.Namespace) -> int:
    for dataset in args.datasets:
        task_of(args, dataset)
    code = 0 if args.aggregate_only else run_all(args)
    table = rows(args)
    if not table and not args.trivial:
        raise SystemExit(f"no finished runs under {args.runs_dir}")
    text = markdown(args, table)
    if args.summary:
        write_atomic(args.summary, json.dumps(table, indent=1) + "\n")
    if args.out:
        write_atomic(args.out, text)
    if args.readme:
        # the tables from the first dataset on, each dataset's heading as bold text (the
        # README's results sit under a heading of their own)
        body = re.sub(r"^## (.+)$", r"**\1**", text[text.index("## "):], flags=re.M)
        replace_block(args.readme, "<!-- atcl:start -->", "<!-- atcl:end -->", body)
    print(text)
    return code


if __name__ == "__main__":
    sys.exit(main(parser().parse_args()))
