"""Translation (paper 004's NMT experiments): ``--task translation``, scored by BLEU.

Data: ``help-en-de``, ``help-de-en``, ``help-en-fr``, ``help-fr-en`` (:mod:`advembed.data.parallel`,
split by help file), or a ``.tsv`` file of ``source<TAB>target`` lines, split 80/10/10 by line.

Model: ``--model default`` (or ``scratch:bart``) is a Transformer encoder–decoder trained from
scratch — a ``transformers`` BART config (:data:`MT_SIZES`: 3 encoder and 3 decoder layers,
hidden 256, 4 heads, feed-forward 1024) — with one byte-level BPE of :data:`MT_VOCAB` pieces
trained by ``tokenizers`` on the training split's sources *and* targets (a joint vocabulary;
the encoder, the decoder and the output layer share one embedding matrix).  Choice: the scratch
model does not multiply its embeddings by √d inside the encoder (``scale_embedding=False``), so
the embedding outputs the adversaries perturb (``inputs_embeds``) are exactly what the encoder
reads.  That is why the default is BART's layout and not Marian's: BART adds *learned*
positions initialised at the token embeddings' scale and normalises the sum
(``layernorm_embedding``), whereas Marian adds fixed sinusoids of norm √(d/2) ≈ 11 to token
embeddings of norm ≈ 0.3 (std 0.02), which then barely reach the encoder.  Measured on
``help-en-de``, one epoch of 882 steps (batch 32, lr 5e-4, seed 13, ``benchmarks/atcl_table.py
--variants base --epochs 1``): Marian ends on the unigram plateau (dev loss 6.50, dev BLEU
0.00), BART's layout well below it (dev loss 5.06, dev BLEU 0.13: one epoch is far too short;
both losses then averaged batch means by sentences, where
:meth:`TranslationTask.compute_metrics` now weights by tokens); at lr 1e-3 for 4 epochs the
BART layout reaches test BLEU 19.25 (``benchmarks/results/mt-schedule/``).  ``scratch:marian``
keeps the Marian layout for comparison.  A pretrained encoder–decoder
(``AutoModelForSeq2SeqLM``) is accepted when its encoder does not rescale ``inputs_embeds``
either (BART rescales inside its embedding module, which the adversaries call too), refused in
one line otherwise.

Loss: the model's mean cross-entropy over target tokens (token-level: gradient accumulation and
DDP weight micro-batches by target tokens; the dev and test ``loss`` is Σ NLL / Σ target tokens
over the split).  Adversaries perturb the **source** embeddings (the
encoder's input); ATCL's token-level states are the encoder's final states of the perturbed
source token.  Metrics: **BLEU** and chrF of ``sacrebleu`` (default settings: 13a tokenisation,
exponential smoothing for BLEU; the signature is recorded in ``config.json`` as
``bleu_signature``) on **greedy** decodes (at most ``--max-length`` new tokens), against the
split's own reference texts, during training as in ``advembed eval`` (each evaluated row finds
its text by its label ids: the trainer may score a split in length-grouped order; text decoded
from the label ids would be cut at ``--max-length`` and, with a tokenizer that lowercases or
normalises, would no longer be the reference).  The
signature is printed with the training summary and by ``advembed eval``.  The best checkpoint
is the one with the highest dev BLEU.
"""

from __future__ import annotations

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

MT_SIZES = {"encoder_layers": 3, "decoder_layers": 3, "d_model": 256,
            "encoder_attention_heads": 4, "decoder_attention_heads": 4,
            "encoder_ffn_dim": 1024, "decoder_ffn_dim": 1024, "max_position_embeddings": 256}
MT_VOCAB = 8000
SCRATCH_NAMES = ("default", "scratch:bart", "scratch:marian")
SPECIALS = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2; the decoder starts from <pad>


