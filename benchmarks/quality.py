"""Quality benchmark: plain fine-tuning vs each adversarial method, several seeds, mean ± std.

Every (dataset, method, seed) is one ``advembed train`` run in its own process (``--jobs``
of them at a time; on a GPU several small runs share the card), written under ``--runs-dir``,
skipped if it already finished, and resumed from its last checkpoint if it was stopped.  The
script then aggregates every finished run's ``metrics.json`` into a Markdown table, printed,
and written to ``--out`` only when given (so a run for a few methods never overwrites the main
table, ``docs/results.md``).

    python benchmarks/quality.py --datasets mr cr --seeds 13 14 15 --out docs/results.md
    python benchmarks/quality.py --aggregate-only        # just print the table again

Method hyper-parameters are the shipped defaults unless ``--method-options`` overrides them
(JSON: ``{"fgm": {"epsilon": 0.1}}``), and objective hyper-parameters unless
``--objective-options`` does (``{"rar": {"lr": 0.001}}``); the table lists the objective
options each run recorded.  A method may name an objective: ``freelb+carl``, ``freelb+rar``,
``fgm+atcl`` (issue 4's comparison: ``--methods freelb freelb+carl freelb+rar fgm+atcl``), or
VDA added to it: ``freelb+vda``, ``smart+vda`` (with ``vda`` alone: issue 13's comparison).
A preset's name stands for its method with the preset's sizes: ``robust`` trains with
``--preset robust`` (issue 12's comparison: ``--methods none freelb robust``).  A suffix
``@E`` trains a row for E epochs (``--methods none@9 freeat@9``: FreeAT at as many passes over
the data as plain gets at 3), and its gain is paired with ``none@E``'s.  Every gain in the
table is paired by seed: the method's run minus plain's of the same seed, mean ± std.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from advembed.methods import FLAG_OF, method_settings  # noqa: E402
from advembed.methods.presets import PRESETS  # noqa: E402
from advembed.objectives import REGISTRY as OBJECTIVES  # noqa: E402
from advembed.runs import has_checkpoint  # noqa: E402
from advembed.settings import META_KEY  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qa_reference import reference_lines  # noqa: E402
from summary_stats import mean_std, paired_points, replace_block, write_atomic  # noqa: E402

DEFAULT_METHODS = ["none", "fgsm", "fgm", "pgd", "freeat", "yopo", "freelb", "smart"]
FLAG = dict(FLAG_OF)
OBJECTIVE_FLAG = {(name, item.name): item.flag.name for name, cls in OBJECTIVES.items()
                  for item in cls.Settings.declared()}


def _flag_value(flag: str, value) -> list[str]:
    """The command-line words for one option (booleans: ``--x`` or ``--no-x``)."""
    if isinstance(value, bool):
        return [flag if value else "--no-" + flag.removeprefix("--")]
    return [flag, str(value)]


def run_name(dataset: str, method: str, seed: int) -> str:
    return f"{dataset}-{method}-s{seed}"


def split_epochs(method: str) -> tuple[str, str]:
    """A method word and its epoch suffix: ``("freeat", "9")`` of ``freeat@9``, ``("freelb",
    "")`` of ``freelb``."""
    word, _, epochs = method.partition("@")
    return word, epochs


def method_name(method: str) -> str:
    """The method (or preset) a table's method word trains: ``freelb`` of ``freelb+carl``,
    ``freeat`` of ``freeat@9``."""
    return split_epochs(method)[0].partition("+")[0]


def train_command(args, dataset: str, method: str, seed: int, options: dict,
                  resume: bool = False) -> list[str]:
    """``method`` is a method name or ``method+objective`` (``freelb+carl``); ``+vda`` is VDA
    added to the method (``--augment vda``, paper 003's FreeLB_VDA and SMART_VDA); a preset's
    name (``robust``) trains its method with ``--preset``.  A suffix ``@E`` trains that row for
    E epochs instead of ``--epochs`` (``freeat@9``: FreeAT divides its epochs by its 3 replays,
    so 9 gives it as many passes over the data as the others get at 3).  ``resume`` continues
    the run's interrupted staging folder (``--resume``) instead of starting it again
    (``--overwrite``)."""
    trained, epochs = split_epochs(method)
    name, _, objective = trained.partition("+")
    chosen = ["--preset", name] if name in PRESETS else ["--method", name]
    augment = ["--augment", "vda"] if objective == "vda" else []
    objective = "" if objective == "vda" else objective
    command = [
        sys.executable, "-m", "advembed.cli", "train",
        "--dataset", dataset, "--model", args.model, *chosen, *augment,
        "--objective", objective or "ce",
        "--seed", str(seed), "--epochs", epochs or str(args.epochs),
        "--batch-size", str(args.batch_size),
        "--lr", str(args.lr), "--output", str(args.runs_dir / run_name(dataset, method, seed)),
        "--no-progress", "--resume" if resume else "--overwrite",
    ]
    if getattr(args, "task", "classification") != "classification":
        command += ["--task", args.task]
    if args.limit:
        command += ["--limit", str(args.limit)]
    if getattr(args, "text_column", None):
        command += ["--text-column", args.text_column]
    if args.max_steps:
        command += ["--max-steps", str(args.max_steps)]
    for keyword, value in args.objective_options.get(objective, {}).items():
        command += _flag_value(OBJECTIVE_FLAG[objective, keyword], value)
    for keyword, value in options.items():
        command += _flag_value(FLAG[keyword], value)
    return command


def interrupted(output: Path) -> bool:
    """Whether ``output`` has an interrupted run with a complete checkpoint to go on from
    (``advembed train`` keeps one in ``.NAME.partial`` when it is stopped)."""
    return has_checkpoint(output.parent / f".{output.name}.partial")


def run_one(args, dataset: str, method: str, seed: int, options: dict) -> tuple[str, int, float]:
    """Train one run, unless it finished before (``--rerun`` trains it again).  A run stopped
    after its first checkpoint (a killed job, a machine given back) goes on from it; if
    ``advembed train`` refuses to resume it (it was started with other settings), it starts
    again, and its log says why."""
    name = run_name(dataset, method, seed)
    if (args.runs_dir / name / "metrics.json").is_file() and not args.rerun:
        return name, 0, 0.0
    log = args.runs_dir / f"{name}.log"
    started = time.perf_counter()
    env = os.environ | {"PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get(
        "PYTHONPATH", "")}
    resume = not args.rerun and interrupted(args.runs_dir / name)
    with log.open("w") as handle:
        code = subprocess.call(train_command(args, dataset, method, seed, options, resume),
                               stdout=handle, stderr=subprocess.STDOUT, env=env)
    if resume and code != 0 and "the interrupted run" in log.read_text(errors="replace"):
        with log.open("a") as handle:
            handle.write("quality.py: the interrupted run cannot go on; starting it again\n")
            handle.flush()
            code = subprocess.call(train_command(args, dataset, method, seed, options),
                                   stdout=handle, stderr=subprocess.STDOUT, env=env)
    return name, code, time.perf_counter() - started


def recorded_settings(config: dict) -> str:
    """The objective settings a run recorded, as one JSON string.

    Runs record every setting, defaults included, as ``objective_settings``.  Runs made
    before that key existed recorded only the options given explicitly; their defaults
    cannot be inferred from today's code (RAR's reconstructor rate default changed), so
    they are marked as such rather than guessed.
    """
    if "objective_settings" in config:
        return json.dumps(config["objective_settings"], sort_keys=True)
    explicit = json.dumps(config.get("objective_options", {}), sort_keys=True)
    return f"{explicit} (explicit options only; older run, defaults not recorded)"


def recorded_method_settings(config: dict) -> str:
    """The method settings a run trained with, as one JSON string.

    Runs record every effective setting as ``method_settings`` (an objective's overrides
    included: FGM runs at ε = 0.03 under ATCL).  For runs made before that key existed, the
    settings are derived from the code's defaults, the objective's overrides and the run's
    explicit options, and marked as derived; a setting added since then reads as what such
    runs did (its ``legacy`` value: SMART's ``norm`` l2), not as today's default."""
    if "method_settings" in config:
        return json.dumps(config["method_settings"], sort_keys=True)
    objective = OBJECTIVES.get(config.get("objective", "ce"))
    chosen = method_settings(config.get("method", "none"), config.get("method_options"),
                             objective=objective)
    derived = chosen.as_dict()
    for field in dataclasses.fields(chosen):
        meta = field.metadata.get(META_KEY)
        if meta is not None and field.name in derived:
            derived[field.name] = meta.recorded(config.get("method_options") or {}, field.name,
                                                derived[field.name])
    return f"{json.dumps(derived, sort_keys=True)} (derived: the run predates recorded settings)"


POINT_METRICS = {"accuracy", "f1", "precision", "recall"}


def plain_of(method: str) -> str | None:
    """The plain run a row's Δ pairs with: ``none`` trained as long (``none@9`` for
    ``freeat@9``, ``none`` for ``freelb``); ``none@E`` itself against ``none`` (what E epochs
    give plain training); ``none`` against nothing."""
    word, suffix = split_epochs(method)
    if method == "none":
        return None
    return "none" if word == "none" or not suffix else f"none@{suffix}"


def method_row(args, dataset: str, method: str, metrics: dict[int, dict],
               plain: dict[int, float] | None) -> str:
    """One table row from ``metrics`` (seed → a run's ``metrics.json``).  ``plain``: the test
    figure by seed of the plain runs ``plain_of(method)`` names; the Δ column is
    ``method − plain`` paired by seed (the two runs of a seed share data order and initial
    head) as mean ± std over the seeds both have, in points for a fraction-valued metric
    (accuracy, F1), raw otherwise (perplexity)."""
    runs = list(metrics.values())
    dev = [m["best_dev"][args.metric] for m in runs]
    test = {seed: m["test"][args.metric] for seed, m in metrics.items()}
    scale = 100.0 if args.metric in POINT_METRICS else 1.0
    if plain:
        delta = mean_std(paired_points(test, plain, scale=scale), digits=2, signed=True,
                         of=len(test))
    else:  # plain itself has no Δ; a method without plain runs says so
        delta = "" if plain_of(method) is None else f"no {plain_of(method)} runs"
    seconds = statistics.mean(m["train"]["seconds"] for m in runs)
    collapsed = sum(bool(m.get("collapsed")) for m in runs)
    return (f"| {dataset} | {method} | {len(runs)} | {mean_std(dev)} | "
            f"{mean_std(list(test.values()))} | {delta} | {seconds:.0f} | {collapsed} |")


def same_data(dataset: str, fingerprints: dict[str, dict | None]) -> dict | None:
    """The one ``data_sha256`` the runs of ``dataset`` recorded (run name → its value; runs
    from before it was recorded are unknown, not different); exits in one line naming two
    runs that saw different data (a rebuilt dataset), which no table may average together."""
    known = {name: value for name, value in fingerprints.items() if value}
    versions: dict[str, str] = {}
    for name, value in sorted(known.items()):
        versions.setdefault(json.dumps(value, sort_keys=True), name)
    if len(versions) > 1:
        first, second = list(versions.values())[:2]
        raise SystemExit(f"quality.py: runs of {dataset} saw different data (data_sha256 in "
                         f"config.json): {first} and {second}; put runs of one version of the "
                         "dataset in a table")
    return next(iter(known.values()), None)


def check_reused(args, folder: Path) -> None:
    """A search reuses a finished run of its grid point: one trained with another lr, batch
    size, epochs, ``--limit`` or ``--max-steps`` (a smoke test's, in a shared runs folder)
    exits in one line instead of being scored as this search's point."""
    config = json.loads((folder / "config.json").read_text())
    for key in ("lr", "batch_size", "epochs", "limit", "max_steps"):
        want, got = getattr(args, key, None), config.get(key)
        same = (want is None and got is None) or (
            want is not None and got is not None and math.isclose(float(want), float(got)))
        if not same:
            raise SystemExit(f"{folder} was trained with {key} {got}, not this search's {want}: "
                             "give another --runs-dir, or delete it to train it again")


def check_recipe(args, method: str, name: str, config: dict) -> None:
    """A run whose lr or batch size (or epochs, for a method without ``@E``) is not the
    header's exits in one line: the table is matched by run names, and would otherwise
    average it in under a header it did not train with.  (The model is not compared: a
    device copy of the default model is recorded under its folder's name.)"""
    expected = {"lr": args.lr, "batch_size": args.batch_size}
    if "@" not in method:
        expected["epochs"] = args.epochs
    for key, value in expected.items():
        if key in config and not math.isclose(float(config[key]), float(value)):
            raise SystemExit(f"quality.py: run {name} trained with {key} {config[key]}, not "
                             f"the {value} this table's header states; give its options or "
                             "another --runs-dir")


def load_runs(args, dataset: str, methods_used: dict, recorded: dict,
              fingerprints: dict | None = None, sizes: dict | None = None) -> dict[str, dict]:
    """Every finished run of ``dataset``: method → seed → its ``metrics.json``; the settings
    each run trained with are collected into ``methods_used`` and ``recorded``, its data's
    fingerprint (``data_sha256``) into ``fingerprints`` and its ``split_sizes`` into
    ``sizes``, by run name."""
    found: dict[str, dict] = {}
    for method in args.methods:
        for seed in args.seeds:
            path = args.runs_dir / run_name(dataset, method, seed) / "metrics.json"
            if path.is_file():
                found.setdefault(method, {})[seed] = json.loads(path.read_text())
                config = json.loads((path.parent / "config.json").read_text())
                check_recipe(args, method, path.parent.name, config)
                if fingerprints is not None:
                    fingerprints[path.parent.name] = config.get("data_sha256")
                if sizes is not None:
                    sizes[path.parent.name] = config.get("split_sizes")
                methods_used.setdefault(method, set()).add(recorded_method_settings(config))
                if config.get("objective", "ce") != "ce":
                    recorded.setdefault(method, set()).add(recorded_settings(config))
    return found


def reference_rows(args, dataset: str, data_sha256: dict | None,
                   sizes: dict[str, dict | None]) -> list[str]:
    """The reference rows, only where they score the splits the runs were scored on: the
    runs' ``data_sha256`` must match today's build, or for runs from before it was recorded
    their ``split_sizes``; none under ``--limit`` (each run drew its own subset)."""
    if args.limit:
        print(f"quality.py: no reference rows for {dataset} under --limit (each run drew "
              "its own subset of the splits)", file=sys.stderr)
        return []
    if data_sha256 is not None:
        return reference_lines(dataset, args.metric, expected=data_sha256)
    recorded = {json.dumps(value, sort_keys=True) for value in sizes.values() if value}
    if len(recorded) != 1 or not all(sizes.values()):
        raise SystemExit(f"quality.py: the runs of {dataset} record no data_sha256 and "
                         f"{'different' if len(recorded) > 1 else 'not all their'} "
                         "split_sizes: no reference rows, which could score other splits")
    return reference_lines(dataset, args.metric, expected_sizes=json.loads(recorded.pop()))


def aggregate(args) -> str:
    rows = []
    recorded: dict[str, set[str]] = {}
    methods_used: dict[str, set[str]] = {}
    for dataset in args.datasets:
        fingerprints: dict[str, dict | None] = {}
        sizes: dict[str, dict | None] = {}
        found = load_runs(args, dataset, methods_used, recorded, fingerprints, sizes)
        # with --limit the runs saw a subset: the reference rows (whole splits) do not apply
        data_sha256 = None if args.limit else same_data(dataset, fingerprints)
        rows_before = len(rows)
        for method, metrics in found.items():
            plain = {seed: m["test"][args.metric]
                     for seed, m in found.get(plain_of(method), {}).items()}
            rows.append(method_row(args, dataset, method, metrics, plain))
        if args.reference and len(rows) > rows_before:
            rows += reference_rows(args, dataset, data_sha256, sizes)
    suffixed = any("@" in m for m in args.methods)
    header = [
        "# Results: plain fine-tuning vs adversarial methods",
        "",
        "Generated by `python benchmarks/quality.py "
        + " ".join(sys.argv[1:]) + "`; do not edit by hand.",
        "",
        f"Model `{args.model}`, {args.epochs:g} epochs"
        + (" (a method written `m@E`: E epochs)" if suffixed else "")
        + f", batch {args.batch_size}, lr {args.lr:g}, "
        f"seeds {', '.join(map(str, args.seeds))}"
        + (f", at most {args.limit} examples per split" if args.limit else "")
        + (f", task {args.task}" if args.task != "classification" else "")
        + f". {args.metric.capitalize()} as mean ± sample std (n − 1) over seeds, collapsed "
        "runs included (counted in the last column); Δ test is the method's test "
        f"{args.metric} minus plain (`none`)'s on the same dataset and seed, mean ± std over "
        "the seeds both have" + (", in points" if args.metric in POINT_METRICS else "")
        + ("; a row `m@E` pairs with `none@E` (as many epochs), `none@E` with `none`"
           if suffixed else "")
        + "; time is mean training seconds per run.",
        f"Machine: {args.machine or platform.processor() or platform.machine()}.",
        "",
        f"| dataset | method | seeds | dev {args.metric} | test {args.metric} | Δ test | train s "
        "| collapsed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    footer = ["", "Rows in italics: predictors that train no network (`--reference`, "
              "`benchmarks/qa_reference.py`), on the same splits."] if args.reference else []
    footer += ["", "Hyper-parameters of each method, as its runs trained with:", ""]
    footer += [f"- `{m}`: {' / '.join(sorted(v))}" for m, v in methods_used.items()]
    footer += [f"- `{m}` objective settings, as each run recorded: "
               f"{' / '.join(sorted(v))}" for m, v in recorded.items()]
    return "\n".join(header + rows + footer) + "\n"


START, END = "<!-- results:start -->", "<!-- results:end -->"


def update_readme(path: Path, table: str) -> None:
    """Replace the text between the results markers of ``path`` with ``table``."""
    replace_block(path, START, END, table.split("\n", 2)[2])  # without the page title


def add_search_arguments(parser: argparse.ArgumentParser, *, epochs: float = 3.0) -> None:
    """The training options of a one-dataset, one-seed search over grid points
    (``search_defaults.py``, ``search_robust.py``, ``vda_curves.py``), with the defaults
    ``quality.py``'s runs use."""
    parser.add_argument("--dataset", default="mr")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--model", default="default")
    parser.add_argument("--epochs", type=float, default=epochs)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--limit", type=int, help="at most this many examples per split "
                        "(a smoke test; published searches use the whole dataset)")
    parser.add_argument("--max-steps", type=int, help="stop each run after this many steps")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["mr", "cr"])
    parser.add_argument("--methods", nargs="+", default=DEFAULT_METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[13, 14, 15])
    parser.add_argument("--model", default="default")
    parser.add_argument("--task", default="classification", help="advembed train --task")
    parser.add_argument("--metric", default="accuracy",
                        help="the metric of the table (qa-matching: f1; lm: perplexity)")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "quality")
    parser.add_argument("--out", type=Path,
                        help="write the table to this file (the main one: docs/results.md); "
                             "without it the table is only printed, so a run for a few "
                             "methods never overwrites another table")
    parser.add_argument("--method-options", type=json.loads, default={})
    parser.add_argument("--objective-options", type=json.loads, default={},
                        help='JSON, e.g. {"rar": {"lr": 0.001}}')
    parser.add_argument("--machine", help="description of the machine for the table")
    parser.add_argument("--readme", type=Path,
                        help="also replace the table between the results markers of this file")
    parser.add_argument("--aggregate-only", action="store_true")
    parser.add_argument("--reference", action="store_true",
                        help="qa-matching: add rows for predictors that train no network "
                             "(every reply answers; TF-IDF cosine, threshold on dev)")
    parser.add_argument("--rerun", action="store_true", help="retrain finished runs")
    args = parser.parse_args()
    for method in args.methods:
        word, epochs = split_epochs(method)
        if "@" in method and not epochs.replace(".", "", 1).isdigit():
            parser.error(f"--methods {method}: the epochs after @ must be a number, like "
                         f"{word}@9")
    if args.reference and args.task != "qa-matching":
        parser.error(f"--reference has rows for --task qa-matching only, not {args.task}")
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    if not args.aggregate_only:
        # Seed-major order: if the run is cut short, every method still has its first seeds.
        jobs = [(d, m, s) for s in args.seeds for d in args.datasets for m in args.methods]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(run_one, args, d, m, s,
                                   args.method_options.get(method_name(m), {}))
                       for d, m, s in jobs]
            for future in futures:
                name, code, seconds = future.result()
                status = "ok" if code == 0 else f"FAILED ({code}); see {name}.log"
                print(f"{name}: {status} {seconds:.0f} s", flush=True)
    table = aggregate(args)
    if args.out:
        write_atomic(args.out, table)
    if args.readme:
        update_readme(args.readme, table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
