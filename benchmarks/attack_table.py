"""Accuracy under attack of trained runs, mean ± std over seeds, and gains over plain training.

Clean test accuracy next to accuracy under embedding (PGD, vulnerability AUC) and word (PWWS,
BERT-Attack) attacks, and each method's gain over plain training paired by seed.

For every finished run ``RUNS_DIR/DATASET-METHOD-sSEED`` (as ``benchmarks/quality.py`` names
them; with several ``--runs-dir``, the first folder that holds the run supplies it, so one table
can draw plain runs committed for another benchmark), each attack of ``--attacks`` whose summary
``RUN/attack-NAME.json`` is missing is run by ``advembed attack`` with its defaults on a seeded
sample of the test split (``--n-examples``; the whole split where smaller); then the runs'
figures go into ``--summary`` (one row per run, naming its run folder) and a Markdown table into
``--out`` (both only when given; the table is always printed).

    python benchmarks/attack_table.py --runs-dir runs/pairs --datasets bible-para bbc-match \\
        --methods none freelb --attacks pgd vulnerability pwws --title "Plain vs FreeLB on pairs"

Word attacks report the headline accuracy under attack: the lowest over the logit temperatures
the attacker tries (row key ``pwws_attack_acc_rescaled``, ``bert_attack_acc_rescaled``), the
plain one (T = 1) beside it as ``pwws_attack_acc``, ``bert_attack_acc``; a summary made before
the rescaled attack gives its T = 1 figure as the headline, flagged ``*_t1_only`` and marked †.
``vda_table.py`` is this script with paper 003's methods and the two word attacks.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from summary_stats import mean_std, paired_points, write_atomic  # noqa: E402

from advembed.evaluation.attack import word_temperatures  # noqa: E402
from advembed.evaluation.word_attack import WordAttackOptions  # noqa: E402
from advembed.runs import attack_stem  # noqa: E402

WORD_ATTACKS = {"pwws": ("pwws_attack_acc", "PWWS"),
                "bert-attack": ("bert_attack_acc", "BERT-Attack")}
ATTACKS = ["pgd", "vulnerability", *WORD_ATTACKS]
DEFAULT_TEMPERATURES = tuple(word_temperatures(WordAttackOptions()))  # `advembed attack`'s
WORD_NOTE = ("Accuracy under attack is the lowest over the logit temperatures the attacker "
             f"tries ({', '.join(f'{t:g}' for t in DEFAULT_TEMPERATURES)}).")
T1_NOTE = ("† compared over other logit temperatures: at least one run's headline figure is "
           "the lowest over fewer temperatures than another's it is set beside (a summary "
           "made before the attacker rescaled the logits is at T = 1 only, as is one attacked "
           "with `--temperatures 1`); the lowest over more temperatures can only be lower or "
           "equal, so a plain figure so marked can overstate plain, a method's the method.")


def t1_only(group: list[dict], key: str) -> str:
    """`` †`` where the headline word-attack figure ``key`` (``*_rescaled``) of a run of
    ``group`` (a row's seeds, or a method's and plain's runs paired for a gain) is at T = 1
    only (its summary predates the rescaled attack), or where the runs of ``group`` that have
    it were attacked over different temperatures."""
    if not key.endswith("_rescaled"):
        return ""
    recipe = next(r for r, (k, _) in WORD_ATTACKS.items() if f"{k}_rescaled" == key)
    tried = {frozenset(r.get(f"{recipe}_temperatures") or ()) for r in group
             if r.get(key) is not None}
    old = any(r.get(key.removesuffix("_rescaled") + "_t1_only") for r in group)
    return " †" if old or len(tried) > 1 else ""


def run_attack(run: Path, recipe: str, n_examples: int, workers: int = 1,
               split: str = "test") -> str | None:
    """Run ``advembed attack`` on ``run`` (a seeded sample of ``split``, sample seed 0; word
    attacks in ``workers`` processes), writing ``RUN/attack-RECIPE.json``; ``None`` when it
    succeeded, else its last error line (``attack_summary`` reads the summary back, attacking
    first where it is missing: ``search_robust.py`` and ``vda_curves.py`` use it on dev)."""
    command = [sys.executable, "-m", "advembed.cli", "attack", "--run", str(run), "--attack",
               recipe, "--split", split, "--n-examples", str(n_examples), "--seed", "0",
               "--no-progress"]
    if recipe in WORD_ATTACKS:
        command += ["--workers", str(workers)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode == 0:
        return None
    lines = done.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


def attack_summary(run: Path, recipe: str, n_examples: int, workers: int = 1,
                   split: str = "test") -> dict | None:
    """``RUN/attack-RECIPE.json`` (``attack-RECIPE-SPLIT.json`` for another split), attacking
    first where it is missing; ``None`` when the attack failed (the dev-sample searches skip
    such a point)."""
    summary = run / f"{attack_stem(recipe, split)}.json"
    if not summary.is_file() and run_attack(run, recipe, n_examples, workers, split=split):
        return None
    return json.loads(summary.read_text())


def attack(run: Path, recipe: str, n_examples: int, workers: int, split: str = "test") -> None:
    """:func:`run_attack`; a failure ends the script with its error line."""
    error = run_attack(run, recipe, n_examples, workers, split=split)
    if error:
        sys.exit(f"{recipe} on {run} failed: {error}")


def _pgd_key(epsilon: float) -> str:
    return f"pgd_acc@{epsilon:g}"


SAMPLE_KEYS = ("seed", "split", "settings", "mlm_weights_sha256", "norm", "steps", "alpha",
               "alpha_ratio", "stopwords")
"""What a summary says of how its sample was drawn and attacked; rows set side by side must
agree on each of them that both summaries record (an older summary lacks some)."""


def attacked_differently(rows: list[dict], attacks: list[str]) -> list[str]:
    """A note for each attack whose runs' summaries disagree on a :data:`SAMPLE_KEYS` field
    both record (another sample seed, split, budget, MLM build, …), naming the field and the
    runs of each value: their figures do not come from the same attack."""
    notes = []
    for recipe in attacks:
        samples = [(r["run"], r[f"{recipe}_sample"]) for r in rows if r.get(f"{recipe}_sample")]
        for key in SAMPLE_KEYS:
            values: dict[str, list[str]] = {}
            for run, sample in samples:
                if key in sample:
                    values.setdefault(json.dumps(sample[key], sort_keys=True), []).append(run)
            if len(values) > 1:
                listed = "; ".join(f"{value}: {', '.join(runs)}" for value, runs in
                                   values.items())
                notes.append(f"‡ {recipe}: the runs were attacked with different `{key}` "
                             f"({listed}); their figures are not one attack's.")
    return notes


def attack_figures(run: Path, attacks: list[str], split: str = "test") -> dict:
    """The figures of each attack summary of ``split`` the run has (absent ones are ``None``)."""
    out: dict = {}
    for recipe in attacks:
        path = run / f"{attack_stem(recipe, split)}.json"
        summary = json.loads(path.read_text()) if path.is_file() else None
        if summary:
            out[f"{recipe}_sample"] = {k: summary[k] for k in SAMPLE_KEYS if k in summary}
        if recipe == "pgd":
            for result in (summary or {}).get("results", []):
                out[_pgd_key(result["epsilon"])] = result["accuracy"]
            out["pgd_examples"] = (summary or {}).get("examples")
        elif recipe == "vulnerability":
            auc = (summary or {}).get("auc", {})
            out["vulnerability_auc_f1"] = auc.get("F1")
            out["vulnerability_auc_f2"] = auc.get("F2")
            out["vulnerability_examples"] = (summary or {}).get("examples")
        else:
            key = WORD_ATTACKS[recipe][0]
            out[key] = summary["attack_accuracy"] if summary else None
            out[f"{key}_rescaled"] = summary.get("attack_accuracy_rescaled", out[key]) if (
                summary) else None
            if summary:
                if "attack_accuracy_rescaled" not in summary:  # made before the rescaled attack
                    out[f"{key}_t1_only"] = True
                out[f"{recipe}_examples"] = summary["examples"]
                out[f"{recipe}_sample_clean_acc"] = summary.get("original_accuracy")
                if "temperatures" in summary:  # {"1": {...}, "100": {...}, ...}
                    out[f"{recipe}_temperatures"] = [float(t) for t in summary["temperatures"]]
                out[f"{recipe}_mean_queries"] = summary["mean_queries"]
                out[f"{recipe}_perturbed_percent"] = summary["mean_perturbed_percent"]
    return out


def row(run: Path, dataset: str, method: str, seed: int, attacks: list[str],
        split: str = "test") -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    return {"dataset": dataset, "method": method, "seed": seed, "run": run.as_posix(),
            "clean_test_acc": metrics["test"]["accuracy"], "attack_split": split,
            "train_seconds": metrics["train"]["seconds"], **attack_figures(run, attacks, split)}


def columns(rows: list[dict], attacks: list[str]) -> list[tuple[str, str, str | None]]:
    """``(key, header, gain header or None)`` of every figure column, in ``attacks`` order;
    PGD has one column per radius the summaries hold."""
    out = []
    for recipe in attacks:
        if recipe == "pgd":
            radii = sorted({float(k.split("@")[1]) for r in rows for k in r
                            if k.startswith("pgd_acc@")})
            out += [(_pgd_key(e), f"PGD ε={e:g} acc", f"Δ PGD ε={e:g}") for e in radii]
        elif recipe == "vulnerability":
            out += [("vulnerability_auc_f1", "vulnerability AUC F1", None),
                    ("vulnerability_auc_f2", "vulnerability AUC F2", None)]
        else:
            key, name = WORD_ATTACKS[recipe]
            out.append((f"{key}_rescaled", f"{name} acc under attack", f"Δ {name}"))
    return out


def paired(rows: list[dict], dataset: str, method: str, key: str) -> list[float]:
    """Per-seed differences ``method`` − plain in points, over seeds where both have ``key``."""
    def by_seed(name):
        return {r["seed"]: r[key] for r in rows if r["dataset"] == dataset
                and r["method"] == name and r.get(key) is not None}

    return paired_points(by_seed(method), by_seed("none"))


def gains(rows: list[dict], methods: list[str], cols: list[tuple]) -> list[str]:
    """The table of gains over plain training paired by seed (the two runs of a seed start
    from the same initial head), as ``vaa_table.py`` gives VAA's."""
    keyed = [("clean_test_acc", "Δ clean test")] + [(k, g) for k, _, g in cols if g]
    lines = ["", "Gains over plain (`none`) of the same seed, in accuracy points, mean ± std "
             "over the seeds where both runs have the figure:", "",
             "| dataset | method | " + " | ".join(g for _, g in keyed) + " |",
             "|---|---|" + "---|" * len(keyed)]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        for method in [m for m in methods if m != "none"]:
            cells = [paired(rows, dataset, method, key) for key, _ in keyed]
            seeds = ({r["seed"] for r in rows if r["dataset"] == dataset
                      and r["method"] == method}
                     & {r["seed"] for r in rows if r["dataset"] == dataset
                        and r["method"] == "none"})  # the seeds the gain pairs
            pair = [r for r in rows if r["dataset"] == dataset and r["seed"] in seeds
                    and r["method"] in (method, "none")]
            if any(cells):
                lines.append(f"| {dataset} | {method} | "
                             + " | ".join(mean_std(c, digits=2) + t1_only(pair, key)
                                          for c, (key, _) in zip(cells, keyed, strict=True))
                             + " |")
    return lines if len(lines) > 5 else []


def sample_sizes(rows: list[dict], attacks: list[str], split: str = "test") -> list[str]:
    """One line naming how many examples of ``split`` each attack read per dataset (a range
    where the runs differ), so that a table made on a sample never reads as the whole split."""
    names = {"pgd": "PGD", "vulnerability": "vulnerability"} | {
        k: v[1] for k, v in WORD_ATTACKS.items()}
    parts = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        sizes = []
        for recipe in attacks:
            counts = sorted({r[f"{recipe}_examples"] for r in rows if r["dataset"] == dataset
                             and r.get(f"{recipe}_examples") is not None})
            if counts:
                span = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
                sizes.append(f"{names[recipe]} {span}")
        if sizes:
            parts.append(f"{dataset}: {', '.join(sizes)}")
    line = f"{split.capitalize()} examples attacked per run: " + "; ".join(parts) + "."
    if parts and split != "test":
        line += (f" The attacks read a seeded sample of the {split} split, not test; 'clean "
                 "test acc' is still the whole test split.")
    return ["", line] if parts else []


def word_note(rows: list[dict], attacks: list[str]) -> str:
    """Which logit temperatures the word attacks' headline figure is the lowest over."""
    tried = sorted({tuple(r[f"{a}_temperatures"]) for r in rows for a in attacks
                    if a in WORD_ATTACKS and r.get(f"{a}_temperatures")})
    if not tried or tried == [DEFAULT_TEMPERATURES]:
        return WORD_NOTE
    return ("Accuracy under attack is the lowest over the logit temperatures the attacker "
            "tried: " + "; ".join(", ".join(f"{t:g}" for t in ts) for ts in tried) + ".")


def table(rows: list[dict], methods: list[str], attacks: list[str], title: str,
          script: str, machine: str, split: str = "test") -> str:
    cols = columns(rows, attacks)
    notes = []
    if "pgd" in attacks:
        notes.append("PGD: `advembed attack --attack pgd` defaults (L2, 3 steps, α = ε/2) at "
                     "each radius ε.")
    if "vulnerability" in attacks:
        notes.append("Vulnerability AUC: ROC AUC of the gold label from F1 / F2 (paper 002) "
                     "at FGSM L2 ε = 0.02.")
    if any(a in WORD_ATTACKS for a in attacks):
        notes.append(word_note(rows, attacks))
    lines = [f"# {title}", "",
             f"Written by `benchmarks/{script}` from the runs' own files; machine: {machine}. "
             + " ".join(notes), "",
             "| dataset | method | seeds | clean test acc | "
             + " | ".join(h for _, h, _ in cols) + " | train s |",
             "|---|---|---|---|" + "---|" * len(cols) + "---|"]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        for method in methods:
            group = [r for r in rows if r["dataset"] == dataset and r["method"] == method]
            if not group:
                continue
            lines.append(
                f"| {dataset} | {method} | {len(group)} | "
                f"{mean_std([r['clean_test_acc'] for r in group])} | "
                + "".join(f"{mean_std([r.get(k) for r in group], of=len(group))}"
                          f"{t1_only(group, k)} | " for k, _, _ in cols)
                + f"{statistics.mean(r['train_seconds'] for r in group):.0f} |")
    gain_lines = gains(rows, methods, cols)
    flagged = any("†" in line for line in lines[2:] + gain_lines)
    differ = attacked_differently(rows, attacks)
    return "\n".join(lines + sample_sizes(rows, attacks, split) + gain_lines
                     + (["", T1_NOTE] if flagged else []) + (["", *differ] if differ else [])
                     ) + "\n"


def parser(methods: list[str] | None = None, attacks: list[str] | None = None,
           title: str = "Accuracy under attack",
           description: str = __doc__.splitlines()[0]) -> argparse.ArgumentParser:
    """The command line; ``vda_table.py`` fixes the methods, attacks and title it offers."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--runs-dir", type=Path, nargs="+", required=True,
                   help="folders of runs; a run is taken from the first that holds it")
    p.add_argument("--datasets", nargs="+", default=["mr", "cr"])
    p.add_argument("--methods", nargs="+", default=methods or ["none", "freelb"],
                   choices=methods)
    p.add_argument("--attacks", nargs="+", default=attacks or ["pgd", "pwws"],
                   choices=attacks or ATTACKS)
    p.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15])
    p.add_argument("--n-examples", type=int, default=1000)
    p.add_argument("--split", choices=["test", "dev"], default="test",
                   help="the split the attacks read (summaries attack-NAME-dev.json for dev: a "
                        "seeded sample to compare on without looking at test)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--no-attack", action="store_true", help="only collect and write")
    p.add_argument("--title", default=title)
    p.add_argument("--machine", default="this machine")
    p.add_argument("--summary", type=Path,
                   help="write the rows as JSON to this file; not written without it")
    p.add_argument("--out", type=Path,
                   help="write the table to this file; without it the table is only printed, "
                        "so a run for a few datasets or methods never overwrites another table")
    return p


def find_run(runs_dirs: list[Path], name: str) -> Path | None:
    """``DIR/name`` of the first of ``runs_dirs`` where that run finished (has its metrics)."""
    return next((d / name for d in runs_dirs if (d / name / "metrics.json").is_file()), None)


def main(args: argparse.Namespace, script: str = "attack_table.py") -> int:
    runs = {(dataset, method, seed): run for dataset in args.datasets
            for method in args.methods for seed in args.seeds
            if (run := find_run(args.runs_dir, f"{dataset}-{method}-s{seed}")) is not None}
    # attacks seed by seed, so that a call cut short leaves whole seeds unattacked, not whole
    # methods: the finished seeds still pair every method with plain
    for key in sorted(runs, key=lambda k: args.seeds.index(k[2])):
        for recipe in args.attacks:
            summary = runs[key] / f"{attack_stem(recipe, args.split)}.json"
            if not args.no_attack and not summary.is_file():
                attack(runs[key], recipe, args.n_examples, args.workers, args.split)
    rows = [row(run, *key, args.attacks, args.split) for key, run in runs.items()]
    if not rows:
        sys.exit(f"no finished runs under {', '.join(map(str, args.runs_dir))}")
    text = table(rows, args.methods, args.attacks, args.title, script, args.machine, args.split)
    if args.summary:
        write_atomic(args.summary, json.dumps(rows, indent=2) + "\n")
    if args.out:
        write_atomic(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(parser().parse_args()))
