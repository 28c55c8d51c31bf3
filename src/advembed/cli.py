"""The ``advembed`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from advembed.errors import AdvembedError


class _Parser(argparse.ArgumentParser):
    """``ArgumentParser`` whose errors are one line: ``advembed <cmd>: error: ...``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got '{text}'") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got '{text}'")
    return value


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got '{text}'")
    return value


def _add_column_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text-column", help="text column of a CSV/TSV/JSONL file")
    parser.add_argument("--text-pair-column", help="second-sentence column (sentence pairs)")
    parser.add_argument("--label-column", help="label column of a CSV/TSV/JSONL file")


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="fine-tune a classifier (plain or adversarial)",
        description="Fine-tune a model on a dataset; with no options, the packaged MiniLM on mr.",
    )
    p.add_argument("--dataset", default="mr", help="named dataset, file, GLUE dir or hf:NAME")
    p.add_argument("--model", default="default", help="'default', a local dir or a hub name")
    p.add_argument("--output", help="run directory (default runs/DATASET-METHOD-sSEED)")
    p.add_argument("--epochs", type=_positive_float, default=3.0)
    p.add_argument("--batch-size", type=_positive_int, default=32)
    p.add_argument("--eval-batch-size", type=_positive_int, default=64)
    p.add_argument("--lr", type=_positive_float, default=2e-5)
    p.add_argument("--weight-decay", type=_nonnegative_float, default=0.01)
    p.add_argument("--warmup-ratio", type=_nonnegative_float, default=0.1)
    p.add_argument("--max-length", type=_positive_int, default=128)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--split-seed", type=int, default=2024, help="seed of the train/dev/test split")
    p.add_argument("--max-steps", type=_positive_int, help="cap the number of training steps")
    p.add_argument("--limit", type=_positive_int, help="cap the examples taken from each split")
    p.add_argument("--gradient-accumulation-steps", type=_positive_int, default=1)
    p.add_argument("--no-group-by-length", action="store_true", help="plain random batches")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("--keep-checkpoints", action="store_true", help="keep Trainer checkpoints")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_column_options(p)
    _add_method_options(p)


def _add_method_options(p: argparse.ArgumentParser) -> None:
    from advembed.methods import add_method_arguments

    add_method_arguments(p)


def _cmd_train(args: argparse.Namespace) -> int:
    from advembed.methods import method_options_from_args, objective_options_from_args
    from advembed.train import TrainConfig, run_training

    method_options = method_options_from_args(args)
    config = TrainConfig(
        dataset=args.dataset,
        model=args.model,
        output=args.output,
        epochs=args.epochs,
        batch_size=args.batch_size,
        eval_batch_size=args.eval_batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio,
        max_length=args.max_length,
        seed=args.seed,
        split_seed=args.split_seed,
        max_steps=args.max_steps,
        limit=args.limit,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        group_by_length=not args.no_group_by_length,
        text_column=args.text_column,
        text_pair_column=args.text_pair_column,
        label_column=args.label_column,
        method=args.method,
        method_options=method_options,
        objective=args.objective,
        objective_options=objective_options_from_args(args),
        overwrite=args.overwrite,
        keep_checkpoints=args.keep_checkpoints,
        progress=not args.no_progress,
    )
    metrics = run_training(config)
    output = config.output_dir()
    best, test = metrics["best_dev"], metrics["test"]
    print(
        f"run {output}: dev accuracy {best['accuracy']:.4f}, test accuracy {test['accuracy']:.4f},"
        f" test macro-F1 {test['macro_f1']:.4f} ({metrics['train']['seconds']:.0f} s training)"
    )
    return 0


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="re-evaluate a saved run")
    p.add_argument("--run", required=True, type=Path, help="run directory")
    p.add_argument("--dataset", help="evaluate on another dataset (default: the run's)")
    p.add_argument("--split", default="test", help="train, dev or test (default test)")
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument("--json", action="store_true", help="print JSON only")
    _add_column_options(p)


def _cmd_eval(args: argparse.Namespace) -> int:
    from advembed.train import evaluate_run

    result = evaluate_run(
        args.run,
        dataset=args.dataset,
        split=args.split,
        batch_size=args.batch_size,
        text_column=args.text_column,
        text_pair_column=args.text_pair_column,
        label_column=args.label_column,
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['dataset']} {result['split']} ({result['examples']} examples): "
            f"accuracy {result['accuracy']:.4f}, macro-F1 {result['macro_f1']:.4f}"
        )
    return 0


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="label one text (or a text pair) with a saved run")
    p.add_argument("--run", required=True, type=Path, help="run directory")
    p.add_argument("text", help="the text to classify")
    p.add_argument("--pair", help="second sentence, for sentence-pair runs")
    p.add_argument("--json", action="store_true", help="print JSON only")


