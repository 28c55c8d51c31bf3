"""Question–answer matching data (paper 000): a question, its K candidate replies, and for each
reply whether it answers the question.

The format is the one of paper 000's competition data, a folder with

* ``train.query.tsv`` — ``id<TAB>question``
* ``train.reply.tsv`` — ``id<TAB>reply_id<TAB>reply<TAB>label`` (label 1 = answers it)

and optionally ``test.query.tsv`` / ``test.reply.tsv`` *with labels* (the competition's unlabeled
test files cannot be scored and are refused), and ``train.group.tsv`` — ``id<TAB>group`` for
every training question — when questions share candidate replies (several questions of one
document, one conversation): the splits are then made **by group**, so that no reply is seen
in training with another question's label and scored again in test.  Every (question, reply)
pair becomes an
:class:`~advembed.data.base.Example` with the question as ``text`` and the reply as
``text_pair``.  Splits are made **by question**, so no question leaks from train into dev or
test: 80/10/10 of the question ids (seeded by ``split_seed``), or, with labeled test files,
10 % of the training questions as dev.  Ids whose question text is the same are one question
(their replies merged under the first id).  A training question whose text is also a labeled
test question's ("在吗", "hello" in real chat data) is left out of training and dev, so that the
test set is scored whole and nothing of it is trained on; the dataset's description counts them.
An id given twice in a query file, an empty question or reply, and one of the two test files
without the other are errors.  Questions that differ in case or punctuation stay apart.
"""

from __future__ import annotations

import random
from pathlib import Path

from advembed.data.base import Example, TextDataset
from advembed.data.tables import read_text
from advembed.errors import AdvembedError

QA_LABELS = ("not-answer", "answer")
QUERY_FILE, REPLY_FILE, GROUP_FILE = "{split}.query.tsv", "{split}.reply.tsv", "{split}.group.tsv"

Group = tuple[str, list[tuple[str, int]]]  # question, its (reply, label) pairs


def is_qa_folder(path: Path) -> bool:
    return path.is_dir() and (path / QUERY_FILE.format(split="train")).is_file()


def _rows(path: Path, fields: int) -> list[tuple[int, list[str]]]:
    """``(line number in the file, fields)`` of each non-blank line."""
    if not path.is_file():
        raise AdvembedError(f"QA-matching folder is missing {path.name} ({path})")
    rows = []  # read_text: a byte-order mark dropped, a byte that is not UTF-8 one line
    text = read_text(path).replace("\r\n", "\n").replace("\r", "\n")  # as open() reads
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != fields:
            raise AdvembedError(f"{path.name} line {number}: expected {fields} "
                                f"tab-separated fields, found {len(parts)}")
        rows.append((number, parts))
    return rows


def read_groups(folder: Path, split: str) -> dict[str, Group]:
    """Question id → (question, [(reply, label), …]) from one pair of files (a question
    with no reply has an empty list)."""
    query_file = QUERY_FILE.format(split=split)
    queries: dict[str, str] = {}
    for number, (qid, text) in _rows(folder / query_file, 2):
        if qid in queries:
            raise AdvembedError(f"{query_file} line {number}: question id '{qid}' is given "
                                "twice")
        if not text.strip():
            raise AdvembedError(f"{query_file} line {number}: question id '{qid}' has an empty "
                                "question")
        queries[qid] = text
    groups: dict[str, Group] = {qid: (text, []) for qid, text in queries.items()}
    reply_file = REPLY_FILE.format(split=split)
    seen: dict[tuple[str, str], int] = {}
    for number, (qid, reply_id, reply, label) in _rows(folder / reply_file, 4):
        if (qid, reply_id) in seen:  # counted twice, or two labels for one reply
            raise AdvembedError(f"{reply_file} line {number}: reply id '{reply_id}' of question "
                                f"id '{qid}' is given twice (first on line "
                                f"{seen[qid, reply_id]})")
        seen[qid, reply_id] = number
        if qid not in groups:
            raise AdvembedError(f"{reply_file} line {number}: question id '{qid}' is not in "
                                f"{QUERY_FILE.format(split=split)}")
        if label not in ("0", "1"):
            raise AdvembedError(f"{reply_file} line {number}: label '{label}' is not 0 or 1 "
                                "(unlabeled competition test files cannot be scored)")
        if not reply.strip():
            raise AdvembedError(f"{reply_file} line {number}: empty reply to question id "
                                f"'{qid}'")
        groups[qid][1].append((reply, int(label)))
    return groups


def _answered(groups: dict[str, Group]) -> tuple[dict[str, Group], int]:
    """The questions with at least one reply, and how many had none (counted, not silent:
    a header line ``id<TAB>question`` is one)."""
    kept = {qid: group for qid, group in groups.items() if group[1]}
    return kept, len(groups) - len(kept)


