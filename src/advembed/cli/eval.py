"""``advembed eval``: re-evaluate a saved run on a split of its own or another dataset."""

from __future__ import annotations

import argparse
import json

from advembed.cli.options import (
    add_data_group,
    add_run_argument,
    add_settings,
    chosen,
    data_options,
)

NAME = "eval"


def add(sub) -> None:
    from advembed.evaluation.settings import EvalSettings

    p = sub.add_parser(NAME, help="re-evaluate a saved run")
    add_run_argument(p)
    add_settings(p, [EvalSettings])
    p.add_argument("--json", action="store_true", help="print JSON only")
    add_data_group(p)


def run(args: argparse.Namespace) -> int:
    from advembed.evaluation import evaluate_run
    from advembed.evaluation.settings import EvalSettings

    settings = EvalSettings(**chosen(args, EvalSettings))
    result = evaluate_run(args.run, data=data_options(args), split=settings.split,
                          batch_size=settings.batch_size)
    if args.json:
        print(json.dumps(result))
        return 0
    from advembed.evaluation import run_task
    from advembed.runs import read_run

    config = read_run(args.run)[0]
    labels = run_task(config).metric_labels
    shown = ", ".join(f"{labels.get(key, key)} {value:.4f}" for key, value in result.items()
                      if key not in ("dataset", "split", "examples") and isinstance(value, float))
    print(f"{result['dataset']} {result['split']} ({result['examples']} examples): {shown}")
    signature = result.get("bleu_signature")  # sacrebleu's, as BLEU scores are to be reported
    if signature:
        print(f"BLEU signature: {signature}")
    return 0
