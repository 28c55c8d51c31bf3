"""Question–answer matching (paper 000): the folder format, splits by question, the answer-class
F1 at a threshold chosen on dev and applied unchanged to test."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest
import torch

from advembed.data import Example, load_dataset
from advembed.errors import AdvembedError
from advembed.tasks import get_task
from advembed.tasks.qa_matching import answer_probability, best_threshold, scores_at

POSITIVE = ["great", "good", "brilliant", "fun", "best"]
NEGATIVE = ["awful", "bad", "boring", "dull", "worst"]


def write_qa_folder(folder, questions=30, replies=4, seed=0):
    """Questions ``movie N``; replies that answer it carry a positive word."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "train.query.tsv").open("w", encoding="utf-8") as query, \
            (folder / "train.reply.tsv").open("w", encoding="utf-8") as reply:
        for q in range(questions):
            query.write(f"{q}\tthe movie {q} was\n")
            for r in range(replies):
                label = int(r == 0 or rng.random() < 0.2)
                word = rng.choice(POSITIVE if label else NEGATIVE)
                reply.write(f"{q}\t{r}\tit is {word} and the story\t{label}\n")
    return folder


def test_hand_computed_threshold_and_scores():
    probability = np.array([0.9, 0.6, 0.4, 0.3, 0.2])
    labels = np.array([1, 0, 1, 0, 0])
    # 0.5: TP 1, FP 1, FN 1 → F1 0.5; between 0.3 and 0.4: TP 2, FP 1 → P 2/3, R 1, F1 0.8
    assert scores_at(probability, labels, 0.5)["f1"] == pytest.approx(0.5)
    assert best_threshold(probability, labels) == pytest.approx(0.35)
    scores = scores_at(probability, labels, 0.35)
    assert (scores["f1"], scores["precision"], scores["recall"], scores["accuracy"]) == (
        pytest.approx(0.8), pytest.approx(2 / 3), 1.0, 0.8)


def _threshold_by_scoring_each_candidate(probability, labels):
    """The definition, one F1 per candidate (what ``best_threshold`` computed until it
    counted all of them at once)."""
    values = np.unique(probability)
    candidates = np.concatenate([[0.5], (values[:-1] + values[1:]) / 2, [0.0]])
    return float(max((scores_at(probability, labels, t)["f1"], -abs(t - 0.5), t)
                     for t in candidates)[2])


def test_a_tie_at_equal_distance_from_one_half_goes_to_the_higher_threshold():
    probability = np.array([0.125, 0.375, 0.625, 0.875] * 2)
    labels = np.array([0, 0, 0, 0, 0, 1, 0, 1])
    # t = 0.25: TP 2, FP 4, FN 0 → F1 4/8; t = 0.75: TP 1, FP 1, FN 1 → 2/4; t = 0.5: 2/6
    assert best_threshold(probability, labels) == 0.75


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_best_threshold_is_the_one_scoring_every_candidate_finds(dtype):
    rng = np.random.default_rng(7)
    for trial in range(60):
        n = int(rng.integers(1, 40))
        # coarse scores (many ties, 0.5 among them) and labels from all-0 to all-1
        probability = (rng.integers(0, 11, n) / 10).astype(dtype)
        labels = (rng.random(n) < trial / 59).astype(int)
        assert best_threshold(probability, labels) == _threshold_by_scoring_each_candidate(
            probability, labels), (probability.tolist(), labels.tolist())
    probability = rng.random(500).astype(dtype)
    labels = (rng.random(500) < probability).astype(int)
    assert best_threshold(probability, labels) == _threshold_by_scoring_each_candidate(
        probability, labels)


def test_a_score_equal_to_the_threshold_counts_as_an_answer():
    probability = np.array([0.7, 0.4, 0.4, 0.1])
    labels = np.array([1, 1, 0, 0])
    # ">=": the two 0.4s are answers → TP 2, FP 1, FN 0: P 2/3, R 1, F1 0.8 (">" would give
    # TP 1, FN 1: P 1, R 1/2, F1 2/3)
    scores = scores_at(probability, labels, 0.4)
    assert (scores["f1"], scores["precision"], scores["recall"], scores["accuracy"]) == (
        pytest.approx(0.8), pytest.approx(2 / 3), 1.0, 0.75)


