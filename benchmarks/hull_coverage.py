"""Which of a word attack's swaps ASCC's hulls cover: a measurement of its threat model's gaps.

ASCC (``--method ascc``, ``advembed.hull``) trains against the convex hull of each complete
word's synonyms that are one vocabulary entry, the first ``--ascc-neighbours`` of them.  A swap
that PWWS makes outside that set is one the training never modelled.  For every swap of the
attacks that succeeded (at one logit temperature, default 1, the headline one of ``cr``'s ASCC
runs), this script says which of these it is:

- **in the hull**: the word is one vocabulary entry and the substitute one of its table entries
  (with ``--ascc-pieces``, an entry may be in pieces);
- **word in pieces**: the attacked word is split by the tokenizer, so it has no hull;
- **substitute in pieces**: the word is one entry, the substitute is split and not a vertex
  (never, at ``--ascc-pieces 1``);
- **outside the table**: both are one entry, but the substitute is not among the word's
  synonyms in the table (a stop word, beyond the cap, or not a WordNet synonym of the word as
  the tokenizer folds it).

    python benchmarks/hull_coverage.py runs/robust/cr-ascc-s13 runs/robust/cr-ascc-s14 \\
        --out docs/hull-coverage-cr.md

Each run folder needs its ``model/`` (the tokenizer) and ``attack-pwws.jsonl`` (the records).
A run of another method (plain training: the control) is read against the table ASCC's default
``--ascc-neighbours`` and ``--control-pieces`` (default 1: the one-entry synonyms) would build.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from functools import cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from summary_stats import write_atomic  # noqa: E402

KINDS = ("in the hull", "word in pieces", "substitute in pieces", "outside the table")


def classify(tokenizer, table, fold: bool, word: str, substitute: str) -> str:
    """One swap's kind (:data:`KINDS`) under the tokenizer and the synonym table.  Under a
    byte-level BPE vocabulary both words are read as they are spelt after a space (``Ġword``),
    which is where all but a sentence's first word stand."""
    space = " " if table.flags.marker == "Ġ" else ""
    pieces = tokenizer.tokenize(space + (word.lower() if fold else word))
    if len(pieces) != 1:
        return "word in pieces"
    word_id = tokenizer.convert_tokens_to_ids(pieces[0])
    sub_ids = tokenizer.convert_tokens_to_ids(
        tokenizer.tokenize(space + (substitute.lower() if fold else substitute)))
    row = table.neighbours[word_id][table.valid[word_id]]
    if row.dim() == 1:  # one id per entry (--ascc-pieces 1)
        row = row.unsqueeze(-1)
    if sub_ids in [[i for i in entry if i >= 0] for entry in row[1:].tolist()]:
        return "in the hull"
    return "substitute in pieces" if len(sub_ids) != 1 else "outside the table"


def swaps(records_file: Path, attack_temperature: float) -> list[tuple[str, str]]:
    """(word, substitute) of every swap in the successful attacks at that temperature."""
    found = []
    for line in records_file.read_text().splitlines():
        record = json.loads(line)
        if record.get("status") != "successful":
            continue
        if float(record.get("temperature", 1.0)) != attack_temperature:
            continue
        found += [(word, substitute) for _, word, substitute in record["changed_words"]]
    return found


def offered(records_file: Path, attack_temperature: float, synonyms_of, stopwords,
            fold: bool) -> list:
    """(word, candidate) for every WordNet candidate of every word PWWS could swap in the
    sentences it attacked (successful or failed) at that temperature: the swaps on offer, against
    which the chosen ones are compared.  Words are TextAttack's (``words_from_text``: *well-made*
    is one); with ``fold`` (an uncased tokenizer) a candidate that differs from its word only in
    case (*Film* → *film*) is no swap and is left out."""
    from advembed.nltk_data import ensure_nltk_data

    ensure_nltk_data()  # TextAttack reads NLTK's stop words as it is imported
    from textattack.shared.utils import words_from_text

    found = []
    for line in records_file.read_text().splitlines():
        record = json.loads(line)
        if record.get("status") not in ("successful", "failed"):
            continue
        if float(record.get("temperature", 1.0)) != attack_temperature:
            continue
        for word in words_from_text(record["original_text"]):
            if word.lower() not in stopwords:
                found += [(word, candidate) for candidate in synonyms_of(word)
                          if not (fold and candidate.lower() == word.lower())]
    return found


_TABLES: dict[tuple, object] = {}  # runs share a tokenizer: one table per (vocab, settings)


@cache
def _synonyms(word: str) -> tuple[str, ...]:
    from advembed.hull import wordnet_synonyms

    return tuple(wordnet_synonyms(word))


