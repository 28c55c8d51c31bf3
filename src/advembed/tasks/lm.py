"""Causal language modelling (paper 004's LM experiments): ``--task lm``, scored by perplexity.

Data: documents (``Example.text``; ``bbc-lm`` is the BBC News articles, split by article, or a
``.txt`` file with one document per line, split 80/10/10 by line).  Each split is tokenised,
its documents joined with the end-of-text token and cut into blocks of ``--max-length`` tokens
(the remainder dropped), so every block is full and nothing is padded.  The loss is the model's
mean next-token NLL, a token-level loss (gradient accumulation and DDP weight micro-batches by
their target tokens).  **Perplexity** is ``exp`` of the mean NLL over every target token of the
split — summed per batch before the division, so it is token-weighted exactly; the best
checkpoint is the one with the lowest dev perplexity.

Model: ``--model default`` (or ``scratch:gpt2``) is a GPT-2-style decoder trained from scratch
(:data:`LM_SIZES`: 3 layers, hidden 256, 4 heads, 256 positions) with a byte-level BPE of
:data:`LM_VOCAB` pieces trained by ``tokenizers`` on the training split only; any other name is
loaded with ``AutoModelForCausalLM`` (a pretrained causal LM to fine-tune).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from advembed.errors import AdvembedError
from advembed.scratch import train_byte_level_bpe
from advembed.tasks.base import (
    GREEDY,
    LoadedModel,
    Task,
    require_saved_model,
    require_splits,
    token_nll_and_count,
)

LM_SIZES = {"n_layer": 3, "n_embd": 256, "n_head": 4, "n_positions": 256}
LM_VOCAB = 8000
SCRATCH_NAMES = ("default", "scratch:gpt2")


def train_bpe(texts: list[str], vocab_size: int = LM_VOCAB):
    """A byte-level BPE ``PreTrainedTokenizerFast`` (GPT-2's scheme) trained on ``texts``."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = train_byte_level_bpe(texts, vocab_size, ["<|endoftext|>"])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>",
                                   bos_token="<|endoftext|>", unk_token="<|endoftext|>",
                                   pad_token="<|endoftext|>",
                                   model_max_length=LM_SIZES["n_positions"])


def blocks(texts: list[str], tokenizer, size: int) -> list[list[int]]:
    """The texts' tokens, documents separated by end-of-text, cut into full blocks."""
    stream: list[int] = []
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        stream += ids + [tokenizer.eos_token_id]
    return [stream[i:i + size] for i in range(0, len(stream) - size + 1, size)]


