"""The task layer: a second task, defined here and nowhere in ``src/``, trains through
``advembed train`` with plain and adversarial methods, and its token-level loss stays exact
under gradient accumulation.  If anything outside ``tasks/`` assumed classification, these
tests would fail."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch
from conftest import SPECIAL, WORDS

from advembed.data.base import Example, TextDataset
from advembed.data.splits import split_three
from advembed.errors import AdvembedError
from advembed.tasks import SPLITS, LoadedModel, Task, get_task, register_task


class ToyLMTask(Task):
    """Causal language modelling on the lines of a text file; perplexity, token-level loss."""

    name = "toy-lm"
    description = "causal LM on a text file (test only)"
    metric_names = ("perplexity",)
    best_metric = "perplexity"
    greater_is_better = False
    token_level = True

    def load_data(self, options, *, limit=None, seed=0):
        lines = [line for line in open(options.dataset, encoding="utf-8").read().splitlines()
                 if line.strip()]
        splits = split_three([Example(line) for line in lines], options.split_seed or 0, "toy")
        return TextDataset("toy", [], splits)

    def build_model(self, name, data, *, random_init=False):
        from transformers import AutoModelForCausalLM

        from advembed.models import load_pretrained

        loaded = load_pretrained(name, AutoModelForCausalLM, random_init=random_init)
        return LoadedModel(loaded.model, loaded.tokenizer, loaded.source)

    def load_saved(self, model_dir):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        return LoadedModel(AutoModelForCausalLM.from_pretrained(model_dir),
                           AutoTokenizer.from_pretrained(model_dir), str(model_dir))

    def encode(self, examples, tokenizer, *, max_length, with_index=False):
        encoded = tokenizer([e.text for e in examples], truncation=True, max_length=max_length)
        items = [{"input_ids": ids, "attention_mask": mask}
                 for ids, mask in zip(encoded["input_ids"], encoded["attention_mask"],
                                      strict=True)]
        if with_index:
            for i, item in enumerate(items):
                item["example_index"] = i
        return items

    def collator(self, tokenizer):
        from transformers import DataCollatorForLanguageModeling

        return DataCollatorForLanguageModeling(tokenizer, mlm=False)

    def count_items(self, inputs):
        return (inputs["labels"][:, 1:] != -100).sum()  # the model predicts tokens 2..L

    def compute_metrics(self, eval_prediction):
        logits = torch.as_tensor(eval_prediction.predictions)
        labels = torch.as_tensor(eval_prediction.label_ids)
        return {"perplexity": perplexity(logits, labels)}

    def representation(self, outputs, inputs=None):
        states = outputs.hidden_states[-1]
        mask = inputs["attention_mask"].unsqueeze(-1).to(states.dtype)
        return (states * mask).sum(1) / mask.sum(1)

    def evaluate(self, model, tokenizer, examples, *, batch_size=64, max_length=128,
                 progress=False):
        from advembed.evaluation.loop import encoded_batches, eval_mode

        logits, labels = [], []
        with eval_mode(model), torch.no_grad():
            for batch in encoded_batches(self, examples, tokenizer, batch_size=batch_size,
                                         max_length=max_length):
                logits.append(model(**batch).logits)
                labels.append(batch["labels"])
        return {"perplexity": math.exp(sum(nll_sum(lo, la) for lo, la in zip(
            logits, labels, strict=True)) / sum(int((la[:, 1:] != -100).sum()) for la in labels))}


def nll_sum(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Sum of the next-token negative log-likelihoods over target tokens (padding ignored)."""
    return float(torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1),
        ignore_index=-100, reduction="sum"))


