"""Word-substitution attacks (TextAttack, offline) on a tiny trained model; their resources."""

from __future__ import annotations

import gzip
import io
import json
import math
import tarfile

import pytest
import torch

from advembed import nltk_data
from advembed.cli import main
from advembed.data import Example
from advembed.errors import AdvembedError
from advembed.evaluation.word_attack import (
    WordAttackOptions,
    protected_words,
    run_word_attack,
    score_texts,
)


# --------------------------------------------------------------------------- resources
def _man_page(rows: list[tuple[str, str]]) -> str:
    body = "\n".join(f"{n}\t{name}\tsome description " for n, name in rows)
    return f".SS Lexicographer Files\n.TS\nl l l.\n_\n{body}\n.TE\n"


def test_lexnames_are_regenerated_from_the_man_page():
    names = ["adj.all", "adj.pert", "adv.all"] + [f"noun.x{i}" for i in range(25)]
    names += [f"verb.y{i}" for i in range(16)] + ["adj.ppl"]
    rows = [(f"{i:02d}", name) for i, name in enumerate(names)]
    text = nltk_data.lexnames_from_man(_man_page(rows))
    lines = text.splitlines()
    assert len(lines) == 45
    assert lines[0] == "00\tadj.all\t3"
    assert lines[2] == "02\tadv.all\t4"
    assert lines[3] == "03\tnoun.x0\t1"
    assert lines[28] == "28\tverb.y0\t2"
    assert lines[44] == "44\tadj.ppl\t3"
    with pytest.raises(AdvembedError, match="45 lexicographer files"):
        nltk_data.lexnames_from_man(_man_page(rows[:-1]))


def test_stopwords_are_read_from_the_perl_module():
    source = "sub _stopwords {\n    return qw(\n  i me my\n  the\n );\n}\n"
    assert nltk_data.stopwords_from_perl(source) == ["i", "me", "my", "the"]
    with pytest.raises(AdvembedError, match="no stop-word list"):
        nltk_data.stopwords_from_perl("package X;")


