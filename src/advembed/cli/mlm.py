"""``advembed mlm build``: the English masked LM of VDA and BERT-Attack/BAE (see
:mod:`advembed.mlm.build`)."""

from __future__ import annotations

import argparse
import json

from advembed.cli.options import add_settings, chosen

NAME = "mlm"


def add(sub) -> None:
    from advembed.mlm.build import MLMBuildSettings

    p = sub.add_parser(NAME, help="build the masked LM used by VDA and bert-attack/bae",
                       description="Masked-LM tools.")
    actions = p.add_subparsers(dest="mlm_action", metavar="ACTION", parser_class=type(p))
    actions.required = True
    build = actions.add_parser(
        "build", help="train the packaged MiniLM as a masked LM (resumable)",
        description="Masked-LM training of every layer of the packaged MiniLM on the training "
        "splits' sentences; a rerun continues an interrupted build.")
    add_settings(build, [MLMBuildSettings])


def run(args: argparse.Namespace) -> int:
    from advembed.mlm.build import MLMBuildSettings, build_mlm

    settings = MLMBuildSettings(**chosen(args, MLMBuildSettings))
    metrics = build_mlm(settings)
    print(f"masked LM in {settings.output_dir()}: held-out top-1 {metrics['top1']:.4f}, "
          f"top-10 {metrics['top10']:.4f} (most frequent token: "
          f"{metrics['frequency_baseline_top1']:.4f})")
    print(json.dumps({k: metrics[k] for k in ("top1", "top10", "frequency_baseline_top1",
                                              "held_out_sentences")}))
    return 0