def test_a_constant_model_on_dev_scores_the_trivial_f1_not_zero():
    from advembed.data import Example

    # P(answer) = 0.3 for every reply: 0.5 and every midpoint call nothing an answer (F1 0);
    # the threshold 0 calls everything one: 2 answers among 5 replies → P 2/5, R 1,
    # F1 2·2/(2 + 5) = 4/7, the collapse baseline
    labels = [1, 0, 0, 1, 0]
    probability = np.full(5, 0.3)
    assert best_threshold(probability, np.array(labels)) == 0.0
    task = get_task("qa-matching")
    dev = task.metrics(np.log(np.tile([0.7, 0.3], (5, 1))), labels)
    assert dev["threshold"] == 0.0
    assert (dev["f1"], dev["precision"], dev["recall"]) == (
        pytest.approx(4 / 7), pytest.approx(2 / 5), 1.0)
    baseline = task.collapse_baseline([Example("q", label, "r") for label in labels])
    assert dev["f1"] == pytest.approx(baseline)


def test_when_dev_calls_every_reply_an_answer_so_does_test():
    """Dev p = 0.30, 0.31, 0.32 with labels 1, 0, 1: 0.5 and 0.305 / 0.315 score F1 0, 1/2 and
    2/3, everything-an-answer 4/5, the best.  On test p = 0.29, 0.33 with labels 1, 0 that rule
    scores 2/3; the lowest dev probability (0.30) as the threshold would drop the 0.29 answer
    and score 0."""
    task = get_task("qa-matching")
    to_logits = lambda p: np.log(np.stack([1 - np.asarray(p), np.asarray(p)], axis=1))  # noqa: E731
    dev = task.metrics(to_logits([0.30, 0.31, 0.32]), [1, 0, 1])
    assert dev["f1"] == pytest.approx(0.8) and dev["threshold"] == 0.0
    task.set_split("test")
    test = task.metrics(to_logits([0.29, 0.33]), [1, 0])
    assert test["f1"] == pytest.approx(2 / 3) and test["recall"] == 1.0


def test_the_threshold_is_chosen_on_dev_and_only_applied_on_test():
    task = get_task("qa-matching")
    dev_logits = np.log(np.array([[0.1, 0.9], [0.4, 0.6], [0.6, 0.4], [0.7, 0.3], [0.8, 0.2]]))
    dev = task.metrics(dev_logits, [1, 0, 1, 0, 0])
    assert dev["threshold"] == pytest.approx(0.35) and dev["f1"] == pytest.approx(0.8)
    task.set_split("test")
    test_logits = np.log(np.array([[0.25, 0.75], [0.9, 0.1]]))
    test = task.metrics(test_logits, [0, 1])  # tuned on test, 0.05 would give F1 0.67
    assert test["threshold"] == pytest.approx(0.35) and test["f1"] == 0.0
    assert task.run_state() == {"qa_threshold": pytest.approx(0.35)}


def test_trivial_predictor_f1_is_the_collapse_baseline():
    from advembed.data import Example

    examples = [Example("q", int(i < 3), "r") for i in range(10)]
    assert get_task("qa-matching").collapse_baseline(examples) == pytest.approx(6 / 13)


def test_the_folder_is_split_by_question(tmp_path):
    data = load_dataset(str(write_qa_folder(tmp_path / "qa")))
    assert data.label_names == ["not-answer", "answer"] and data.is_pair
    questions = {split: {e.text for e in examples} for split, examples in data.splits.items()}
    assert [len(questions[s]) for s in ("train", "dev", "test")] == [24, 3, 3]
    assert not (questions["train"] & questions["dev"] or questions["train"] & questions["test"]
                or questions["dev"] & questions["test"])
    assert sum(len(v) for v in data.splits.values()) == 30 * 4


