"""Language modelling (``--task lm``, paper 004): token-weighted perplexity, full blocks, and
ATCL's token-level contrastive term (eq. 6) on the perturbed token's own states."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch
import torch.nn.functional as F
from conftest import WORDS

from advembed.objectives.atcl import token_contrastive_loss
from advembed.tasks.lm import blocks, nll_and_count, unigram_perplexity


def test_perplexity_is_exp_of_the_token_weighted_nll_with_padding_ignored():
    logits = torch.tensor([[[2.0, 0.0, -1.0], [0.5, 1.5, 0.0], [0.0, 0.0, 3.0]],
                           [[1.0, 1.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.0]]])
    labels = torch.tensor([[0, 1, 2], [2, 0, -100]])
    totals = nll_and_count(logits, labels)
    # targets: row 0 predicts 1 from position 0 and 2 from position 1; row 1 predicts 0
    nll = [-F.log_softmax(logits[0, 0], -1)[1], -F.log_softmax(logits[0, 1], -1)[2],
           -F.log_softmax(logits[1, 0], -1)[0]]
    assert totals[:, 1].tolist() == [2.0, 1.0]
    assert totals[:, 0].sum().item() == pytest.approx(sum(nll).item(), rel=1e-6)
    token_weighted = math.exp(sum(nll).item() / 3)
    per_sequence = math.exp(((nll[0] + nll[1]) / 2 + nll[2]).item() / 2)
    assert math.exp(totals[:, 0].sum() / totals[:, 1].sum()) == pytest.approx(token_weighted)
    assert token_weighted != pytest.approx(per_sequence)


def test_the_metric_sums_tokens_over_batches_before_dividing():
    from types import SimpleNamespace

    from advembed.tasks import get_task

    rows = torch.tensor([[6.0, 2.0], [2.0, 1.0]])  # (NLL sum, target tokens) per example
    got = get_task("lm").compute_metrics(SimpleNamespace(predictions=rows.numpy()))
    assert got["perplexity"] == pytest.approx(math.exp(8 / 3))  # not exp((3 + 2) / 2)


def test_documents_are_joined_by_end_of_text_and_cut_into_full_blocks():
    class Tok:
        eos_token_id = 99

        def __call__(self, texts, add_special_tokens=False):
            return {"input_ids": [[len(w) for w in t.split()] for t in texts]}

    out = blocks(["a bb ccc", "dddd ee"], Tok(), 3)
    assert out == [[1, 2, 3], [99, 4, 2]]  # the last 99 is a remainder: dropped


def test_the_context_free_perplexity_counts_the_scored_targets_by_their_frequency():
    """Targets (each block's tokens but its first) 1 1 2 2 1 3: frequencies 1/2, 1/3, 1/6, so
    exp(H) = 2.7495 — not 3 (uniform over the three), nor 4.4557 (the first tokens counted)."""
    assert unigram_perplexity([[5, 1, 1, 2], [7, 2, 1, 3]]) == pytest.approx(2.749459, rel=1e-6)


class _WordTokenizer:
    """Word ids a = 1, b = 2, c = 3, end-of-text 0: just what :func:`blocks` calls."""

    eos_token_id = 0

    def __call__(self, texts, add_special_tokens=False):
        return {"input_ids": [[" abc".index(w) for w in t.split()] for t in texts]}


def test_an_lm_run_collapses_at_the_dev_blocks_context_free_perplexity():
    """Dev "a b" and "b c c", blocks of 3: stream 1 2 0 2 3 3 0 → [1 2 0] [2 3 3] (the last 0
    dropped); targets 2 0 3 3 → exp(H) = 2√2.  The guard (lower is better) stops a run at it
    or worse, within its 0.01 margin, and not one below it."""
    from types import SimpleNamespace

    from transformers import TrainerControl

    from advembed.data.base import Example
    from advembed.tasks import get_task
    from advembed.training.callbacks import CollapseGuard

    task = get_task("lm")
    dev = [Example("a b"), Example("b c c")]
    baseline = task.collapse_baseline(dev, _WordTokenizer(), max_length=3)
    assert baseline == pytest.approx(2 * math.sqrt(2))
    assert task.collapse_baseline(dev) is None  # no tokenizer, no check
    for value, stops in [(3.5, True), (2 * math.sqrt(2) - 0.005, True), (2.7, False)]:
        guard = CollapseGuard(baseline, metric=task.best_metric,
                              greater_is_better=task.greater_is_better)
        state = SimpleNamespace(max_steps=10, global_step=10,
                                log_history=[{"eval_perplexity": value, "step": 10}])
        control = guard.on_evaluate(SimpleNamespace(get_warmup_steps=lambda steps: 0), state,
                                    TrainerControl(), metrics={"eval_perplexity": value})
        assert control.should_training_stop is stops and guard.collapsed is stops


def test_token_level_contrast_by_hand_and_never_against_itself():
    anchor = torch.tensor([[2.0, 1.0]])
    positive = torch.tensor([[1.0, 0.5]])
    pool = torch.tensor([[2.0, 1.0], [0.0, 3.0], [-1.0, 2.0]])  # row 0 is the anchor itself
    tau = 0.07

    def cos(u, v):
        return float(F.cosine_similarity(u, v, dim=0))

    a = anchor[0]
    expected = math.log(math.exp(cos(a, pool[1]) / tau) + math.exp(cos(a, pool[2]) / tau)) - (
        cos(a, positive[0]) / tau)
    # n = 2 of 3 rows: whatever the random draw, the negatives are the two other rows; a draw
    # that may pick the anchor itself would do so in 2 of 3 draws, so 20 seeded draws catch it
    for seed in range(20):
        generator = torch.Generator().manual_seed(seed)
        loss = token_contrastive_loss(anchor, positive, pool, torch.tensor([0]), 2, tau,
                                      generator=generator)
        assert loss.item() == pytest.approx(expected, rel=1e-5), seed
    with_itself = math.log(math.exp(cos(a, pool[0]) / tau) + math.exp(cos(a, pool[1]) / tau)) - (
        cos(a, positive[0]) / tau)
    assert loss.item() != pytest.approx(with_itself, rel=1e-3)


def test_token_level_negatives_are_drawn_at_random_from_every_other_token():
    """n = 1 of a pool of 5 (the anchor is row 0): each draw's loss is
    (cos(a, n) − cos(a, p))/τ for its one negative, so over seeded draws every other row shows
    up, and never the anchor.  Catches: always the first rows of the pool."""
    anchor, positive = torch.tensor([[2.0, 1.0]]), torch.tensor([[1.0, 0.5]])
    pool = torch.tensor([[2.0, 1.0], [0.0, 3.0], [-1.0, 2.0], [3.0, -1.0], [1.0, 1.0]])
    tau = 0.5

    def cos(u, v):
        return float(F.cosine_similarity(u, v, dim=0))

    hand = {j: (cos(anchor[0], pool[j]) - cos(anchor[0], positive[0])) / tau
            for j in range(1, 5)}
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(60):
        value = token_contrastive_loss(anchor, positive, pool, torch.tensor([0]), 1, tau,
                                       generator=generator).item()
        (row,) = [j for j, v in hand.items() if v == pytest.approx(value, rel=1e-5)]
        seen.add(row)
    assert seen == {1, 2, 3, 4}


def test_token_level_loss_reads_the_perturbed_tokens_own_states_by_hand():
    """Two rows, the first padded; only the second has a complete word, at position 2: the
    anchor is its clean state (2, −1), the positive its adversarial state (1.5, −1) — not the
    previous position's — the negatives the other four real tokens (n = 4 of 5: all of them),
    and the first row is no anchor.  Catches: the positive at j − 1; rows without a word as
    anchors; the anchor's index in the pool counted with padding."""
    from types import SimpleNamespace

    from advembed.objectives import ObjectiveContext
    from advembed.objectives.atcl import ATCL

    _, tokenizer, _ = _tiny_lm_model()
    atcl = ATCL(tokenizer, token_level=True, tau=0.5, num_negatives=4)
    clean = torch.tensor([[[1.0, 0.0], [0.5, 1.0], [9.0, 9.0]],
                          [[0.0, 1.0], [1.0, 1.0], [2.0, -1.0]]])
    adversarial = torch.tensor([[[1.0, 0.2], [0.3, 1.0], [9.0, 9.0]],
                                [[0.1, 1.0], [1.0, 0.5], [1.5, -1.0]]])
    atcl.chosen = (torch.tensor([0, 2]), torch.tensor([False, True]))
    context = ObjectiveContext(
        model=None, inputs={"attention_mask": torch.tensor([[1, 1, 0], [1, 1, 1]])},
        adversarial=SimpleNamespace(hidden_states=[adversarial]),
        clean=SimpleNamespace(hidden_states=[clean]), example_index=None, step=0)

    def cos(u, v):
        return float(F.cosine_similarity(torch.tensor(u), torch.tensor(v), dim=0))

    a = [2.0, -1.0]
    negatives = ([1.0, 0.0], [0.5, 1.0], [0.0, 1.0], [1.0, 1.0])
    expected = (math.log(sum(math.exp(cos(a, n) / 0.5) for n in negatives))
                - cos(a, [1.5, -1.0]) / 0.5)
    assert atcl._token_level_loss(context).item() == pytest.approx(expected, rel=1e-5)


def test_evaluate_sums_every_batch_before_dividing():
    """Perplexity over a split is exp(Σ NLL / Σ tokens) over all of it: evaluated two blocks
    at a time it equals the one-batch value.  Catches: only the last batch counted."""
    from advembed.data import Example
    from advembed.tasks import get_task

    model, tokenizer, texts = _tiny_lm_model()
    task = get_task("lm")
    examples = [Example(text) for text in texts[:12]]
    whole = task.evaluate(model, tokenizer, examples, batch_size=1000, max_length=16)
    assert len(task.encode(examples, tokenizer, max_length=16)) > 4  # several batches of 2
    assert task.evaluate(model, tokenizer, examples, batch_size=2, max_length=16) == \
        pytest.approx(whole, rel=1e-9)


def test_ce_vda_or_a_foreign_scratch_model_on_a_token_task_is_one_line(tmp_path, capsys):
    """CE-VDA (paper 003 Table 4) is cross-entropy against the class label: a token-level task
    has none, and refusing it before anything trains beats a shape error at the first step."""
    from advembed.cli import main

    text = tmp_path / "corpus.txt"
    rng = random.Random(1)
    text.write_text("\n".join(" ".join(rng.choices(WORDS[:25], k=30)) for _ in range(40)))
    for argv in (["--method", "vda"], ["--method", "freelb", "--augment", "vda"]):
        assert main(["train", "--task", "lm", "--dataset", str(text), "--max-length", "32",
                     "--vda-loss", "ce", "--no-progress", "--output", str(tmp_path / "lm"),
                     *argv]) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and "--vda-loss ce is cross-entropy against a class label" in \
            error[0] and "--task lm" in error[0]
    assert not (tmp_path / "lm").exists()
    for task, model, models in (("lm", "scratch:transformer", "default, scratch:gpt2"),
                                ("translation", "scratch:esim",
                                 "default, scratch:bart, scratch:marian")):
        data = text if task == "lm" else tmp_path / "pairs.tsv"
        data.parent.joinpath("pairs.tsv").write_text("".join(
            f"{' '.join(rng.choices(WORDS[:25], k=5))}\t{' '.join(rng.choices(WORDS, k=5))}\n"
            for _ in range(40)))
        assert main(["train", "--task", task, "--dataset", str(data), "--model", model,
                     "--no-progress", "--output", str(tmp_path / "x")]) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert error == [f"advembed train: error: --task {task} has no model '{model}'; its "
                         f"models from scratch are {models}"]


def _tiny_lm_model():
    from transformers import GPT2Config, GPT2LMHeadModel

    from advembed.tasks.lm import train_bpe

    rng = random.Random(0)
    texts = [" ".join(rng.choices(WORDS[:30], k=12)) for _ in range(40)]
    tokenizer = train_bpe(texts, vocab_size=300)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=32, n_embd=16, n_layer=1,
                        n_head=2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel(config), tokenizer, texts


def test_atcl_on_a_language_model_contrasts_the_perturbed_tokens_own_states(monkeypatch):
    import advembed.objectives.atcl as atcl_module
    from advembed.methods import build_training_method
    from advembed.objectives import build_objective

    model, tokenizer, texts = _tiny_lm_model()
    ids = torch.tensor(blocks(texts, tokenizer, 16)[:4])
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}
    objective = build_objective("atcl", model, tokenizer=tokenizer, token_level=True)
    seen = {}

    def spy(anchor, positive, pool, own, n, tau, generator=None):
        seen.update(anchor=anchor.detach(), positive=positive.detach(), pool=pool.detach(),
                    own=own)
        return token_contrastive_loss(anchor, positive, pool, own, n, tau, generator=generator)

    monkeypatch.setattr(atcl_module, "token_contrastive_loss", spy)
    build_training_method("fgm", model, objective=objective).step(model, batch)
    position, has_word = objective.chosen
    assert has_word.all()
    with torch.no_grad():
        states = model(**batch, output_hidden_states=True).hidden_states[-1]
    rows = torch.arange(len(ids))
    assert torch.allclose(seen["anchor"], states[rows, position], atol=1e-6)
    assert torch.equal(seen["own"], rows * ids.shape[1] + position)  # its own row of the pool
    assert torch.allclose(seen["pool"][seen["own"]], seen["anchor"])
    assert not torch.allclose(seen["positive"], seen["anchor"])  # the FGM step moved it


