"""``advembed attack``: robustness of a saved run, written into the run directory.

* ``pgd``: white-box k-PGD on word embeddings at several ε (accuracy under attack, cosine and
  Euclidean drift of the representation) — paper 001 §4.5.
* ``vulnerability``: VAA's F1/F2 under an FGSM with the predicted label, per gold label, and
  their ROC AUC as label predictors — paper 002 §4.2.
* ``pwws``, ``bert-attack``, ``bae``: black-box word-substitution attacks on the text, run by
  TextAttack (:mod:`advembed.evaluation.word_attack`) — paper 003 §5.1.3.  Pairs: the second
  sentence.

Each writes ``attack-NAME.json`` (summary) and ``attack-NAME.jsonl`` (one line per example)
atomically.  The examples are a seeded sample of ``n_examples`` from the split.  Each attack's
settings are one dataclass (:mod:`advembed.evaluation.settings`,
:class:`~advembed.evaluation.word_attack.WordAttackOptions`).
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from pathlib import Path
from typing import Any

from advembed.data.base import examples_sha256
from advembed.data.options import DataOptions
from advembed.errors import AdvembedError
from advembed.evaluation.record_log import RecordLog
from advembed.evaluation.runs import (
    load_run_model,
    read_checked_run,
    run_split,
    run_task,
    sample_examples,
)
from advembed.evaluation.settings import PGDAttackSettings, SampleSettings, VulnerabilitySettings
from advembed.evaluation.word_attack import (
    MLM_ATTACKS,
    WORD_ATTACKS,
    WordAttackOptions,
    refuse_non_latin_text,
)
from advembed.runs import WriteFailed, attack_stem, write_together
from advembed.settings import Settings

SETTINGS: dict[str, type[Settings]] = {"pgd": PGDAttackSettings,
                                        "vulnerability": VulnerabilitySettings,
                                        **{name: WordAttackOptions for name in WORD_ATTACKS}}
ATTACKS = tuple(SETTINGS)


def attack_settings(attack: str, options: dict[str, Any] | None = None) -> Settings:
    """The settings of ``attack``: its defaults with ``options`` (Python names) applied."""
    if attack not in SETTINGS:
        raise AdvembedError(f"unknown attack '{attack}'; choose one of {', '.join(ATTACKS)}")
    cls = SETTINGS[attack]
    base = cls(attack=attack) if cls is WordAttackOptions else cls()
    return cls.from_options(options, base)


def run_attack(run: Path, attack: str, *, data: DataOptions | None = None,
               settings: Settings | None = None, sample: SampleSettings | None = None,
               **sample_options: Any) -> dict[str, Any]:
    """Run ``attack`` on a saved run and write its results; return the summary.

    ``settings``: the attack's (:func:`attack_settings`); ``sample`` or ``sample_options``
    (``split``, ``n_examples``, ``seed``, ``batch_size``, ``progress``, ``resume``): which
    examples.  Each example's result is appended to ``RUN/.attack-NAME.partial.jsonl`` as soon as
    it is computed; ``resume`` continues an interrupted attack of the same settings there.
    Files of a split other than test, or of another ``--dataset`` than the run's, carry its
    name (:func:`advembed.runs.attack_stem`).
    """
    settings = settings if settings is not None else attack_settings(attack)
    sample = SampleSettings.from_options(sample_options, sample)
    if attack in WORD_ATTACKS:
        settings = dataclasses.replace(settings, attack=attack, batch_size=sample.batch_size)
        settings.resolved()  # bad options fail before anything is loaded
    config = _attackable_run(run, attack)
    _mlm_never_saw_the_split(attack, settings, config, data)
    split = run_split(config, sample.split, data)
    examples = sample_examples(split, sample.n_examples, sample.seed)
    if attack in WORD_ATTACKS:
        refuse_non_latin_text(examples, attack)
    header = _log_header(attack, settings, data, sample, config, examples)
    stem = attack_stem(attack, sample.split, other_dataset(config, data))
    log = RecordLog(Path(run) / f".{stem}.partial.jsonl", header, resume=sample.resume)
    try:
        loaded = load_run_model(run, config)
        started = time.perf_counter()
        common = {"task": run_task(config), "max_length": config.get("max_length", 128),
                  "progress": sample.progress, "on_record": log.add}
        resumed = len(log.done)
        if attack in WORD_ATTACKS:
            details = _word(run, loaded, examples, settings, log, common)
        else:
            todo = [i for i in range(len(examples)) if not log.has(i)]
            details = _ATTACKS[attack](loaded, [examples[i] for i in todo], settings,
                                       sample.batch_size, common | {"indices": todo},
                                       config) if todo else {}
        records = log.records()
        summary = {"attack": attack, "dataset": header["data"]["dataset"] or config["dataset"],
                   "split": sample.split, "examples": len(examples),
                   "split_size": len(split), "seed": sample.seed,
                   "resumed_records": resumed}
        summary |= _SUMMARIES.get(attack, _word_summary)(records, settings, details, config)
        summary["seconds"] = round(time.perf_counter() - started, 2)
        write_together({Path(run) / f"{stem}.jsonl": "".join(json.dumps(r) + "\n"
                                                           for r in records),
                        Path(run) / f"{stem}.json": json.dumps(summary, indent=2) + "\n"})
    except (OSError, WriteFailed) as exc:
        raise AdvembedError(f"cannot write the results of {attack} into '{run}' "
                            f"({exc.strerror}); those computed so far are in '{log.path.name}' "
                            "(run again with --resume)") from None
    except BaseException:
        log.discard_if_empty()  # a failure before any result leaves no log to resume
        raise
    finally:
        log.close()
    log.finish()
    return summary


def _log_header(attack, settings, data, sample, config, examples) -> dict[str, Any]:
    """What a resumed attack must share with the interrupted one (its log's first line)."""
    return {"attack": attack, "settings": _result_settings(attack, settings),
            "data": (data or DataOptions()).as_dict(), "split": sample.split,
            "n_examples": sample.n_examples, "seed": sample.seed,
            "model_sha256": config.get("model_sha256"),
            "examples_sha256": examples_sha256(examples),  # a resume needs the same texts
            "versions": library_versions(attack)}  # and the same libraries computing them


def library_versions(attack: str) -> dict[str, str | None]:
    """The versions of the libraries an attack's records depend on (TextAttack only for the
    word attacks), so that a resume after an upgrade does not mix records of two versions."""
    from importlib.metadata import PackageNotFoundError, version

    names = ["torch", "transformers"] + (["textattack"] if attack in WORD_ATTACKS else [])
    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def _attackable_run(run: Path, attack: str) -> dict[str, Any]:
    """The run's checked config; an embedding attack on a run without class predictions (a
    language model, a translator) is one line, not a tensor-size error."""
    config = read_checked_run(run)
    if attack not in WORD_ATTACKS and run_task(config).token_level:
        raise AdvembedError(f"run '{run}' is a {config['task']} run: the {attack} attack scores "
                            "a classifier's predictions (class labels), which it has none of")
    return config


def _mlm_never_saw_the_split(attack: str, settings: Any, config: dict[str, Any],
                             data: DataOptions | None) -> None:
    """BERT-Attack's and BAE's built MLM must not have trained on the attacked data's dev or
    test sentences (:func:`advembed.mlm.check_mlm_split`)."""
    from advembed.evaluation.word_attack import MLM_ATTACKS
    from advembed.mlm import DEFAULT_MLM, check_mlm_split

    if attack in MLM_ATTACKS:
        options = (data or DataOptions()).over(config)
        check_mlm_split(settings.mlm or DEFAULT_MLM, options.dataset, options.split_seed,
                        "--mlm")


def other_dataset(config: dict[str, Any], data: DataOptions | None) -> str | None:
    """``--dataset`` wherever it is given, else ``None``.  Even the run's own dataset named
    again is read as other data (without the run's ``--limit`` and split check, perhaps with
    another ``--split-seed``), so its summary must not replace the run's own figures."""
    return data.dataset if data is not None and data.dataset else None


def _result_settings(attack: str, settings: Settings) -> dict[str, Any]:
    """What a resumed attack must share with the interrupted one: its settings but the number
    of worker processes (what an example gives does not depend on it, float rounding aside:
    a worker scores at one thread), and for BERT-Attack / BAE the sha256
    of the MLM's weights (the default MLM changes when it is rebuilt; its candidates with it)."""
    chosen = settings.as_dict()
    if attack in WORD_ATTACKS:
        from advembed.mlm.load import DEFAULT_MLM, mlm_weights_sha256

        chosen.pop("workers", None)
        if attack in MLM_ATTACKS:
            chosen["mlm_weights_sha256"] = mlm_weights_sha256(settings.mlm or DEFAULT_MLM)
    return chosen


def _pgd(loaded, examples, settings: PGDAttackSettings, batch_size, common, config):
    from advembed.evaluation.robustness import pgd_robustness

    results, _ = pgd_robustness(loaded.model, loaded.tokenizer, examples, settings,
                                batch_size=batch_size, **common)
    return {"seconds": {r.epsilon: r.seconds for r in results}}


def _pgd_summary(records, settings: PGDAttackSettings, details, config):
    from advembed.evaluation.robustness import pgd_results

    results = pgd_results(records, settings.epsilon, details.get("seconds"))
    return {"norm": settings.norm, "steps": settings.steps, "alpha_ratio": settings.alpha_ratio,
            "alpha": settings.alpha, "results": [r.as_dict() for r in results]}


def _vulnerability(loaded, examples, settings: VulnerabilitySettings, batch_size, common,
                   config):
    from advembed.evaluation.vulnerability import vulnerability_scores

    vulnerability_scores(loaded.model, loaded.tokenizer, examples, settings,
                         batch_size=batch_size, **common)
    return {}


def _vulnerability_summary(records, settings: VulnerabilitySettings, details, config):
    from advembed.evaluation.vulnerability import vulnerability_auc
    from advembed.vaa.theory import theorem1_fit

    per_label = {}
    for index, name in enumerate(config["label_names"]):
        rows = [r for r in records if r["label"] == index]
        if rows:
            per_label[name] = {key: {"mean": statistics.fmean(r[key] for r in rows),
                                     "median": statistics.median(r[key] for r in rows)}
                               for key in ("F1", "F2")}
    return {"norm": settings.norm, "epsilon": settings.epsilon, "per_label": per_label,
            "auc": vulnerability_auc(records, len(config["label_names"])),
            "theorem1": {key: theorem1_fit([r[key] for r in records],
                                           [r["label"] for r in records])
                         for key in ("F1", "F2")}}


def _word(run, loaded, examples, settings: WordAttackOptions, log, common) -> dict:
    """The word attack at every temperature (1 first), in ``settings.workers`` processes;
    returns the query counts of what ran, and over how many records (``model_calls_records``:
    a resumed attack's earlier records are not in the counts)."""
    from advembed.evaluation.parallel import attack_in_processes
    from advembed.evaluation.word_attack import run_word_attack

    counts = {"model_calls": 0, "inputs_scored": 0, "model_calls_records": 0}
    for temperature in word_temperatures(settings):
        todo = [i for i in range(len(examples)) if not log.has(i, temperature)]
        if not todo:
            continue
        chosen = [examples[i] for i in todo]
        if settings.workers > 1:
            found, _ = attack_in_processes(
                run, chosen, todo, settings, temperature=temperature, workers=settings.workers,
                max_length=common["max_length"], on_record=common["on_record"],
                progress=common["progress"])
        else:
            found, _ = run_word_attack(loaded.model, loaded.tokenizer, chosen, settings,
                                       indices=todo, temperature=temperature, **common)
        for key in ("model_calls", "inputs_scored"):
            counts[key] += found[key]
        counts["model_calls_records"] += len(todo)
    return counts


def word_temperatures(settings: WordAttackOptions) -> list[float]:
    """The temperatures attacked: 1 (the plain figure) first, then the others given."""
    return [1.0] + [t for t in dict.fromkeys(settings.temperatures) if t != 1.0]


def _word_summary(records, settings: WordAttackOptions, details, config):
    """The plain attack's figures (temperature 1) as the summary, each temperature's beside
    them, and the lowest accuracy under attack over the temperatures as the headline."""
    from advembed.evaluation.word_attack import summarise

    by_temperature = {t: summarise([r for r in records if r.get("temperature", 1.0) == t])
                      for t in word_temperatures(settings)}
    worst = min(by_temperature, key=lambda t: by_temperature[t]["attack_accuracy"])
    plain = by_temperature[1.0]
    return details | plain | recipe_details(settings) | {
        "temperatures": {f"{t:g}": summary for t, summary in by_temperature.items()},
        "attack_accuracy_rescaled": by_temperature[worst]["attack_accuracy"],
        "rescaled_temperature": worst,
        "attack_accuracy_any_temperature": held_at_every_temperature(records),
        "attacked_column": ("text_pair" if any(r.get("original_text_pair") is not None
                                               for r in records) else "text"),
        "workers": settings.workers}


def held_at_every_temperature(records: list[dict[str, Any]]) -> float | None:
    """Accuracy under an attacker who tries every temperature: the share of examples the
    attack failed to flip at *each* temperature (an example flipped at any one counts as
    broken; originally wrong ones count as wrong).  At most ``attack_accuracy_rescaled``, the
    lowest of the per-temperature accuracies, which may count an example held at one
    temperature and broken at another as held."""
    status: dict[int, bool] = {}
    for record in records:
        index = record["index"]
        status[index] = status.get(index, True) and record["status"] == "failed"
    return sum(status.values()) / len(status) if status else None


def recipe_details(settings: WordAttackOptions) -> dict:
    from advembed.evaluation.word_attack import MLM_ATTACKS
    from advembed.mlm.load import DEFAULT_MLM, mlm_weights_sha256

    resolved = settings.resolved()
    details = {"recipe": settings.attack, "mlm": settings.mlm, "settings": resolved,
               "similarity_model": (settings.similarity_model
                                    if resolved["min_similarity"] is not None else None),
               "query_budget": settings.query_budget}
    if settings.attack in MLM_ATTACKS:
        details["mlm_weights_sha256"] = mlm_weights_sha256(settings.mlm or DEFAULT_MLM)
    details["stopwords"] = stopword_record()
    return details


def stopword_record() -> dict[str, Any] | None:
    """Which English stop-word list the attack protected: its size and sha256 (NLTK's 179
    words, or the Snowball list of 174 built offline; ``None`` if none can be read)."""
    import hashlib

    try:
        from nltk.corpus import stopwords

        from advembed.nltk_data import ensure_nltk_data

        # in the main process too, which a --workers attack leaves to its workers otherwise
        # (the record was then null); made here, before any worker starts, they all find it
        ensure_nltk_data()
        words = sorted(set(stopwords.words("english")))
    except (LookupError, OSError, ImportError, AdvembedError):
        return None
    digest = hashlib.sha256("\n".join(words).encode("utf-8")).hexdigest()
    return {"count": len(words), "sha256": digest}


_ATTACKS = {"pgd": _pgd, "vulnerability": _vulnerability}
_SUMMARIES = {"pgd": _pgd_summary, "vulnerability": _vulnerability_summary}
