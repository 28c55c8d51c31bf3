"""``advembed mlm build``: BERT masking, the resumable training loop, the metrics and the
installed model that VDA and bert-attack/bae load by default."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch
from conftest import WORDS

import advembed.mlm.build as build
import advembed.mlm.corpus
import advembed.mlm.load
from advembed.cli import main
from advembed.errors import AdvembedError, ResourceUnavailable
from advembed.mlm import load_masked_lm
from advembed.mlm.build import MLMBuildSettings, batches, mask_tokens, most_frequent_token

SENTENCES = [" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(6 + i % 4))
             for i in range(60)]


@pytest.fixture()
def tiny_corpus(monkeypatch):
    def fake(names=None, *, held_out, seed, split_seed=2024):
        return SENTENCES[held_out:], SENTENCES[:held_out]

    monkeypatch.setattr(advembed.mlm.corpus, "corpus", fake)


def _settings(tmp_path, model_dir, **options):
    values = dict(model=str(model_dir), output=str(tmp_path / "mlm"), steps=4, batch_size=8,
                  held_out=10, save_every=2, warmup_steps=1, fp16=False, progress=False,
                  lr=1e-3)
    return MLMBuildSettings(**(values | options))


def test_bert_masking_never_touches_special_tokens_and_mixes_80_10_10(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    ids = torch.randint(5, len(tokenizer), (400, 50), generator=torch.Generator().manual_seed(0))
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -10:] = True
    masked, chosen = mask_tokens(ids, special, tokenizer, torch.Generator().manual_seed(1))
    assert not chosen[special].any()
    assert chosen[~special].float().mean().item() == pytest.approx(0.15, abs=0.01)
    as_mask = (masked[chosen] == tokenizer.mask_token_id).float().mean().item()
    kept = (masked[chosen] == ids[chosen]).float().mean().item()
    assert as_mask == pytest.approx(0.8, abs=0.03)
    assert kept == pytest.approx(0.1 + 0.1 / len(tokenizer), abs=0.03)
    assert torch.equal(masked[~chosen], ids[~chosen])


def test_a_batch_with_no_token_drawn_trains_nothing_instead_of_a_nan(tiny_model_dir):
    """A batch whose 15 % draw picks no token (one short sentence can be such a batch): the
    loss is 0 with no gradient, where a mean over no position would be NaN."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForMaskedLM.from_pretrained(str(tiny_model_dir))
    enc = tokenizer(["good fun"], return_tensors="pt")
    special = torch.ones_like(enc["input_ids"], dtype=torch.bool)  # nothing can be drawn
    loss = build.masked_loss(model, tokenizer, dict(enc), special,
                             torch.Generator().manual_seed(0), torch.device("cpu"))
    assert loss.item() == 0.0
    loss.backward()
    assert all(p.grad is None for p in model.parameters())
    special[0, 1] = False  # one real token, drawn with probability 0.15: some seed draws it
    values = [build.masked_loss(model, tokenizer, dict(enc), special,
                                torch.Generator().manual_seed(seed), torch.device("cpu")).item()
              for seed in range(40)]
    assert all(math.isfinite(v) for v in values) and any(v > 0 for v in values)


def test_batches_cover_each_sentence_once_per_epoch_in_a_seeded_order():
    epoch = [i for step in range(5) for i in batches(40, 8, seed=3, step=step)]
    assert sorted(epoch) == list(range(40))
    assert batches(40, 8, seed=3, step=5) != batches(40, 8, seed=3, step=0)  # a new order
    assert batches(40, 8, seed=3, step=7) == batches(40, 8, seed=3, step=7)
    import random

    order = list(range(40))
    random.Random(3 + 1).shuffle(order)  # epoch 1 reads the permutation seeded seed + 1
    assert batches(40, 8, seed=3, step=6) == order[8:16]