def train_joint_bpe(texts: list[str], vocab_size: int = MT_VOCAB):
    """A byte-level BPE ``PreTrainedTokenizerFast`` over ``texts`` (sources and targets) that
    ends every sequence with ``</s>``."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    tokenizer = train_byte_level_bpe(texts, vocab_size, list(SPECIALS), unk_token="<unk>",
                                     add_prefix_space=True)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", tokenizer.token_to_id("</s>"))])
    # add_prefix_space must be given again: the wrapper otherwise resets the pre-tokenizer to
    # False, and a sentence's first word (trained as "Ġword") falls apart into rare pieces
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>",
                                   eos_token="</s>", unk_token="<unk>", add_prefix_space=True,
                                   model_max_length=MT_SIZES["max_position_embeddings"])


def scratch_translator(tokenizer, layout: str = "bart", **sizes: Any):
    """The randomly initialised encoder–decoder of :data:`MT_SIZES` (``sizes`` override them),
    in BART's layout (learned positions, LayerNorm over token + position embeddings; the
    default) or Marian's (fixed sinusoidal positions, ``layout="marian"``); neither scales its
    embeddings, and one matrix serves encoder, decoder and output layer."""
    from transformers import BartConfig, BartForConditionalGeneration, MarianConfig, MarianMTModel

    common = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id,
              "eos_token_id": tokenizer.eos_token_id,
              "decoder_start_token_id": tokenizer.pad_token_id, "scale_embedding": False,
              "tie_word_embeddings": True} | MT_SIZES | sizes
    if layout == "marian":
        # MarianConfig's default forced eos is id 0, which is <pad> here: a decode that hit
        # the length limit would end in a <pad> that is stripped, not in </s>
        return MarianMTModel(MarianConfig(decoder_vocab_size=len(tokenizer),
                                          share_encoder_decoder_embeddings=True,
                                          forced_eos_token_id=None, **common))
    if layout != "bart":
        raise AdvembedError(f"unknown scratch translator layout '{layout}' (bart or marian)")
    # BART's own defaults name ids 0 and 2 as bos and forced eos: here those are <pad> and <unk>
    return BartForConditionalGeneration(BartConfig(bos_token_id=None, forced_eos_token_id=None,
                                                   **common))


def check_embedding_scale(model, name: str) -> None:
    """Refuse a model whose encoder scales token embeddings only when it looks them up itself
    (the adversaries' ``inputs_embeds`` would then miss that scale)."""
    encoder = model.get_encoder() if hasattr(model, "get_encoder") else None
    scale = getattr(encoder, "embed_scale", 1.0)
    if isinstance(scale, (int, float)) and scale != 1.0:
        raise AdvembedError(
            f"model '{name}' scales its encoder's embeddings by {scale:g} only when given token "
            "ids, so a perturbation of inputs_embeds would not see what the model reads; use "
            "--model scratch:marian or a model without scale_embedding")


def bleu_and_chrf(hypotheses: list[str], references: list[str]) -> tuple[dict[str, float], str]:
    """Corpus BLEU and chrF of ``sacrebleu`` (one reference each) and BLEU's signature."""
    import sacrebleu

    bleu, chrf = sacrebleu.BLEU(), sacrebleu.CHRF()
    scores = {"bleu": bleu.corpus_score(hypotheses, [references]).score,
              "chrf": chrf.corpus_score(hypotheses, [references]).score}
    return scores, str(bleu.get_signature())


def fixed_output(examples) -> str:
    """The most frequent target of ``examples`` (the first of equals): the one sentence a
    translator that ignores its source does best to output."""
    return Counter(e.text_pair for e in examples).most_common(1)[0][0]


class TranslationTask(Task):
    name = "translation"
    description = "translation from scratch, source → target (BLEU, chrF; paper 004)"
    metric_names = ("bleu", "chrf")
    metric_labels = {"bleu": "BLEU", "chrf": "chrF"}
    best_metric = "bleu"
    greater_is_better = True
    token_level = True

    def __init__(self) -> None:
        self.tokenizer = None  # set with the model: compute_metrics decodes with it
        self.max_new_tokens = 128
        self.signature = ""
        self._split = "dev"
        self._references: dict[str, list[str]] = {}  # the run's dev and test target texts
        self._by_labels: dict[str, dict[tuple[int, ...], list[str]]] = {}

    def load_data(self, options, *, limit=None, seed=0):
        path = Path(options.dataset).expanduser()
        if path.suffix == ".tsv" and path.is_file():
            data = read_parallel_file(path, options.split_seed)
        else:
            data = options.load()
        if limit:
            data = data.limit(limit, seed=seed)
        require_splits(data, options.dataset)
        if any(e.text_pair is None for e in data.splits["train"][:100]):
            raise AdvembedError(f"dataset '{options.dataset}' is not parallel text (no target "
                                "side): translation needs source and target pairs")
        self._references = {split: [e.text_pair for e in data.splits[split]]
                            for split in ("dev", "test")}
        self._by_labels = {}
        return data

    def set_split(self, split: str) -> None:
        self._split = split

    def references(self, label_ids) -> list[str]:
        """The split's own target texts for rows of ``label_ids``, each found by its label ids
        (the trainer may score a split in length-grouped order, not the data's); without the
        run's data (a task built by hand), the texts decoded from the label ids."""
        texts = self._references.get(self._split)
        if texts is None:
            return self.decode(label_ids)
        if self._split not in self._by_labels:
            encoded = self.tokenizer(text_target=texts, truncation=True,  # targets alone:
                                     max_length=self.max_new_tokens)["input_ids"]  # as labels
            table: dict[tuple[int, ...], list[str]] = {}
            for ids, text in zip(encoded, texts, strict=True):
                table.setdefault(tuple(ids), []).append(text)
            self._by_labels[self._split] = table
        table = {key: list(values) for key, values in self._by_labels[self._split].items()}
        found = []
        for row in torch.as_tensor(label_ids).tolist():
            texts_here = table.get(tuple(i for i in row if i >= 0))
            if not texts_here:
                raise ValueError(f"a {self._split} target is not among the split's references")
            found.append(texts_here.pop(0))
        return found

    def build_model(self, name, data, *, random_init=False):
        if name.startswith("scratch:") and name not in SCRATCH_NAMES:
            raise AdvembedError(f"--task translation has no model '{name}'; its models "
                                f"from scratch are {', '.join(SCRATCH_NAMES)}")
        if name in SCRATCH_NAMES:
            texts = [t for e in data.splits["train"] for t in (e.text, e.text_pair)]
            tokenizer = train_joint_bpe(texts)
            layout = "marian" if name == "scratch:marian" else "bart"
            loaded = LoadedModel(scratch_translator(tokenizer, layout), tokenizer,
                                 f"scratch:{layout} (joint byte-level BPE of the training split)")
        else:
            from transformers import AutoModelForSeq2SeqLM

            from advembed.models import load_pretrained

            found = load_pretrained(name, AutoModelForSeq2SeqLM, random_init=random_init)
            check_embedding_scale(found.model, name)
            loaded = LoadedModel(found.model, found.tokenizer, found.source)
        self.tokenizer = loaded.tokenizer
        return loaded

    def load_saved(self, model_dir: Path) -> LoadedModel:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        require_saved_model(model_dir)
        loaded = LoadedModel(AutoModelForSeq2SeqLM.from_pretrained(model_dir),
                             AutoTokenizer.from_pretrained(model_dir), str(model_dir))
        self.tokenizer = loaded.tokenizer
        return loaded

    def use_max_length(self, max_length: int) -> None:
        self.max_new_tokens = max_length

    def encode(self, examples, tokenizer, *, max_length, with_index=False):
        encoded = tokenizer([e.text for e in examples], text_target=[e.text_pair for e in examples],
                            truncation=True, max_length=max_length)
        items = [{"input_ids": ids, "attention_mask": mask, "labels": labels} for ids, mask, labels
                 in zip(encoded["input_ids"], encoded["attention_mask"], encoded["labels"],
                        strict=True)]
        if with_index:
            for index, item in enumerate(items):
                item["example_index"] = index
        return items

    def collator(self, tokenizer):
        from transformers import DataCollatorForSeq2Seq

        return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)

    def generate(self, model, inputs: dict[str, Any],
                 max_new_tokens: int | None = None) -> torch.Tensor:
        """Greedy decodes of a batch (``AdvTrainer`` scores dev and test with them), up to
        ``max_new_tokens`` (default: the run's ``--max-length``, :meth:`use_max_length`)."""
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                return model.generate(input_ids=inputs["input_ids"],
                                      attention_mask=inputs.get("attention_mask"),
                                      max_new_tokens=max_new_tokens or self.max_new_tokens,
                                      **GREEDY)
        finally:
            model.train(was_training)

    def decode(self, ids) -> list[str]:
        ids = torch.as_tensor(ids)
        ids = ids.masked_fill(ids < 0, self.tokenizer.pad_token_id)
        return [text.strip() for text in self.tokenizer.batch_decode(
            ids, skip_special_tokens=True)]

    def target_nll_and_count(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``(batch, 2)``: each example's summed target-token NLL and its number of target
        tokens (labels ``-100`` ignored; an encoder–decoder's logits align with its labels)."""
        return token_nll_and_count(logits, labels)

    def compute_metrics(self, eval_prediction):
        """BLEU and chrF of the decodes, and ``loss``: Σ NLL / Σ target tokens over the split
        (the model's training loss, weighted by tokens as training weights it), where the
        predictions carry the per-example sums (``AdvTrainer``)."""
        predictions, stats = eval_prediction.predictions, None
        if isinstance(predictions, tuple | list):
            predictions, stats = predictions
        scores, self.signature = bleu_and_chrf(self.decode(predictions),
                                               self.references(eval_prediction.label_ids))
        if stats is not None:
            totals = torch.as_tensor(stats).double().sum(0)
            scores["loss"] = float(totals[0] / totals[1])
        return scores

    def evaluate(self, model, tokenizer, examples, *, batch_size=64, max_length=128,
                 progress=False):
        self.tokenizer = tokenizer
        items = self.encode(examples, tokenizer, max_length=max_length)
        collate = self.collator(tokenizer)
        device = next(model.parameters()).device
        hypotheses = []
        for start in range(0, len(items), batch_size):
            batch = {k: v.to(device) for k, v in collate(items[start:start + batch_size]).items()}
            hypotheses += self.decode(self.generate(model, batch, max_length).cpu())
        scores, self.signature = bleu_and_chrf(hypotheses, [e.text_pair for e in examples])
        return scores | {"bleu_signature": self.signature}  # of this scoring, as it is reported

    def collapse_baseline(self, examples, tokenizer=None, *, max_length=128):
        """Dev BLEU of one fixed output for every source, the most frequent dev target (0 or
        close to it): a model at it translates nothing.  Copying the source is not the
        baseline, though it is a trivial predictor too: on help text it scores about 8 BLEU
        (``help-en-de`` dev: product and menu names pass unchanged), which a model trained
        from scratch need not reach by its first judged evaluation, and the guard must not
        stop a run that is merely slow."""
        if not examples:
            return None
        targets = [e.text_pair for e in examples]
        return bleu_and_chrf([fixed_output(examples)] * len(targets), targets)[0]["bleu"]

    def run_state(self):
        return {"bleu_signature": self.signature} if self.signature else {}

    def load_run_state(self, config):
        self.max_new_tokens = config.get("max_length", 128)
        self.signature = config.get("bleu_signature", "")

    def representation(self, outputs: Any, inputs: dict[str, Any] | None = None):
        """Mean final encoder state over the source tokens (drift, sentence-level objectives)."""
        from advembed.objectives.base import mean_token_representation

        return mean_token_representation(outputs, inputs)

    def summary(self, metrics):
        return (f"dev BLEU {metrics['best_dev']['bleu']:.2f}, test BLEU "
                f"{metrics['test']['bleu']:.2f}, test chrF {metrics['test']['chrf']:.2f}"
                + (f" (BLEU signature {self.signature})" if self.signature else ""))

    def check_input(self, text, pair, run_config):
        if not text.strip():
            raise AdvembedError("the text to translate is empty")
        if pair is not None:
            raise AdvembedError("translation takes one source text: --pair does not apply")

    def predict(self, loaded, text, pair, run_config):
        """``advembed predict`` / ``advembed translate`` on a translation run (greedy)."""
        self.check_input(text, pair, run_config)
        self.tokenizer = loaded.tokenizer
        limit = run_config.get("max_length", 128)
        inputs = loaded.tokenizer([text], return_tensors="pt", truncation=True, max_length=limit)
        return {"source": text,
                "translation": self.decode(self.generate(loaded.model, inputs, limit))[0]}


def read_parallel_file(path: Path, split_seed: int):
    """A ``source<TAB>target`` file as a dataset split 80/10/10 by line."""
    from advembed.data.base import Example, TextDataset
    from advembed.data.splits import split_three
    from advembed.data.tables import read_text

    examples = []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise AdvembedError(f"file '{path}' line {number}: expected 'source<TAB>target'")
        examples.append(Example(fields[0].strip(), text_pair=fields[1].strip()))
    return TextDataset(path.stem, [], split_three(examples, split_seed, f"file '{path}'"))
