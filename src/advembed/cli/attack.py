"""``advembed attack``: robustness of a saved run (embedding attacks and word substitutions)."""

from __future__ import annotations

import argparse
import json
import math

from advembed.cli.options import (
    add_data_group,
    add_run_argument,
    add_settings,
    chosen,
    data_options,
    refuse_foreign,
)

NAME = "attack"


def add(sub) -> None:
    from advembed.evaluation.settings import (
        PGDAttackSettings,
        SampleSettings,
        VulnerabilitySettings,
    )
    from advembed.evaluation.word_attack import WordAttackOptions

    p = sub.add_parser(NAME, help="robustness of a saved run: pgd, vulnerability, "
                       "pwws, bert-attack, bae")
    add_run_argument(p)
    p.add_argument("--attack", required=True,
                   help="pgd, vulnerability (embedding space) or pwws, bert-attack, bae (words)")
    add_settings(p, [SampleSettings])
    add_data_group(p)
    add_settings(p.add_argument_group("embedding attacks (pgd, vulnerability)"),
                 [PGDAttackSettings, VulnerabilitySettings])
    add_settings(p.add_argument_group("word-substitution attacks (pwws, bert-attack, bae)"),
                 [WordAttackOptions])


def run(args: argparse.Namespace) -> int:
    from advembed.evaluation.attack import SETTINGS, attack_settings, other_dataset, run_attack
    from advembed.evaluation.settings import SampleSettings
    from advembed.runs import attack_stem, read_run

    settings_cls = SETTINGS.get(args.attack)
    if settings_cls is not None:
        refuse_foreign(args, settings_cls, set(SETTINGS.values()))
    settings = attack_settings(args.attack, chosen(args, settings_cls) if settings_cls else {})
    sample = SampleSettings(**chosen(args, SampleSettings))
    data = data_options(args)
    summary = run_attack(args.run, args.attack, data=data, settings=settings, sample=sample)
    stem = attack_stem(args.attack, summary["split"], other_dataset(read_run(args.run)[0], data))
    print(f"{args.attack} on {summary['examples']} {summary['split']} examples "
          f"({summary['seconds']:.0f} s); written to {args.run}/{stem}.json")
    print(describe(args.attack, summary))
    return 0


def describe(attack: str, summary: dict) -> str:
    """The lines the command prints after an attack."""
    from advembed.evaluation.word_attack import WORD_ATTACKS

    if attack == "pgd":
        rows = [f"{'epsilon':>8} {'accuracy':>9} {'cosine':>8} {'euclidean':>10}"]
        rows += [f"{row['epsilon']:>8g} {row['accuracy']:>9.4f} {row['cosine']:>8.4f} "
                 f"{row['euclidean']:>10.4f}" for row in summary["results"]]
        return "\n".join(rows)
    if attack in WORD_ATTACKS:
        rescaled = ", ".join(f"T={t} {s['attack_accuracy']:.4f}"
                             for t, s in summary["temperatures"].items())
        perturbed = summary["mean_perturbed_percent"]
        perturbed = (f"{perturbed:.2f}%" if isinstance(perturbed, int | float)
                     and math.isfinite(perturbed) else "— (no successful attack)")
        return (f"on {summary['examples']} sampled examples at T = 1: original accuracy "
                f"{summary['original_accuracy']:.4f}, "
                f"attack accuracy {summary['attack_accuracy']:.4f}, "
                f"success rate {summary['success_rate']:.4f}, "
                f"mean queries {summary['mean_queries']:.1f}, "
                f"perturbed words {perturbed}, "
                f"flips confirmed by re-scoring {summary['confirmed_flips']}/"
                f"{summary['successful']}\n"
                f"with the logits rescaled (logits / T): {rescaled}; headline (the lowest) "
                f"{summary['attack_accuracy_rescaled']:.4f}")
    rows = [f"ROC AUC of the label from vulnerability: {json.dumps(summary['auc'])}"]
    for label, stats in summary["per_label"].items():
        rows.append(f"  {label}: mean F1 {stats['F1']['mean']:.4f}, "
                    f"mean F2 {stats['F2']['mean']:.4f}")
    for key, fit in summary.get("theorem1", {}).items():
        if "d" in fit:
            rows.append(f"Theorem 1 on {key} (n {fit['n']}, d {fit['d']:.3g}, sigma "
                        f"{fit['sigma']:.3g}): predicted accuracy "
                        f"{fit['predicted_accuracy']:.4f}, nearest-mean accuracy "
                        f"{fit.get('balanced_accuracy', fit['measured_accuracy']):.4f} with "
                        f"each label weighted equally as the theorem assumes, "
                        f"{fit['measured_accuracy']:.4f} as the labels occur")
    return "\n".join(rows)
