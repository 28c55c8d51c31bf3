"""Shared fixtures: tiny randomly initialised models of several architectures and a tiny
local model directory (config + WordPiece tokenizer) that stands in for a hub model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

WORDS = (
    "the a an movie film story plot actor actors great good bad awful boring fun funny dull "
    "brilliant terrible best worst love hate is was not very too and but it this that of to "
    "in with for on at by from as be are were has have had news sport sports market game team "
    "win lost election vote government company shares price music band song play players"
).split()
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def package_path() -> str:
    """The folder holding the ``advembed`` these tests import, for subprocesses' PYTHONPATH
    (the checkout's ``src``, or the mutated copy ``benchmarks/mutation_check.py`` made)."""
    import advembed

    return str(Path(advembed.__file__).resolve().parents[1])

SMALL = dict(
    vocab_size=len(SPECIAL) + len(WORDS) + 20,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    max_position_embeddings=64,
)


def tiny_config(arch: str, num_labels: int = 2, dropout: float = 0.0):
    """A tiny config of ``arch`` with ``num_labels`` classes (dropout 0 for exact tests)."""
    from transformers import (
        AlbertConfig,
        BertConfig,
        DebertaV2Config,
        DistilBertConfig,
        ElectraConfig,
        RobertaConfig,
    )

    if arch == "bert":
        return BertConfig(**SMALL, num_labels=num_labels, hidden_dropout_prob=dropout,
                          attention_probs_dropout_prob=dropout)
    if arch == "roberta":
        return RobertaConfig(**(SMALL | {"max_position_embeddings": 70}), num_labels=num_labels,
                             pad_token_id=1, hidden_dropout_prob=dropout,
                             attention_probs_dropout_prob=dropout)
    if arch == "albert":
        return AlbertConfig(**SMALL, embedding_size=8, num_labels=num_labels,
                            hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
                            classifier_dropout_prob=dropout)
    if arch == "distilbert":
        return DistilBertConfig(vocab_size=SMALL["vocab_size"], dim=16, n_layers=2, n_heads=2,
                                hidden_dim=32, max_position_embeddings=64, num_labels=num_labels,
                                dropout=dropout, attention_dropout=dropout,
                                seq_classif_dropout=dropout)
    if arch == "electra":
        return ElectraConfig(**SMALL, embedding_size=8, num_labels=num_labels,
                             hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    if arch == "deberta-v2":
        return DebertaV2Config(**SMALL, num_labels=num_labels, hidden_dropout_prob=dropout,
                               attention_probs_dropout_prob=dropout, pooler_dropout=dropout,
                               relative_attention=True, position_buckets=8,
                               pos_att_type=["p2c", "c2p"], max_relative_positions=16)
    raise ValueError(arch)


ARCHITECTURES = ["bert", "roberta", "albert", "distilbert", "electra", "deberta-v2"]


def tiny_model(arch: str = "bert", num_labels: int = 2, seed: int = 0, dropout: float = 0.0):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_config(tiny_config(arch, num_labels, dropout))


def tiny_batch(
    batch: int = 4,
    length: int = 9,
    num_labels: int = 2,
    seed: int = 0,
    pair: bool = False,
    vocab: int = SMALL["vocab_size"],
) -> dict[str, torch.Tensor]:
    """Random token ids with ragged lengths (right padding, id 0) and labels."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (batch, length), generator=generator)
    lengths = torch.randint(length // 2, length + 1, (batch,), generator=generator)
    lengths[0] = length
    attention = (torch.arange(length)[None, :] < lengths[:, None]).long()
    ids = ids * attention
    ids[:, 0] = 2
    token_types = torch.zeros_like(ids)
    if pair:
        second = torch.arange(length)[None, :] >= (lengths[:, None] // 2)
        token_types = (second & (attention == 1)).long()
    labels = torch.randint(0, num_labels, (batch,), generator=generator)
    return {"input_ids": ids, "attention_mask": attention, "token_type_ids": token_types,
            "labels": labels}


def wordpiece_tokenizer(folder: Path, words: list[str]):
    """An uncased WordPiece tokenizer over exactly ``words`` (special tokens included), its
    ``vocab.txt`` written into ``folder``."""
    from transformers import BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(words) + "\n", encoding="utf-8")
    return BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)


def byte_level_tokenizer():
    """A real byte-level BPE (RoBERTa's scheme) trained on a few sentences, so that ``good``
    is ``Ġgood`` after a space and a sentence may open with the bare ``nice``."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    corpus = ["The good movie was great and fine", "Good films are nice",
              "a good good great great fine fine nice nice movie movie The The",
              "a \"nice\" one"] * 20
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus + ["splen did", "a splendid"], vocab_size=300,
                            min_frequency=2, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                            show_progress=False)
    return PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>",
                                   eos_token="</s>", pad_token="<pad>", unk_token="<unk>")