def _deb(path, files: dict[str, bytes]):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tf:
        for name, content in files.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(content)
            tf.addfile(info, io.BytesIO(content))
    out = b"!<arch>\n"
    for name, body in (("debian-binary", b"2.0\n"), ("data.tar.xz", data.getvalue())):
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(body):<10}`\n"
        out += header.encode() + body + (b"\n" if len(body) % 2 else b"")
    path.write_bytes(out)
    return path


def test_a_debian_package_is_read_without_dpkg(tmp_path):
    deb = _deb(tmp_path / "x_1.0_all.deb", {"usr/share/wordnet/data.adj": b"abc",
                                           "usr/share/doc/x/copyright": b"c"})
    files = nltk_data.deb_files(deb)
    assert files == {"usr/share/wordnet/data.adj": b"abc", "usr/share/doc/x/copyright": b"c"}
    (tmp_path / "bad.deb").write_bytes(b"not a deb")
    with pytest.raises(AdvembedError, match="not a Debian package"):
        nltk_data.deb_files(tmp_path / "bad.deb")
    whole = deb.read_bytes()
    (tmp_path / "cut.deb").write_bytes(whole[: len(whole) // 2])  # truncated download
    with pytest.raises(AdvembedError, match=r"cannot read Debian package .*cut\.deb"):
        nltk_data.deb_files(tmp_path / "cut.deb")
    size_field = whole.index(b"2.0\n") - 12  # the ar size field of debian-binary
    (tmp_path / "size.deb").write_bytes(whole[:size_field] + b"x" + whole[size_field + 1 :])
    with pytest.raises(AdvembedError, match=r"cannot read Debian package .*size\.deb"):
        nltk_data.deb_files(tmp_path / "size.deb")


def test_nltk_data_is_built_from_the_debian_files(tmp_path):
    wordnet = {f"usr/share/wordnet/{name}": name.encode()
               for name in nltk_data.WORDNET_FILES}
    rows = [(f"{i:02d}", name) for i, name in
            enumerate(["adj.all"] * 3 + ["noun.a"] * 25 + ["verb.b"] * 16 + ["adj.ppl"])]
    wordnet["usr/share/man/man5/lexnames.5WN.gz"] = gzip.compress(_man_page(rows).encode())
    perl = b"sub _stopwords {\n return qw(\n a the of\n );\n}"
    debs = {"wordnet-base": _deb(tmp_path / "wordnet-base_1_all.deb", wordnet),
            "wordnet-sense-index": _deb(tmp_path / "wordnet-sense-index_1_all.deb", {}),
            "liblingua-stopwords-perl": _deb(tmp_path / "stop_1_all.deb",
                                             {"usr/share/perl5/Lingua/StopWords/EN.pm": perl})}
    folder = nltk_data.build_nltk_data(tmp_path / "nltk_data", debs)
    assert (folder / "corpora/stopwords/english").read_text() == "a\nthe\nof\n"
    assert (folder / "corpora/wordnet/data.noun").read_bytes() == b"data.noun"
    assert len((folder / "corpora/wordnet/lexnames").read_text().splitlines()) == 45
    assert not any(p.name.startswith(".tmp") for p in tmp_path.iterdir())


def test_missing_resources_offline_give_one_clear_error(tmp_path, monkeypatch):
    import nltk

    monkeypatch.setattr(nltk.data, "path", [])
    monkeypatch.setenv("ADVEMBED_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ADVEMBED_OFFLINE", "1")
    monkeypatch.delenv("ADVEMBED_FIND_LINKS", raising=False)
    with pytest.raises(AdvembedError, match="wordnet-base.*apt-get download"):
        nltk_data.ensure_nltk_data()
    assert not (tmp_path / "cache" / "nltk_data").exists()


# --------------------------------------------------------------------------- attacks
@pytest.fixture(scope="module")
def model_and_examples(tiny_trained_run):
    from advembed.data import load_dataset
    from advembed.models import load_saved_classifier

    config = json.loads((tiny_trained_run / "config.json").read_text())
    data = load_dataset(config["dataset"], text_column="sentence")
    loaded = load_saved_classifier(tiny_trained_run / "model")
    return loaded.model, loaded.tokenizer, data.splits["test"][:24]


def _stopwords() -> set[str]:
    from nltk.corpus import stopwords

    nltk_data.ensure_nltk_data()
    return set(stopwords.words("english"))


def test_pwws_respects_stopwords_budget_and_its_flips_are_real(model_and_examples):
    model, tokenizer, examples = model_and_examples
    # A special token written in the text must survive the attack as well.
    examples = [Example(e.text + " [UNK]", e.label) for e in examples]
    summary, records = run_word_attack(model, tokenizer, examples,
                                       WordAttackOptions(attack="pwws", max_perturbed=0.25),
                                       progress=False)
    assert summary["successful"] >= 1, summary  # the attack does something on this model
    stop = _stopwords()
    special = protected_words(tokenizer)
    assert {"UNK", "unk", "CLS", "cls"} <= special
    probs = score_texts(model, tokenizer, [e.text for e in examples])
    for record, example, p in zip(records, examples, probs, strict=True):
        assert (record["status"] == "skipped") == (int(p.argmax()) != example.label)
        for _, before, after in record["changed_words"]:
            assert before.lower() not in stop and before not in special
            assert before != after
        if record["status"] == "successful":
            assert len(record["changed_words"]) <= math.ceil(0.25 * record["words"])
            assert record["text"].endswith("[UNK]")
            # independent re-scoring of the adversarial text
            rescored = score_texts(model, tokenizer, [record["text"]])[0]
            assert int(rescored.argmax()) != example.label
            assert record["flip_confirmed"]
    n = len(examples)
    counts = {s: sum(r["status"] == s for r in records) for s in ("successful", "failed",
                                                                  "skipped")}
    assert summary["original_accuracy"] == pytest.approx((n - counts["skipped"]) / n)
    assert summary["attack_accuracy"] == pytest.approx(counts["failed"] / n)
    assert summary["success_rate"] == pytest.approx(
        counts["successful"] / (counts["successful"] + counts["failed"]))
    attacked = [r["queries"] for r in records if r["status"] != "skipped"]
    assert summary["mean_queries"] == pytest.approx(sum(attacked) / len(attacked), abs=0.01)
    percents = [100 * len(r["changed_words"]) / r["words"] for r in records
                if r["status"] == "successful"]
    assert summary["mean_perturbed_percent"] == pytest.approx(
        sum(percents) / len(percents), abs=0.01)
    assert summary["confirmed_flips"] == counts["successful"]
    # queries are batched: far fewer model calls than scored inputs
    assert summary["model_calls"] < summary["inputs_scored"] / 2


def test_capitalised_stopwords_and_special_tokens_are_never_candidates(model_and_examples):
    from advembed.evaluation.attack_resources import import_textattack
    from advembed.evaluation.word_attack import _build_wrapper_class, build_attack

    model, tokenizer, _ = model_and_examples
    textattack = import_textattack()
    wrapper = _build_wrapper_class(textattack)(model, tokenizer)
    attack, _ = build_attack(textattack, wrapper, WordAttackOptions(attack="pwws"), pair=False,
                             target_tokenizer=tokenizer)
    text = textattack.shared.AttackedText("Has the movie NOT been good [MASK] fun")
    stop = _stopwords()
    changed = set()
    for candidate in attack.get_transformations(text, text):
        changed |= text.all_words_diff(candidate)
    words = text.words
    assert changed  # "movie", "good", "fun" have WordNet synonyms
    assert all(words[i].lower() not in stop and words[i] != "MASK" for i in changed), \
        [words[i] for i in changed]


def test_query_budget_is_never_exceeded(model_and_examples):
    model, tokenizer, examples = model_and_examples
    _, records = run_word_attack(model, tokenizer, examples,
                                 WordAttackOptions(attack="pwws", query_budget=5),
                                 progress=False)
    assert max(r["queries"] for r in records) <= 5


def test_pairs_attack_only_the_second_sentence(model_and_examples):
    model, tokenizer, examples = model_and_examples
    pairs = [Example("the movie", e.label, e.text) for e in examples[:10]]
    summary, records = run_word_attack(model, tokenizer, pairs, WordAttackOptions(attack="pwws"),
                                       progress=False)
    assert summary["attacked_column"] == "text_pair"
    assert all(r["text"] == "the movie" for r in records)
    assert any(r["text_pair"] != r["original_text_pair"] for r in records)


def _tiny_mlm_dir(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    config = BertConfig.from_pretrained(str(tiny_model_dir))
    torch.manual_seed(0)
    path = tmp_path / "tiny-mlm"
    BertForMaskedLM(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(str(tiny_model_dir)).save_pretrained(path)
    return path


@pytest.mark.parametrize("recipe", ["bert-attack", "bae"])
def test_masked_lm_attacks_run_with_a_local_mlm(tmp_path, tiny_model_dir, model_and_examples,
                                                recipe):
    model, tokenizer, examples = model_and_examples
    mlm = _tiny_mlm_dir(tmp_path, tiny_model_dir)
    options = WordAttackOptions(attack=recipe, mlm=str(mlm), max_candidates=5,
                                similarity_model=str(tiny_model_dir), min_similarity=0.0)
    summary, records = run_word_attack(model, tokenizer, examples[:8], options, progress=False)
    assert summary["recipe"] == recipe and summary["settings"]["max_candidates"] == 5
    stop = _stopwords()
    for record in records:
        assert all(before not in stop for _, before, _ in record["changed_words"])
        if record["status"] == "successful":
            assert record["flip_confirmed"]


def test_an_mlm_without_its_head_is_refused(tiny_model_dir, model_and_examples):
    model, tokenizer, examples = model_and_examples
    options = WordAttackOptions(attack="bert-attack", mlm=str(tiny_model_dir))
    with pytest.raises(AdvembedError, match="no trained masked-LM head"):
        run_word_attack(model, tokenizer, examples[:2], options, progress=False)


def test_word_attack_command_and_its_errors(tiny_trained_run, capsys, monkeypatch, tmp_path):
    import advembed.mlm.load

    monkeypatch.setattr(advembed.mlm.load, "built_mlm_dir", lambda: tmp_path / "no-mlm-here")
    assert main(["attack", "--run", str(tiny_trained_run), "--attack", "pwws",
                 "--n-examples", "12", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "attack accuracy" in out
    summary = json.loads((tiny_trained_run / "attack-pwws.json").read_text())
    for key in ("original_accuracy", "attack_accuracy", "success_rate", "mean_queries",
                "mean_perturbed_percent", "seconds"):
        assert key in summary
    assert summary["examples"] == 12
    rows = [json.loads(line) for line in
            (tiny_trained_run / "attack-pwws.jsonl").read_text().splitlines()]
    assert sorted({r["temperature"] for r in rows}) == [0.01, 1.0, 100.0]  # the default
    assert len(rows) == 3 * 12
    assert main(["attack", "--run", str(tiny_trained_run), "--attack", "bae"]) == 2
    assert "default masked LM is not built yet" in capsys.readouterr().err
    assert main(["attack", "--run", str(tiny_trained_run), "--attack", "pwws", "--mlm", "x"]) == 2
    assert "not by pwws" in capsys.readouterr().err
    assert main(["attack", "--run", str(tiny_trained_run), "--attack", "pwws",
                 "--max-candidates", "3"]) == 2
    assert "--max-candidates is used by bert-attack and bae, not by pwws" in (
        capsys.readouterr().err)
    with pytest.raises(SystemExit):  # a cosine similarity is in [-1, 1]
        main(["attack", "--run", str(tiny_trained_run), "--attack", "bae",
              "--min-similarity", "7"])
    assert "--min-similarity: must be in [-1, 1]" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:  # refused by the option parser itself
        main(["attack", "--run", str(tiny_trained_run), "--attack", "pwws",
              "--max-perturbed", "1.5"])
    assert stopped.value.code == 2
    assert "--max-perturbed: must be in (0, 1]" in capsys.readouterr().err
    assert main(["attack", "--run", str(tiny_trained_run), "--attack", "pgd",
                 "--mlm", "x"]) == 2  # a word-attack option on an embedding attack
    assert "--mlm does not apply to attack 'pgd'" in capsys.readouterr().err
    assert not (tiny_trained_run / "attack-bae.json").exists()


def test_chunks_are_a_quarter_of_a_workers_share_and_at_most_the_limit():
    """An interrupted parallel attack loses only its unfinished chunks, so they are capped."""
    from advembed.evaluation.parallel import CHUNK_LIMIT, chunked

    assert CHUNK_LIMIT == 50
    assert [len(c) for c in chunked(list(range(26)), 2)] == [4] * 6 + [2]  # ⌈26 / 8⌉ = 4
    big = chunked(list(range(8452)), 2)  # ADA: the training split of mr
    assert [len(c) for c in big] == [50] * 169 + [2]
    assert [x for c in big for x in c] == list(range(8452))


def test_workers_give_the_records_of_one_process(tiny_trained_run, tmp_path):
    """The sample shared by 2 processes: the same record for every example (and the same
    summary), whatever process attacked it."""
    import shutil

    runs = {}
    for workers in (1, 2):
        run = tmp_path / f"w{workers}"
        shutil.copytree(tiny_trained_run, run)
        assert main(["attack", "--run", str(run), "--attack", "pwws", "--n-examples", "10",
                     "--temperatures", "1", "--workers", str(workers), "--no-progress"]) == 0
        runs[workers] = run
    one, two = ((runs[w] / "attack-pwws.jsonl").read_text() for w in (1, 2))
    assert one == two
    first, second = (json.loads((runs[w] / "attack-pwws.json").read_text()) for w in (1, 2))
    for key in ("attack_accuracy", "success_rate", "mean_queries", "model_calls"):
        assert first[key] == second[key], key


def test_rescaled_logits_are_attacked_and_the_lowest_accuracy_is_the_headline(
        model_and_examples, tiny_trained_run, tmp_path):
    """Dividing the logits by T leaves every prediction as it was (the same original
    accuracy) but changes the probabilities a score-based attack follows; the headline is the
    lowest accuracy under attack over the temperatures."""
    import shutil

    from advembed.evaluation.attack import held_at_every_temperature

    model, tokenizer, examples = model_and_examples
    texts = [e.text for e in examples]
    for temperature in (100.0, 0.01):
        plain = score_texts(model, tokenizer, texts)
        rescaled = score_texts(model, tokenizer, texts, temperature=temperature)
        assert (plain.argmax(-1) == rescaled.argmax(-1)).all()
        logits = torch.log(torch.from_numpy(plain))
        expected = torch.softmax((logits - logits.mean(-1, keepdim=True)) / temperature, -1)
        assert torch.allclose(torch.from_numpy(rescaled), expected.double(), atol=1e-4)
    run = tmp_path / "run"
    shutil.copytree(tiny_trained_run, run)
    assert main(["attack", "--run", str(run), "--attack", "pwws", "--n-examples", "8",
                 "--temperatures", "100", "0.01", "--no-progress"]) == 0
    summary = json.loads((run / "attack-pwws.json").read_text())
    by_temperature = summary["temperatures"]
    assert set(by_temperature) == {"1", "100", "0.01"}
    assert summary["model_calls_records"] == 8 * 3  # the query counts cover every record
    assert summary["attack_accuracy"] == by_temperature["1"]["attack_accuracy"]
    assert summary["attack_accuracy_rescaled"] == min(s["attack_accuracy"]
                                                      for s in by_temperature.values())
    assert {s["original_accuracy"] for s in by_temperature.values()} == {
        summary["original_accuracy"]}
    records = [json.loads(line) for line in (run / "attack-pwws.jsonl").read_text().splitlines()]
    assert summary["attack_accuracy_any_temperature"] == held_at_every_temperature(records) <= \
        summary["attack_accuracy_rescaled"]
    from nltk.corpus import stopwords

    assert summary["stopwords"]["count"] == len(set(stopwords.words("english"))) in (174, 179)


def test_adversarial_data_augmentation_adds_the_successful_texts(tiny_trained_run, tmp_path,
                                                                 capsys):
    """ADA: attack the training split, then retrain on its union with the adversarial texts
    (each distinct successful one once, with its gold label)."""
    import shutil

    from conftest import make_tiny_model_dir

    run = tmp_path / "run"
    shutil.copytree(tiny_trained_run, run)
    (run / "attack-pwws.json").write_text('{"split": "test", "attack_accuracy": 0.5}')
    assert main(["attack", "--run", str(run), "--attack", "pwws", "--split", "train",
                 "--n-examples", "12", "--temperatures", "1", "--no-progress"]) == 0
    records = [json.loads(line) for line in
               (run / "attack-pwws-train.jsonl").read_text().splitlines()]
    successful = {(r["text"], r["text_pair"]) for r in records if r["status"] == "successful"}
    assert successful
    # the training split's files carry its name: the test figure stays, and is the report's
    assert json.loads((run / "attack-pwws.json").read_text())["attack_accuracy"] == 0.5
    assert json.loads((run / "attack-pwws-train.json").read_text())["split"] == "train"
    from advembed.report.runs import load_run

    assert load_run(run).word_attacks == {"pwws": {"split": "test", "attack_accuracy": 0.5}}
    config = json.loads((run / "config.json").read_text())
    out = tmp_path / "ada"
    assert main(["train", "--dataset", config["dataset"], "--text-column", "sentence",
                 "--model", str(make_tiny_model_dir(tmp_path / "model")), "--output", str(out),
                 "--max-steps", "2", "--no-progress", "--augment-file",
                 str(run / "attack-pwws-train.jsonl")]) == 0
    trained = json.loads((out / "config.json").read_text())
    assert trained["split_sizes"]["train"] == config["split_sizes"]["train"] + len(successful)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"status": "successful"}\n')
    capsys.readouterr()
    assert main(["train", "--dataset", config["dataset"], "--text-column", "sentence",
                 "--model", str(tmp_path / "model"), "--output", str(tmp_path / "x"),
                 "--augment-file", str(bad), "--no-progress"]) == 2
    assert "line 1 is not an attack record" in capsys.readouterr().err


@pytest.mark.parametrize(("recipe", "skips"), [("bae", True), ("bert-attack", False)])
def test_bae_skips_the_similarity_check_on_texts_shorter_than_its_window(
        tmp_path, tiny_model_dir, model_and_examples, recipe, skips):
    """TextAttack's BAE recipe: USE within a 15-word window, skipped for shorter texts (else a
    short review must reach 0.936 over the whole sentence); BERT-Attack has no window."""
    from advembed.evaluation.attack_resources import import_textattack
    from advembed.evaluation.word_attack import _build_wrapper_class, build_attack

    model, tokenizer, _ = model_and_examples
    textattack = import_textattack()
    wrapper = _build_wrapper_class(textattack)(model, tokenizer)
    options = WordAttackOptions(attack=recipe, mlm=str(_tiny_mlm_dir(tmp_path, tiny_model_dir)),
                                similarity_model=str(tiny_model_dir))
    attack, _ = build_attack(textattack, wrapper, options, pair=False, target_tokenizer=tokenizer)
    (encoder,) = [c for c in attack.constraints if hasattr(c, "window_size")]
    assert encoder.skip_text_shorter_than_window is skips
    assert encoder.window_size == (15 if recipe == "bae" else float("inf"))  # inf: no window


def test_the_attacked_wrapper_scores_softmax_of_the_logits_over_its_temperature(
        model_and_examples):
    """What TextAttack sees at temperature T is ``softmax(logits / T)`` of the model's own
    logits, for T far from 1 either way (not the plain probabilities)."""
    from advembed.evaluation.attack_resources import import_textattack
    from advembed.evaluation.word_attack import _build_wrapper_class
    from advembed.inference import predict_logits

    model, tokenizer, examples = model_and_examples
    texts = [e.text for e in examples[:8]]
    logits = torch.from_numpy(predict_logits(model, tokenizer, examples[:8])).double()
    wrapper_class = _build_wrapper_class(import_textattack())
    plain = torch.softmax(logits, -1)
    for temperature in (100.0, 0.01):
        scores = torch.from_numpy(wrapper_class(model, tokenizer, temperature=temperature)(texts))
        expected = torch.softmax(logits / temperature, -1)
        # the tiny model's logits are close together: T = 100 moves its probabilities by
        # about 2e-3, far beyond the tolerance
        assert (expected - plain).abs().max() > 1e-3
        assert torch.allclose(scores.double(), expected, rtol=0, atol=1e-5)


def test_a_rescored_text_that_keeps_the_gold_prediction_is_not_a_confirmed_flip(
        model_and_examples):
    """``flip_confirmed`` is our own inference's verdict: an 'adversarial' text that is the
    original (still predicted as its gold label) is not confirmed; one whose label is not the
    prediction is."""
    from advembed.evaluation.word_attack import _confirm_flip

    model, tokenizer, examples = model_and_examples
    text = examples[0].text
    predicted = int(score_texts(model, tokenizer, [text])[0].argmax())
    kept = {"status": "successful", "label": predicted, "text": text, "text_pair": None}
    _confirm_flip(model, tokenizer, kept, 8, 128)
    assert kept["rescored_prediction"] == predicted and kept["flip_confirmed"] is False
    flipped = dict(kept, label=1 - predicted)
    _confirm_flip(model, tokenizer, flipped, 8, 128)
    assert flipped["flip_confirmed"] is True


def test_the_attack_sample_follows_its_seed():
    """The same ``--seed`` gives the same sample, another seed another one; each a subset in
    the original order."""
    from advembed.evaluation.runs import sample_examples

    examples = list(range(200))
    samples = {seed: sample_examples(examples, 10, seed) for seed in (0, 1, 2)}
    assert sample_examples(examples, 10, 1) == samples[1]
    assert len({tuple(s) for s in samples.values()}) == 3
    for sample in samples.values():
        assert len(sample) == 10 and sample == sorted(set(sample))


def _records_at(temperature: float, failed: int, n: int = 4) -> list[dict]:
    return [{"index": i, "temperature": temperature, "label": 0, "queries": 3, "words": 5,
             "status": "failed" if i < failed else "successful", "original_text_pair": None,
             "changed_words": [] if i < failed else [[0, "a", "b"]], "flip_confirmed": True}
            for i in range(n)]


def test_the_rescaled_headline_is_the_lowest_accuracy_over_the_temperatures():
    """Temperatures 1, 100 and 0.01 with accuracies under attack 0.5, 0.25 and 0.75: the
    summary keeps T = 1's figures and the headline is 0.25, at T = 100."""
    from advembed.evaluation.attack import _word_summary

    records = _records_at(1.0, 2) + _records_at(100.0, 1) + _records_at(0.01, 3)
    settings = WordAttackOptions(attack="pwws", temperatures=(100.0, 0.01))
    summary = _word_summary(records, settings, {}, {})
    assert {t: s["attack_accuracy"] for t, s in summary["temperatures"].items()} == {
        "1": 0.5, "100": 0.25, "0.01": 0.75}
    assert summary["attack_accuracy"] == 0.5
    assert summary["attack_accuracy_rescaled"] == 0.25
    assert summary["rescaled_temperature"] == 100.0


def test_on_a_pair_the_word_budget_counts_the_attacked_second_sentence_only():
    """40 % of a 5-word second sentence is ceil(2.0) = 2 changed words; over both sentences
    (15 words) TextAttack's own constraint would allow ceil(6.0) = 6, so 3 changes pass it."""
    from collections import OrderedDict

    from advembed.evaluation.attack_resources import import_textattack
    from advembed.evaluation.word_attack import attacked_words
    from advembed.evaluation.word_constraints import build_budget_class

    textattack = import_textattack()  # first: a bare import needs the NLTK data it sets up
    from textattack.constraints.overlap import MaxWordsPerturbed
    pair = textattack.shared.AttackedText(OrderedDict(
        [("text", "one two three four five six seven eight nine ten"),
         ("text_pair", "alpha beta gamma delta epsilon")]))
    two = pair.replace_words_at_indices([10, 11], ["a1", "b1"])
    three = pair.replace_words_at_indices([10, 11, 12], ["a1", "b1", "c1"])
    budget = build_budget_class(textattack)(max_percent=0.4, column="text_pair")
    assert attacked_words(pair) == ["alpha", "beta", "gamma", "delta", "epsilon"]
    assert budget._check_constraint(two, pair) and not budget._check_constraint(three, pair)
    assert MaxWordsPerturbed(max_percent=0.4)._check_constraint(three, pair)  # the old budget
    single = textattack.shared.AttackedText("alpha beta gamma delta epsilon")
    three_single = single.replace_words_at_indices([0, 1, 2], ["a1", "b1", "c1"])
    same = build_budget_class(textattack)(max_percent=0.4, column="text")
    assert attacked_words(single) == single.words
    assert not same._check_constraint(three_single, single)
    assert same._check_constraint(single.replace_words_at_indices([0, 1], ["a", "b"]), single)
    # ⌈fraction × words⌉ where it is not whole: 25 % of 5 words is 1.25 → 2 changes allowed
    quarter = build_budget_class(textattack)(max_percent=0.25, column="text")
    assert quarter._check_constraint(single.replace_words_at_indices([0, 1], ["a", "b"]), single)
    assert not quarter._check_constraint(three_single, single)


def test_accuracy_at_every_temperature_counts_an_example_broken_at_any_one():
    """Four examples at T = 1 and 100: held at both (1), broken at 100 only (0), skipped (2,
    originally wrong), broken at 1 only (3).  Each temperature's accuracy is 2/4 — the lowest,
    the current headline, 0.5 — but an attacker trying both holds only example 1: 0.25."""
    from advembed.evaluation.attack import held_at_every_temperature

    status = {(0, 1.0): "failed", (0, 100.0): "successful", (1, 1.0): "failed",
              (1, 100.0): "failed", (2, 1.0): "skipped", (2, 100.0): "skipped",
              (3, 1.0): "successful", (3, 100.0): "failed"}
    records = [{"index": i, "temperature": t, "status": s} for (i, t), s in status.items()]
    assert held_at_every_temperature(records) == 0.25
    assert held_at_every_temperature([]) is None


def test_a_high_temperature_never_turns_a_small_margin_into_a_tie(monkeypatch):
    """A logit margin of 2e-6 divided by T = 100 is 2e-8: a float32 softmax rounds it to an
    exact tie (argmax class 0); the scores keep class 1, as at T = 1."""
    import numpy as np

    from advembed.evaluation.word_attack import score_texts

    monkeypatch.setattr("advembed.inference.predict_logits", lambda *a, **k: np.array(
        [[0.0, 2e-6]], dtype=np.float32))
    for temperature in (1.0, 100.0):
        assert score_texts(None, None, ["x"], temperature=temperature).argmax(-1).tolist() == [1]


def test_the_summary_line_says_no_successful_attack_rather_than_nan():
    from advembed.cli.attack import describe

    summary = {"examples": 5, "original_accuracy": 0.4, "attack_accuracy": 0.4,
               "success_rate": 0.0, "mean_queries": 12.0, "mean_perturbed_percent": float("nan"),
               "confirmed_flips": 0, "successful": 0, "attack_accuracy_rescaled": 0.4,
               "temperatures": {"1": {"attack_accuracy": 0.4}}}
    text = describe("pwws", summary)
    assert "perturbed words — (no successful attack)" in text and "nan" not in text
    assert text.startswith("on 5 sampled examples at T = 1: original accuracy 0.4000")
    assert text.endswith("headline (the lowest) 0.4000")


def test_a_failing_chunk_stops_the_pool_and_keeps_what_finished(tmp_path):
    """One task fails while others are queued: the error comes back with the finished
    task's result handed over, and the queued tasks never start (the pool's own exit would
    have run all twelve, then dropped their results)."""
    import multiprocessing
    import sys
    from concurrent.futures import ProcessPoolExecutor
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import pool_tasks

    from advembed.evaluation.parallel import gather

    got = []
    context = multiprocessing.get_context("spawn")
    with pytest.raises(ValueError, match="task 1 failed"):
        with ProcessPoolExecutor(2, mp_context=context) as pool:
            gather(pool, pool_tasks.task, [(i, str(tmp_path)) for i in range(12)], got.append)
    assert got == [0]
    started = sorted(p.name for p in tmp_path.glob("started-*"))
    assert len(started) < 12, started


def test_the_stop_word_record_is_read_in_a_process_that_attacks_nothing_itself():
    """A ``--workers`` attack leaves the attacking to its workers; the main process, which
    writes the summary, must still find the stop-word list (it recorded null before)."""
    import os
    import subprocess
    import sys

    from conftest import package_path

    probe = ("import json\nfrom advembed.evaluation.attack import stopword_record\n"
             "print(json.dumps(stopword_record()))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": package_path()}).stdout
    record = json.loads(out)
    assert record is not None and record["count"] in (174, 179)


def test_an_unloadable_similarity_model_is_one_line_naming_its_option(tmp_path):
    from advembed.evaluation.attack_resources import import_textattack
    from advembed.evaluation.word_constraints import build_encoder_class

    encoder = build_encoder_class(import_textattack())
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(AdvembedError, match=r"^--similarity-model: cannot load '.*not-a-model'"):
        encoder(str(folder), threshold=0.8)


@pytest.mark.parametrize("temperature", ["1e17", "1e-320"])
def test_a_temperature_that_would_change_predictions_is_refused(tiny_trained_run, capsys,
                                                                temperature):
    """At T = 1e17 logits (0, 1) score (0.5, 0.5) in float64 and the argmax turns to 0; at
    1e-320 they overflow to NaN.  Dividing the logits must change no prediction."""
    with pytest.raises(SystemExit):  # refused by the option parser, before any work
        main(["attack", "--run", str(tiny_trained_run), "--attack", "pwws",
              "--temperatures", "1", temperature, "--no-progress"])
    assert (f"--temperatures: must be in [0.001, 1000], got '{temperature}'"
            in capsys.readouterr().err)


def test_word_attacks_refuse_text_they_have_no_candidates_for():
    """English WordNet and an English MLM give a Chinese sentence no candidate: every attack
    would fail and accuracy under attack would equal clean accuracy.  A pair is judged by its
    attacked second sentence; accented Latin letters are Latin."""
    from advembed.evaluation.word_attack import refuse_non_latin_text

    chinese = [Example("这个酒店的服务很好，房间也很干净", 1), Example("not a bad film", 0)]
    # 15 Chinese characters among 26 letters (the 11 of "not a bad film"): 58 %
    with pytest.raises(AdvembedError, match=r"^pwws substitutes English words .* but 58% of the "
                                            r"letters of the attacked text are not Latin"):
        refuse_non_latin_text(chinese, "pwws")
    refuse_non_latin_text([Example("un café naïve et déjà vu", 1)], "pwws")
    with pytest.raises(AdvembedError, match="bert-attack substitutes English words"):
        refuse_non_latin_text([Example("how do I save", 1, "按保存按钮")], "bert-attack")
    refuse_non_latin_text([Example("如何保存", 1, "press the save button")], "bae")
