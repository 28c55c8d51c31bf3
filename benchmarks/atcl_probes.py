"""Paper 004's qualitative tables on our runs: nearest neighbours of anchor words (Table 3) and
outputs after one perturbed word (Table 4 for language models, Table 7 for translation).

Runs are given as ``LABEL=RUN`` (e.g. the baseline, "+Adv. only" and "+ATCL" runs of one
dataset and seed); the sentences are the first ``--sentences`` test examples of the first run
with at least ``--min-words`` words (for a language model, their first ``--prompt-words`` words
are the prompt).  Each run's model continues or translates each one clean and with its last
complete word FGM-perturbed (:func:`advembed.evaluation.probes.perturbed_generation`); the
mean perplexity each model gives its own perturbed outputs is the paper's summary number
(10.12 for its baseline against 8.77 for ATCL).

    python benchmarks/atcl_probes.py --runs baseline=runs/lm/base/bbc-lm-none-s13 \\
        adv=runs/lm/adv/bbc-lm-fgm+atcl-s13 atcl=runs/lm/atcl5/bbc-lm-fgm+atcl-s13 \\
        --words good bad government win --out docs/atcl-probes-bbc-lm.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from summary_stats import write_atomic  # noqa: E402


def sentences(run: Path, count: int, min_words: int, prompt_words: int) -> list[tuple]:
    """``(input text, reference or None)`` from the run's test split."""
    from advembed.evaluation.runs import read_checked_run, run_split

    config = read_checked_run(run)
    out = []
    for example in run_split(config, "test"):
        words = example.text.split()
        if len(words) < min_words:
            continue
        if config.get("task") == "lm":
            out.append((" ".join(words[:prompt_words]), None))
        else:
            out.append((example.text, example.text_pair))
        if len(out) == count:
            break
    return out


def cell(text: str) -> str:
    """Generated text as one Markdown table cell: line breaks shown as ⏎, pipes escaped."""
    return text.replace("|", "\\|").replace("\r", "").replace("\n", " ⏎ ")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", required=True, help="LABEL=RUN")
    parser.add_argument("--words", nargs="+", default=["good", "bad", "love", "hate"])
    parser.add_argument("--neighbours", type=int, default=4)
    parser.add_argument("--sentences", type=int, default=8)
    parser.add_argument("--min-words", type=int, default=8)
    parser.add_argument("--prompt-words", type=int, default=12)
    parser.add_argument("--epsilon", type=float, default=0.03, help="FGM norm (ATCL: 0.03)")
    parser.add_argument("--max-new-tokens", type=int, default=20)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    from advembed.evaluation.probes import nearest_words, perturbed_generation
    from advembed.evaluation.runs import load_run_model
    from advembed.words import word_flags

    runs = dict(item.split("=", 1) for item in args.runs)
    models = {label: load_run_model(Path(path)) for label, path in runs.items()}
    inputs = sentences(Path(next(iter(runs.values()))), args.sentences, args.min_words,
                       args.prompt_words)
    lines = ["# ATCL's qualitative checks (paper 004 Tables 3, 4 and 7)", "",
             f"Written by `python benchmarks/atcl_probes.py {' '.join(sys.argv[1:])}`; "
             "do not edit by hand. Runs: " + ", ".join(f"{k} = `{v}`" for k, v in runs.items()),
             "", f"## Nearest words (Euclidean, input embedding; {args.neighbours} each)", "",
             "| word | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    neighbours = {label: nearest_words(m.model, m.tokenizer, args.words, args.neighbours)
                  for label, m in models.items()}
    for word in args.words:
        cells = [n[word] if isinstance(n[word], str) else ", ".join(n[word])
                 for n in neighbours.values()]
        lines.append(f"| {word} | " + " | ".join(cells) + " |")
    lines += ["", f"## Outputs after perturbing the last complete word (FGM, ε = "
              f"{args.epsilon:g}; greedy, at most {args.max_new_tokens} tokens)", ""]
    perplexities: dict[str, list[float]] = {label: [] for label in models}
    flags = {label: word_flags(m.tokenizer) for label, m in models.items()}
    for text, reference in inputs:
        lines.append(f"**input**: {text}" + (f"  \n**reference**: {reference}" if reference
                                              else ""))
        lines.append("")
        lines += ["| model | perturbed word | clean output | perturbed output |",
                  "|---|---|---|---|"]
        for label, loaded in models.items():
            result = perturbed_generation(loaded.model, loaded.tokenizer, text,
                                          epsilon=args.epsilon, reference=reference,
                                          max_new_tokens=args.max_new_tokens,
                                          flags=flags[label])
            perplexities[label].append(result.perturbed_perplexity)
            lines.append(f"| {label} | {cell(result.perturbed_word)} | {cell(result.clean)} | "
                         f"{cell(result.perturbed)} |")
        lines.append("")
    lines += ["## Mean perplexity of each model's perturbed outputs", "",
              "| model | mean perplexity |", "|---|---|"]
    lines += [f"| {label} | {statistics.mean(values):.2f} |"
              for label, values in perplexities.items() if values]
    text = "\n".join(lines) + "\n"
    write_atomic(args.out, text)  # whole or not at all
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
