"""Models trained from scratch, the papers' non-pretrained baselines (paper 000 Tables 2–3).

``--model scratch:transformer``: a small BERT-style Transformer encoder built from a
``transformers`` config and randomly initialised, with a lower-cased WordPiece vocabulary
trained by ``tokenizers`` on the **training split only** (dev and test texts never shape it).
Sizes (:data:`TRANSFORMER_SIZES`): 2 layers, hidden 128, 4 heads, feed-forward 512, at most
8,000 word pieces, 256 positions.  It is an ordinary ``BertForSequenceClassification`` with a
``BertTokenizerFast``, so it saves, loads, and trains with every method and objective through
``get_input_embeddings()`` like a pretrained model.  A randomly initialised encoder needs a
larger learning rate than fine-tuning: ``--lr 5e-4`` is a sensible start.

``--model scratch:esim``: ESIM for pairs, a BiLSTM for single sentences, on GloVe 6B 50d
(:mod:`advembed.esim`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from advembed.errors import AdvembedError

PREFIX = "scratch:"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TRANSFORMER_SIZES = {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                     "intermediate_size": 512, "max_position_embeddings": 256}
VOCAB_SIZE = 8000
ARCHITECTURES = ("transformer", "esim")


def is_scratch(name: str) -> bool:
    return name.startswith(PREFIX)


def train_wordpiece(texts: Iterable[str], vocab_size: int = VOCAB_SIZE):
    """A lower-cased WordPiece ``BertTokenizerFast`` trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import WordPieceTrainer
    from transformers import BertTokenizerFast

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                               min_frequency=2, show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return BertTokenizerFast(tokenizer_object=tokenizer, do_lower_case=True,
                             model_max_length=TRANSFORMER_SIZES["max_position_embeddings"],
                             **dict(zip(("pad_token", "unk_token", "cls_token", "sep_token",
                                         "mask_token"), SPECIAL_TOKENS, strict=True)))


def train_byte_level_bpe(texts: Iterable[str], vocab_size: int, special_tokens: list[str],
                         unk_token: str | None = None, add_prefix_space: bool = False):
    """A byte-level BPE ``tokenizers.Tokenizer`` (GPT-2's scheme) trained on ``texts``, with
    ``special_tokens`` first in its vocabulary; the LM and translation tasks wrap it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=unk_token))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special_tokens,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def scratch_classifier(name: str, label_names: list[str], train_texts: list[str]) -> Any:
    """``(model, tokenizer)`` of ``scratch:ARCH`` for ``label_names``; the tokenizer is trained
    on ``train_texts`` (the training split's sentences and second sentences)."""
    from transformers import BertConfig, BertForSequenceClassification

    architecture = name.removeprefix(PREFIX)
    if architecture not in ARCHITECTURES:
        raise AdvembedError(f"unknown model '{name}'; from scratch there is "
                            f"{', '.join(PREFIX + a for a in ARCHITECTURES)}")
    if not train_texts:
        raise AdvembedError(f"model '{name}' needs training texts to learn its vocabulary")
    if architecture == "esim":
        from advembed.esim import esim_classifier

        return esim_classifier(label_names, train_texts)
    tokenizer = train_wordpiece(train_texts)
    id2label = dict(enumerate(label_names))
    config = BertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                        num_labels=len(label_names), id2label=id2label,
                        label2id={label: i for i, label in id2label.items()},
                        **TRANSFORMER_SIZES)
    return BertForSequenceClassification(config), tokenizer
