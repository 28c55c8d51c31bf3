"""``advembed reconstruct``: RAR's decoded adversarial samples (paper 001, Table 6)."""

from __future__ import annotations

import argparse
from pathlib import Path

from advembed.cli.options import (
    add_data_group,
    add_run_argument,
    add_settings,
    chosen,
    data_options,
)

NAME = "reconstruct"


def add(sub) -> None:
    from advembed.evaluation.settings import ReconstructSampleSettings, ReconstructSettings

    p = sub.add_parser(NAME, help="RAR: decode k-PGD adversarial states of dev sentences into "
                       "text")
    add_run_argument(p, "run trained with --objective rar")
    add_settings(p, [ReconstructSampleSettings])
    add_data_group(p)
    add_settings(p.add_argument_group("the k-PGD attack"), [ReconstructSettings])
    p.add_argument("--out", type=Path, help="JSONL output (default RUN/reconstruct-SPLIT.jsonl)")


def run(args: argparse.Namespace) -> int:
    from advembed.evaluation.reconstruct import reconstruct_run
    from advembed.evaluation.settings import ReconstructSampleSettings, ReconstructSettings

    summary = reconstruct_run(
        args.run, data=data_options(args), out=args.out,
        settings=ReconstructSettings(**chosen(args, ReconstructSettings)),
        sample=ReconstructSampleSettings(**chosen(args, ReconstructSampleSettings)))
    print(
        f"{summary['examples']} samples: {summary['flipped']} flip the prediction "
        f"({100 * summary['flip_rate']:.1f}%), {summary['adversarial']} of the "
        f"{summary['originally_correct']} correctly classified become misclassified, "
        f"{100 * summary['mean_changed_tokens']:.1f}% of tokens changed; written to "
        f"{summary['out']} ({summary['seconds']:.0f} s)"
    )
    return 0