def test_atcl_weights_its_token_level_term_by_beta(monkeypatch):
    import advembed.objectives.atcl as atcl_module
    from advembed.objectives import ObjectiveContext, build_objective

    model, tokenizer, _ = _tiny_lm_model()
    objective = build_objective("atcl", model, tokenizer=tokenizer, token_level=True, beta=0.3)
    monkeypatch.setattr(atcl_module, "input_token_states", lambda outputs: outputs)
    monkeypatch.setattr(atcl_module, "token_contrastive_loss",
                        lambda *args, **kwargs: torch.tensor(2.0))
    objective.chosen = (torch.tensor([1, 0]), torch.tensor([True, True]))
    states = torch.randn(2, 4, 3)
    context = ObjectiveContext(model=model, inputs={"attention_mask": torch.ones(2, 4)},
                               adversarial=states, clean=states, example_index=None, step=0)
    assert objective.loss(context).item() == pytest.approx(0.3 * 2.0)


def test_lm_trains_and_evaluates_through_the_command_line(tmp_path, capsys):
    from advembed.cli import main

    rng = random.Random(1)
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(" ".join(rng.choices(WORDS[:25], k=30)) for _ in range(60)))
    out = tmp_path / "lm"
    assert main(["train", "--task", "lm", "--dataset", str(text), "--max-length", "32",
                 "--batch-size", "8", "--epochs", "2", "--lr", "1e-3", "--method", "fgm",
                 "--objective", "atcl", "--no-progress", "--output", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["best_dev"]["perplexity"] == pytest.approx(
        min(row["perplexity"] for row in metrics["dev"]), rel=1e-6)
    assert metrics["best_dev"]["perplexity"] == pytest.approx(
        math.exp(metrics["best_dev"]["loss"]), rel=1e-4)
    capsys.readouterr()
    assert main(["eval", "--run", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["perplexity"] == pytest.approx(
        metrics["test"]["perplexity"], rel=1e-5)
    assert main(["predict", "--run", str(out), WORDS[0]]) == 0
    assert capsys.readouterr().out.startswith(WORDS[0])
    long_prompt = " ".join(WORDS[:25] * 12)  # 300 words: more than the model's positions
    assert main(["generate", "--run", str(out), long_prompt]) == 0  # cut to its last tokens
    capsys.readouterr()
    assert main(["attack", "--run", str(out), "--attack", "pgd", "--n-examples", "2"]) == 2
    assert "is a lm run: the pgd attack scores a classifier" in capsys.readouterr().err
    assert not list(out.glob(".attack-*"))


def test_the_perturbed_next_word_probe_runs_on_a_language_model():
    from advembed.evaluation.probes import perturbed_generation

    model, tokenizer, texts = _tiny_lm_model()
    clean = perturbed_generation(model, tokenizer, texts[0], epsilon=0.0, max_new_tokens=4)
    assert clean.perturbed == clean.clean and clean.perturbed_word == "too"  # "funny" is split
    moved = perturbed_generation(model, tokenizer, texts[0], epsilon=5.0, max_new_tokens=4)
    assert moved.clean == clean.clean and moved.clean_perplexity > 1.0


def test_a_non_utf8_text_file_is_one_line_naming_file_and_line(tmp_path, capsys):
    from advembed.cli import main

    text = tmp_path / "latin1.txt"
    text.write_bytes("a first line\nthe caf\xe9 line\n".encode("latin-1") * 20)
    assert main(["train", "--task", "lm", "--dataset", str(text), "--no-progress",
                 "--output", str(tmp_path / "lm")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"advembed train: error: {text} line 2 is not UTF-8 (byte 0xe9); save the file as "
        "UTF-8"]
    assert not (tmp_path / "lm").exists()


def test_a_model_without_an_end_of_text_token_is_refused_for_lm(tmp_path, tiny_model_dir,
                                                                  capsys):
    """--task lm joins documents with the tokenizer's end-of-text token: a BERT folder (none)
    is refused in one line naming the model, not a collator error mid-training."""
    from advembed.cli import main

    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(" ".join(WORDS[i:i + 12]) for i in range(40)))
    assert main(["train", "--task", "lm", "--dataset", str(text), "--model", str(tiny_model_dir),
                 "--max-steps", "1", "--no-progress", "--output", str(tmp_path / "lm")]) == 2
    assert "has no end-of-text token" in capsys.readouterr().err
    assert not (tmp_path / "lm").exists()


def test_generate_is_plain_greedy_and_fits_a_model_of_few_positions():
    """A saved generation config's search settings (n-gram blocking, penalties) are not
    applied: the continuation is the argmax at every step; a model of 32 positions (fewer
    than the 40 new tokens asked) keeps at least one prompt token and does not overflow."""
    from advembed.tasks import LoadedModel, get_task

    model, tokenizer, _ = _tiny_lm_model()
    model.eval()
    model.generation_config.no_repeat_ngram_size = 1
    model.generation_config.repetition_penalty = 5.0
    task = get_task("lm")
    prompt = " ".join(WORDS[:3] * 20)  # longer than the model's positions
    out = task.predict(LoadedModel(model, tokenizer, "tiny"), prompt, None, {})
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"][:, -1:]
    with torch.no_grad():
        for _ in range(31):
            ids = torch.cat([ids, model(ids).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert out["continuation"] == tokenizer.decode(ids[0, 1:], skip_special_tokens=True)


@pytest.mark.parametrize("task_name", ["lm", "translation"])
def test_a_saved_model_without_its_tokenizer_is_one_line_naming_it(tmp_path, task_name):
    from advembed.errors import AdvembedError
    from advembed.tasks import get_task

    model, _, _ = _tiny_lm_model()
    model.save_pretrained(tmp_path / "model")  # weights and config, no tokenizer files
    with pytest.raises(AdvembedError, match=r"model' has no tokenizer \(tokenizer\.json"):
        get_task(task_name).load_saved(tmp_path / "model")
    with pytest.raises(AdvembedError, match="is missing config.json"):
        get_task(task_name).load_saved(tmp_path / "nothing")


def test_generate_and_translate_name_themselves_in_usage_and_errors(capsys):
    from advembed.cli import main

    for command in ("generate", "translate"):
        with pytest.raises(SystemExit):
            main([command, "--run", "x"])
        assert f"advembed {command}: error: the following arguments" in capsys.readouterr().err
