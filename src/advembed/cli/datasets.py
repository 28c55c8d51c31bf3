"""``advembed datasets``: the named datasets with their split sizes and labels."""

from __future__ import annotations

import argparse

NAME = "datasets"


def add(sub) -> None:
    sub.add_parser(NAME, help="list the named datasets with split sizes and labels")


def run(args: argparse.Namespace) -> int:
    from advembed.data import describe_datasets

    print(describe_datasets())
    return 0
