"""Translation (``--task translation``, paper 004's NMT): parallel help text aligned by element
id and split by file, BLEU as sacrebleu computes it on decoded ids, the encoder's states for
ATCL, token-level accumulation, and training through the command line."""

from __future__ import annotations

import json
import math
import random
from types import SimpleNamespace

import pytest
import torch
from conftest import WORDS

from advembed.data.base import Example, TextDataset
from advembed.data.parallel import align, page_texts, source_key, split_by_file
from advembed.errors import AdvembedError
from advembed.tasks import get_task
from advembed.tasks.translation import scratch_translator, train_joint_bpe

SOURCE_WORDS, TARGET_WORDS = WORDS[:20], WORDS[20:40]
TINY = {"encoder_layers": 1, "decoder_layers": 1, "d_model": 16, "encoder_attention_heads": 2,
        "decoder_attention_heads": 2, "encoder_ffn_dim": 32, "decoder_ffn_dim": 32,
        "max_position_embeddings": 64, "dropout": 0.0, "attention_dropout": 0.0,
        "activation_dropout": 0.0}


def _pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """A toy language: each source word has one target word, in reverse order."""
    rng = random.Random(seed)
    lexicon = dict(zip(SOURCE_WORDS, TARGET_WORDS, strict=True))
    out = []
    for _ in range(n):
        words = rng.choices(SOURCE_WORDS, k=rng.randint(2, 6))
        out.append((" ".join(words), " ".join(lexicon[w] for w in reversed(words))))
    return out


def _tiny(seed: int = 0):
    pairs = _pairs(60)
    tokenizer = train_joint_bpe([t for pair in pairs for t in pair], vocab_size=400)
    torch.manual_seed(seed)
    return scratch_translator(tokenizer, **TINY), tokenizer, pairs


PAGE_EN = """<html><body><div id="DisplayArea">
<h1 id="hd_id1">Choose <span class="menuitem">Format - Cells</span></h1>
<p id="par_id2" class="paragraph">Opens a dialog.</p>
<p id="par_id3">LibreOffice</p>
<p id="par_id4" hidden>Hidden text.</p>
<p id="other5">Not a help id.</p>
<table><tr><td><p id="par_id6">In a cell<br>on two lines.</p></td></tr></table>
</div></body></html>"""
PAGE_DE = """<html><body><div id="DisplayArea">
<h1 id="hd_id1">Wählen Sie <span class="menuitem">Format - Zellen</span></h1>
<p id="par_id2" class="paragraph">Öffnet einen Dialog.</p>
<p id="par_id3">LibreOffice</p>
<p id="par_id4" hidden>Versteckter Text.</p>
<p id="other5">Keine Hilfe-ID.</p>
<table><tr><td><p id="par_id6">In einer Zelle<br>auf zwei Zeilen.</p></td></tr></table>
<p id="par_id7">Nur auf Deutsch.</p>
</div></body></html>"""


def test_pages_align_by_element_id_and_untranslated_pairs_are_dropped():
    assert page_texts(PAGE_EN)["hd_id1"] == "Choose Format - Cells"  # nested markup joined
    pairs = align({"a.html": PAGE_EN}, {"a.html": PAGE_DE, "only-de.html": PAGE_DE})
    assert pairs == [
        ("a.html", "Choose Format - Cells", "Wählen Sie Format - Zellen"),
        ("a.html", "Opens a dialog.", "Öffnet einen Dialog."),
        ("a.html", "In a cell on two lines.", "In einer Zelle auf zwei Zeilen."),
    ]  # par_id3 is untranslated, par_id4 hidden, other5 no help id, par_id7 English-less