def _merge_repeated_questions(groups: dict[str, Group],
                              group_of: dict[str, str] | None = None,
                              ) -> tuple[dict[str, Group], dict[str, str] | None]:
    """One group per question text, under its first id in sorted order: a question asked
    under two ids must not land in two splits.  With ``group_of`` (question id → group) the
    groups of ids merged together are joined too (union–find), and the kept id's group is
    returned: otherwise a merged id's replies would travel with its first id's group while
    the other group's questions, which may share those replies, went to another split."""
    by_text: dict[str, str] = {}
    merged: dict[str, Group] = {}
    for qid in sorted(groups):
        text, replies = groups[qid]
        merged.setdefault(by_text.setdefault(text, qid), (text, []))[1].extend(replies)
    if group_of is None:
        return merged, None
    parent: dict[str, str] = {}

    def root(group: str) -> str:
        while parent.setdefault(group, group) != group:
            group = parent[group]
        return group

    for qid in groups:  # join each id's group with the group of the id it was merged into
        a, b = root(group_of[qid]), root(group_of[by_text[groups[qid][0]]])
        if a != b:
            parent[max(a, b)] = min(a, b)
    return merged, {qid: root(group_of[qid]) for qid in merged}


def _examples(groups: list[Group]) -> list[Example]:
    return [Example(question, label, reply) for question, replies in groups
            for reply, label in replies]


def _split_ids(ids: list[str], seed: int, fractions: tuple[float, ...],
               group_of: dict[str, str] | None = None) -> list[list[str]]:
    """``[rest, *parts]``: the shuffled ids cut by ``fractions`` — of the groups, each
    group's ids kept together, when ``group_of`` is given."""
    group_of = group_of or {qid: qid for qid in ids}
    order = sorted({group_of[qid] for qid in ids})
    random.Random(seed).shuffle(order)
    cuts, parts, start = [round(len(order) * f) for f in fractions], [], 0
    for cut in cuts:
        parts.append(order[start:start + max(1, cut)])
        start += max(1, cut)
    members: dict[str, list[str]] = {}
    for qid in sorted(ids):
        members.setdefault(group_of[qid], []).append(qid)
    return [[qid for group in part for qid in members[group]]
            for part in (order[start:], *parts)]


def read_question_groups(folder: Path, questions: dict[str, Group],
                         known: set[str] | None = None) -> dict[str, str] | None:
    """Question id → group from ``train.group.tsv`` (``None`` without one); every question
    with replies must have one, and every id it names must be a question of ``known`` (the
    query file's ids) — a typo there would pass unnoticed otherwise."""
    group_file = folder / GROUP_FILE.format(split="train")
    if not group_file.is_file():
        return None
    group_of: dict[str, str] = {}
    for number, (qid, group) in _rows(group_file, 2):
        if qid in group_of:
            raise AdvembedError(f"{group_file.name} line {number}: question id '{qid}' is "
                                "given twice")
        if known is not None and qid not in known:
            raise AdvembedError(f"{group_file.name} line {number}: question id '{qid}' is not "
                                f"in {QUERY_FILE.format(split='train')}")
        group_of[qid] = group
    missing = sorted(set(questions) - set(group_of))
    if missing:
        raise AdvembedError(f"{group_file.name} gives no group for question id '{missing[0]}' "
                            f"({len(missing)} in all)")
    return group_of


def load_qa_folder(folder: Path, split_seed: int = 2024) -> TextDataset:
    """The QA-matching dataset of ``folder``, split by question (or by the questions' groups,
    with ``train.group.tsv``)."""
    asked_train = read_groups(folder, "train")
    train, unanswered = _answered(asked_train)
    train, group_of = _merge_repeated_questions(
        train, read_question_groups(folder, train, known=set(asked_train)))
    has_test = any((folder / name.format(split="test")).is_file()  # one alone: name the other
                   for name in (QUERY_FILE, REPLY_FILE))
    test: dict[str, Group] = {}
    if has_test:
        test, unanswered_test = _answered(read_groups(folder, "test"))
        test = _merge_repeated_questions(test)[0]
        unanswered += unanswered_test
    asked = {text for text, _ in test.values()}
    left_out = [qid for qid, (text, _) in train.items() if text in asked]
    for qid in left_out:
        del train[qid]
    units = len({group_of[qid] for qid in train} if group_of else train)  # what is split
    if units < (2 if has_test else 3):
        what = (f"{units} question group(s) in {GROUP_FILE.format(split='train')}" if group_of
                else f"{len(train)} question(s) with replies")
        if left_out:
            what += f" once {len(left_out)} that are also test questions are left out"
        raise AdvembedError(f"QA-matching folder {folder} has {what}; at least "
                            f"{2 if has_test else 3} are needed to split by "
                            f"{'group' if group_of else 'question'}")
    if has_test:
        train_ids, dev_ids = _split_ids(list(train), split_seed, (0.1,), group_of)
        splits = {"train": [train[q] for q in train_ids], "dev": [train[q] for q in dev_ids],
                  "test": list(test.values())}
    else:
        train_ids, dev_ids, test_ids = _split_ids(list(train), split_seed, (0.1, 0.1), group_of)
        splits = {name: [train[q] for q in ids]
                  for name, ids in (("train", train_ids), ("dev", dev_ids), ("test", test_ids))}
    description = ("question–answer matching (paper 000 format), split by question"
                   + (" group" if group_of else ""))
    if left_out:
        description += (f"; {len(left_out)} training question(s) that are also test questions "
                        "left out")
    if unanswered:
        description += f"; {unanswered} question(s) with no reply left out"
    return TextDataset(folder.name, list(QA_LABELS),
                       {name: _examples(groups) for name, groups in splits.items()},
                       description)
