"""ASCC: the synonyms' convex hull (advembed.hull) and the training method (methods/ascc.py)."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import (
    SPECIAL,
    byte_level_tokenizer,
    tiny_batch,
    tiny_model,
    tiny_synonyms,
    wordpiece_tokenizer,
)

from advembed.errors import AdvembedError
from advembed.hull import (
    hull_embeddings,
    hull_entropy,
    hull_weights,
    search_hull,
    synonym_table,
    vertex_embeddings,
    wordnet_synonyms,
)
from advembed.losses import kl_divergence
from advembed.methods import build_training_method

VOCAB = SPECIAL + ["good", "great", "fine", "nice", "the", "un", "##real", "bad", "film",
                   "movie"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return wordpiece_tokenizer(tmp_path_factory.mktemp("ascc"), VOCAB)


def test_the_hull_point_mixes_only_the_valid_entries():
    logits = torch.tensor([[[0.5, -1.0, 3.0]]])
    valid = torch.tensor([[[True, True, False]]])
    embeds = torch.tensor([[[[1.0, 2.0], [-3.0, 0.5], [10.0, 10.0]]]])
    w0 = 1 / (1 + math.exp(-1.5))  # e^0.5 / (e^0.5 + e^-1); the invalid 3.0 takes no weight
    expected = [w0 * 1.0 + (1 - w0) * -3.0, w0 * 2.0 + (1 - w0) * 0.5]
    assert hull_embeddings(logits, embeds, valid)[0, 0].tolist() == pytest.approx(expected)


def test_the_entropy_is_the_mean_over_positions_with_a_choice():
    logits = torch.tensor([[[0.2, 1.0, -0.5], [4.0, 1.0, 1.0], [2.0, 0.0, 9.0]]])
    valid = torch.tensor([[[True, True, True], [True, False, False], [True, True, False]]])

    def entropy(values):
        z = sum(math.exp(v) for v in values)
        return -sum(math.exp(v) / z * math.log(math.exp(v) / z) for v in values)

    expected = (entropy([0.2, 1.0, -0.5]) + entropy([2.0, 0.0])) / 2  # not the lone one
    assert float(hull_entropy(logits, valid)) == pytest.approx(expected)


def test_one_search_step_is_an_adam_step_toward_the_more_harmful_vertices():
    # loss = v̂·c, so ∂/∂ŵ_j at the centroid is w_j (a_j − ā) with a_j = v(s_j)·c; Adam's first
    # step moves each logit by the step size against the sign of the minimised gradient
    c = torch.tensor([1.0, 0.5])
    embeds = torch.tensor([[[[1.0, 2.0], [-2.0, 2.0], [0.2, 0.0], [5.0, 0.0]]]])  # a = 2, -1, .2
    valid = torch.tensor([[[True, True, True, False]]])
    logits = search_hull(lambda v: (v * c).sum(), embeds, valid, steps=1, step_size=0.7,
                         sparsity=0.5)  # the entropy's gradient is 0 at the centroid
    assert logits[0, 0].tolist() == pytest.approx([0.7, -0.7, -0.7, 0.0], abs=1e-6)


def test_the_search_reaches_an_interior_maximum_and_the_penalty_pulls_it_to_a_vertex():
    # loss −‖v̂ − m‖², m = 0.5·v₀ + 0.3·v₁ + 0.2·v₂: without the penalty the search finds those
    # weights; with α = 1 it trades loss for a sparser w (one real substitution)
    torch.manual_seed(0)
    embeds = torch.randn(1, 2, 5, 4)
    valid = torch.ones(1, 2, 5, dtype=torch.bool)
    m = (torch.tensor([0.5, 0.3, 0.2, 0.0, 0.0])[:, None] * embeds).sum(-2)

    def found(alpha):
        return search_hull(lambda v: -((v - m) ** 2).sum(), embeds, valid, steps=30,
                           step_size=0.3, sparsity=alpha)

    free = found(0.0)
    assert hull_weights(free, valid)[0, 0].tolist() == pytest.approx([0.5, 0.3, 0.2, 0, 0],
                                                                     abs=0.03)
    assert float(hull_entropy(found(1.0), valid)) < float(hull_entropy(free, valid)) - 0.3


def test_the_table_holds_one_token_synonyms_and_words_only(tokenizer):
    synonyms = {"good": ["great", "Fine", "well", "good", "nice"], "the": ["film"],
                "un": ["bad"], "film": ["movie"]}
    table = synonym_table(tokenizer, lambda w: synonyms.get(w, []), max_neighbours=2,
                          stopwords={"the"}, size=len(VOCAB) + 3)
    ids = tokenizer.convert_tokens_to_ids
    assert table.neighbours.shape[0] == len(VOCAB) + 3
    row = table.neighbours[ids("good")][table.valid[ids("good")]].tolist()
    assert row == [ids("good"), ids("great"), ids("fine")]  # case folded, "well" absent, cut at 2
    assert table.valid[ids("the")].sum() == 1  # a stop word has none
    assert table.words_with_synonyms == 3  # good, un, film
    encoded = tokenizer(["good unreal the film"], padding="max_length", max_length=9,
                        return_tensors="pt")
    assert tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])[:7] == [
        "[CLS]", "good", "un", "##real", "the", "film", "[SEP]"]
    allowed = encoded["attention_mask"].bool().clone()
    allowed[0, 5] = False  # e.g. outside an objective's mask
    neighbours, valid = table.lookup(dict(encoded), allowed)
    assert valid[0].sum(-1).tolist() == [1, 3, 1, 1, 1, 1, 1, 1, 1]  # "un" starts a longer word
    assert neighbours[0, 1].tolist() == [ids("good"), ids("great"), ids("fine")]
    # a language-modelling block cut from "good un|##real": its last piece may be half a
    # word, so with cut_edges it keeps no synonym (ASCC on --task lm)
    block = tokenizer(["good un"], add_special_tokens=False, return_tensors="pt")
    assert table.lookup(dict(block), block["attention_mask"].bool())[1][0].sum(-1).tolist() == [
        3, 2]
    cut = table.lookup(dict(block), block["attention_mask"].bool(), cut_edges=True)[1]
    assert cut[0].sum(-1).tolist() == [3, 1]


def test_wordnet_synonyms_are_pwws_candidates():
    from advembed.evaluation.attack_resources import import_textattack

    import_textattack()
    from textattack.transformations import WordSwapWordNet

    pwws = WordSwapWordNet()
    for word in ("good", "film", "funny", "terrible"):
        ours = wordnet_synonyms(word)
        assert len(ours) == len(set(ours)) > 3
        assert set(ours) == {w for w in pwws._get_replacement_words(word) if w.isalpha()}


def test_ascc_needs_a_tokenizer_or_a_table():
    with pytest.raises(AdvembedError, match="method 'ascc' needs the tokenizer"):
        build_training_method("ascc", tiny_model())


def _sharp_model():
    """A tiny model whose logits are large enough for the KL terms to matter."""
    model = tiny_model()
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(50.0)
        model.classifier.weight.mul_(300.0)
    return model


def _table_without_synonyms(model):
    table = tiny_synonyms(model)
    valid = torch.zeros_like(table.valid)
    valid[:, 0] = True
    return type(table)(table.neighbours, valid, table.flags)


def test_without_synonyms_the_loss_is_the_clean_loss():
    model = tiny_model()
    batch = tiny_batch()
    method = build_training_method("ascc", model, synonyms=_table_without_synonyms(model))
    loss = method.step(model, batch)
    assert float(loss) == pytest.approx(float(model(**batch).loss.detach()), abs=1e-6)


def test_the_loss_is_clean_loss_plus_beta_kl_at_the_searched_hull_point(monkeypatch):
    import advembed.methods.ascc as ascc

    model = _sharp_model()
    batch = tiny_batch()
    table = tiny_synonyms(model)
    found = {}

    def recording_search(*args, **kwargs):
        found["logits"] = search_hull(*args, **kwargs)
        found["settings"] = {k: kwargs[k] for k in ("steps", "step_size", "sparsity",
                                                    "loss_scale")}
        return found["logits"]

    divergences = []  # whether each KL's first side (f(x) in the outer loss) is in the graph
    given = ascc.kl_divergence
    monkeypatch.setattr(ascc, "kl_divergence", lambda p, q, *a: divergences.append(
        p.requires_grad) or given(p, q, *a))
    monkeypatch.setattr(ascc, "search_hull", recording_search)
    method = build_training_method("ascc", model, synonyms=table, weight=800.0, steps=3,
                                   step_size=0.7, sparsity=0.05)
    method.inner_loss_scale = 1.0  # mixed precision's scale reaches the search (fp16 underflow)
    loss = method.step(model, batch)
    assert found["settings"] == {"steps": 3, "step_size": 0.7, "sparsity": 0.05,
                                 "loss_scale": 1.0}
    # the search's target f(x) is fixed (detached); the outer KL(f(x) ‖ f(v̂)) trains f(x) too
    assert divergences[0] is False and divergences[-1] is True
    with torch.no_grad():
        allowed = batch["attention_mask"].bool()
        ids, valid = table.lookup(batch, allowed)
        embeds = hull_embeddings(found["logits"], model.get_input_embeddings()(ids), valid)
        inputs = {k: v for k, v in batch.items() if k != "input_ids"}
        clean = model(**batch)
        adversarial = model(**inputs, inputs_embeds=embeds)
        term = 800.0 * kl_divergence(clean.logits, adversarial.logits)
        reversed_term = 800.0 * kl_divergence(adversarial.logits, clean.logits)
    assert float(loss) == pytest.approx(float(clean.loss + term), rel=1e-5)
    assert float(term) > 0.01 and abs(float(term - reversed_term)) > 1e-4  # the order tells


def test_the_searchs_loss_scale_is_divided_out_before_its_adam_step():
    """fp16's loss scale (2^16) keeps small inner gradients from flushing to zero and is divided
    out before Adam's step (whose ε makes it scale-dependent): the searched point is the
    same as unscaled in float32 (scaling without unscaling moves it by up to 2.0 here)."""
    kl_at, rows, valid = _hull_search_problem()

    def search(scale):
        return search_hull(kl_at, rows, valid, steps=3, step_size=0.5, sparsity=0.05,
                           loss_scale=scale)

    torch.testing.assert_close(search(2.0 ** 16), search(1.0), atol=1e-4, rtol=1e-4)


def _hull_search_problem():
    """``(kl_at, rows, valid)``: the inner objective of a sharp tiny model's batch, its hulls'
    vertex embeddings and which vertices exist."""
    model = _sharp_model()
    batch = tiny_batch()
    table = tiny_synonyms(model)
    ids, valid = table.lookup(batch, batch["attention_mask"].bool())
    rows = model.get_input_embeddings()(ids).detach()
    inputs = {k: v for k, v in batch.items() if k != "input_ids"}
    with torch.no_grad():
        target = model(**batch).logits

    def kl_at(embeds):
        return kl_divergence(target, model(**inputs, inputs_embeds=embeds).logits)

    return kl_at, rows, valid


def test_the_search_finds_a_worse_point_than_the_centroid():
    kl_at, rows, valid = _hull_search_problem()
    centroid = kl_at(hull_embeddings(torch.zeros(valid.shape), rows, valid))
    found = search_hull(kl_at, rows, valid, steps=5, step_size=1.0, sparsity=0.3)
    assert float(kl_at(hull_embeddings(found, rows, valid))) > 2 * float(centroid)


def test_the_synonyms_rows_get_the_gradient_and_unused_rows_none():
    model = tiny_model()
    batch = tiny_batch()
    table = tiny_synonyms(model)
    build_training_method("ascc", model, synonyms=table).step(model, batch)
    used = table.neighbours[batch["input_ids"]][table.valid[batch["input_ids"]]].unique()
    grad = model.get_input_embeddings().weight.grad
    touched = set(torch.nonzero(grad.abs().sum(-1)).flatten().tolist())
    synonyms_only = set(used.tolist()) - set(batch["input_ids"].flatten().tolist())
    assert synonyms_only and synonyms_only <= touched
    assert touched <= set(used.tolist()) | set(batch["input_ids"].flatten().tolist())


def test_ascc_counts_its_passes():
    model = tiny_model()
    method = build_training_method("ascc", model, synonyms=tiny_synonyms(model), steps=4)
    assert method.passes == 6


def test_without_nltk_the_table_is_one_clear_error(tokenizer, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "nltk", None)  # import nltk now raises ImportError
    with pytest.raises(AdvembedError, match=r"NLTK, which is not installed: pip install"):
        synonym_table(tokenizer, max_neighbours=4)


def test_a_vocabulary_without_synonyms_is_one_clear_error(tmp_path):
    from transformers import BertTokenizerFast

    (tmp_path / "vocab.txt").write_text("\n".join(SPECIAL + ["zzqv", "qqxw"]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    with pytest.raises(AdvembedError, match="no word of the tokenizer's vocabulary has a WordNet"):
        build_training_method("ascc", tiny_model(), tokenizer=tokenizer)


def test_with_pieces_a_synonym_the_tokenizer_splits_is_a_vertex(tokenizer):
    synonyms = {"good": ["unreal", "great", "zzz", "unreal"], "bad": ["unreal"]}
    ids = tokenizer.convert_tokens_to_ids
    one = synonym_table(tokenizer, lambda w: synonyms.get(w, []), max_neighbours=4,
                        stopwords=set())
    assert one.neighbours[ids("good")][one.valid[ids("good")]].tolist() == [ids("good"),
                                                                            ids("great")]
    assert one.valid[ids("bad")].sum() == 1  # its only synonym is in pieces
    two = synonym_table(tokenizer, lambda w: synonyms.get(w, []), max_neighbours=4,
                        stopwords=set(), pieces=2)
    row = two.neighbours[ids("good")][two.valid[ids("good")]].tolist()
    assert row == [[ids("good"), -1], [ids("un"), ids("##real")], [ids("great"), -1]]  # no UNK
    assert two.words_with_synonyms == 2
    encoded = tokenizer(["bad good"], return_tensors="pt")
    found, valid = two.lookup(dict(encoded), encoded["attention_mask"].bool())
    assert found.shape == (1, 4, 3, 2) and valid[0, 1].tolist() == [True, True, False]


def test_a_vertex_in_pieces_is_the_mean_of_its_pieces():
    embedding = torch.nn.Embedding(6, 2)
    with torch.no_grad():
        embedding.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, -1.0], [0.5, 4.0],
                                             [-2.0, 1.5], [7.0, 7.0]]))
    ids = torch.tensor([[[[4, -1, -1], [1, 2, 3], [2, 5, -1]]]])
    expected = [-2.0, 1.5, 1.5, 5.0 / 3, 5.0, 3.0]  # the -1 entries take no part
    assert vertex_embeddings(embedding, ids)[0, 0].flatten().tolist() == pytest.approx(expected)
    assert vertex_embeddings(embedding, ids[..., 0]).tolist() == embedding(ids[..., 0]).tolist()


def _pieces_table(model):
    """tiny_synonyms' table with each synonym made a two-piece one (its id and the next)."""
    from advembed.hull import SynonymTable

    table = tiny_synonyms(model, per_word=2)
    rows = table.neighbours.size(0)
    second = torch.where(table.valid, (table.neighbours + 1) % rows, -1)
    second[:, 0] = -1
    second[:len(SPECIAL)] = -1
    return SynonymTable(torch.stack([table.neighbours, second], -1), table.valid, table.flags)