def nll_and_count(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per example ``[sum of next-token NLL, number of target tokens]`` (``-100`` ignored)."""
    return token_nll_and_count(logits[:, :-1], labels[:, 1:])


def unigram_perplexity(token_blocks: list[list[int]]) -> float:
    """Perplexity of the best context-free predictor of the blocks' targets (every token but
    each block's first, as the model is scored): the targets' own unigram frequencies, so
    ``exp`` of their entropy — no model that ignores the context does better."""
    counts = Counter(token for block in token_blocks for token in block[1:])
    total = sum(counts.values())
    return math.exp(-sum(n / total * math.log(n / total) for n in counts.values()))


class LanguageModellingTask(Task):
    name = "lm"
    description = "causal language modelling from scratch (perplexity; paper 004)"
    metric_names = ("perplexity",)
    best_metric = "perplexity"
    greater_is_better = False
    token_level = True
    cut_stream = True  # blocks() cuts documents at fixed lengths

    def load_data(self, options, *, limit=None, seed=0):
        path = Path(options.dataset).expanduser()
        if path.suffix == ".txt" and path.is_file():
            from advembed.data.base import Example, TextDataset
            from advembed.data.splits import split_three
            from advembed.data.tables import read_text

            lines = [line for line in read_text(path).splitlines() if line.strip()]
            splits = split_three([Example(line) for line in lines], options.split_seed,
                                 f"file '{path}'")
            data = TextDataset(path.stem, [], splits)
        else:
            data = options.load()
        if limit:
            data = data.limit(limit, seed=seed)
        require_splits(data, options.dataset)
        return data

    def build_model(self, name, data, *, random_init=False):
        if name.startswith("scratch:") and name not in SCRATCH_NAMES:
            raise AdvembedError(f"--task lm has no model '{name}'; its models "
                                f"from scratch are {', '.join(SCRATCH_NAMES)}")
        if name in SCRATCH_NAMES:
            from transformers import GPT2Config, GPT2LMHeadModel

            tokenizer = train_bpe([e.text for e in data.splits["train"]])
            config = GPT2Config(vocab_size=len(tokenizer), bos_token_id=tokenizer.eos_token_id,
                                eos_token_id=tokenizer.eos_token_id, **LM_SIZES)
            return LoadedModel(GPT2LMHeadModel(config), tokenizer,
                               "scratch:gpt2 (byte-level BPE of the training split)")
        from transformers import AutoModelForCausalLM

        from advembed.models import load_pretrained

        loaded = load_pretrained(name, AutoModelForCausalLM, random_init=random_init)
        if loaded.tokenizer.eos_token is None:  # the blocks are joined by it
            raise AdvembedError(f"model '{name}' has no end-of-text token in its tokenizer, "
                                "which --task lm separates documents with (a causal LM such as "
                                "GPT-2 has one; a BERT-style encoder does not)")
        if loaded.tokenizer.pad_token is None:
            loaded.tokenizer.pad_token = loaded.tokenizer.eos_token
        return LoadedModel(loaded.model, loaded.tokenizer, loaded.source)

    def load_saved(self, model_dir: Path) -> LoadedModel:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        require_saved_model(model_dir)
        return LoadedModel(AutoModelForCausalLM.from_pretrained(model_dir),
                           AutoTokenizer.from_pretrained(model_dir), str(model_dir))

    def encode(self, examples, tokenizer, *, max_length, with_index=False):
        items = [{"input_ids": ids, "attention_mask": [1] * len(ids), "labels": list(ids)}
                 for ids in blocks([e.text for e in examples], tokenizer, max_length)]
        if not items:
            raise AdvembedError(f"the texts hold fewer than --max-length {max_length} tokens")
        if with_index:
            for index, item in enumerate(items):
                item["example_index"] = index
        return items

    def collator(self, tokenizer):
        from transformers import default_data_collator

        return default_data_collator

    def count_items(self, inputs):
        return (inputs["labels"][:, 1:] != -100).sum()

    def preprocess_logits_for_metrics(self, logits, labels):
        logits = logits[0] if isinstance(logits, tuple) else logits
        return nll_and_count(logits, labels)

    def compute_metrics(self, eval_prediction):
        totals = torch.as_tensor(eval_prediction.predictions).double().sum(0)
        return {"perplexity": math.exp(float(totals[0] / totals[1]))}

    def evaluate(self, model, tokenizer, examples, *, batch_size=64, max_length=128,
                 progress=False):
        items = self.encode(examples, tokenizer, max_length=max_length)
        collate = self.collator(tokenizer)
        device = next(model.parameters()).device
        totals = torch.zeros(2, dtype=torch.float64)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(items), batch_size):
                    batch = {k: v.to(device) for k, v in
                             collate(items[start:start + batch_size]).items()}
                    totals += nll_and_count(model(**batch).logits, batch["labels"]).double(
                        ).sum(0).cpu()
        finally:
            model.train(was_training)
        return {"perplexity": math.exp(float(totals[0] / totals[1]))}

    def collapse_baseline(self, examples, tokenizer=None, *, max_length=128):
        """Dev perplexity of the best context-free predictor (:func:`unigram_perplexity` of
        the dev blocks): a model no better than it has learned nothing from the context (on
        ``bbc-lm`` with the default tokenizer it is about 1,213, against 520–740 for the
        one-epoch models of ``docs/results-atcl.md``)."""
        if tokenizer is None:
            return None
        return unigram_perplexity(blocks([e.text for e in examples], tokenizer, max_length))

    def representation(self, outputs: Any, inputs: dict[str, Any] | None = None):
        """Mean final state over the block's tokens (drift, sentence-level objectives)."""
        from advembed.objectives.base import mean_token_representation

        return mean_token_representation(outputs, inputs)

    def summary(self, metrics):
        return (f"dev perplexity {metrics['best_dev']['perplexity']:.2f}, test perplexity "
                f"{metrics['test']['perplexity']:.2f}")

    def check_input(self, text, pair, run_config):
        if not text.strip():
            raise AdvembedError("the prompt is empty")
        if pair is not None:
            raise AdvembedError("a language model takes one prompt: --pair does not apply")

    def predict(self, loaded, text, pair, run_config):
        """``advembed predict`` on an LM run: the prompt continued greedily (40 tokens).  A
        prompt longer than the model's positions leave room for is cut to its last tokens
        (what the continuation depends on most), so prompt and continuation fit."""
        self.check_input(text, pair, run_config)
        new_tokens = 40
        config = loaded.model.config
        positions = getattr(config, "n_positions", None) or getattr(
            config, "max_position_embeddings", None)
        if isinstance(positions, int):  # a small model: at least one prompt token kept
            if positions < 2:
                raise AdvembedError(f"the run's model has {positions} position(s): no room "
                                    "for a prompt and its continuation")
            new_tokens = min(new_tokens, positions - 1)
        encoded = loaded.tokenizer(text, return_tensors="pt")  # token_type_ids: GPT-2 would
        inputs = {key: encoded[key] for key in ("input_ids", "attention_mask")}  # add wte[0]
        if positions is not None and inputs["input_ids"].shape[1] > positions - new_tokens:
            keep = positions - new_tokens
            inputs = {key: value[:, -keep:] for key, value in inputs.items()}
        with torch.no_grad():
            out = loaded.model.eval().generate(
                **inputs, max_new_tokens=new_tokens, **GREEDY,
                pad_token_id=loaded.tokenizer.eos_token_id)
        continuation = loaded.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:],
                                               skip_special_tokens=True)
        return {"prompt": text, "continuation": continuation}