def _cmd_predict(args: argparse.Namespace) -> int:
    import torch

    from advembed.data import Example
    from advembed.inference import predict_logits
    from advembed.models import load_saved_classifier
    from advembed.runs import MODEL_DIR, read_run

    config, _ = read_run(args.run)
    if not args.text.strip():
        raise AdvembedError("the text to classify is empty")
    if config.get("is_pair") and args.pair is None:
        raise AdvembedError("this run classifies sentence pairs: pass the second one with --pair")
    loaded = load_saved_classifier(Path(args.run) / MODEL_DIR)
    example = Example(text=args.text, label=0, text_pair=args.pair)
    logits = predict_logits(
        loaded.model, loaded.tokenizer, [example], max_length=config.get("max_length", 128)
    )
    probabilities = torch.softmax(torch.from_numpy(logits[0]), dim=-1).tolist()
    names = config["label_names"]
    best = max(range(len(names)), key=lambda i: probabilities[i])
    if args.json:
        spread = dict(zip(names, probabilities, strict=True))
        print(json.dumps({"label": names[best], "probabilities": spread}))
    else:
        spread = " ".join(f"{n}={p:.4f}" for n, p in zip(names, probabilities, strict=True))
        print(f"{names[best]}\t{spread}")
    return 0


def _add_attack(sub) -> None:
    p = sub.add_parser("attack", help="robustness of a saved run: pgd, vulnerability, "
                       "pwws, bert-attack, bae")
    p.add_argument("--run", required=True, type=Path, help="run directory")
    p.add_argument("--attack", required=True,
                   help="pgd, vulnerability (embedding space) or pwws, bert-attack, bae (words)")
    p.add_argument("--dataset", help="dataset (default: the run's)")
    p.add_argument("--split", default="test")
    p.add_argument("--n-examples", type=_positive_int, default=1000,
                   help="seeded sample size (default 1000, or the whole split if smaller)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample")
    p.add_argument("--epsilons", type=_nonnegative_float, nargs="+", default=[0.02, 0.075, 0.1],
                   help="pgd: perturbation radii")
    p.add_argument("--steps", type=_positive_int, default=3, help="pgd: steps k")
    p.add_argument("--alpha-ratio", type=_positive_float, default=0.5,
                   help="pgd: step size as a fraction of ε")
    p.add_argument("--norm", default="l2", help="l2 or linf")
    p.add_argument("--epsilon", type=_nonnegative_float, default=0.02,
                   help="vulnerability: FGSM strength ε")
    p.add_argument("--batch-size", type=_positive_int, default=32,
                   help="examples (pgd, vulnerability) or queries (word attacks) per forward")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    words = p.add_argument_group("word-substitution attacks (pwws, bert-attack, bae)")
    words.add_argument("--mlm", help="bert-attack/bae: masked LM proposing the candidates "
                       "(local folder or hub name)")
    words.add_argument("--max-candidates", type=_positive_int,
                       help="bert-attack/bae: candidates per word (default 8 / 50)")
    words.add_argument("--max-perturbed", type=_positive_float,
                       help="budget: largest fraction of words changed (default 0.4)")
    words.add_argument("--min-similarity", type=float,
                       help="bert-attack/bae: least cosine similarity to the original "
                       "(default 0.2 / 0.936)")
    words.add_argument("--similarity-model", default="default",
                       help="sentence encoder for --min-similarity, or 'none' (default: the "
                       "packaged MiniLM)")
    words.add_argument("--query-budget", type=_positive_int,
                       help="largest number of model queries per example (default: none)")


