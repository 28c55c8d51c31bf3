"""Decoder-only sequence classifiers (GPT-2 style: a ``score`` head read at the last token)
are padded on the left, so that the embedding-space path (``inputs_embeds``) classifies from the
same token as the ids path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from advembed.cli import main
from advembed.models import load_classifier, load_saved_classifier


@pytest.fixture(scope="module")
def tiny_gpt2_dir(tmp_path_factory) -> Path:
    from transformers import GPT2Config, GPT2Model, PreTrainedTokenizerFast

    from advembed.scratch import train_byte_level_bpe

    folder = tmp_path_factory.mktemp("models") / "tiny-gpt2"
    words = "good bad film movie very a the plot acting was fine awful great dull".split()
    texts = [" ".join(words[(i * 7 + j) % len(words)] for j in range(3 + i % 9))
             for i in range(200)]
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=train_byte_level_bpe(texts, 300, ["<|endoftext|>"]),
        eos_token="<|endoftext|>")  # no padding token, as GPT-2's own tokenizer
    torch.manual_seed(0)
    GPT2Model(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2,
                         n_positions=64)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_a_decoder_classifier_is_padded_left_so_embeddings_give_the_ids_logits(tiny_gpt2_dir):
    loaded = load_classifier(str(tiny_gpt2_dir), ["neg", "pos"])
    tokenizer, model = loaded.tokenizer, loaded.model.eval()
    assert tokenizer.padding_side == "left" and tokenizer.pad_token == "<|endoftext|>"
    assert model.config.pad_token_id == tokenizer.pad_token_id
    batch = tokenizer(["good film", "a very very dull plot was the film"], padding=True,
                      return_tensors="pt")
    assert batch["attention_mask"][0, 0] == 0  # the short sentence is padded, on the left
    with torch.no_grad():
        from_ids = model(**batch).logits
        embeds = model.get_input_embeddings()(batch["input_ids"])
        rest = {key: value for key, value in batch.items() if key != "input_ids"}
        from_embeds = model(inputs_embeds=embeds, **rest).logits
    torch.testing.assert_close(from_embeds, from_ids)  # right padding: row 0 differs


def test_vaa_features_of_a_decoder_classifier_are_its_last_real_tokens_state(tiny_gpt2_dir):
    from advembed.vaa.features import _head_input

    loaded = load_classifier(str(tiny_gpt2_dir), ["neg", "pos"])
    model = loaded.model.eval()
    batch = loaded.tokenizer(["good film", "a dull plot"], padding=True, return_tensors="pt")
    seen: list[torch.Tensor] = []
    with torch.no_grad(), _head_input(model, seen):
        states = model(**batch, output_hidden_states=True).hidden_states[-1]
    torch.testing.assert_close(seen[0], states[:, -1])


def test_an_adversarial_run_of_a_decoder_classifier_keeps_left_padding(tmp_path, tiny_gpt2_dir):
    from test_train_cli import write_sentiment_csv

    data = write_sentiment_csv(tmp_path / "reviews.csv", n=64)
    out = tmp_path / "run"
    assert main(["train", "--model", str(tiny_gpt2_dir), "--dataset", str(data), "--method",
                 "fgm", "--epochs", "1", "--output", str(out), "--no-progress"]) == 0
    written = json.loads((out / "model" / "tokenizer_config.json").read_text())
    assert written["padding_side"] == "left"  # eval, predict and attack read it from there
    saved = load_saved_classifier(out / "model")
    assert saved.tokenizer.padding_side == "left"
    assert saved.model.config.pad_token_id == saved.tokenizer.pad_token_id
    assert json.loads((out / "metrics.json").read_text())["test"]


def test_a_left_padded_sentence_scores_as_it_does_alone(tiny_gpt2_dir):
    """Positions count from each row's first real token: padded in a batch with a longer
    sentence, "good film" gets the logits it gets alone (GPT-2 would number the pads 0…)."""
    loaded = load_classifier(str(tiny_gpt2_dir), ["neg", "pos"])
    tokenizer, model = loaded.tokenizer, loaded.model.eval()
    alone = tokenizer(["good film"], return_tensors="pt")
    batch = tokenizer(["good film", "a very very dull plot was the film"], padding=True,
                      return_tensors="pt")
    assert batch["attention_mask"][0].sum() < batch["attention_mask"].shape[1]
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits[0], model(**alone).logits[0],
                                   atol=1e-5, rtol=1e-5)


def test_drift_and_objectives_of_a_decoder_classifier_read_its_last_real_token(tiny_gpt2_dir):
    from advembed.tasks import get_task

    task = get_task("classification")
    saved = tiny_gpt2_dir.parent / "saved-gpt2"
    loaded = load_classifier(str(tiny_gpt2_dir), ["neg", "pos"])
    loaded.model.save_pretrained(saved)
    loaded.tokenizer.save_pretrained(saved)
    model = task.load_saved(saved).model.eval()
    batch = loaded.tokenizer(["good film", "a dull plot"], padding=True, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**batch, output_hidden_states=True)
    torch.testing.assert_close(task.representation(outputs, batch),
                               outputs.hidden_states[-1][:, -1])
    assert not torch.equal(task.representation(outputs, batch), outputs.hidden_states[-1][:, 0])
    bert = get_task("classification")  # a fresh task: an encoder's is [CLS]'s
    assert torch.equal(bert.representation(outputs, batch), outputs.hidden_states[-1][:, 0])


def test_vaa_on_a_decoder_starts_as_a_and_scores_a_padded_sentence_as_alone(tiny_gpt2_dir):
    """B is built from A's config (no loaded model's hooks): its positions must count from the
    mask as A's did, so that B starts as exactly A and "good film" scores the same padded in a
    batch as alone; ``position`` placement (V after a left pad) is refused."""
    from advembed.errors import AdvembedError
    from advembed.vaa.model import VulnerabilityAwareModel

    loaded = load_classifier(str(tiny_gpt2_dir), ["neg", "pos"])
    tokenizer, a = loaded.tokenizer, loaded.model.eval()
    b = VulnerabilityAwareModel.from_model_a(a).eval()
    torch.nn.init.normal_(b.projection.weight, std=0.5)  # V now moves B's inputs
    alone = tokenizer(["good film"], return_tensors="pt")
    batch = tokenizer(["good film", "a very very dull plot was the film"], padding=True,
                      return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(b(**batch).logits[0], b(**alone).logits[0],
                                   atol=1e-5, rtol=1e-5)
        torch.nn.init.zeros_(b.projection.weight)
        torch.testing.assert_close(b(**batch).logits, a(**batch).logits)
    with pytest.raises(AdvembedError, match="position does not apply to a decoder"):
        VulnerabilityAwareModel.from_model_a(a, placement="position")