def test_the_split_is_by_file_and_no_scored_source_was_trained_on():
    pairs = [(f"f{i}.html", f"sentence {i % 7} of page {i}", f"Satz {i}") for i in range(40)]
    pairs += [(f"f{i}.html", "Choose Format - Cells", f"Wählen Sie Format - Zellen ({i})")
              for i in range(40)]  # the same sentence on every page, translated differently
    pairs += [(f"f{i}.html", "Save", "Speichern") for i in range(40)]  # the same pair everywhere
    pairs += [(f"f{i}.html", "".join(c.upper() if i >> k & 1 else c for k, c in enumerate(
        "switch")) + " function" + ":" * (i % 2), f"Switch-Funktion {i}") for i in range(40)]
    # one sentence in 40 spellings (case, punctuation): one page each
    splits = split_by_file(pairs, seed=3)
    files = {name: {f for f, s, t in pairs if s != "Save" and Example(s, text_pair=t) in examples}
             for name, examples in splits.items()}
    assert all(len(v) for v in splits.values())
    train_sources = {e.text for e in splits["train"]}
    assert "Choose Format - Cells" in train_sources
    assert not train_sources & {e.text for e in splits["dev"] + splits["test"]}
    assert not {e.text for e in splits["dev"]} & {e.text for e in splits["test"]}
    assert sum(e.text == "Choose Format - Cells" for e in splits["train"]) == len(files["train"])
    assert [e.text for split in splits.values() for e in split].count("Save") == 1
    switch = {name: {e.text for e in examples if e.text.lower().startswith("switch")}
              for name, examples in splits.items()}
    assert switch["train"] and not switch["dev"] and not switch["test"]  # no spelling escapes
    assert len(files["test"]) >= 1 and sorted(splits) == ["dev", "test", "train"]


def test_sources_match_up_to_case_spacing_and_sentence_punctuation_only():
    assert source_key("Switch  Function:") == source_key("switch function") == "switch function"
    assert source_key('"Positive."') == source_key("positive")
    assert source_key("C++") != source_key("C")  # symbols are part of the sentence
    assert source_key("=A1+B1") != source_key("=A1*B1")
    assert source_key("...") == "..." != source_key("!!!")  # punctuation alone: itself


def test_a_sentences_first_word_is_encoded_as_the_word_the_bpe_learned():
    """The BPE is trained with a space before every word ("Ġhouse"); the wrapped tokenizer
    must add it before the first word too, or a sentence's first word is encoded in pieces
    that never start a word elsewhere.  Catches: add_prefix_space lost by the wrapper."""
    from advembed.tasks.translation import train_joint_bpe

    tokenizer = train_joint_bpe(["the house is big", "a house and a garden"] * 50, 300)
    first = tokenizer.convert_ids_to_tokens(tokenizer("house is big")["input_ids"])
    assert first[:3] == ["Ġhouse", "Ġis", "Ġbig"]


def test_bleu_is_sacrebleus_on_the_decoded_ids_with_padding_ignored():
    import sacrebleu
    from transformers import EvalPrediction

    _, tokenizer, _ = _tiny()
    task = get_task("translation")
    task.tokenizer = tokenizer
    # no 4-gram matches anywhere: the score is smoothing's (exp 37.00; floor 24.75, none 0)
    references = ["mango quince lime kiwi", "apple pear fig plum", "kiwi"]
    hypotheses = ["mango quince lemon kiwi", "apple pear fig grape", "kiwi kiwi"]

    def padded(texts):  # -100 where the trainer pads predictions and labels
        ids = [tokenizer(t)["input_ids"] for t in texts]
        width = max(map(len, ids)) + 2
        return torch.tensor([row + [-100] * (width - len(row)) for row in ids])

    scores = task.compute_metrics(EvalPrediction(padded(hypotheses), padded(references)))
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hypotheses,
                                                                 [references]).score)
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hypotheses,
                                                                 [references]).score)
    assert scores["bleu"] == pytest.approx(37.0041, abs=1e-4)
    assert task.run_state()["bleu_signature"].startswith("nrefs:1|case:mixed")
    # the byte-level BPE gives text back unchanged, so references decode to themselves
    assert task.decode(padded(references)) == references