def make_tiny_model_dir(path: Path, num_labels: int = 2, seed: int = 0) -> Path:
    """A local 'hub-style' model directory: tiny BERT config, weights and WordPiece vocab."""
    from transformers import BertForSequenceClassification, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    vocab = path / "vocab.txt"
    vocab.write_text("\n".join(SPECIAL + WORDS) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    config = tiny_config("bert", num_labels, dropout=0.1)
    config.vocab_size = len(SPECIAL) + len(WORDS)
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return make_tiny_model_dir(tmp_path_factory.mktemp("models") / "tiny-bert")


@pytest.fixture(scope="session")
def tiny_trained_run(tmp_path_factory, tiny_model_dir) -> Path:
    """A run of the tiny BERT trained on a small sentiment CSV (shared by the attack tests)."""
    from test_train_cli import _train, write_sentiment_csv

    tmp = tmp_path_factory.mktemp("trained")
    data = write_sentiment_csv(tmp / "reviews.csv", n=320)
    code, run = _train(tmp, tiny_model_dir, data, "plain")
    assert code == 0
    return run


def tiny_augmenter(model, **options):
    """VDA's augmenter for ``model`` with a tiny random masked LM of the same vocabulary (the
    default ``--vda-mlm`` is the built MLM, which tests do not build)."""
    from transformers import BertConfig, BertForMaskedLM

    from advembed.vda import VDASettings, VirtualAugmenter

    rows = model.get_input_embeddings().num_embeddings
    config = BertConfig(vocab_size=rows, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=128,
                        type_vocab_size=2)
    return VirtualAugmenter(model, VDASettings(**options), mlm=BertForMaskedLM(config),
                            special_ids=list(range(len(SPECIAL))))


def tiny_synonyms(model, per_word: int = 3, seed: int = 0):
    """ASCC's synonym table for a random-token batch: every non-special id is a complete word
    with ``per_word`` random other ids as synonyms (the real table needs a tokenizer and
    WordNet)."""
    from advembed.hull import SynonymTable
    from advembed.words import WordFlags

    rows = model.get_input_embeddings().num_embeddings
    generator = torch.Generator().manual_seed(seed)
    words = torch.arange(rows) >= len(SPECIAL)
    neighbours = torch.arange(rows).unsqueeze(1).repeat(1, per_word + 1)
    valid = torch.zeros(rows, per_word + 1, dtype=torch.bool)
    valid[:, 0] = True
    for token in range(len(SPECIAL), rows):
        others = torch.randperm(rows - len(SPECIAL), generator=generator)[:per_word + 1]
        others = [int(o) + len(SPECIAL) for o in others if int(o) + len(SPECIAL) != token]
        neighbours[token, 1:] = torch.tensor(others[:per_word])
        valid[token, 1:] = True
    flags = WordFlags(start=words, continuation=torch.zeros(rows, dtype=torch.bool), alpha=words)
    return SynonymTable(neighbours, valid, flags)


def assert_accumulation_equals_double_batch(make_model, task, rows, collator, tmp_path) -> None:
    """One optimiser step on ``rows`` (4 examples) as one batch of 4 and as 2 accumulated
    micro-batches of 2 gives the same weights, plainly and under FGM (token-level tasks)."""
    from transformers import TrainingArguments

    from advembed.methods import build_training_method
    from advembed.training.trainer import AdvTrainer

    def train(per_device: int, accumulation: int, method: str | None):
        model = make_model()
        args = TrainingArguments(
            output_dir=str(tmp_path / f"ga{accumulation}"), per_device_train_batch_size=per_device,
            gradient_accumulation_steps=accumulation, max_steps=1, learning_rate=0.5,
            optim="sgd", lr_scheduler_type="constant", warmup_ratio=0.0, weight_decay=0.0,
            report_to="none", save_strategy="no", disable_tqdm=True, use_cpu=True, seed=0)
        trainer = AdvTrainer(model=model, args=args, train_dataset=rows, task=task,
                             data_collator=collator,
                             method=build_training_method(method, model) if method else None)
        trainer._get_train_sampler = lambda *a, **k: torch.utils.data.SequentialSampler(rows)
        trainer.train()
        return {n: p.detach().clone() for n, p in model.named_parameters()}

    for method in (None, "fgm"):
        whole, accumulated = train(4, 1, method), train(2, 2, method)
        for name in whole:
            assert torch.allclose(whole[name], accumulated[name], atol=1e-6), (method, name)