def test_with_a_group_file_the_folder_is_split_by_group(tmp_path):
    folder = write_qa_folder(tmp_path / "qa")
    plain = load_dataset(str(folder))
    (folder / "train.group.tsv").write_text("".join(f"{q}\tpage{q // 3}\n" for q in range(30)),
                                            encoding="utf-8")
    data = load_dataset(str(folder))
    page_of = {f"the movie {q} was": q // 3 for q in range(30)}
    pages = {split: {page_of[e.text] for e in examples} for split, examples in data.splits.items()}
    assert [len(pages[s]) for s in ("train", "dev", "test")] == [8, 1, 1]  # of 10 pages
    assert not (pages["train"] & pages["dev"] or pages["train"] & pages["test"]
                or pages["dev"] & pages["test"])
    assert [len({e.text for e in data.splits[s]}) for s in ("train", "dev", "test")] == [24, 3, 3]
    assert {e.text for e in plain.splits["test"]} != {e.text for e in data.splits["test"]}
    (folder / "train.group.tsv").write_text("0\tpage0\n", encoding="utf-8")
    with pytest.raises(AdvembedError, match="train.group.tsv gives no group for question id "
                                            "'1' \\(29 in all\\)"):
        load_dataset(str(folder))
    (folder / "train.group.tsv").write_text(  # a typo: question 99 does not exist
        "".join(f"{q}\tpage{q // 3}\n" for q in range(30)) + "99\tpage9\n", encoding="utf-8")
    with pytest.raises(AdvembedError, match="train.group.tsv line 31: question id '99' is not "
                                            "in train.query.tsv"):
        load_dataset(str(folder))
    (folder / "train.group.tsv").write_text(  # 30 questions on 2 pages: no split by page
        "".join(f"{q}\tpage{q % 2}\n" for q in range(30)), encoding="utf-8")
    with pytest.raises(AdvembedError, match="has 2 question group\\(s\\) in train.group.tsv; "
                                            "at least 3 are needed to split by group"):
        load_dataset(str(folder))


def test_a_reply_given_twice_to_one_question_is_refused_naming_both_lines(tmp_path):
    folder = write_qa_folder(tmp_path / "qa")
    replies = folder / "train.reply.tsv"
    first = replies.read_text(encoding="utf-8").splitlines()[0]
    qid, rid, text, label = first.split("\t")
    with replies.open("a", encoding="utf-8") as stream:  # the same reply, the other label
        stream.write(f"{qid}\t{rid}\t{text}\t{1 - int(label)}\n")
    lines = len(replies.read_text(encoding="utf-8").splitlines())
    with pytest.raises(AdvembedError, match=rf"train.reply.tsv line {lines}: reply id '{rid}' "
                                            rf"of question id '{qid}' is given twice \(first "
                                            r"on line 1\)"):
        load_dataset(str(folder))


def test_a_question_asked_under_ids_of_two_groups_joins_the_groups(tmp_path):
    """Question 30 repeats question 0's text on page 9: the two ids become one question, so
    pages 0 and 9 must become one group — else question 0's replies (merged into page 0)
    and page 9's other questions, which may share them, could land in two splits."""
    for seed in range(6):
        folder = write_qa_folder(tmp_path / f"qa{seed}")
        with (folder / "train.query.tsv").open("a", encoding="utf-8") as query:
            query.write("30\tthe movie 0 was\n")
        with (folder / "train.reply.tsv").open("a", encoding="utf-8") as reply:
            reply.write("30\t0\tit is good and the story\t1\n")
        (folder / "train.group.tsv").write_text(
            "".join(f"{q}\tpage{q // 3}\n" for q in range(30)) + "30\tpage9\n",
            encoding="utf-8")
        data = load_dataset(str(folder), split_seed=seed)
        split_of = {e.text: split for split, examples in data.splits.items() for e in examples}
        joined = {split_of[f"the movie {q} was"] for q in (0, 1, 2, 27, 28, 29)}
        assert len(joined) == 1, (seed, joined)
        assert sum(e.text == "the movie 0 was" for e in data.splits[joined.pop()]) == 5


def test_a_byte_order_mark_is_dropped_and_a_non_utf8_byte_is_one_line(tmp_path):
    folder = write_qa_folder(tmp_path / "qa")
    query = folder / "train.query.tsv"
    query.write_bytes(b"\xef\xbb\xbf" + query.read_bytes())  # as Windows Notepad saves
    data = load_dataset(str(folder))  # question id 0 still has its replies
    assert "the movie 0 was" in {e.text for split in data.splits.values() for e in split}
    assert "with no reply" not in data.description
    query.write_text("id\tquestion\n" + query.read_text(encoding="utf-8-sig"), encoding="utf-8")
    assert load_dataset(str(folder)).description.endswith(
        "; 1 question(s) with no reply left out")  # a header line is counted, not silent
    reply = folder / "train.reply.tsv"
    reply.write_bytes(reply.read_bytes() + "0\t9\t在吗\t1\n".encode("gbk"))
    with pytest.raises(AdvembedError, match=re.escape(f"{reply} line 121 is not UTF-8 "
                                                      "(byte 0xd4)")):
        load_dataset(str(folder))


@pytest.mark.parametrize(("line", "message"), [
    ("0\t9\tsome reply\t?\n", "train.reply.tsv line 121: label '?' is not 0 or 1"),
    ("77\t9\tsome reply\t1\n", "train.reply.tsv line 121: question id '77' is not in"),
    ("0\tsome reply\t1\n", "train.reply.tsv line 121: expected 4 tab-separated fields"),
])
def test_bad_lines_are_one_line_errors(tmp_path, line, message):
    folder = write_qa_folder(tmp_path / "qa")
    with (folder / "train.reply.tsv").open("a", encoding="utf-8") as handle:
        handle.write(line)
    with pytest.raises(AdvembedError, match=re.escape(message)):
        load_dataset(str(folder))
    reply = folder / "train.reply.tsv"  # blank lines are skipped but still counted
    reply.write_text("\n\n" + reply.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(AdvembedError, match=re.escape(message.replace("121", "123"))):
        load_dataset(str(folder))



@pytest.mark.parametrize(("name", "line", "message"), [
    ("train.reply.tsv", "0\t9\t \t1\n",
     "train.reply.tsv line 121: empty reply to question id '0'"),
    ("train.query.tsv", "77\t  \n",
     "train.query.tsv line 31: question id '77' has an empty question"),
])
def test_an_empty_question_or_reply_is_refused(tmp_path, name, line, message):
    """A CSV with an empty text is refused; a QA folder's empty texts are no different."""
    folder = write_qa_folder(tmp_path / "qa")
    with (folder / name).open("a", encoding="utf-8") as handle:
        handle.write(line)
    with pytest.raises(AdvembedError, match=re.escape(message)):
        load_dataset(str(folder))


@pytest.mark.parametrize(("present", "missing"), [("test.reply.tsv", "test.query.tsv"),
                                                  ("test.query.tsv", "test.reply.tsv")])
def test_one_test_file_without_the_other_names_the_missing_one(tmp_path, present, missing):
    """A labelled test file alone is not ignored (test carved out of train instead)."""
    folder = write_qa_folder(tmp_path / "qa")
    lines = {"test.reply.tsv": "0\t0\tsome reply\t1\n", "test.query.tsv": "0\ta question\n"}
    (folder / present).write_text(lines[present], encoding="utf-8")
    with pytest.raises(AdvembedError, match=re.escape(
            f"QA-matching folder is missing {missing} ({folder / missing})")):
        load_dataset(str(folder))
    (folder / missing).write_text(lines[missing], encoding="utf-8")
    assert load_dataset(str(folder)).splits["test"] == [Example("a question", 1, "some reply")]


def test_qa_matching_trains_and_evaluates_with_its_dev_threshold(tmp_path, tiny_model_dir,
                                                                 capsys):
    from advembed.cli import main

    folder = write_qa_folder(tmp_path / "qa", questions=40)
    out = tmp_path / "run"
    assert main(["train", "--task", "qa-matching", "--dataset", str(folder), "--model",
                 str(tiny_model_dir), "--epochs", "2", "--batch-size", "16", "--lr", "3e-3",
                 "--method", "fgm", "--no-progress", "--output", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert set(metrics["test"]) >= {"f1", "precision", "recall", "accuracy", "threshold"}
    assert metrics["test"]["threshold"] == metrics["best_dev"]["threshold"]
    assert config["qa_threshold"] == metrics["best_dev"]["threshold"]
    capsys.readouterr()
    assert main(["eval", "--run", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["threshold"] == config["qa_threshold"]
    assert result["f1"] == pytest.approx(metrics["test"]["f1"])
    assert main(["predict", "--run", str(out), "how do I save", "--pair", "press save"]) == 0
    assert f"(answer where P(answer) >= {config['qa_threshold']:.4f})" in capsys.readouterr().out
    for bad in (None, "0.4", 1.5):  # a threshold lost or edited: one line, not 0.5 silently
        edited = dict(config, qa_threshold=bad)
        (out / "config.json").write_text(json.dumps(edited), encoding="utf-8")
        assert main(["eval", "--run", str(out)]) == 2
        assert "config.json's qa_threshold must be the dev threshold" in capsys.readouterr().err
    (out / "config.json").write_text(json.dumps(config), encoding="utf-8")
    assert main(["train", "--task", "qa-matching", "--dataset", "mr", "--model",
                 str(tiny_model_dir), "--limit", "20", "--no-progress",
                 "--output", str(tmp_path / "bad")]) == 2
    assert "needs (question, reply) pairs" in capsys.readouterr().err


def test_a_table_of_pairs_is_refused_as_not_grouped_by_question(tmp_path):
    """A CSV of (question, reply, label) is split by pair, and its label names sort as
    strings ('answer' < 'not-answer'): F1 of label 1 would be the not-answer class's."""
    from advembed.data.options import DataOptions

    table = tmp_path / "pairs.csv"
    rows = ["text,text_pair,label"] + [f"question {q},reply {q} {r},"
                                       f"{'answer' if r == 0 else 'not-answer'}"
                                       for q in range(10) for r in range(3)]
    table.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(AdvembedError, match="grouped by question.*'answer', 'not-answer'"):
        get_task("qa-matching").load_data(DataOptions(dataset=str(table)))


def test_decision_logits_put_the_dev_threshold_at_the_argmax():
    import torch

    from advembed.tasks.qa_matching import answer_probability

    task = get_task("qa-matching")
    task.threshold = 0.3
    logits = torch.tensor([[0.2, -0.4], [0.0, -1.0], [-0.5, 0.7]])
    # P(answer) = σ(z₁ − z₀): 0.3543, 0.2689, 0.7685 → answer, not, answer at t = 0.3, while
    # the argmax (t = 0.5) says not, not, answer; m = z₁ − z₀ − log(0.3 / 0.7), +0.847298
    decided = task.decision_logits(logits)
    assert torch.allclose(decided, torch.tensor([[0.0, 0.247298], [0.0, -0.152702],
                                                 [0.0, 2.047298]], dtype=torch.float64),
                          atol=1e-6)
    assert decided.argmax(-1).tolist() == [1, 0, 1] != logits.argmax(-1).tolist()
    task.threshold = 0.8  # log(0.8 / 0.2) = 1.386294: the third's 1.2 is short of it
    assert task.decision_logits(logits).argmax(-1).tolist() == [0, 0, 0]
    # a score at the threshold itself is an answer, as scores_at counts it (">="), whatever
    # the rounding of its margin
    for row in range(3):
        task.threshold = float(answer_probability(logits.numpy())[row])
        decided = task.decision_logits(logits).argmax(-1)
        assert decided[row] == 1
        assert decided.tolist() == (answer_probability(logits.numpy()) >= task.threshold
                                    ).astype(int).tolist()
    for threshold, expected in ((0.0, [1, 1, 1]), (1.0, [0, 0, 0])):
        task.threshold = threshold
        decided = task.decision_logits(logits)
        assert decided.argmax(-1).tolist() == expected
        assert torch.isfinite(torch.softmax(decided, -1)).all()
    assert get_task("classification").decision_logits(logits) is logits


def test_attacks_count_a_pair_correct_by_the_runs_threshold(tmp_path, tiny_model_dir):
    """The embedding attack at ε = 0 is right exactly where the run's own evaluation (P(answer)
    against its dev threshold) is right, whatever the threshold; the word attack's wrapper
    scores the same decision."""
    from advembed.cli import main
    from advembed.evaluation.attack_resources import import_textattack
    from advembed.evaluation.robustness import PGDAttackSettings, pgd_robustness
    from advembed.evaluation.runs import load_run_model, run_split, run_task
    from advembed.evaluation.vulnerability import vulnerability_scores
    from advembed.evaluation.word_attack import _build_wrapper_class, _confirm_flip, score_texts
    from advembed.inference import predict_logits
    from advembed.runs import read_run
    from advembed.tasks.qa_matching import answer_probability

    out = tmp_path / "run"
    assert main(["train", "--task", "qa-matching", "--dataset",
                 str(write_qa_folder(tmp_path / "qa", questions=40)), "--model",
                 str(tiny_model_dir), "--epochs", "3", "--batch-size", "16", "--lr", "1e-2",
                 "--no-progress", "--output", str(out)]) == 0
    config = read_run(out)[0]
    loaded = load_run_model(out, config)
    examples = run_split(config, "test")
    labels = np.array([e.label for e in examples])
    probability = answer_probability(predict_logits(loaded.model, loaded.tokenizer, examples))
    values = np.unique(probability)  # thresholds in the widest gaps between scores: no score
    inner = range(len(values) // 5, 4 * len(values) // 5)  # is near one (float32 logits)
    widest = sorted(inner, key=lambda i: values[i + 1] - values[i])[-2:]
    for threshold in (float(values[i] + values[i + 1]) / 2 for i in sorted(widest)):
        task = run_task(config | {"qa_threshold": threshold})
        expected = (probability >= threshold).astype(int)
        assert 0 < expected.sum() < len(expected)  # the two thresholds decide differently
        results, records = pgd_robustness(
            loaded.model, loaded.tokenizer, examples, PGDAttackSettings(epsilon=(0.0,)),
            task=task, progress=False)
        assert [r["eps=0"]["correct"] for r in records] == (expected == labels).tolist()
        assert results[0].accuracy == pytest.approx(float((expected == labels).mean()))
        scored = score_texts(loaded.model, loaded.tokenizer,
                             [(e.text, e.text_pair) for e in examples],
                             decide=task.decision_logits)
        assert scored.argmax(-1).tolist() == expected.tolist()
        records = vulnerability_scores(loaded.model, loaded.tokenizer, examples, task=task,
                                       progress=False)  # VAA's FGSM targets the run's decision
        assert [r["predicted"] for r in records] == expected.tolist()
        names = config["label_names"]  # `advembed predict` decides by the same threshold
        assert [task.predict(loaded, e.text, e.text_pair, config)["label"]
                for e in examples] == [names[answer] for answer in expected]
        wrapper = _build_wrapper_class(import_textattack())(
            loaded.model, loaded.tokenizer, decide=task.decision_logits, temperature=0.01)
        pairs = [(e.text, e.text_pair) for e in examples]
        assert wrapper(pairs).argmax(-1).tolist() == expected.tolist()
        flipped = {"status": "successful", "label": 1, "text": pairs[0][0],
                   "text_pair": pairs[0][1]}
        _confirm_flip(loaded.model, loaded.tokenizer, flipped, 8, 128, task.decision_logits)
        assert flipped["rescored_prediction"] == expected[0]


def test_vaa_on_a_qa_run_attacks_the_label_model_a_decides_by_its_dev_threshold(
        tmp_path, tiny_model_dir, monkeypatch):
    """Stage two of VAA on a QA-matching run: model B's config carries A's dev threshold, so
    A's FGSM targets the label A's run reports (P(answer) ≥ threshold), not its argmax."""
    import torch

    from advembed.cli import main
    from advembed.evaluation.runs import load_run_model
    from advembed.runs import read_run
    from advembed.vaa import model as vaa_model

    folder = write_qa_folder(tmp_path / "qa", questions=40)
    common = ["--task", "qa-matching", "--dataset", str(folder), "--epochs", "1",
              "--batch-size", "16", "--lr", "1e-2", "--no-progress"]
    assert main(["train", *common, "--model", str(tiny_model_dir),
                 "--output", str(tmp_path / "a")]) == 0
    assert main(["train", *common, "--method", "vaa", "--base-run", str(tmp_path / "a"),
                 "--output", str(tmp_path / "b")]) == 0
    threshold = read_run(tmp_path / "a")[0]["qa_threshold"]
    config = read_run(tmp_path / "b")[0]
    model = load_run_model(tmp_path / "b", config).model
    assert model.config.vaa_threshold == threshold
    seen = []
    real = vaa_model.vulnerability_features
    monkeypatch.setattr(vaa_model, "vulnerability_features",
                        lambda *a, **k: seen.append(k["threshold"]) or real(*a, **k))
    model(input_ids=torch.tensor([[2, 7, 3]]))
    assert seen == [threshold]


def test_predict_decides_by_the_float64_probability_as_eval_does():
    """Logits (0, 17): P(answer) = 0.9999999586 in float64 but 1.0 in a float32 softmax.  At
    the threshold half-way between that P and 1, eval says not-answer: so must predict."""
    task = get_task("qa-matching")
    logits = np.array([0.0, 17.0], dtype=np.float32)
    probability = answer_probability(logits[None])[0]
    task.threshold = (probability + 1.0) / 2
    assert np.float32(1) / (np.float32(1) + np.exp(np.float32(-17))) == 1.0  # float32 rounds
    task.predict_logits = lambda *_: logits
    config = {"label_names": ["no", "yes"]}
    assert task.predict(None, "q", "r", config)["label"] == "no"
    assert task.decision_logits(torch.from_numpy(logits[None])).argmax(-1).item() == 0