def test_bleu_during_training_is_against_the_splits_own_texts_in_any_row_order():
    """A tokenizer that lowercases gives back "mango …" for "Mango …": the decoded label ids
    are not the references.  Rows come in the trainer's (length-grouped) order: each finds
    its own text by its label ids, the same reference twice included."""
    import sacrebleu
    from tokenizers import normalizers
    from transformers import EvalPrediction

    _, tokenizer, _ = _tiny()
    tokenizer.backend_tokenizer.normalizer = normalizers.Lowercase()
    references = ["Mango Quince lime Kiwi", "apple Pear fig plum", "Kiwi", "Kiwi"]
    hypotheses = ["fig plum", "mango quince lime kiwi", "kiwi", "kiwi"]  # as it decodes
    task = get_task("translation")
    task.tokenizer, task.max_new_tokens = tokenizer, 64
    task._references = {"dev": references, "test": ["unused"]}
    order = [1, 0, 2, 3]  # the trainer's order: row k is reference order[k]

    def padded(texts):
        ids = [tokenizer(text_target=t, truncation=True, max_length=64)["input_ids"]
               for t in texts]
        width = max(map(len, ids)) + 1
        return torch.tensor([row + [-100] * (width - len(row)) for row in ids])

    labels = padded([references[i] for i in order])
    assert task.decode(labels)[1] == "mango quince lime kiwi"  # not the reference
    scores = task.compute_metrics(EvalPrediction(padded(hypotheses), labels))
    expected = sacrebleu.corpus_bleu(hypotheses, [[references[i] for i in order]]).score
    assert scores["bleu"] == pytest.approx(expected)
    lowered = sacrebleu.corpus_bleu(hypotheses, [task.decode(labels)]).score
    assert abs(expected - lowered) > 1


def test_a_translation_run_collapses_at_the_bleu_of_one_fixed_output():
    """The most frequent dev target for every source: "a b c d" twice right, once all wrong;
    every n-gram precision is 2/3 and the lengths agree, so BLEU = 66.67 (not the 0 of the
    empty output, nor the BLEU of copying the sources)."""
    dev = [Example("eins", text_pair="a b c d"), Example("zwei", text_pair="x y z w"),
           Example("drei", text_pair="a b c d")]
    assert get_task("translation").collapse_baseline(dev) == pytest.approx(200 / 3)


def test_atcl_contrasts_the_perturbed_source_tokens_encoder_states(monkeypatch):
    import advembed.objectives.atcl as atcl_module
    from advembed.methods import build_training_method
    from advembed.objectives import build_objective
    from advembed.objectives.atcl import token_contrastive_loss

    model, tokenizer, pairs = _tiny()
    task = get_task("translation")
    rows = task.encode([Example(s, text_pair=t) for s, t in pairs[:6]], tokenizer, max_length=32)
    batch = task.collator(tokenizer)(rows)
    objective = build_objective("atcl", model, tokenizer=tokenizer, token_level=True)
    seen = {}

    def spy(anchor, positive, pool, own, n, tau, generator=None):
        seen.update(anchor=anchor.detach(), pool=pool.detach(), own=own)
        return token_contrastive_loss(anchor, positive, pool, own, n, tau, generator=generator)

    monkeypatch.setattr(atcl_module, "token_contrastive_loss", spy)
    build_training_method("fgm", model, objective=objective).step(model, batch)
    position, has_word = objective.chosen
    assert has_word.all()
    model.eval()
    with torch.no_grad():
        encoder = model.get_encoder()(input_ids=batch["input_ids"],
                                      attention_mask=batch["attention_mask"]).last_hidden_state
    rows_index = torch.arange(len(position))
    assert torch.allclose(seen["anchor"], encoder[rows_index, position], atol=1e-5)
    real = batch["attention_mask"].bool()
    assert seen["pool"].shape[0] == int(real.sum())  # the source's real tokens, not the target's


def test_token_level_accumulation_equals_one_double_batch(tmp_path):
    """Micro-batches with different numbers of target tokens, accumulated, give the gradient of
    one batch of all of them."""
    from conftest import assert_accumulation_equals_double_batch

    _, tokenizer, _ = _tiny()
    task = get_task("translation")
    texts = [("mango", "kiwi"), ("apple pear", "fig"),
             ("apple pear fig plum mango quince lime", "kiwi lime quince mango plum fig pear"),
             ("kiwi lime", "apple pear fig plum mango quince lime kiwi")]
    rows = task.encode([Example(s, text_pair=t) for s, t in texts], tokenizer, max_length=32)
    assert_accumulation_equals_double_batch(lambda: _tiny(seed=1)[0], task, rows,
                                            task.collator(tokenizer), tmp_path)