def test_with_pieces_the_loss_uses_the_mean_vertices_and_every_piece_gets_gradient(monkeypatch):
    import advembed.methods.ascc as ascc

    model = _sharp_model()
    batch = tiny_batch()
    table = _pieces_table(model)
    found = {}

    def recording_search(*args, **kwargs):
        found["logits"] = search_hull(*args, **kwargs)
        return found["logits"]

    monkeypatch.setattr(ascc, "search_hull", recording_search)
    loss = build_training_method("ascc", model, synonyms=table, weight=50.0).step(model, batch)
    embedding = model.get_input_embeddings()
    with torch.no_grad():
        ids, valid = table.lookup(batch, batch["attention_mask"].bool())
        pieces = ids.clamp(min=0)
        mean = torch.where((ids >= 0).all(-1, keepdim=True),
                           (embedding(pieces[..., 0]) + embedding(pieces[..., 1])) / 2,
                           embedding(pieces[..., 0]))
        embeds = hull_embeddings(found["logits"], mean, valid)
        inputs = {k: v for k, v in batch.items() if k != "input_ids"}
        clean = model(**batch)
        term = 50.0 * kl_divergence(clean.logits, model(**inputs, inputs_embeds=embeds).logits)
    assert float(loss) == pytest.approx(float(clean.loss + term), rel=1e-5)
    touched = set(torch.nonzero(embedding.weight.grad.abs().sum(-1)).flatten().tolist())
    second_pieces = set(ids[..., 1][valid & (ids[..., 1] >= 0)].tolist())
    assert second_pieces and second_pieces <= touched