def perplexity(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return math.exp(nll_sum(logits, labels) / int((labels[:, 1:] != -100).sum()))


@pytest.fixture(scope="module")
def toy_lm_task():
    previous = dict(__import__("advembed.tasks", fromlist=["REGISTRY"]).REGISTRY)
    register_task(ToyLMTask)
    yield get_task("toy-lm")
    registry = __import__("advembed.tasks", fromlist=["REGISTRY"]).REGISTRY
    registry.clear()
    registry.update(previous)


@pytest.fixture(scope="module")
def tiny_lm_dir(tmp_path_factory):
    """A GPT-2 config (2 layers, hidden 16) beside the tiny WordPiece tokenizer; no weights:
    the task builds it with ``--model-init random``."""
    from transformers import BertTokenizerFast, GPT2Config

    path = tmp_path_factory.mktemp("lm") / "tiny-gpt2"
    path.mkdir()
    vocab = path / "vocab.txt"
    vocab.write_text("\n".join(SPECIAL + WORDS) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(path)
    GPT2Config(vocab_size=len(SPECIAL) + len(WORDS), n_positions=64, n_embd=16, n_layer=2,
               n_head=2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def lines_file(tmp_path_factory):
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("text") / "lines.txt"
    path.write_text("\n".join(" ".join(rng.choices(WORDS[:20], k=rng.randint(3, 9)))
                              for _ in range(120)), encoding="utf-8")
    return path


def test_perplexity_is_exp_of_the_token_weighted_mean_nll():
    """Hand-computed: two sequences, 3 and 1 target tokens (padding ignored); a wrong
    weighting (mean of per-sequence means) gives another number."""
    logits = torch.zeros(2, 4, 3)
    logits[0, 0] = torch.tensor([2.0, 0.0, 0.0])  # predicts token 1 of row 0
    logits[1, 0] = torch.tensor([0.0, 0.0, 3.0])
    labels = torch.tensor([[0, 0, 1, 2], [2, 2, -100, -100]])
    p = torch.softmax(torch.tensor([2.0, 0.0, 0.0]), -1)
    q = torch.softmax(torch.tensor([0.0, 0.0, 3.0]), -1)
    uniform = math.log(3)
    by_token = (-math.log(p[0]) + 2 * uniform - math.log(q[2])) / 4
    assert perplexity(logits, labels) == pytest.approx(math.exp(by_token))
    by_sequence = ((-math.log(p[0]) + 2 * uniform) / 3 - math.log(q[2])) / 2
    assert perplexity(logits, labels) != pytest.approx(math.exp(by_sequence))


@pytest.mark.parametrize("method", ["none", "freelb", "fgm"])
def test_a_second_task_trains_through_the_command_line(toy_lm_task, tiny_lm_dir, lines_file,
                                                       tmp_path, capsys, method):
    from advembed.cli import main

    out = tmp_path / method
    code = main(["train", "--task", "toy-lm", "--dataset", str(lines_file), "--model",
                 str(tiny_lm_dir), "--model-init", "random", "--output", str(out),
                 "--method", method, "--epochs", "2", "--batch-size", "8", "--lr", "5e-3",
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "toy-lm" and config["model_init"] == "random"
    assert len(metrics["dev"]) == 2 and "perplexity" in metrics["dev"][0]
    # The best checkpoint is the lowest dev perplexity, and learning happened (vocabulary of
    # 20 words in use: a uniform guess over the whole vocabulary is far worse).
    assert metrics["best_dev"]["perplexity"] == pytest.approx(
        min(r["perplexity"] for r in metrics["dev"]), rel=1e-5)
    assert metrics["test"]["perplexity"] < len(SPECIAL) + len(WORDS)
    assert "test perplexity" in capsys.readouterr().out


def test_token_level_accumulation_equals_one_double_batch(toy_lm_task, tiny_lm_dir, tmp_path):
    """Two micro-batches with 4 and 14 target tokens, accumulated, give the gradient of one
    batch of all 18 tokens (dividing each micro-batch by 2 instead would not)."""
    from conftest import assert_accumulation_equals_double_batch

    texts = ["good fun", "bad plot", "the movie was very good and the plot was fun",
             "a film that is not great but it is fun and good"]
    loaded = toy_lm_task.build_model(str(tiny_lm_dir), None, random_init=True)
    rows = toy_lm_task.encode([Example(t) for t in texts], loaded.tokenizer, max_length=32)

    def make_model():
        torch.manual_seed(0)
        return toy_lm_task.build_model(str(tiny_lm_dir), None, random_init=True).model

    assert_accumulation_equals_double_batch(make_model, toy_lm_task, rows,
                                            toy_lm_task.collator(loaded.tokenizer), tmp_path)


def test_the_classification_task_is_the_default_and_unknown_tasks_are_refused():
    assert get_task().name == "classification" and get_task(None).name == "classification"
    assert SPLITS == ("train", "dev", "test")
    with pytest.raises(AdvembedError, match="unknown task 'qa'"):
        get_task("qa")