def test_a_batch_of_the_pretokenized_corpus_is_what_tokenizing_it_gives(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    sentences = SENTENCES[:12] + [" ".join(WORDS * 3)]  # the last one is truncated to 14
    encoded = build.pretokenize(tokenizer, sentences, max_length=14)
    indices = [12, 3, 0, 7]
    enc, special = build.collate(encoded, indices, tokenizer.pad_token_id)
    expected, expected_special = build._encode(tokenizer, [sentences[i] for i in indices], 14)
    assert sorted(enc) == sorted(expected)
    for key in expected:
        assert torch.equal(enc[key], expected[key]), key
    assert torch.equal(special, expected_special)
    padding = enc["attention_mask"] == 0
    assert enc["input_ids"].shape[1] == 14 and padding.any() and special[padding].all()


def test_the_frequency_baseline_is_the_commonest_real_token(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    top = most_frequent_token(tokenizer, ["the movie", "a movie", "the movie was good"])
    assert tokenizer.convert_ids_to_tokens(top) == "movie"


def test_a_build_installs_a_loadable_mlm_with_its_metrics(tmp_path, tiny_model_dir, tiny_corpus):
    settings = _settings(tmp_path, tiny_model_dir)
    metrics = build.build_mlm(settings)
    out = tmp_path / "mlm"
    saved = json.loads((out / "mlm_metrics.json").read_text())
    assert saved["top1"] == metrics["top1"]
    for key in ("top1", "top10", "frequency_baseline_top1", "held_out_sentences"):
        assert key in saved
    assert saved["held_out_sentences"] == 10 and 0 <= saved["top1"] <= saved["top10"] <= 1
    from advembed.provider import sha256_of

    assert saved["weights_sha256"] == sha256_of(out / "model.safetensors")
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask  # not 0600
    assert not (tmp_path / "mlm.partial").exists()
    model, tokenizer = load_masked_lm(str(out))  # a trained head: accepted
    assert model.get_output_embeddings().out_features == len(tokenizer)
    with pytest.raises(AdvembedError, match="already holds a built MLM"):
        build.build_mlm(settings)


def test_without_a_progress_bar_each_checkpoint_prints_one_line(tmp_path, tiny_model_dir,
                                                                 tiny_corpus, capsys):
    build.build_mlm(_settings(tmp_path, tiny_model_dir, steps=5))  # saves at 2, 4 and 5
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    assert [line.split(":")[0] for line in lines] == ["step 2/5", "step 4/5", "step 5/5"]
    assert [line.split(" over ")[1].split(",")[0] for line in lines] == [
        "2 steps", "2 steps", "1 step"]


def test_a_build_that_fails_before_its_first_checkpoint_leaves_no_folder(tmp_path):
    with pytest.raises(AdvembedError, match="nonexistent"):
        build.build_mlm(_settings(tmp_path, tmp_path / "nonexistent"))
    assert not (tmp_path / "mlm.partial").exists() and not (tmp_path / "mlm").exists()


def test_a_second_build_of_the_same_output_is_refused_while_the_first_lives(
        tmp_path, tiny_model_dir, tiny_corpus):
    import subprocess

    lock = tmp_path / ".mlm.lock"
    other = subprocess.Popen(["sleep", "60"])
    try:
        lock.write_text(str(other.pid))
        with pytest.raises(AdvembedError, match=rf"being built by another advembed process "
                                                rf"\(pid {other.pid}\)"):
            build.build_mlm(_settings(tmp_path, tiny_model_dir))
        assert lock.read_text() == str(other.pid) and not (tmp_path / "mlm").exists()
    finally:
        other.kill()
        other.wait()
    build.build_mlm(_settings(tmp_path, tiny_model_dir))  # its owner is gone: taken over
    assert (tmp_path / "mlm" / "mlm_metrics.json").is_file() and not lock.exists()


def test_a_build_never_deletes_or_writes_over_what_is_not_an_mlm(tmp_path, tiny_model_dir,
                                                                   tiny_corpus):
    """An --output folder holding other files, or a file, is refused before any work, with or
    without --overwrite, and left as it was; --overwrite replaces a built MLM."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    afile = tmp_path / "reviews.csv"
    afile.write_text("text,label\n")
    for out, message in ((folder, "holds no built MLM"), (afile, "is a file")):
        for overwrite in (False, True):
            settings = _settings(tmp_path, tiny_model_dir, output=str(out), overwrite=overwrite)
            with pytest.raises(AdvembedError, match=message):
                build.build_mlm(settings)
    assert (folder / "notes.txt").read_text() == "keep me" and afile.read_text() == "text,label\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "reviews.csv"]
    build.build_mlm(_settings(tmp_path, tiny_model_dir))
    first = (tmp_path / "mlm" / "mlm_metrics.json").read_text()
    build.build_mlm(_settings(tmp_path, tiny_model_dir, overwrite=True, seed=1))
    assert (tmp_path / "mlm" / "mlm_metrics.json").read_text() != first
    assert not (tmp_path / ".mlm.replaced").exists()


def test_an_interrupted_build_resumes_to_the_same_weights(tmp_path, tiny_model_dir, tiny_corpus,
                                                         monkeypatch):
    straight = _settings(tmp_path / "a", tiny_model_dir)
    build.build_mlm(straight)
    calls = {"n": 0}
    real = build.masked_loss

    def stop_at_step_three(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(build, "masked_loss", stop_at_step_three)
    resumed = _settings(tmp_path / "b", tiny_model_dir)
    with pytest.raises(KeyboardInterrupt):
        build.build_mlm(resumed)
    from advembed.state_io import load_state

    state = load_state(tmp_path / "b" / "mlm.partial" / "state", "state")
    assert state["step"] == 2  # saved every 2 steps
    with pytest.raises(AdvembedError, match=r"other settings \(lr\)"):
        build.build_mlm(_settings(tmp_path / "b", tiny_model_dir, lr=5e-4))
    shifted = SENTENCES[1:] + SENTENCES[:1]  # the corpus changed since: other held-out rows
    with monkeypatch.context() as patch:
        patch.setattr(advembed.mlm.corpus, "corpus", lambda names=None, *, held_out, seed,
                      split_seed=2024: (shifted[held_out:], shifted[:held_out]))
        with pytest.raises(AdvembedError, match=r"other settings \(corpus_sha256\)"):
            build.build_mlm(resumed)
    old = tmp_path / "b" / "mlm.partial" / "state.old"  # an interruption left one behind
    old.mkdir()
    (old / "state.json").write_text("{}")
    calls["n"] = -100  # no more interruptions
    build.build_mlm(resumed)
    assert calls["n"] == -100 + 2  # only steps 3 and 4 were run again
    metrics = json.loads((tmp_path / "b" / "mlm" / "mlm_metrics.json").read_text())
    assert metrics["steps"] == 4 and metrics["corpus_version"] == 2
    from safetensors.torch import load_file

    a = load_file(tmp_path / "a" / "mlm" / "model.safetensors")
    b = load_file(tmp_path / "b" / "mlm" / "model.safetensors")
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_the_built_mlm_is_the_default_and_the_command_reports_it(tmp_path, tiny_model_dir,
                                                                 tiny_corpus, monkeypatch,
                                                                 capsys):
    monkeypatch.setattr(advembed.mlm.load, "built_mlm_dir", lambda: tmp_path / "cache-mlm")
    with pytest.raises(AdvembedError, match="not built yet"):
        load_masked_lm("default")
    assert main(["mlm", "build", "--model", str(tiny_model_dir), "--steps", "2",
                 "--batch-size", "8", "--held-out", "10", "--no-progress"]) == 0
    assert "held-out top-1" in capsys.readouterr().out
    model, _ = load_masked_lm("default")
    assert model.dtype == torch.float32  # saved in fp16 by default, loaded as float32
    with pytest.raises(SystemExit):  # refused by the option parser, before any work
        main(["mlm", "build", "--steps", "0"])
    assert "--steps: must be >= 1" in capsys.readouterr().err


def test_an_mlm_built_from_the_first_corpus_warns_that_it_saw_test_sentences(
        tmp_path, tiny_model_dir, tiny_corpus):
    build.build_mlm(_settings(tmp_path, tiny_model_dir))
    out = tmp_path / "mlm"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # corpus version 2: no warning
        load_masked_lm(str(out))
    metrics = json.loads((out / "mlm_metrics.json").read_text())
    del metrics["corpus_version"]
    (out / "mlm_metrics.json").write_text(json.dumps(metrics))
    with pytest.warns(UserWarning, match="corpus version 1, which held near-copies of dev and "
                                         "test sentences.*advembed mlm build --overwrite"):
        load_masked_lm(str(out))
    weights = out / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # one byte changed since
    with pytest.raises(AdvembedError, match="are not the ones its build recorded"):
        load_masked_lm(str(out))
    with pytest.raises(AdvembedError, match="--held-out 60 keeps every one"):
        build.build_mlm(_settings(tmp_path / "all", tiny_model_dir, held_out=60))


def test_a_build_can_be_stopped_where_it_is(tmp_path, tiny_model_dir, tiny_corpus, monkeypatch):
    real = build.masked_loss
    calls = {"n": 0}

    def stop_at_step_four(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(build, "masked_loss", stop_at_step_four)
    with pytest.raises(KeyboardInterrupt):
        build.build_mlm(_settings(tmp_path, tiny_model_dir, steps=10))
    metrics = build.build_mlm(_settings(tmp_path, tiny_model_dir, steps=1))  # finish it now
    assert metrics["steps"] == 2 and calls["n"] == 4  # the last checkpoint, no more training


def test_two_copies_of_a_sentence_share_a_key_whatever_their_punctuation():
    """mr and rt write one review as "touchy feely" and "touchy-feely", "Don't" and "Don’t":
    the corpus compares sentences by letters and digits only (an exact comparison let a
    quarter of mr's test sentences into the MLM's training text, corpus version 1)."""
    from advembed.mlm.corpus import _key

    assert _key("A touchy feely, Don't -- film!") == _key("a touchy-feely don\u2019t film")
    assert _key("ｆｕｌｌ width") == _key("full width")  # NFKC
    assert _key("a good film") != _key("a good films")


def test_the_real_corpus_never_holds_a_dev_or_test_sentence():
    from advembed.data import load_dataset
    from advembed.mlm.corpus import ALSO_EVALUATED, DATASETS, _key, _sentences, corpus

    try:
        train, held_out = corpus(held_out=100, seed=0)
    except ResourceUnavailable as exc:
        pytest.skip(f"registry packages unavailable: {exc}")
    # 58,739 until bbc dropped republished stories (2026-12-07); 58,312 until near-copies and
    # bbc-lm's and bbc-match's dev and test articles were kept out (corpus version 2)
    assert len(train) + len(held_out) == 42826 and len(held_out) == 100
    evaluated = {_key(s) for name in DATASETS + ALSO_EVALUATED for split in ("dev", "test")
                 for e in load_dataset(name).splits[split]
                 for t in [e.text] + ([e.text_pair] if e.text_pair else [])
                 for s in _sentences(t)}
    keys = [_key(s) for s in train + held_out]
    assert not evaluated & set(keys)
    assert len(set(keys)) == len(keys)  # no two near-copies, so none held out has one in train


def test_a_bert_attack_summary_names_the_weights_of_the_mlm_it_used(tmp_path, monkeypatch):
    import hashlib

    from advembed.evaluation.attack import recipe_details
    from advembed.evaluation.word_attack import WordAttackOptions
    from advembed.mlm.load import mlm_weights_sha256

    built = tmp_path / "built"
    built.mkdir()
    (built / "config.json").write_text("{}")
    (built / "model.safetensors").write_bytes(b"weights of the build")
    (built / "mlm_metrics.json").write_text(json.dumps({"weights_sha256": "recorded-at-build"}))
    monkeypatch.setattr(advembed.mlm.load, "built_mlm_dir", lambda: built)
    assert recipe_details(WordAttackOptions(attack="bert-attack"))[
        "mlm_weights_sha256"] == "recorded-at-build"
    assert "mlm_weights_sha256" not in recipe_details(WordAttackOptions(attack="pwws"))
    folder = tmp_path / "other"  # a local MLM without build metrics: hashed
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"other weights")
    assert recipe_details(WordAttackOptions(attack="bae", mlm=str(folder)))[
        "mlm_weights_sha256"] == hashlib.sha256(b"other weights").hexdigest()
    assert mlm_weights_sha256(str(tmp_path / "missing")) is None


def test_a_damaged_metrics_file_or_an_unloadable_mlm_is_one_line_naming_it(tmp_path):
    from advembed.mlm.load import mlm_weights_sha256

    folder = tmp_path / "mlm"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "mlm_metrics.json").write_text('{"top1": 0.3')  # cut short
    with pytest.raises(AdvembedError, match=r"mlm_metrics.json' cannot be read.*"
                                            r"advembed mlm build --overwrite"):
        mlm_weights_sha256(str(folder))
    (folder / "mlm_metrics.json").write_text("[0.3]")
    with pytest.raises(AdvembedError, match="mlm_metrics.json' holds no JSON object"):
        load_masked_lm(str(folder))
    (folder / "mlm_metrics.json").unlink()  # no metrics: a plain folder, loaded as a model
    with pytest.raises(AdvembedError, match=r"^--vda-mlm: cannot load masked LM '.*mlm': "):
        load_masked_lm(str(folder), flag="--vda-mlm")
    with pytest.raises(AdvembedError, match=r"^--mlm: cannot load masked LM"):
        load_masked_lm(str(folder))


def test_a_built_mlm_is_refused_under_another_split_seed_of_its_corpus_datasets(tmp_path):
    """Built from the named datasets' training splits under split seed 2024: under seed 7
    mr's test split holds sentences it trained on."""
    from advembed.errors import AdvembedError
    from advembed.mlm import check_mlm_split

    built = tmp_path / "mlm"
    built.mkdir()
    (built / "config.json").write_text("{}")
    (built / "mlm_metrics.json").write_text(json.dumps({"split_seed": 2024}))
    check_mlm_split(str(built), "mr", 2024, "--vda-mlm")
    check_mlm_split(str(built), "reviews.csv", 7, "--vda-mlm")  # not in its corpus
    for dataset in ("mr", "bbc-lm"):
        with pytest.raises(AdvembedError, match=r"--mlm: the masked LM .* under --split-seed "
                                                "2024; under --split-seed 7"):
            check_mlm_split(str(built), dataset, 7, "--mlm")
    (built / "mlm_metrics.json").unlink()  # not advembed's build: not checked
    check_mlm_split(str(built), "mr", 7, "--mlm")


def test_the_build_refuses_a_model_that_is_not_a_bert_encoder(tmp_path, tiny_model_dir,
                                                              tiny_corpus):
    """Another architecture would load as a random BERT-base (transformers only warns, and
    the build silences that warning); a BERT folder without the encoder's weights likewise."""
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

    distil = tmp_path / "distil"
    DistilBertModel(DistilBertConfig(vocab_size=100, dim=16, n_layers=1, n_heads=2,
                                     hidden_dim=32)).save_pretrained(distil)
    AutoTokenizer.from_pretrained(str(tiny_model_dir)).save_pretrained(distil)
    with pytest.raises(AdvembedError, match="is a distilbert model, not a BERT encoder"):
        build.build_mlm(_settings(tmp_path, distil))
    from safetensors.torch import load_file, save_file

    empty = tmp_path / "empty-bert"
    import shutil

    shutil.copytree(tiny_model_dir, empty)
    weights = load_file(empty / "model.safetensors")
    save_file({k: v for k, v in weights.items() if "encoder" not in k},
              empty / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(AdvembedError, match="lacks BERT encoder weights"):
        build.build_mlm(_settings(tmp_path, empty))


def test_a_damaged_tokenizer_of_a_built_mlm_is_one_line(tmp_path, tiny_model_dir, tiny_corpus):
    build.build_mlm(_settings(tmp_path, tiny_model_dir))
    tokenizer_file = tmp_path / "mlm" / "tokenizer.json"
    text = tokenizer_file.read_text()
    tokenizer_file.write_text(text[: len(text) // 2])
    with pytest.raises(AdvembedError, match=r"--vda-mlm: cannot load masked LM .*rebuild it"):
        load_masked_lm(str(tmp_path / "mlm"), flag="--vda-mlm")
