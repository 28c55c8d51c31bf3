"""Tokenisation of :class:`advembed.data.Example` lists into model inputs.

Sentence pairs are tokenised as pairs (``tokenizer(text, text_pair)``), so segment ids and the
separator token come from the model's own tokenizer.  Padding is dynamic: examples are stored
unpadded and :class:`transformers.DataCollatorWithPadding` pads each batch to its longest member.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class EncodedDataset(torch.utils.data.Dataset):
    """Tokenised examples with labels; one ``dict`` of lists per item.

    ``with_index`` adds ``example_index`` (the row's position); :class:`AdvTrainer` and the
    training methods take it out before calling the model.
    """

    def __init__(self, examples: Sequence, tokenizer, max_length: int = 128,
                 with_index: bool = False) -> None:
        self.examples = list(examples)
        texts = [example.text for example in self.examples]
        pairs = [example.text_pair for example in self.examples]
        if any(pair is not None for pair in pairs):
            pairs = [pair or "" for pair in pairs]
            encoded = tokenizer(texts, pairs, truncation="longest_first", max_length=max_length)
        else:
            encoded = tokenizer(texts, truncation=True, max_length=max_length)
        keys = [key for key in ("input_ids", "attention_mask", "token_type_ids") if key in encoded]
        self._items = [
            {key: encoded[key][i] for key in keys} | {"labels": self.examples[i].label}
            for i in range(len(self.examples))
        ]
        if with_index:  # which training example a row is (CARL's memory banks need it)
            for i, item in enumerate(self._items):
                item["example_index"] = i

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> dict:
        return self._items[index]
