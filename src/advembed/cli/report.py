"""``advembed report``: compare finished runs side by side (HTML + Markdown with plots)."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "report"


def add(sub) -> None:
    p = sub.add_parser(NAME, help="compare runs side by side: HTML + Markdown with plots")
    p.add_argument("runs", nargs="+", type=Path, help="run directories")
    p.add_argument("--out", type=Path, required=True,
                   help="output directory for report.html, report.md and the plots")


def run(args: argparse.Namespace) -> int:
    from advembed.report import write_report

    for path in write_report(args.runs, args.out):
        print(path)
    return 0
