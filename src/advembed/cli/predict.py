"""``advembed predict``: a saved run's answer for each text given (or one text pair); ``-``
reads the texts from standard input, one per line."""

from __future__ import annotations

import argparse
import json
import sys

from advembed.cli.options import add_run_argument
from advembed.errors import AdvembedError

NAME = "predict"
ALIASES = {"generate": "lm", "translate": "translation"}  # the same command, for that task only


HELP = {NAME: "label one text (or a text pair) with a saved run; on a language-model run "
        "(--task lm) continue it, on a translation run translate it (also as `advembed "
        "generate` / `advembed translate`)",
        "generate": "continue a prompt with a saved --task lm run (greedy)",
        "translate": "translate a text with a saved --task translation run (greedy)"}


def add(sub) -> None:
    # one parser per name (not argparse aliases): its usage and errors name the command typed
    for name in (NAME, *ALIASES):
        p = sub.add_parser(name, help=HELP[name])
        add_run_argument(p)
        p.add_argument("text", nargs="+", help="the text(s), one answer line each; '-' reads "
                       "them from standard input, one per line")
        if name == NAME:
            p.add_argument("--pair", help="second sentence, for sentence-pair runs (one text "
                           "only)")
        else:
            p.set_defaults(pair=None)
        p.add_argument("--json", action="store_true", help="print JSON only (one object a "
                       "line)")


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
    texts = texts_of(args.text)
    if args.pair is not None:
        utf8_or_error(args.pair, "--pair")
    if args.pair is not None and len(texts) != 1:
        raise AdvembedError(f"--pair goes with one text, not {len(texts)}")
    for text in texts:
        task.check_input(text, args.pair, config)  # before the model loads
    loaded = open_run_model(args.run, config)
    for text in texts:
        print(answer_line(task.predict(loaded, text, args.pair, config), args.json))
    return 0


def texts_of(given: list[str]) -> list[str]:
    """The texts of the command line, with ``-`` replaced by standard input's non-empty
    lines."""
    texts = []
    for text in given:
        if text == "-":
            texts += [line.rstrip("\r\n") for line in _stdin_lines() if line.strip()]
        else:
            texts.append(text)
    if not texts:
        raise AdvembedError("no text to predict (standard input was empty)")
    for number, text in enumerate(texts, 1):
        utf8_or_error(text, f"text {number}")
    return texts


def _stdin_lines() -> list[str]:
    """Standard input's lines, read as UTF-8 whatever the locale; one line of error else."""
    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
    if isinstance(data, str):
        return data.splitlines()
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise AdvembedError(f"standard input line {line} is not UTF-8 (byte "
                            f"0x{data[exc.start]:02x})") from None


def utf8_or_error(text: str, what: str) -> str:
    """``text`` if it is valid Unicode; a command-line argument with bytes that are not UTF-8
    arrives with surrogate escapes, which the tokenizer cannot take: one line naming it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        byte = ord(text[exc.start]) - 0xDC00 if 0xDC80 <= ord(text[exc.start]) <= 0xDCFF else None
        shown = f" (byte 0x{byte:02x})" if byte is not None else ""
        raise AdvembedError(f"{what} is not UTF-8{shown}") from None
    return text


def answer_line(answer: dict, as_json: bool) -> str:
    if as_json:
        return json.dumps(answer)
    if "continuation" in answer:  # a language model continues the prompt
        return f"{answer['prompt']}{answer['continuation']}"
    if "translation" in answer:
        return answer["translation"]
    spread = " ".join(f"{n}={p:.4f}" for n, p in answer.get("probabilities", {}).items())
    if "threshold" in answer:  # QA matching decides by its dev threshold, not the argmax
        spread += f" (answer where P(answer) >= {answer['threshold']:.4f})"
    return f"{answer['label']}\t{spread}".rstrip()