def test_a_model_that_rescales_embeddings_it_looks_up_itself_is_refused():
    """Marian with ``scale_embedding`` multiplies by √d only the ids it looks up itself:
    refused.  BART scales inside its embedding module, so ``get_input_embeddings()`` already
    gives what the encoder reads (the adversaries' ``inputs_embeds``): accepted."""
    from advembed.tasks.translation import check_embedding_scale

    model, tokenizer, pairs = _tiny()
    check_embedding_scale(model, "tiny")  # scale_embedding=False: accepted
    marian = scratch_translator(tokenizer, "marian", scale_embedding=True, **TINY)
    with pytest.raises(AdvembedError, match="model 'marian-like' scales its encoder's "
                                            "embeddings by 4 only"):
        check_embedding_scale(marian, "marian-like")
    bart = scratch_translator(tokenizer, "bart", scale_embedding=True, **TINY).eval()
    check_embedding_scale(bart, "bart-like")
    batch = _batch(bart, tokenizer, pairs)
    embeds = bart.get_input_embeddings()(batch["input_ids"])
    by_ids = bart.get_encoder()(input_ids=batch["input_ids"]).last_hidden_state
    by_embeds = bart.get_encoder()(inputs_embeds=embeds).last_hidden_state
    assert torch.allclose(by_ids, by_embeds, atol=1e-6)


def test_the_default_translator_keeps_token_embeddings_at_the_positions_scale():
    """The choice of BART's layout: its learned positions start at the token embeddings'
    scale, so the encoder reads the tokens; Marian's sinusoids (norm √(d/2)) are tens of times
    larger than unscaled token embeddings of std 0.02."""
    torch.manual_seed(0)
    task = get_task("translation")
    pairs = _pairs(60)
    data = TextDataset("toy", [], {"train": [Example(s, text_pair=t) for s, t in pairs]})

    def ratio(model) -> float:
        tokens = model.get_input_embeddings().weight[3:].norm(dim=-1).mean()
        positions = model.get_encoder().embed_positions.weight[:32].norm(dim=-1).mean()
        return (positions / tokens).item()

    default = task.build_model("default", data).model
    assert type(default).__name__ == "BartForConditionalGeneration"
    assert 0.5 < ratio(default) < 2.0
    assert ratio(task.build_model("scratch:marian", data).model) > 20


def test_decoding_is_greedy_the_best_checkpoint_has_the_highest_bleu_and_marian_ends_in_eos(
        monkeypatch):
    """Greedy decodes (one beam, as documented); the best checkpoint by the *highest* dev
    BLEU; the Marian layout forces no end token, where MarianConfig's default would force id
    0 — <pad> here — at the length limit."""
    model, tokenizer, pairs = _tiny()
    asked = []
    monkeypatch.setattr(model, "generate", lambda **kw: asked.append(kw) or
                        torch.full((kw["input_ids"].shape[0], 2), tokenizer.pad_token_id))
    task = get_task("translation")
    task.generate(model, task.collator(tokenizer)(task.encode(
        [Example(s, text_pair=t) for s, t in pairs[:2]], tokenizer, max_length=8)))
    assert asked[0]["num_beams"] == 1 and not asked[0].get("do_sample")
    assert (task.best_metric, task.greater_is_better) == ("bleu", True)
    marian = scratch_translator(tokenizer, "marian", **TINY)
    assert marian.generation_config.forced_eos_token_id is None


def test_a_saved_generation_configs_search_settings_do_not_change_the_greedy_decode():
    """n-gram blocking and a repetition penalty in the model's generation config (as Hub
    BART checkpoints carry) are not applied: every step takes the argmax."""
    model, tokenizer, pairs = _tiny(seed=3)
    model.eval()
    model.generation_config.no_repeat_ngram_size = 1
    model.generation_config.repetition_penalty = 5.0
    task = get_task("translation")
    encoded = tokenizer([pairs[0][0]], return_tensors="pt")
    inputs = {key: encoded[key] for key in ("input_ids", "attention_mask")}
    got = task.generate(model, inputs, max_new_tokens=12)[0].tolist()
    ids = torch.tensor([[model.config.decoder_start_token_id]])
    with torch.no_grad():
        for _ in range(12):
            logits = model(**inputs, decoder_input_ids=ids).logits[:, -1]
            ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], dim=1)
            if ids[0, -1] == model.config.eos_token_id:
                break
    assert got == ids[0].tolist()
    assert len(set(got[1:])) < len(got[1:])  # repeats that either setting would have blocked


