"""``advembed predict``: a saved run's answer for one text (or text pair)."""

from __future__ import annotations

import argparse
import json

from advembed.cli.options import add_run_argument
from advembed.errors import AdvembedError

NAME = "predict"
ALIASES = {"generate": "lm", "translate": "translation"}  # the same command, for that task only


def add(sub) -> None:
    p = sub.add_parser(NAME, aliases=list(ALIASES),
                       help="label one text (or a text pair) with a saved run; on a language-"
                       "model run (--task lm) continue it, on a translation run translate it "
                       "(also as `advembed generate` / `advembed translate`)")
    add_run_argument(p)
    p.add_argument("text", help="the text to classify")
    p.add_argument("--pair", help="second sentence, for sentence-pair runs")
    p.add_argument("--json", action="store_true", help="print JSON only")


def run(args: argparse.Namespace) -> int:
    from advembed.evaluation import run_task
    from advembed.evaluation.runs import open_run_model
    from advembed.runs import read_run

    config, _ = read_run(args.run)
    task = run_task(config)
    wanted = ALIASES.get(args.command)
    if wanted is not None and task.name != wanted:
        raise AdvembedError(f"run '{args.run}' is a {task.name} run: `advembed {args.command}` "
                            f"needs a --task {wanted} run (`advembed predict` takes any)")
    task.check_run_config(config, args.run)
    task.check_input(args.text, args.pair, config)  # before the model loads
    loaded = open_run_model(args.run, config)
    answer = task.predict(loaded, args.text, args.pair, config)
    if args.json:
        print(json.dumps(answer))
        return 0
    if "continuation" in answer:  # a language model continues the prompt
        print(f"{answer['prompt']}{answer['continuation']}")
        return 0
    if "translation" in answer:
        print(answer["translation"])
        return 0
    spread = " ".join(f"{n}={p:.4f}" for n, p in answer.get("probabilities", {}).items())
    if "threshold" in answer:  # QA matching decides by its dev threshold, not the argmax
        spread += f" (answer where P(answer) >= {answer['threshold']:.4f})"
    print(f"{answer['label']}\t{spread}".rstrip())
    return 0