def test_the_table_moves_to_a_device_once(tokenizer):
    table = synonym_table(tokenizer, lambda w: {"good": ["great"]}.get(w, []),
                          max_neighbours=2, stopwords=set())
    assert table.to("cpu") is table  # already there: no copy at each training step
    meta = table.to("meta")
    assert meta.neighbours.device.type == "meta" and meta.valid.device.type == "meta"
    assert meta.flags is table.flags and table.neighbours.device.type == "cpu"


def test_byte_level_bpe_words_get_synonyms_in_their_own_spelling():
    tok = byte_level_tokenizer()
    ids = tok.convert_tokens_to_ids
    # what the tokenizer must give for the expectations below to mean anything
    assert tok.tokenize(" goodmovie") == ["Ġgood", "mo", "vie"]
    assert tok.tokenize("goodmovie") == ["g", "ood", "mo", "vie"]
    assert tok.tokenize("movie") == ["mo", "vie"] and tok.tokenize("nice") == ["nice"]
    synonyms = {"good": ["great", "movie", "goodmovie"], "nice": ["good", "movie", "fine"]}
    table = synonym_table(tok, lambda w: synonyms.get(w, []), max_neighbours=4,
                          stopwords=set(), pieces=3)

    def row(token):
        return table.neighbours[ids(token)][table.valid[ids(token)]].tolist()

    # after a space: Ġ-form synonyms, one entry or the pieces of " goodmovie"
    assert row("Ġgood") == [[ids("Ġgood"), -1, -1], [ids("Ġgreat"), -1, -1],
                            [ids("Ġmovie"), -1, -1], [ids("Ġgood"), ids("mo"), ids("vie")]]
    # opening a sentence: bare-form synonyms ("good" bare is g+ood, "fine" bare is fi+ne)
    assert row("nice") == [[ids("nice"), -1, -1], [ids("g"), ids("ood"), -1],
                           [ids("mo"), ids("vie"), -1], [ids("fi"), ids("ne"), -1]]
    one = synonym_table(tok, lambda w: synonyms.get(w, []), max_neighbours=4, stopwords=set())
    assert one.neighbours[ids("nice")][one.valid[ids("nice")]].tolist() == [ids("nice")]
    encoded = tok(["nice good"], return_tensors="pt")  # nice, Ġgood (no special tokens added)
    found, valid = table.lookup(dict(encoded), encoded["attention_mask"].bool())
    assert valid[0].sum(-1).tolist() == [4, 4]  # both words have their hulls
    assert found[0, 1, 1].tolist() == [ids("Ġgreat"), -1, -1]
    encoded = tok(['a "nice" goodmovie'], return_tensors="pt")
    assert tok.convert_ids_to_tokens(encoded["input_ids"][0]) == [
        "a", 'Ġ"', "nice", '"', "Ġgood", "mo", "vie"]
    found, valid = table.lookup(dict(encoded), encoded["attention_mask"].bool())
    # the bare word after Ġ" has its (bare) hull; a word in pieces and its tails none
    assert valid[0].sum(-1).tolist() == [1, 1, 4, 1, 1, 1, 1]


def test_a_tokenizer_that_adds_a_prefix_space_gives_bare_words_no_synonyms_in_pieces():
    from tokenizers.pre_tokenizers import ByteLevel

    tok = byte_level_tokenizer()
    tok._tokenizer.pre_tokenizer = ByteLevel(add_prefix_space=True)  # RoBERTa's option
    assert tok.tokenize("goodmovie") == ["Ġgood", "mo", "vie"]  # no bare spelling to be had
    ids = tok.convert_tokens_to_ids
    table = synonym_table(tok, lambda w: {"nice": ["goodmovie"], "good": ["goodmovie"]}.get(
        w, []), max_neighbours=4, stopwords=set(), pieces=3)
    assert table.valid[ids("nice")].sum() == 1  # bare "nice": not the Ġ-spelt pieces
    assert table.neighbours[ids("Ġgood")][table.valid[ids("Ġgood")]].tolist() == [
        [ids("Ġgood"), -1, -1], [ids("Ġgood"), ids("mo"), ids("vie")]]