def test_the_decoding_limit_is_the_runs_max_length_not_the_last_encoding(monkeypatch):
    from advembed.evaluation.runs import run_task

    model, tokenizer, pairs = _tiny()
    asked = []
    monkeypatch.setattr(model, "generate", lambda **kw: asked.append(kw["max_new_tokens"]) or
                        torch.full((kw["input_ids"].shape[0], 2), tokenizer.pad_token_id))
    examples = [Example(s, text_pair=t) for s, t in pairs[:3]]
    task = get_task("translation")
    task.use_max_length(12)
    batch = task.collator(tokenizer)(task.encode(examples, tokenizer, max_length=5))
    task.generate(model, batch)
    task.evaluate(model, tokenizer, examples, max_length=7)  # its own limit, for this call only
    task.generate(model, batch)
    saved = run_task({"task": "translation", "max_length": 9})  # a saved run's, from config
    saved.generate(model, batch)
    assert asked == [12, 7, 12, 9]


def _token_weighted_loss(run, config) -> float:
    """The saved model's test loss by hand: Σ NLL / Σ target tokens over its 3 batches of 8
    (the mean of the batches' means, weighted by sentences, is another number)."""
    from advembed.evaluation.runs import load_run_model, run_split

    loaded, task = load_run_model(run, config), get_task("translation")
    items = task.encode(run_split(config, "test"), loaded.tokenizer, max_length=16)
    collate, nll, count, means = task.collator(loaded.tokenizer), 0.0, 0, []
    loaded.model.eval()
    for start in range(0, len(items), 8):
        batch = collate(items[start:start + 8])
        with torch.no_grad():
            logits = loaded.model(**batch).logits
        mask = batch["labels"] != -100
        picked = torch.log_softmax(logits.double(), -1).gather(
            -1, batch["labels"].clamp(min=0).unsqueeze(-1)).squeeze(-1)
        nll, count = nll - float(picked[mask].sum()), count + int(mask.sum())
        means.append(-float(picked[mask].mean()))
    assert len(means) == 3 and abs(sum(means) / 3 - nll / count) > 1e-3
    return nll / count


def test_the_translation_loss_is_weighted_by_target_tokens():
    """Two batches, 640 target tokens at mean NLL 2.0 and 400 at 4.0: Σ NLL / Σ tokens =
    2,880 / 1,040 = 2.769, not the sentence-weighted 2.27 of 64 and 10 sentences."""
    task = get_task("translation")
    task.tokenizer = _tiny()[1]
    stats = [[2.0 * 10, 10]] * 64 + [[4.0 * 40, 40]] * 10
    ids = [[task.tokenizer.pad_token_id]] * 74
    prediction = SimpleNamespace(predictions=(ids, stats), label_ids=ids)
    assert task.compute_metrics(prediction)["loss"] == pytest.approx(2880 / 1040)
    logits = torch.tensor([[[2.0, 0.0, -1.0], [0.5, 0.5, 3.0], [1.0, 1.0, 1.0]]])
    labels = torch.tensor([[0, 2, -100]])  # NLLs log(1 + e⁻² + e⁻³), log(2e^0.5 + e³) − 3
    expected = [math.log(1 + math.exp(-2) + math.exp(-3))
                + math.log(2 * math.exp(0.5) + math.exp(3)) - 3, 2]
    assert task.target_nll_and_count(logits, labels)[0].tolist() == pytest.approx(expected)