def measure(run: Path, attack: str, attack_temperature: float,
            control_pieces: int = 1) -> tuple[str, Counter, Counter]:
    """The run's method (with its pieces, if any), the kinds of the swaps chosen and of those on
    offer (:func:`offered`)."""
    from transformers import AutoTokenizer

    from advembed.hull import english_stopwords, lowercases, synonym_table
    from advembed.methods.ascc import ASCCSettings

    records = run / f"attack-{attack}.jsonl"
    for needed in (run / "config.json", run / "model", records):
        if not needed.exists():
            raise SystemExit(f"run '{run}' has no {needed.name} (a trained run attacked by "
                             f"`advembed attack --attack {attack}` is needed)")
    config = json.loads((run / "config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(run / "model")
    settings = ASCCSettings(pieces=control_pieces)  # a run of another method
    if config.get("method") == "ascc":  # runs from before --ascc-pieces were at 1
        saved = config["method_settings"]
        settings = ASCCSettings(neighbours=saved["neighbours"], pieces=saved.get("pieces", 1))
    key = (hashlib.sha256((run / "model" / "tokenizer.json").read_bytes()).hexdigest()
           if (run / "model" / "tokenizer.json").exists() else str(run),
           settings.neighbours, settings.pieces)
    if key not in _TABLES:
        _TABLES[key] = synonym_table(tokenizer, _synonyms, max_neighbours=settings.neighbours,
                                     pieces=settings.pieces)
    table = _TABLES[key]
    fold = lowercases(tokenizer)
    chosen = Counter(classify(tokenizer, table, fold, word, substitute)
                     for word, substitute in swaps(records, attack_temperature))
    on_offer = Counter(classify(tokenizer, table, fold, word, candidate)
                       for word, candidate in offered(records, attack_temperature,
                                                      _synonyms, english_stopwords(),
                                                      fold))
    method = config.get("method", "none")
    if settings.pieces > 1 and method == "ascc":
        method = f"ascc --ascc-pieces {settings.pieces}"
    return method, chosen, on_offer


def table_lines(counts: dict[str, Counter], methods: dict[str, str],
                unit: str = "swaps") -> list[str]:
    """A row per run, then one summing the runs of each method (``methods``: run → method)."""
    lines = [f"| run | {unit} | " + " | ".join(KINDS) + " |", "|---" * (len(KINDS) + 2) + "|"]
    totals: dict[str, Counter] = {}
    for name, count in counts.items():
        totals[methods[name]] = totals.get(methods[name], Counter()) + count
    named = [(f"all `{method}` runs", total) for method, total in totals.items()
             if sum(m == method for m in methods.values()) > 1]
    for name, count in [*counts.items(), *named]:
        n = sum(count.values())
        cells = [f"{count[kind]} ({100 * count[kind] / n:.1f} %)" if n else "–" for kind in KINDS]
        lines.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path,
                        help="run folders (ASCC's, and plain ones as the control)")
    parser.add_argument("--attack", default="pwws")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="the attacker's logit temperature whose records are read")
    parser.add_argument("--control-pieces", type=int, default=1,
                        help="--ascc-pieces of the table a run of another method is read against")
    parser.add_argument("--out", type=Path, help="write the Markdown table here")
    args = parser.parse_args(argv)
    if not 1 <= args.control_pieces <= 8:
        parser.error(f"--control-pieces must be in [1, 8] (as --ascc-pieces), "
                     f"not {args.control_pieces}")
    measured = {run.name: measure(run, args.attack, args.temperature, args.control_pieces)
                for run in args.runs}
    methods = {name: found[0] for name, found in measured.items()}
    chosen = {name: found[1] for name, found in measured.items()}
    on_offer = {name: found[2] for name, found in measured.items()}
    text = "\n".join([
        f"# Which {args.attack.upper()} swaps ASCC's hulls cover: {', '.join(measured)}",
        "",
        f"Written by `benchmarks/hull_coverage.py` from the runs' `attack-{args.attack}.jsonl` "
        f"(successful attacks at logit temperature {args.temperature:g}); do not edit by hand. "
        "Each swap of a word for a substitute is in the hull when the word is one vocabulary "
        "entry and the substitute one of its synonym-table entries (the vertices ASCC trained "
        "against); otherwise the kind says why not.",
        "", "## The swaps that broke the model", "", *table_lines(chosen, methods), "",
        "## The swaps on offer",
        "",
        "Every WordNet candidate (PWWS's, before its constraints) of every non-stop word of the "
        "sentences attacked at that temperature, successful or not: what the attacker could "
        "choose from. A kind whose share above is larger than here is one the attack sought "
        "out.", "", *table_lines(on_offer, methods, "pairs"), ""])
    print(text)
    if args.out:
        write_atomic(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
