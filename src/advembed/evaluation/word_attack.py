"""Black-box word-substitution attacks on a fine-tuned classifier, run by TextAttack.

The search, constraints and bookkeeping are TextAttack's (0.3.11); this module supplies what it
lacks offline and what our runs need:

* :class:`ClassifierWrapper` — our model as a TextAttack ``ModelWrapper``: only output
  probabilities leave it (black box), and every query list is scored in batches;
* :class:`~advembed.evaluation.word_constraints.MeanPooledEncoder` — the semantic-similarity
  constraint.  The recipes use the
  Universal Sentence Encoder, which no registry carries; the default encoder here is the packaged
  all-MiniLM-L6-v2, a sentence-similarity model, mean-pooled and L2-normalised as it was
  trained.  Its cosine scale is not USE's, so the thresholds are options
  (``--min-similarity``);
* the recipes below, built from TextAttack's parts with the published settings, plus a
  perturbation budget, protected special-token words, and "attack the second sentence" for
  pairs (VDA paper, §5.1.3), whose budget counts the second sentence's words only.

Recipes (``--attack``):

``pwws``
    Ren et al. 2019: WordNet synonyms, words ordered by probability-weighted saliency
    (TextAttack's ``PWWSRen2019``).  No similarity constraint, as published.
``bert-attack``
    Li et al. 2020: candidates from a masked LM (``--mlm``), words ordered by the drop in the
    gold probability when masked (``unk``), ≤ 40 % of words, similarity ≥ 0.2.  K = 8 candidates
    by default, TextAttack's choice (48 explodes on words split into several pieces).
``bae``
    Garg & Ramakrishnan 2020, BAE-R: candidates from a masked LM, words ordered by deletion
    importance, K = 50, similarity ≥ 0.936 within a 15-word window.  The part-of-speech filter
    of the paper needs NLTK's tagger model, which is not available offline; it is left out.

Metrics follow TextAttack's definitions: original accuracy; attack accuracy (accuracy after the
attack); success rate = successful / (successful + failed); mean queries over attacked
(originally correct) examples; mean percentage of perturbed words over successful attacks.
Every successful adversarial text is re-scored by our own batched inference, independently of
TextAttack, and the count of confirmed flips is reported.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from advembed.errors import AdvembedError
from advembed.mlm import DEFAULT_MLM, load_masked_lm
from advembed.settings import Settings, setting

WORD_ATTACKS = ("pwws", "bert-attack", "bae")
MLM_ATTACKS = ("bert-attack", "bae")

COLUMNS = ("text",)
PAIR_COLUMNS = ("text", "text_pair")

RECIPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "pwws": {"max_perturbed": 0.4, "min_similarity": None, "window": None, "max_candidates": None,
             "wir": "weighted-saliency"},
    "bert-attack": {"max_perturbed": 0.4, "min_similarity": 0.2, "window": None,
                    "max_candidates": 8, "wir": "unk"},
    "bae": {"max_perturbed": 0.4, "min_similarity": 0.936, "window": 15, "max_candidates": 50,
            "wir": "delete"},
}
"""Published settings per recipe.  ``max_perturbed`` (fraction of words) is BERT-Attack's ε,
applied to all three as the perturbation budget."""


@dataclass(frozen=True)
class WordAttackOptions(Settings):
    """Options of one word-substitution attack; ``None`` takes the recipe's published value
    (``RECIPE_DEFAULTS``)."""

    owner = "the word attacks"
    attack: str = "pwws"
    mlm: str | None = setting(None, "--mlm", "bert-attack/bae: masked LM proposing the "
                              "candidates: 'default' (built by `advembed mlm build`), a local "
                              "folder or a hub name (default: 'default')")
    max_candidates: int | None = setting(None, "--max-candidates", "bert-attack/bae: candidates "
                                         "per word (default 8 / 50)", minimum=1)
    max_perturbed: float | None = setting(None, "--max-perturbed", "budget: largest fraction of "
                                          "words changed (default 0.4)", minimum=0,
                                          exclusive_minimum=True, maximum=1)
    min_similarity: float | None = setting(None, "--min-similarity", "least cosine similarity "
                                           "of the attacked sentence to the original (default: "
                                           "none for pwws, 0.2 bert-attack, 0.936 bae)",
                                           minimum=-1, maximum=1)
    similarity_model: str = setting("default", "--similarity-model", "sentence encoder for "
                                    "--min-similarity, or 'none' (default: the packaged MiniLM)")
    query_budget: int | None = setting(None, "--query-budget", "largest number of model queries "
                                       "per example (default: none)", minimum=1)
    temperatures: tuple[float, ...] = setting(
        (1.0, 100.0, 0.01), "--temperatures", "attack the model with its logits divided by each "
        "temperature too; the headline accuracy under attack is the lowest over them (an "
        "over-confident model hides its weakness from score-based attacks; 1e-3 to 1e3: "
        "beyond, float64 rounds the rescaled scores and changes predictions)", minimum=1e-3,
        maximum=1e3, paper="Raina et al. 2024")
    workers: int = setting(1, "--workers", "processes that share the sample (the records of "
                           "one process, float rounding aside)", minimum=1)
    batch_size: int = 64

    def resolved(self) -> dict[str, Any]:
        """The recipe defaults overridden by the options that were set."""
        if self.attack not in WORD_ATTACKS:
            raise AdvembedError(f"unknown word attack '{self.attack}'; choose one of "
                                f"{', '.join(WORD_ATTACKS)}")
        settings = dict(RECIPE_DEFAULTS[self.attack])
        for key in ("max_candidates", "max_perturbed", "min_similarity"):
            value = getattr(self, key)
            if value is not None:
                settings[key] = value
        if self.attack == "pwws" and self.mlm:
            raise AdvembedError("--mlm is used by bert-attack and bae, not by pwws")
        if self.attack == "pwws" and self.max_candidates is not None:
            raise AdvembedError("--max-candidates is used by bert-attack and bae, not by pwws "
                                "(it takes every WordNet synonym)")
        return settings


def _examples_input(example) -> OrderedDict:
    if example.text_pair is None:
        return OrderedDict([("text", example.text)])
    return OrderedDict([("text", example.text), ("text_pair", example.text_pair)])


def _build_wrapper_class(textattack):
    class ClassifierWrapper(textattack.models.wrappers.ModelWrapper):
        """Our classifier as a black box: a list of inputs in, class probabilities out."""

        def __init__(self, model, tokenizer, *, batch_size: int = 64, max_length: int = 128,
                     temperature: float = 1.0, decide=None):
            self.model, self.tokenizer = model, tokenizer
            self.decide = decide
            self.batch_size, self.max_length = batch_size, max_length
            self.temperature = temperature
            self.calls = 0
            self.inputs_scored = 0

        def __call__(self, text_input_list: Sequence) -> np.ndarray:
            self.calls += 1
            self.inputs_scored += len(text_input_list)
            return score_texts(self.model, self.tokenizer, text_input_list,
                               batch_size=self.batch_size, max_length=self.max_length,
                               temperature=self.temperature, decide=self.decide)

    return ClassifierWrapper


def score_texts(model, tokenizer, inputs: Sequence, *, batch_size: int = 64,
                max_length: int = 128, temperature: float = 1.0, decide=None) -> np.ndarray:
    """Class probabilities ``softmax(decide(logits) / temperature)`` for strings or (text,
    text_pair) tuples, in batches; ``decide`` is the task's :meth:`~advembed.tasks.Task.
    decision_logits` (QA matching moves its threshold to the argmax), none = the logits."""
    from advembed.data import Example
    from advembed.inference import predict_logits

    texts = [Example(item[0], 0, item[1]) if isinstance(item, tuple) else Example(item, 0)
             for item in inputs]
    logits = torch.from_numpy(predict_logits(model, tokenizer, texts, batch_size=batch_size,
                                             max_length=max_length))
    if decide is not None:
        logits = decide(logits)
    # A rescaled attack scores in float64: at T = 100 a float32 softmax rounds a logit margin
    # under ~3e-6 to a tie, and the argmax of a tie (class 0) would change the prediction the
    # temperature must not.  T = 1 keeps float32, whose coarser scores make near-ties between
    # candidates resolve alike whatever the thread count (workers score at one thread).
    scaled = logits.double() / temperature if temperature != 1.0 else logits
    return torch.softmax(scaled, dim=-1).numpy()


def protected_words(tokenizer) -> set[str]:
    """Words of the target tokenizer's special tokens (``[CLS]`` → ``cls``, ``<s>`` → ``s``)."""
    import re

    words = set()
    for token in tokenizer.all_special_tokens:
        words.update(w for w in re.findall(r"[A-Za-z0-9]+", token))
        words.update(w.lower() for w in re.findall(r"[A-Za-z0-9]+", token))
    return words


def build_attack(textattack, wrapper, options: WordAttackOptions, *, pair: bool,
                 target_tokenizer=None, task=None):
    """Compose the TextAttack ``Attack`` for ``options`` around ``wrapper``; the goal function
    is the task's (untargeted classification by default)."""
    from nltk.corpus import stopwords as nltk_stopwords
    from textattack.constraints.pre_transformation import (
        InputColumnModification,
        RepeatModification,
        StopwordModification,
    )
    from textattack.search_methods import GreedyWordSwapWIR

    from advembed.evaluation.word_constraints import build_budget_class, build_encoder_class
    from advembed.tasks import get_task

    settings = options.resolved()
    # TextAttack compares words case-sensitively; "Has" or "NOT" must be protected as well.
    stopwords = {variant for word in nltk_stopwords.words("english")
                 for variant in (word, word.capitalize(), word.upper())}
    if target_tokenizer is not None:
        stopwords |= protected_words(target_tokenizer)
    words_budget = build_budget_class(textattack)(max_percent=settings["max_perturbed"],
                                                  column="text_pair" if pair else "text")
    constraints = [RepeatModification(), StopwordModification(stopwords=stopwords), words_budget]
    if pair:
        constraints.append(InputColumnModification(list(PAIR_COLUMNS), {"text"}))
    if options.attack == "pwws":
        from textattack.transformations import WordSwapWordNet

        transformation = WordSwapWordNet()
    else:
        from textattack.transformations import WordSwapMaskedLM

        mlm, mlm_tokenizer = load_masked_lm(options.mlm or DEFAULT_MLM)
        extra = {"min_confidence": 0.0} if options.attack == "bae" else {}
        extra["max_length"] = min(512, getattr(mlm.config, "max_position_embeddings", 512))
        transformation = WordSwapMaskedLM(method=options.attack, masked_language_model=mlm,
                                          tokenizer=mlm_tokenizer,
                                          max_candidates=settings["max_candidates"], **extra)
    if settings["min_similarity"] is not None and options.similarity_model != "none":
        encoder = build_encoder_class(textattack)
        constraints.append(encoder(options.similarity_model, threshold=settings["min_similarity"],
                                   metric="cosine", compare_against_original=True,
                                   window_size=settings["window"],
                                   # BAE's recipe: a text shorter than the window skips the check
                                   skip_text_shorter_than_window=settings["window"] is not None))
    budget = options.query_budget if options.query_budget is not None else float("inf")
    goal = (task or get_task()).word_attack_goal(textattack, wrapper, query_budget=budget,
                                                 batch_size=options.batch_size)
    search = GreedyWordSwapWIR(wir_method=settings["wir"])
    return textattack.Attack(goal, constraints, transformation, search), settings


def run_word_attack(model, tokenizer, examples: Sequence, options: WordAttackOptions, *,
                    max_length: int = 128, progress: bool = True, task=None,
                    indices: Sequence[int] | None = None, on_record=None,
                    temperature: float = 1.0) -> tuple[dict, list[dict]]:
    """Attack ``examples`` (numbered ``indices`` in the records, default 0, 1, …) on the model
    with its logits divided by ``temperature``; return ``(summary, per-example records)``.
    ``on_record`` receives each record as soon as its example is done (``advembed attack``
    appends it to a file, so a kill loses nothing)."""
    from advembed.evaluation.attack_resources import import_textattack

    options.resolved()  # option errors before the slow import
    textattack = import_textattack()
    from textattack.attack_results import SkippedAttackResult, SuccessfulAttackResult

    from advembed.tasks import get_task

    pair = any(e.text_pair is not None for e in examples)
    decide = (task or get_task()).decision_logits
    wrapper = _build_wrapper_class(textattack)(model, tokenizer, batch_size=options.batch_size,
                                               max_length=max_length, temperature=temperature,
                                               decide=decide)
    attack, settings = build_attack(textattack, wrapper, options, pair=pair,
                                    target_tokenizer=tokenizer, task=task)
    started = time.perf_counter()
    records = []
    iterator = examples
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(examples, desc=f"attack {options.attack}", unit="example")
    indices = range(len(examples)) if indices is None else indices
    for index, example in zip(indices, iterator, strict=True):
        attacked = textattack.shared.AttackedText(_examples_input(example))
        result = attack.attack(attacked, example.label)
        record = _record(index, example, result, SuccessfulAttackResult, SkippedAttackResult)
        record["temperature"] = temperature
        _confirm_flip(model, tokenizer, record, options.batch_size, max_length, decide)
        records.append(record)
        if on_record is not None:
            on_record(record)
        if progress:
            done = [r for r in records if r["status"] != "skipped"]
            iterator.set_postfix(success=f"{sum(r['status'] == 'successful' for r in done)}/"
                                         f"{len(done)}")
    seconds = time.perf_counter() - started
    details = {"recipe": options.attack,
               "mlm": options.mlm or DEFAULT_MLM if options.attack in MLM_ATTACKS else None,
               "similarity_model": (options.similarity_model
                                    if settings["min_similarity"] is not None else None),
               "settings": settings, "query_budget": options.query_budget,
               "attacked_column": "text_pair" if pair else "text",
               "model_calls": wrapper.calls, "inputs_scored": wrapper.inputs_scored,
               "attack_seconds": round(seconds, 2)}
    return summarise(records) | details, records


def attacked_words(text) -> list[str]:
    """The words of the column an attack may change: a pair's second sentence, else the text
    (the budget and the perturbed percentage count these)."""
    from advembed.evaluation.word_constraints import column_words

    return column_words(text, "text_pair")


def _record(index: int, example, result, successful, skipped) -> dict:
    original = result.original_result.attacked_text
    perturbed = result.perturbed_result.attacked_text
    changed = sorted(original.all_words_diff(perturbed))
    status = ("skipped" if isinstance(result, skipped)
              else "successful" if isinstance(result, successful) else "failed")
    attacked_input = perturbed.tokenizer_input
    text, text_pair = (attacked_input if isinstance(attacked_input, tuple)
                       else (attacked_input, None))
    return {
        "index": index,
        "label": int(example.label),
        "status": status,
        "original_prediction": int(result.original_result.output),
        "attack_prediction": int(result.perturbed_result.output),
        "queries": int(result.num_queries),
        "words": len(attacked_words(original)),
        "changed_words": [[i, original.words[i], perturbed.words[i]] for i in changed],
        "original_text": example.text,
        "original_text_pair": example.text_pair,
        "text": text,
        "text_pair": text_pair,
    }


def _confirm_flip(model, tokenizer, record: dict, batch_size: int, max_length: int,
                  decide=None) -> None:
    """Re-score a successful adversarial text with our own inference (and the task's
    decision, ``decide``)."""
    if record["status"] != "successful":
        return
    text = (record["text"], record["text_pair"]) if record["text_pair"] is not None else \
        record["text"]
    probabilities = score_texts(model, tokenizer, [text], batch_size=batch_size,
                                max_length=max_length, decide=decide)[0]
    record["rescored_prediction"] = int(np.argmax(probabilities))
    record["flip_confirmed"] = record["rescored_prediction"] != record["label"]


def summarise(records: Sequence[dict]) -> dict:
    """TextAttack's metrics, from the per-example records: original accuracy, accuracy after
    the attack, success rate = successful / (successful + failed), mean queries over attacked
    examples, mean percentage of words changed over successful attacks, confirmed flips."""
    n = len(records)
    if n == 0:
        raise AdvembedError("no examples to attack")
    status = [r["status"] for r in records]
    successes = [r for r in records if r["status"] == "successful"]
    attacked = [r for r in records if r["status"] != "skipped"]
    return {
        "examples": n,
        "successful": len(successes),
        "failed": status.count("failed"),
        "skipped": status.count("skipped"),
        "original_accuracy": (n - status.count("skipped")) / n,
        "attack_accuracy": status.count("failed") / n,
        "success_rate": len(successes) / len(attacked) if attacked else math.nan,
        "mean_queries": (sum(r["queries"] for r in attacked) / len(attacked) if attacked
                         else math.nan),
        "mean_perturbed_percent": (sum(100 * len(r["changed_words"]) / r["words"]
                                       for r in successes) / len(successes)
                                   if successes else math.nan),
        "confirmed_flips": sum(bool(r.get("flip_confirmed")) for r in successes),
    }


def refuse_non_latin_text(examples, attack: str) -> None:
    """PWWS draws its candidates from English WordNet, BERT-Attack and BAE theirs from an
    English masked LM: on text in another script (``chn-senti``, ``thucnews``, ``help-qa-zh``)
    no word has a candidate, every attack fails, and accuracy under attack equals clean
    accuracy — a robustness that is not there.  Refused where fewer than half the letters of
    the attacked text (a pair's second sentence) are Latin."""
    import unicodedata

    letters = latin = 0
    for example in examples:
        text = example.text_pair if example.text_pair is not None else example.text
        for char in text:
            if char.isalpha():
                letters += 1
                latin += char.isascii() or unicodedata.name(char, "").startswith("LATIN")
    if letters and latin < letters / 2:
        raise AdvembedError(
            f"{attack} substitutes English words (WordNet synonyms or an English masked LM), "
            f"but {1 - latin / letters:.0%} of the letters of the attacked text are not Latin: "
            "no word would have a candidate and accuracy under attack would equal clean "
            "accuracy")