def test_translation_trains_evaluates_and_translates_through_the_command_line(tmp_path, capsys,
                                                                             monkeypatch):
    from advembed.cli import main
    from advembed.tasks.translation import TranslationTask

    limits = []
    given = TranslationTask.use_max_length
    monkeypatch.setattr(TranslationTask, "use_max_length",
                        lambda self, n: limits.append(n) or given(self, n))

    data = tmp_path / "toy.tsv"
    data.write_text("".join(f"{s}\t{t}\n" for s, t in _pairs(200, seed=2)), encoding="utf-8")
    out = tmp_path / "mt"
    assert main(["train", "--task", "translation", "--dataset", str(data), "--max-length", "16",
                 "--batch-size", "16", "--epochs", "2", "--lr", "3e-3", "--method", "fgm",
                 "--objective", "atcl", "--no-progress", "--output", str(out),
                 "--eval-batch-size", "8"]) == 0
    printed = capsys.readouterr().out  # the summary carries the BLEU signature
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert metrics["test"]["loss"] == pytest.approx(_token_weighted_loss(out, config), rel=1e-4)
    assert config["task"] == "translation" and "tok:13a" in config["bleu_signature"]
    assert f"(BLEU signature {config['bleu_signature']})" in printed
    assert metrics["best_dev"]["bleu"] == pytest.approx(max(r["bleu"] for r in metrics["dev"]))
    assert limits == [16]  # dev and test decoded up to the run's --max-length
    assert {"bleu", "chrf", "loss"} <= set(metrics["test"])
    assert main(["eval", "--run", str(out), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["bleu"] == pytest.approx(metrics["test"]["bleu"], abs=1e-6)
    assert evaluated["bleu_signature"] == config["bleu_signature"]  # of this scoring
    assert main(["eval", "--run", str(out)]) == 0  # sacrebleu's signature beside the scores
    assert f"BLEU signature: {config['bleu_signature']}" in capsys.readouterr().out
    assert main(["translate", "--run", str(out), "apple pear", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["source"] == "apple pear"
    assert main(["generate", "--run", str(out), "apple"]) == 2
    assert "needs a --task lm run" in capsys.readouterr().err
    bad = tmp_path / "bad.tsv"
    bad.write_text("one\ttwo\nno tab here\n", encoding="utf-8")
    assert main(["train", "--task", "translation", "--dataset", str(bad), "--output",
                 str(tmp_path / "bad"), "--no-progress"]) != 0
    assert "bad.tsv' line 2: expected 'source<TAB>target'" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_nearest_words_are_by_euclidean_distance_and_skip_the_anchor():
    from transformers import BertTokenizerFast, GPT2Config, GPT2LMHeadModel

    from advembed.evaluation.probes import nearest_words

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "great", "bad", "fun", "##s"]
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        vocab = Path(folder) / "vocab.txt"
        vocab.write_text("\n".join(words) + "\n")
        tokenizer = BertTokenizerFast(vocab_file=str(vocab))
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(words), n_embd=2, n_layer=1, n_head=1,
                                       n_positions=8))
    table = torch.full((len(words), 2), 50.0)
    rows = {"good": [1.0, 0.0], "great": [3.0, 0.0], "bad": [0.0, 1.2], "fun": [-1.5, -1.5],
            "##s": [1.1, 0.0], "[PAD]": [1.0, 0.1]}
    for word, row in rows.items():
        table[words.index(word)] = torch.tensor(row)
    with torch.no_grad():
        model.get_input_embeddings().weight.copy_(table)
    # distances from good: bad 1.562, great 2.0, fun 2.915; "##s" and [PAD] are closer but are
    # no complete words; by cosine "great" (1.0) would come before "bad" (0.0)
    assert nearest_words(model, tokenizer, ["good"], k=3) == {"good": ["bad", "great", "fun"]}
    assert "pieces" in nearest_words(model, tokenizer, ["goods"])["goods"]


def test_the_probe_perturbs_the_last_complete_word_by_eps_along_the_gradient():
    from advembed.evaluation.probes import _fgm_delta, _last_word_position, perturbed_generation
    from advembed.words import word_flags

    _, tokenizer, _ = _tiny()
    ids = torch.tensor(tokenizer("the movie was good , 42", add_special_tokens=False)["input_ids"])
    position = _last_word_position(word_flags(tokenizer), ids)
    assert tokenizer.decode(ids[position]).strip() == "good"  # not ",", "42"
    embeds = torch.randn(1, 4, 3)
    weight = torch.tensor([3.0, -4.0, 12.0])  # |w| = 13
    delta = _fgm_delta(embeds, 2, 0.26, lambda e: (e[0, 2] * weight).sum() + e.sum())
    grad = weight + 1.0
    assert torch.allclose(delta[0, 2], 0.26 * grad / grad.norm())
    assert delta[0, [0, 1, 3]].abs().sum() == 0
    model, tokenizer, pairs = _tiny()
    same = perturbed_generation(model, tokenizer, pairs[0][0] + " good", epsilon=0.0,
                                max_new_tokens=5)
    assert same.perturbed == same.clean and same.perturbed_word == "good"
    assert same.clean_perplexity == pytest.approx(same.perturbed_perplexity)


def _batch(model, tokenizer, pairs, n=6):
    task = get_task("translation")
    rows = task.encode([Example(s, text_pair=t) for s, t in pairs[:n]], tokenizer, max_length=32)
    return task.collator(tokenizer)(rows)


def test_yopo_takes_the_identity_as_first_layer_where_the_model_has_no_embedding_block():
    """BART looks its embeddings up in its own forward: with h0 = e + δ the adjoint is
    ∂L/∂(e + δ), so n = 2 inner updates from δ = 0 are two steps of α along the same
    direction (a real first layer would bend the second)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_adversaries import _Recorder

    from advembed.adapter import EmbeddingAdapter, first_block_output
    from advembed.methods.yopo import YOPO
    from advembed.perturbation import direction

    model, tokenizer, pairs = _tiny()
    batch = _batch(model, tokenizer, pairs)
    adapter = EmbeddingAdapter(model)
    assert adapter.embedding_block() is None
    embeds = adapter.embed(batch).detach()
    assert first_block_output(adapter, batch, embeds) is embeds
    mask = adapter.mask(batch, embeds)
    delta = torch.zeros_like(embeds, requires_grad=True)
    (grad,) = torch.autograd.grad(adapter.forward(batch, delta).loss, delta)
    yopo = YOPO(model, outer_steps=2, inner_steps=2, alpha=0.1, epsilon=5.0)
    seen: list[torch.Tensor] = []
    yopo._adapter_for = lambda m: _Recorder(yopo.adapter, seen)
    yopo.step(model, batch)
    assert torch.allclose(seen[1], 0.2 * direction(grad, mask, "l2"), atol=1e-5)


@pytest.mark.parametrize("method,objective", [
    ("fgsm", None), ("fgm", None), ("pgd", None), ("freeat", None), ("yopo", None),
    ("freelb", None), ("smart", None), ("freelb", "rar"), ("fgm", "atcl")])
def test_every_adversary_and_objective_trains_a_translation_model(method, objective):
    from advembed.methods import build_training_method
    from advembed.objectives import build_objective

    model, tokenizer, pairs = _tiny()
    batch = _batch(model, tokenizer, pairs)
    built = build_objective(objective, model, tokenizer=tokenizer,
                            token_level=True) if objective else None
    before = model.get_input_embeddings().weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    loss = build_training_method(method, model, objective=built).step(model, batch)
    optimizer.step()
    assert torch.isfinite(loss)
    assert not torch.equal(before, model.get_input_embeddings().weight)


def test_smarts_divergence_on_a_translation_batch_skips_padded_targets():
    from advembed.losses import symmetric_kl, target_positions

    p = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [5.0, -5.0]]])  # (1 sentence, 3 targets, 2)
    q = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [-5.0, 5.0]]])
    positions = target_positions({"labels": torch.tensor([[4, 9, -100]])}, p)
    assert positions.tolist() == [[True, True, False]]

    def skl(a, b):  # by hand, one position
        pa, pb = a.softmax(-1), b.softmax(-1)
        return float((pa * (pa / pb).log()).sum() + (pb * (pb / pa).log()).sum())

    expected = (skl(p[0, 0], q[0, 0]) + skl(p[0, 1], q[0, 1])) / 2  # the padded one left out
    assert symmetric_kl(p, q, positions).item() == pytest.approx(expected, rel=1e-5)
    assert target_positions({"labels": torch.tensor([1])}, p[:, 0]) is None  # a classifier


def test_a_non_utf8_parallel_file_is_one_line_naming_file_and_line(tmp_path, capsys):
    from advembed.cli import main

    data = tmp_path / "latin1.tsv"
    data.write_bytes(b"one\ttwo\n" * 5 + "caf\xe9\tcoffee\n".encode("latin-1"))
    assert main(["train", "--task", "translation", "--dataset", str(data), "--no-progress",
                 "--output", str(tmp_path / "mt")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"advembed train: error: {data} line 6 is not UTF-8 (byte 0xe9); save the file as "
        "UTF-8"]
    assert not (tmp_path / "mt").exists()
