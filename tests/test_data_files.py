"""Generic loaders (CSV/TSV/JSONL files, folders, GLUE, hf:) on tiny files made here."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from advembed.data import Example, TextDataset, load_dataset
from advembed.errors import AdvembedError


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _csv(path: Path, n: int = 40, labels: tuple[str, ...] = ("neg", "pos")) -> Path:
    lines = ["text,label"] + [f'"sentence {i}, quoted",{labels[i % len(labels)]}' for i in range(n)]
    return _write(path, "\n".join(lines) + "\n")


def _jsonl(path: Path, rows: list[dict]) -> Path:
    return _write(path, "".join(json.dumps(r) + "\n" for r in rows))


def _all(ds: TextDataset) -> list[Example]:
    return [ex for split in ("train", "dev", "test") for ex in ds.splits[split]]


# --- single files --------------------------------------------------------------------------


def test_single_csv_is_split_80_10_10_stratified(tmp_path: Path) -> None:
    ds = load_dataset(str(_csv(tmp_path / "reviews.csv", n=100)))
    assert ds.name == "reviews"
    assert ds.label_names == ["neg", "pos"] and ds.num_labels == 2 and not ds.is_pair
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 80, "dev": 10, "test": 10}
    for split in ds.splits.values():
        assert Counter(ex.label for ex in split)[0] == len(split) // 2  # stratified
    assert ds.splits["train"][0].text.startswith("sentence ")
    assert len({ex.text for ex in _all(ds)}) == 100


def test_splits_are_deterministic_and_depend_on_split_seed(tmp_path: Path) -> None:
    path = str(_csv(tmp_path / "d.csv", n=60))
    assert load_dataset(path).splits == load_dataset(path).splits
    assert load_dataset(path).splits != load_dataset(path, split_seed=7).splits


def test_duplicates_are_dropped_before_splitting(tmp_path: Path) -> None:
    rows = [{"text": f"t{i % 20}", "label": i % 2} for i in range(60)]
    ds = load_dataset(str(_jsonl(tmp_path / "dups.jsonl", rows)))
    texts = [ex.text for ex in _all(ds)]
    assert len(texts) == len(set(texts)) == 20


def test_tsv_reads_quotes_literally(tmp_path: Path) -> None:
    body = "".join(f'say "hi {i}\tlabel{i % 3}\n' for i in range(30))
    ds = load_dataset(str(_write(tmp_path / "q.tsv", "sentence\tlabel\n" + body)))
    assert ds.label_names == ["label0", "label1", "label2"]
    assert any(ex.text == 'say "hi 0' for ex in _all(ds))


def test_jsonl_integer_labels_keep_their_values(tmp_path: Path) -> None:
    rows = [{"text": f"t{i}", "label": i % 3, "extra": None} for i in range(30)]
    ds = load_dataset(str(_jsonl(tmp_path / "d.jsonl", rows)))
    assert ds.label_names == ["0", "1", "2"]
    assert all(ex.label == int(ex.text[1:]) % 3 for ex in _all(ds))


def test_jsonl_written_with_unicode_line_separators_inside_strings(tmp_path: Path) -> None:
    # json.dumps(..., ensure_ascii=False) leaves U+2028, U+2029 and U+0085 unescaped
    odd = ["\u2028", "\u2029", "\x85"]
    rows = [{"text": f"a{odd[i % 3]}b{i}", "label": i % 2} for i in range(30)]
    body = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\r\n"
    ds = load_dataset(str(_write(tmp_path / "u.jsonl", body)))
    assert sorted(ex.text for ex in _all(ds)) == sorted(r["text"] for r in rows)


def test_other_integer_labels_are_renumbered_in_numeric_order(tmp_path: Path) -> None:
    rows = [{"text": f"t{i}", "label": [-1, 1, 10][i % 3]} for i in range(30)]
    ds = load_dataset(str(_jsonl(tmp_path / "d.jsonl", rows)))
    assert ds.label_names == ["-1", "1", "10"]
    assert all(ex.label == int(ex.text[1:]) % 3 for ex in _all(ds))


def test_json_array_file(tmp_path: Path) -> None:
    rows = [{"sentence": f"s{i}", "label": "yes" if i % 2 else "no"} for i in range(20)]
    ds = load_dataset(str(_write(tmp_path / "arr.json", json.dumps(rows))))
    assert ds.label_names == ["no", "yes"] and len(_all(ds)) == 20


def test_pair_columns_are_found(tmp_path: Path) -> None:
    rows = [{"sentence1": f"a{i}", "sentence2": f"b{i}", "label": i % 2} for i in range(20)]
    ds = load_dataset(str(_jsonl(tmp_path / "p.jsonl", rows)))
    assert ds.is_pair
    ex = _all(ds)[0]
    assert ex.text[1:] == ex.text_pair[1:] and ex.text[0] == "a"


def test_explicit_columns(tmp_path: Path) -> None:
    rows = [{"q": f"q{i}", "a": f"a{i}", "y": "good" if i % 2 else "bad"} for i in range(20)]
    path = str(_jsonl(tmp_path / "c.jsonl", rows))
    ds = load_dataset(path, text_column="q", text_pair_column="a", label_column="y")
    assert ds.is_pair and ds.label_names == ["bad", "good"]


# --- folders -------------------------------------------------------------------------------


def test_folder_with_all_three_splits_is_used_as_is(tmp_path: Path) -> None:
    _csv(tmp_path / "d" / "train.csv", n=30)
    _jsonl(tmp_path / "d" / "validation.jsonl", [{"text": "v", "label": "pos"}])
    _write(tmp_path / "d" / "test.tsv", "text\tlabel\nt1\tneg\nt2\tpos\n")
    ds = load_dataset(str(tmp_path / "d"))
    assert [len(ds.splits[s]) for s in ("train", "dev", "test")] == [30, 1, 2]
    assert ds.splits["dev"] == [Example("v", 1)]


def test_folder_without_test_uses_dev_as_test(tmp_path: Path) -> None:
    _csv(tmp_path / "d" / "train.csv", n=50)
    _write(tmp_path / "d" / "dev.csv", "text,label\nd1,neg\nd2,pos\n")
    ds = load_dataset(str(tmp_path / "d"))
    assert [ex.text for ex in ds.splits["test"]] == ["d1", "d2"]
    assert (len(ds.splits["train"]), len(ds.splits["dev"])) == (45, 5)


def test_folder_with_train_only_is_split(tmp_path: Path) -> None:
    _csv(tmp_path / "d" / "train.csv", n=50)
    ds = load_dataset(str(tmp_path / "d"))
    assert [len(ds.splits[s]) for s in ("train", "dev", "test")] == [40, 5, 5]


# --- errors --------------------------------------------------------------------------------


def test_unknown_dataset_lists_the_options() -> None:
    with pytest.raises(AdvembedError) as err:
        load_dataset("no-such-thing")
    msg = str(err.value)
    assert "unknown dataset 'no-such-thing'" in msg and "mr" in msg and "hf:NAME" in msg


@pytest.mark.parametrize("spec", ["gone.csv", "data/gone", "reviews.JSONL"])
def test_a_dataset_path_that_does_not_exist_is_named_as_missing(spec) -> None:
    with pytest.raises(AdvembedError, match=f"dataset '{spec}' does not exist .no such file "
                                            "or folder.$"):
        load_dataset(spec)


def test_missing_column_names_file_column_and_available(tmp_path: Path) -> None:
    path = _csv(tmp_path / "d.csv")
    with pytest.raises(AdvembedError) as err:
        load_dataset(str(path), label_column="stars")
    msg = str(err.value)
    assert str(path) in msg and "'stars'" in msg and "'text', 'label'" in msg


@pytest.mark.parametrize(("columns", "roles"), [
    ({"text_column": "label"}, "text and the label"),
    ({"text_column": "text", "text_pair_column": "text"}, "text and the text-pair"),
    ({"text_pair_column": "label"}, "text-pair and the label")])
def test_one_column_in_two_roles_is_refused(tmp_path: Path, columns, roles) -> None:
    path = _csv(tmp_path / "d.csv")
    with pytest.raises(AdvembedError, match=f"d.csv: column '[a-z]+' is given as both the "
                                            f"{roles} column"):
        load_dataset(str(path), **columns)


def test_no_text_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.csv", "body,label\nx,1\n")
    with pytest.raises(AdvembedError, match=r"d\.csv has no text column.*'body'"):
        load_dataset(str(path))


def test_missing_column_in_dev_file(tmp_path: Path) -> None:
    _csv(tmp_path / "d" / "train.csv")
    _write(tmp_path / "d" / "dev.csv", "sentence,label\nx,pos\n")
    with pytest.raises(AdvembedError, match=r"dev\.csv has no text column 'text'"):
        load_dataset(str(tmp_path / "d"))


def test_unknown_label_in_dev_names_file_line_and_label(tmp_path: Path) -> None:
    _csv(tmp_path / "d" / "train.csv")
    _write(tmp_path / "d" / "dev.csv", "text,label\nok,pos\nbad,neutral\n")
    with pytest.raises(AdvembedError) as err:
        load_dataset(str(tmp_path / "d"))
    msg = str(err.value)
    assert "dev.csv line 3" in msg and "'neutral'" in msg and "neg, pos" in msg


def test_empty_file(tmp_path: Path) -> None:
    for name, content in [("e.csv", "text,label\n"), ("e.jsonl", "\n"), ("z.tsv", "")]:
        path = _write(tmp_path / name, content)
        with pytest.raises(AdvembedError, match=f"{name} has no examples"):
            load_dataset(str(path))


def test_empty_text_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.csv", "text,label\nfine,a\n  ,b\n")
    with pytest.raises(AdvembedError, match=r"d\.csv line 3: empty text in column 'text'"):
        load_dataset(str(path))


def test_empty_label_names_the_line(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "d.jsonl", [{"text": "a", "label": 1}, {"text": "b"}])
    with pytest.raises(AdvembedError, match=r"d\.jsonl line 2: empty label"):
        load_dataset(str(path))


@pytest.mark.parametrize(("line", "what"), [('{"text": NaN, "label": 1}', "text"),
                                             ('{"text": "good", "label": NaN}', "label")])
def test_a_json_nan_is_a_missing_value_not_the_word_nan(tmp_path: Path, line, what) -> None:
    rows = [f'{{"text": "film {i}", "label": {i % 2}}}' for i in range(12)]
    path = _write(tmp_path / "d.jsonl", "\n".join(rows[:5] + [line] + rows[5:]) + "\n")
    with pytest.raises(AdvembedError, match=f"d.jsonl line 6: empty {what} in column"):
        load_dataset(str(path))



@pytest.mark.parametrize(("value", "what", "kind"), [
    ('{"text": ["a", "b"], "label": 0}', "text", "list, not a text"),
    ('{"text": {"a": 1}, "label": 0}', "text", "JSON object, not a text"),
    ('{"text": "fine", "label": [1]}', "label", "list, not a label"),
    ('{"text": "fine", "label": {"y": 1}}', "label", "JSON object, not a label"),
    ('{"text": "fine", "pair": ["b"], "label": 1}', "pair", "list, not a text pair")])
def test_a_json_list_or_object_is_refused_not_read_as_its_python_spelling(
        tmp_path: Path, value, what, kind) -> None:
    rows = [f'{{"text": "film {i}", "pair": "p", "label": {i % 2}}}' for i in range(12)]
    path = _write(tmp_path / "d.jsonl", "\n".join(rows[:5] + [value] + rows[5:]) + "\n")
    with pytest.raises(AdvembedError, match=re.escape(
            f"d.jsonl line 6: column '{what}' holds a {kind}")):
        load_dataset(str(path), text_pair_column="pair")


def test_json_true_false_labels_are_two_classes_unless_mixed_with_others(tmp_path: Path) -> None:
    """true/false alone are the classes False (0) and True (1); mixed with 0/1 they would be
    four classes '0', '1', 'False', 'True', so the mix is refused naming the row."""
    rows = [{"text": f"film {i}", "label": i % 2 == 1} for i in range(20)]
    ds = load_dataset(str(_jsonl(tmp_path / "b.jsonl", rows)))
    assert ds.label_names == ["False", "True"]
    assert all(e.label == int(e.text.endswith(("1", "3", "5", "7", "9"))) for e in _all(ds))
    mixed = _jsonl(tmp_path / "m.jsonl", [{"text": f"film {i}", "label": i % 2}
                                          for i in range(12)] + [{"text": "x", "label": True}])
    with pytest.raises(AdvembedError, match=re.escape(
            "m.jsonl line 13: label true in column 'label' mixes JSON true/false with other "
            "labels (line 1 has 0)")):
        load_dataset(str(mixed))
    mixed = _jsonl(tmp_path / "n.jsonl", [{"text": "x", "label": False}]
                   + [{"text": f"film {i}", "label": "pos"} for i in range(12)])
    with pytest.raises(AdvembedError, match=re.escape(
            "n.jsonl line 2: label \"pos\" in column 'label' mixes JSON true/false with other "
            "labels (line 1 has false)")):
        load_dataset(str(mixed))


@pytest.mark.parametrize(("name", "head"), [("d.csv", "sentence,sentence,label"),
                                            ("d.tsv", "sentence\tlabel\tsentence")])
def test_a_header_naming_a_column_twice_is_refused(tmp_path: Path, name, head) -> None:
    sep = "," if name.endswith(".csv") else "\t"
    rows = "".join(sep.join(["a", "0", "b"] if sep == "\t" else ["a", "b", "0"]) + "\n"
                   for _ in range(12))
    path = _write(tmp_path / name, "\n" + head + "\n" + rows)  # a blank first line counts
    with pytest.raises(AdvembedError, match=re.escape(
            f"{name} line 2: column 'sentence' appears twice in the header")):
        load_dataset(str(path))


@pytest.mark.parametrize("option", ["label_column", "text_column", "text_pair_column"])
def test_an_empty_column_name_is_refused_not_read_as_the_default(tmp_path: Path,
                                                                 option) -> None:
    from advembed.data.options import DataOptions

    path = _csv(tmp_path / "d.csv")
    flag = "--" + option.replace("_", "-")
    with pytest.raises(AdvembedError, match=f"^option {flag} must not be empty for the data "
                                            "options, got ''$"):
        DataOptions(dataset=str(path), **{option: ""})
    with pytest.raises(AdvembedError, match="has no (label|text|text-pair) column ''"):
        load_dataset(str(path), **{option: ""})  # the loader itself reads no default either


def test_an_empty_dataset_is_refused_not_read_as_mr(tmp_path: Path, capsys) -> None:
    from advembed.cli import main
    from advembed.data.options import DataOptions

    for spec in ("", "  "):
        with pytest.raises(AdvembedError, match="^option --dataset must not be empty for the "
                                                "data options"):
            DataOptions(dataset=spec)
    assert main(["train", "--dataset", "", "--output", str(tmp_path / "run"),
                 "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == ("advembed train: error: option --dataset must "
                                               "not be empty for train, got ''")
    assert not (tmp_path / "run").exists()
    assert DataOptions().over({"dataset": "mr", "label_column": ""}).label_column is None


def test_a_non_utf8_byte_in_a_glue_header_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    rows = "".join(f"t{i}\t{i % 2}\n" for i in range(20)).encode()
    (folder).mkdir()
    (folder / "train.tsv").write_bytes(b"\xef\xbb\xbftext\xff\tlabel\n" + rows)
    _write(folder / "dev.tsv", "text\tlabel\nd\t0\n")
    with pytest.raises(AdvembedError, match=re.escape(
            f"{folder / 'train.tsv'} line 1 is not UTF-8 (byte 0xff); save the file as UTF-8")):
        load_dataset(str(folder))
    (folder / "train.tsv").write_bytes(b"\xef\xbb\xbftext\tlabel\n\xfe" + rows)  # after a BOM
    with pytest.raises(AdvembedError, match=re.escape("train.tsv line 2 is not UTF-8 (byte 0xfe)")):
        load_dataset(str(folder))


def test_bad_json_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", '{"text": "a", "label": 1}\n{oops\n')
    with pytest.raises(AdvembedError, match=r"d\.jsonl line 2 is not valid JSON"):
        load_dataset(str(path))


def test_unsupported_file_type(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.txt", "hello\n")
    with pytest.raises(AdvembedError, match=r"unsupported file type '\.txt'"):
        load_dataset(str(path))


def test_folder_without_train_file(tmp_path: Path) -> None:
    _csv(tmp_path / "d" / "dev.csv")
    with pytest.raises(AdvembedError, match="has no train file"):
        load_dataset(str(tmp_path / "d"))


def test_folder_with_two_train_files(tmp_path: Path) -> None:
    _csv(tmp_path / "d" / "train.csv")
    _write(tmp_path / "d" / "train.jsonl", '{"text": "a", "label": "pos"}\n')
    with pytest.raises(AdvembedError, match="several train files"):
        load_dataset(str(tmp_path / "d"))


def test_too_few_examples(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.csv", "text,label\na,x\nb,y\n")
    with pytest.raises(AdvembedError, match=f"^'{path}' has 2 distinct examples; at least 3"):
        load_dataset(str(path))


def test_column_options_rejected_for_named_dataset() -> None:
    with pytest.raises(AdvembedError, match="column options do not apply to 'mr'"):
        load_dataset("mr", text_column="x")


def test_limit_caps_each_split_and_keeps_classes(tmp_path: Path) -> None:
    ds = load_dataset(str(_csv(tmp_path / "d.csv", n=200)))
    small = ds.limit(20, seed=1)
    assert small is not ds and len(ds.splits["train"]) == 160
    assert {k: len(v) for k, v in small.splits.items()} == {"train": 20, "dev": 20, "test": 20}
    assert Counter(ex.label for ex in small.splits["train"]) == {0: 10, 1: 10}
    assert small.splits == ds.limit(20, seed=1).splits
    assert ds.limit(1000, seed=0).splits == ds.splits
    with pytest.raises(AdvembedError, match="limit must be a positive"):
        ds.limit(0, seed=0)


# --- GLUE ----------------------------------------------------------------------------------


def test_glue_sst2_folder(tmp_path: Path) -> None:
    folder = tmp_path / "SST-2"
    rows = "".join(f'it \'s "good" {i} \t{i % 2}\n' for i in range(40))
    _write(folder / "train.tsv", "sentence\tlabel\n" + rows)
    _write(folder / "dev.tsv", 'sentence\tlabel\nbad " movie\t0\ngreat\t1\n')
    _write(folder / "test.tsv", "index\tsentence\n0\tunlabelled\n")
    ds = load_dataset(str(folder))
    assert ds.name == "glue-sst2" and ds.label_names == ["negative", "positive"]
    assert ds.splits["test"] == [Example('bad " movie', 0), Example("great", 1)]
    assert (len(ds.splits["train"]), len(ds.splits["dev"])) == (36, 4)
    assert load_dataset(f"glue:{folder}").splits == ds.splits


def test_glue_mrpc_with_bom_detected_by_header(tmp_path: Path) -> None:
    folder = tmp_path / "paraphrase"
    head = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    rows = "".join(f"{i % 2}\t{i}\t{i}\tA {i}\tB {i}\n" for i in range(20))
    _write(folder / "train.tsv", head + rows)
    _write(folder / "dev.tsv", head + "1\t1\t2\tx\ty\n")
    ds = load_dataset(str(folder))
    assert ds.name == "glue-mrpc" and ds.is_pair
    assert ds.label_names == ["not_equivalent", "equivalent"]
    assert ds.splits["test"] == [Example("x", 1, "y")]


def test_glue_mnli_uses_dev_matched_and_hf_label_order(tmp_path: Path) -> None:
    folder = tmp_path / "MNLI"
    head = "index\tgenre\tsentence1\tsentence2\tlabel1\tgold_label\n"
    gold = ["entailment", "neutral", "contradiction"]
    rows = "".join(f"{i}\tx\tp{i}\th{i}\t{gold[i % 3]}\t{gold[i % 3]}\n" for i in range(30))
    _write(folder / "train.tsv", head + rows)
    _write(folder / "dev_matched.tsv", head + "0\tx\tp\th\tneutral\tneutral\n")
    ds = load_dataset(str(folder))
    assert ds.label_names == ["entailment", "neutral", "contradiction"]
    assert ds.splits["test"] == [Example("p", 1, "h")]


def test_glue_cola_without_header(tmp_path: Path) -> None:
    folder = tmp_path / "CoLA"
    rows = "".join(f"src\t{i % 2}\t\tsentence {i} .\n" for i in range(20))
    _write(folder / "train.tsv", rows)
    _write(folder / "dev.tsv", "src\t0\t*\tbad sentence .\n")
    ds = load_dataset(f"glue:{folder}")
    assert ds.label_names == ["unacceptable", "acceptable"]
    assert ds.splits["test"] == [Example("bad sentence .", 0)]


def test_glue_unknown_label_and_missing_column(tmp_path: Path) -> None:
    folder = tmp_path / "RTE"
    head = "index\tsentence1\tsentence2\tlabel\n"
    _write(folder / "train.tsv", head + "0\ta\tb\tentailment\n1\tc\td\tmaybe\n")
    _write(folder / "dev.tsv", head + "0\ta\tb\tentailment\n")
    with pytest.raises(AdvembedError, match=r"train\.tsv line 3: unknown label 'maybe'"):
        load_dataset(str(folder))
    _write(folder / "train.tsv", "index\tsentence1\tlabel\n0\ta\tentailment\n")
    with pytest.raises(AdvembedError, match=r"no text-pair column 'sentence2'"):
        load_dataset(f"glue:{folder}")


def test_glue_errors(tmp_path: Path) -> None:
    with pytest.raises(AdvembedError, match="GLUE folder .*nothere not found"):
        load_dataset(f"glue:{tmp_path / 'nothere'}")
    _write(tmp_path / "mystery" / "train.tsv", "a\tb\tc\n")
    with pytest.raises(AdvembedError, match="cannot tell which GLUE task"):
        load_dataset(f"glue:{tmp_path / 'mystery'}")


def test_tsv_folder_that_is_not_glue_uses_the_file_loader(tmp_path: Path) -> None:
    rows = "".join(f"t{i}\t{i % 2}\n" for i in range(20))
    _write(tmp_path / "mine" / "train.tsv", "text\tlabel\n" + rows)
    _write(tmp_path / "mine" / "dev.tsv", "text\tlabel\nd\t0\n")
    ds = load_dataset(str(tmp_path / "mine"))
    assert ds.name == "mine" and ds.splits["test"] == [Example("d", 0)]


def test_a_folder_with_a_labelled_test_tsv_is_the_users_split_not_glue(tmp_path: Path) -> None:
    rows = "".join(f"t{i}\t{i % 2}\n" for i in range(20))
    _write(tmp_path / "mydata" / "train.tsv", "sentence\tlabel\n" + rows)
    _write(tmp_path / "mydata" / "dev.tsv", "sentence\tlabel\nd\t0\n")
    _write(tmp_path / "mydata" / "test.tsv", "sentence\tlabel\nt one\t1\nt two\t0\n")
    ds = load_dataset(str(tmp_path / "mydata"))
    assert ds.name == "mydata"
    assert ds.splits["test"] == [Example("t one", 1), Example("t two", 0)]
    assert ds.splits["dev"] == [Example("d", 0)]
    cola_rows = "".join(f"src\t{i % 2}\t\tsentence {i} .\n" for i in range(20))
    _write(tmp_path / "CoLA" / "train.tsv", cola_rows)
    _write(tmp_path / "CoLA" / "dev.tsv", "src\t0\t*\tbad .\n")
    _write(tmp_path / "CoLA" / "test.tsv", "index\tsentence\n0\tunlabelled .\n")
    assert load_dataset(str(tmp_path / "CoLA")).name == "glue-cola"
    _write(tmp_path / "CoLA" / "test.tsv", "src\t1\t\tlabelled .\n")
    with pytest.raises(AdvembedError, match="CoLA"):  # the user's own, header-less: refused
        load_dataset(str(tmp_path / "CoLA"))


# --- hf: -----------------------------------------------------------------------------------


def test_hf_csv_local_files(tmp_path: Path) -> None:
    path = _csv(tmp_path / "h.csv", n=30)
    ds = load_dataset(f"hf:csv:{path}")
    assert ds.label_names == ["neg", "pos"] and len(_all(ds)) == 30


def test_hf_json_saved_dataset_dict_with_class_labels(tmp_path: Path) -> None:
    import datasets

    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["no", "yes"])}
    )
    train = datasets.Dataset.from_dict(
        {"sentence": [f"s{i}" for i in range(20)], "label": [i % 2 for i in range(20)]}, features
    )
    dev = datasets.Dataset.from_dict({"sentence": ["d"], "label": [1]}, features)
    test = datasets.Dataset.from_dict({"sentence": ["u"], "label": [-1]}, features)
    folder = tmp_path / "saved"
    datasets.DatasetDict({"train": train, "validation": dev, "test": test}).save_to_disk(folder)
    ds = load_dataset(f"hf:{folder}")
    assert ds.label_names == ["no", "yes"]
    assert ds.splits["test"] == [Example("d", 1)]  # unlabelled test dropped, dev → test
    assert len(ds.splits["train"]) + len(ds.splits["dev"]) == 20
    train.save_to_disk(tmp_path / "single")  # one Dataset, not a DatasetDict: all of it trains
    one = load_dataset(f"hf:{tmp_path / 'single'}")
    assert one.label_names == ["no", "yes"] and sum(len(v) for v in one.splits.values()) == 20


def test_hf_failure_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(AdvembedError, match="could not load Hugging Face dataset"):
        load_dataset(f"hf:json:{tmp_path / 'missing.jsonl'}")
    with pytest.raises(AdvembedError, match=r"hf:csv needs data files"):
        load_dataset("hf:csv")


def test_a_datasets_fingerprint_is_the_sha256_of_its_examples_in_order():
    import hashlib

    from advembed.data.base import Example, TextDataset

    rows = [Example("Très bien", 1), Example("q?", 0, "a.")]
    data = TextDataset("x", ["n", "p"], {"train": rows, "dev": rows[::-1], "test": []})
    expected = hashlib.sha256('["Très bien", null, 1]\n["q?", "a.", 0]\n'.encode()).hexdigest()
    found = data.fingerprints()
    assert found["train"] == expected
    assert found["dev"] != expected  # the order is part of the split
    assert found["test"] == hashlib.sha256(b"").hexdigest()