def _cmd_attack(args: argparse.Namespace) -> int:
    from advembed.attack import run_attack
    from advembed.word_attack import WORD_ATTACKS, WordAttackOptions

    summary = run_attack(args.run, args.attack, dataset=args.dataset, split=args.split,
                         n_examples=args.n_examples, seed=args.seed,
                         epsilons=tuple(args.epsilons), steps=args.steps,
                         alpha_ratio=args.alpha_ratio, norm=args.norm,
                         vulnerability_epsilon=args.epsilon, batch_size=args.batch_size,
                         word_options=WordAttackOptions(
                             attack=args.attack, mlm=args.mlm,
                             max_candidates=args.max_candidates,
                             max_perturbed=args.max_perturbed,
                             min_similarity=args.min_similarity,
                             similarity_model=args.similarity_model,
                             query_budget=args.query_budget, batch_size=args.batch_size),
                         progress=not args.no_progress)
    print(f"{args.attack} on {summary['examples']} {summary['split']} examples "
          f"({summary['seconds']:.0f} s); written to {args.run}/attack-{args.attack}.json")
    if args.attack == "pgd":
        print(f"{'epsilon':>8} {'accuracy':>9} {'cosine':>8} {'euclidean':>10}")
        for row in summary["results"]:
            print(f"{row['epsilon']:>8g} {row['accuracy']:>9.4f} {row['cosine']:>8.4f} "
                  f"{row['euclidean']:>10.4f}")
    elif args.attack in WORD_ATTACKS:
        print(f"original accuracy {summary['original_accuracy']:.4f}, "
              f"attack accuracy {summary['attack_accuracy']:.4f}, "
              f"success rate {summary['success_rate']:.4f}, "
              f"mean queries {summary['mean_queries']:.1f}, "
              f"perturbed words {summary['mean_perturbed_percent']:.2f}%, "
              f"flips confirmed by re-scoring {summary['confirmed_flips']}/"
              f"{summary['successful']}")
    else:
        print(f"ROC AUC of the label from vulnerability: {json.dumps(summary['auc'])}")
        for label, stats in summary["per_label"].items():
            f1, f2 = stats["F1"]["mean"], stats["F2"]["mean"]
            print(f"  {label}: mean F1 {f1:.4f}, mean F2 {f2:.4f}")
    return 0


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="compare runs side by side: HTML + Markdown with plots")
    p.add_argument("runs", nargs="+", type=Path, help="run directories")
    p.add_argument("--out", type=Path, required=True,
                   help="output directory for report.html, report.md and the plots")


def _cmd_report(args: argparse.Namespace) -> int:
    from advembed.report import write_report

    for path in write_report(args.runs, args.out):
        print(path)
    return 0


def _add_reconstruct(sub) -> None:
    p = sub.add_parser("reconstruct",
                       help="RAR: decode k-PGD adversarial states of dev sentences into text")
    p.add_argument("--run", required=True, type=Path, help="run trained with --objective rar")
    p.add_argument("--dataset", help="dataset (default: the run's)")
    p.add_argument("--split", default="dev")
    p.add_argument("--n-examples", type=_positive_int, default=200)
    p.add_argument("--epsilon", type=_nonnegative_float, default=0.1, help="PGD radius (L2)")
    p.add_argument("--alpha", type=_positive_float, default=0.05, help="PGD step size")
    p.add_argument("--steps", type=_positive_int, default=3, help="PGD steps k")
    p.add_argument("--out", type=Path, help="JSONL output (default RUN/reconstruct-SPLIT.jsonl)")


def _cmd_reconstruct(args: argparse.Namespace) -> int:
    from advembed.reconstruct import reconstruct_run

    summary = reconstruct_run(args.run, dataset=args.dataset, split=args.split,
                              n_examples=args.n_examples, epsilon=args.epsilon,
                              alpha=args.alpha, steps=args.steps, out=args.out)
    print(
        f"{summary['examples']} samples: {summary['flipped']} flip the prediction "
        f"({100 * summary['flip_rate']:.1f}%), {summary['adversarial']} of the "
        f"{summary['originally_correct']} correctly classified become misclassified, "
        f"{100 * summary['mean_changed_tokens']:.1f}% of tokens changed; written to "
        f"{summary['out']} ({summary['seconds']:.0f} s)"
    )
    return 0


def _add_datasets(sub) -> None:
    sub.add_parser("datasets", help="list the named datasets with split sizes and labels")


def _cmd_datasets(args: argparse.Namespace) -> int:
    from advembed.data import describe_datasets

    print(describe_datasets())
    return 0


COMMANDS = {
    "train": _cmd_train,
    "eval": _cmd_eval,
    "predict": _cmd_predict,
    "datasets": _cmd_datasets,
    "reconstruct": _cmd_reconstruct,
    "attack": _cmd_attack,
    "report": _cmd_report,
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="advembed",
        description="Robust fine-tuning by adversarial training in the embedding space.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for add in (_add_train, _add_eval, _add_predict, _add_attack, _add_reconstruct,
                _add_report, _add_datasets):
        add(sub)
    return parser


def _version() -> str:
    from advembed import __version__

    return f"advembed {__version__}"


def _stop_cleanly_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt so staged run folders are removed on the way out."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    _stop_cleanly_on_sigterm()
    try:
        return COMMANDS[args.command](args)
    except AdvembedError as exc:
        print(f"advembed {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("advembed: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
