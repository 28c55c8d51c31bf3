"""``advembed mlm build``: masked-LM training of the packaged MiniLM, every layer, so that VDA and
BERT-Attack/BAE have an English MLM over the classifier's own vocabulary.

The packaged all-MiniLM-L6-v2 has BERT's encoder and vocabulary but no masked-LM head; the
head (transform + bias; the decoder is tied to the word embeddings, as in BERT) starts random
and the whole model is trained with BERT's masking (15 % of real word pieces: 80 % ``[MASK]``,
10 % a random word, 10 % kept) on the sentences of :mod:`advembed.mlm.corpus`.  The build is
resumable: its state is saved every ``--save-every`` steps in ``OUTPUT.partial/`` and a rerun
of the same command continues from there; a second build of the same ``OUTPUT`` while one runs
is refused (``.OUTPUT.lock`` names the process).  The finished model goes to ``OUTPUT`` (default
``$ADVEMBED_CACHE/mlm/minilm``) with ``mlm_metrics.json``: masked-token top-1 and top-10
accuracy on held-out sentences (15 % of real tokens replaced by ``[MASK]``, fixed seed), the
accuracy of always guessing the most frequent training token, and the SHA-256 of the weights.
"""

from __future__ import annotations

import functools
import json
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from advembed.errors import AdvembedError
from advembed.files import follow_umask, release_lock, replace_folder, take_lock
from advembed.settings import MAX_BATCH, MAX_SEED, Settings, setting

STATE = "state"  # the resumable checkpoint's folder inside OUTPUT.partial/
METRICS_FILE = "mlm_metrics.json"


@dataclass(frozen=True)
class MLMBuildSettings(Settings):
    """Defaults sized for a GPU; on a 2-core CPU ``--steps 3000`` took 94 minutes and reached
    held-out top-1 0.287 (``benchmarks/results/mlm/mlm_metrics_cpu.json``); on one H200, 3,000
    steps of 128 sentences at ``--lr 2e-4`` reached 0.332 (``mlm_metrics.json`` beside it)."""

    owner = "mlm build"
    model: str = setting("default", "--model", "the encoder whose vocabulary the MLM shares "
                         "('default': the packaged MiniLM)")
    output: str | None = setting(None, "--output", "where the finished MLM goes (default: "
                                 "$ADVEMBED_CACHE/mlm/minilm, the default --mlm / --vda-mlm)")
    steps: int = setting(6000, "--steps", "optimiser steps", minimum=1)
    batch_size: int = setting(64, "--batch-size", "sentences per step", minimum=1,
                              maximum=MAX_BATCH)
    lr: float = setting(1e-4, "--lr", "peak learning rate (AdamW; linear warm-up and decay)",
                        minimum=0, exclusive_minimum=True)
    warmup_steps: int = setting(300, "--warmup-steps", "steps of rising learning rate",
                                minimum=0)
    max_length: int = setting(64, "--max-length", "longest sentence in word pieces", minimum=8)
    held_out: int = setting(2000, "--held-out", "sentences kept apart to measure accuracy",
                            minimum=1)
    seed: int = setting(0, "--seed", "corpus shuffle, masking and initialisation", minimum=0,
                        maximum=MAX_SEED)
    save_every: int = setting(250, "--save-every", "steps between resumable checkpoints",
                              minimum=1)
    fp16: bool = setting(True, "--fp16", "save the weights in half precision (--no-fp16: "
                         "float32)")
    overwrite: bool = setting(False, "--overwrite", "rebuild even if OUTPUT holds a model")
    progress: bool = setting(True, "--progress", "progress bar (--no-progress: none)")

    def output_dir(self) -> Path:
        from advembed.mlm.load import built_mlm_dir

        return Path(self.output).expanduser() if self.output else built_mlm_dir()

    def recipe(self) -> dict[str, Any]:
        """What the saved state must agree with to be resumed.  ``--steps`` may change: a
        build can be lengthened, or stopped where it is (``--steps`` at or below the steps
        done evaluates and installs it); the decay follows the new total from then on."""
        skip = {"output", "overwrite", "progress", "save_every", "steps"}
        return {k: v for k, v in self.as_dict().items() if k not in skip}


def mask_tokens(ids: torch.Tensor, special: torch.Tensor, tokenizer, generator: torch.Generator,
                probability: float = 0.15, bert_mix: bool = True):
    """``(masked ids, chosen positions)``: ``probability`` of the non-special tokens chosen;
    with ``bert_mix`` 80 % of them become ``[MASK]``, 10 % a random word, 10 % stay."""
    chances = torch.full(ids.shape, probability)
    chances[special] = 0.0
    chosen = torch.bernoulli(chances, generator=generator).bool()
    masked = ids.clone()
    if not bert_mix:
        masked[chosen] = tokenizer.mask_token_id
        return masked, chosen
    roll = torch.rand(ids.shape, generator=generator)
    masked[chosen & (roll < 0.8)] = tokenizer.mask_token_id
    random_ids = torch.randint(len(tokenizer), ids.shape, generator=generator)
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    masked[swap] = random_ids[swap]
    return masked, chosen


def _encode(tokenizer, sentences: list[str], max_length: int):
    enc = tokenizer(sentences, padding=True, truncation=True, max_length=max_length,
                    return_tensors="pt", return_special_tokens_mask=True)
    special = enc.pop("special_tokens_mask").bool() | (enc["attention_mask"] == 0)
    return enc, special


def pretokenize(tokenizer, sentences: list[str], max_length: int) -> dict[str, list]:
    """The whole corpus tokenized once (truncated, unpadded), so that a step only pads its
    batch: tokenizing it (and re-shuffling the corpus) every step held a GPU build to about
    15 steps/s of 128 sentences."""
    return dict(tokenizer(sentences, truncation=True, max_length=max_length,
                          return_special_tokens_mask=True))


def collate(encoded: dict[str, list], indices: list[int], pad_id: int):
    """``(tensors, special)`` for the sentences ``indices`` of :func:`pretokenize`'s corpus,
    padded to the longest: the same as :func:`_encode` on those sentences."""
    width = max(len(encoded["input_ids"][i]) for i in indices)
    fill = {"input_ids": pad_id, "attention_mask": 0, "token_type_ids": 0,
            "special_tokens_mask": 1}
    enc = {key: torch.tensor([encoded[key][i] + [value] * (width - len(encoded[key][i]))
                              for i in indices])
           for key, value in fill.items() if key in encoded}
    special = enc.pop("special_tokens_mask").bool() | (enc["attention_mask"] == 0)
    return enc, special


def masked_loss(model, tokenizer, enc: dict[str, torch.Tensor], special: torch.Tensor,
                generator, device):
    """Cross-entropy at the masked positions only (the V-way head runs on them alone); 0, with
    no gradient, for a batch in which no token was drawn (a batch of one short sentence can
    be), instead of the NaN of a mean over nothing."""
    enc = dict(enc)
    masked, chosen = mask_tokens(enc["input_ids"], special, tokenizer, generator)
    if not bool(chosen.any()):
        return torch.zeros((), device=device, requires_grad=True)
    targets = enc["input_ids"][chosen].to(device)
    enc["input_ids"] = masked
    hidden = model.base_model(**{k: v.to(device) for k, v in enc.items()}).last_hidden_state
    logits = model.cls(hidden[chosen.to(device)])  # BERT's head, on the chosen positions
    return F.cross_entropy(logits.float(), targets)


@torch.no_grad()
def evaluate(model, tokenizer, sentences: list[str], frequent_id: int, device,
             max_length: int = 64, seed: int = 1) -> dict[str, float]:
    """Top-1 and top-10 accuracy at 15 % of real tokens replaced by ``[MASK]`` (fixed seed),
    and the accuracy of always answering ``frequent_id``."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    hits1 = hits10 = floor = total = 0
    for start in range(0, len(sentences), 128):
        enc, special = _encode(tokenizer, sentences[start:start + 128], max_length)
        masked, chosen = mask_tokens(enc["input_ids"], special, tokenizer, generator,
                                     bert_mix=False)
        targets = enc["input_ids"][chosen].to(device)
        enc["input_ids"] = masked
        logits = model(**{k: v.to(device) for k, v in enc.items()}).logits[chosen.to(device)]
        top = logits.topk(10, dim=-1).indices
        hits1 += (top[:, 0] == targets).sum().item()
        hits10 += (top == targets[:, None]).any(-1).sum().item()
        floor += (targets == frequent_id).sum().item()
        total += len(targets)
    model.train()
    return {"top1": round(hits1 / total, 4), "top10": round(hits10 / total, 4),
            "frequency_baseline_top1": round(floor / total, 4),
            "held_out_sentences": len(sentences), "held_out_positions": total}


def most_frequent_token(tokenizer, sentences: list[str]) -> int:
    counts: dict[int, int] = {}
    special = set(tokenizer.all_special_ids)
    for ids in tokenizer(sentences, add_special_tokens=False)["input_ids"]:
        for i in ids:
            if i not in special:
                counts[i] = counts.get(i, 0) + 1
    return max(counts, key=counts.get)


def batches(n: int, batch_size: int, seed: int, step: int) -> list[int]:
    """Indices of training batch ``step``: epoch ``e`` reads a permutation seeded ``seed + e``,
    so a resumed build reads exactly what an uninterrupted one would."""
    per_epoch = max(1, n // batch_size)
    epoch, position = divmod(step, per_epoch)
    return list(_epoch_order(n, seed + epoch)[position * batch_size:(position + 1) * batch_size])


@functools.lru_cache(maxsize=2)
def _epoch_order(n: int, seed: int) -> tuple[int, ...]:
    """One epoch's permutation, kept: shuffling 57,000 indices every step cost ~25 ms."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return tuple(order)


def _load_model(settings: MLMBuildSettings):
    from transformers import AutoTokenizer, BertForMaskedLM

    from advembed.models import resolve_model

    path = resolve_model(settings.model)
    torch.manual_seed(settings.seed)
    try:
        from transformers import AutoConfig
        from transformers.utils import logging

        kind = AutoConfig.from_pretrained(path).model_type
        if kind != "bert":  # another encoder would load as a random BERT-base, silently
            raise AdvembedError(f"--model '{settings.model}' is a {kind} model, not a BERT "
                                "encoder: the build continues a BERT's masked-LM training")
        tokenizer = AutoTokenizer.from_pretrained(path)
        logging.set_verbosity_error()  # the head is new on purpose: no "newly initialized"
        model, info = BertForMaskedLM.from_pretrained(path, output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise AdvembedError(f"cannot load '{settings.model}' as a BERT masked LM: "
                            f"{str(exc).strip().splitlines()[0]}") from None
    missing = [key for key in info.get("missing_keys", []) if not key.startswith("cls.")]
    if missing:  # only the head may be new
        raise AdvembedError(f"--model '{settings.model}' lacks BERT encoder weights "
                            f"({missing[0]}, …): it would train a randomly initialised encoder")
    return model, tokenizer


def _schedule(optimiser, settings: MLMBuildSettings):
    def factor(step: int) -> float:
        if step < settings.warmup_steps:
            return (step + 1) / settings.warmup_steps
        remaining = settings.steps - settings.warmup_steps
        return max(0.0, (settings.steps - step) / max(1, remaining))

    return torch.optim.lr_scheduler.LambdaLR(optimiser, factor)


def _save_state(work: Path, model, optimiser, scheduler, step: int, recipe: dict) -> None:
    """A pickle-free checkpoint (safetensors + JSON, :mod:`advembed.state_io`) written beside
    the previous one and swapped in by renames, so an interruption leaves one whole state."""
    from advembed.state_io import save_state

    staged, current, old = work / (STATE + ".new"), work / STATE, work / (STATE + ".old")
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir()
    weights = {k: v.clone() for k, v in model.state_dict().items()}  # tied rows: own copies
    save_state(staged, "state", {
        "model": weights, "optimiser": optimiser.state_dict(),
        "scheduler": scheduler.state_dict(), "step": step, "recipe": recipe,
        "rng": torch.get_rng_state(),  # dropout's generator, and on a GPU the device's
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []})
    if current.exists():
        shutil.rmtree(old, ignore_errors=True)  # one an interruption left behind
        current.replace(old)
    staged.replace(current)
    shutil.rmtree(old, ignore_errors=True)


def _saved_state(work: Path) -> dict | None:
    from advembed.state_io import load_state

    for folder in (work / STATE, work / (STATE + ".old")):
        if (folder / "state.json").is_file():
            return load_state(folder, "state")
    return None


def _resume(work: Path, model, optimiser, scheduler, recipe: dict) -> int:
    state = _saved_state(work)
    if state is None:
        return 0
    if state["recipe"] != recipe:
        changed = sorted(k for k in recipe if state["recipe"].get(k) != recipe[k])
        raise AdvembedError(f"{work} holds a build with other settings ({', '.join(changed)}): "
                            "rerun with those, or delete that folder to start again")
    model.load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimiser"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    if state.get("cuda_rng") and torch.cuda.is_available():  # dropout on the GPU draws here
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(state["step"])


def _train(model, tokenizer, train: list[str], settings: MLMBuildSettings, work: Path,
           device, recipe: dict[str, Any]) -> int:
    """Train from the saved state (if any, made by the same ``recipe``) to
    ``settings.steps``; returns the steps done."""
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.01)
    scheduler = _schedule(optimiser, settings)
    start = _resume(work, model, optimiser, scheduler, recipe)
    from tqdm.auto import tqdm

    bar = tqdm(total=settings.steps, initial=min(start, settings.steps), desc="mlm build",
               unit="step",
               disable=not settings.progress)
    model.train()
    encoded = pretokenize(tokenizer, train, settings.max_length)
    interval_losses: list[float] = []
    for step in range(start, settings.steps):
        generator = torch.Generator().manual_seed(settings.seed * 1_000_003 + step)
        indices = batches(len(train), settings.batch_size, settings.seed, step)
        enc, special = collate(encoded, indices, tokenizer.pad_token_id)
        loss = masked_loss(model, tokenizer, enc, special, generator, device)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        scheduler.step()
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        interval_losses.append(loss.item())
        if (step + 1) % settings.save_every == 0 or step + 1 == settings.steps:
            _save_state(work, model, optimiser, scheduler, step + 1, recipe)
            if not settings.progress:  # one line per checkpoint instead of the bar
                done = len(interval_losses)
                print(f"step {step + 1}/{settings.steps}: mean loss "
                      f"{sum(interval_losses) / done:.4f} over {done} step"
                      f"{'s' if done != 1 else ''}, lr {scheduler.get_last_lr()[0]:.2e}, saved",
                      flush=True)
            interval_losses.clear()
    bar.close()
    return max(start, settings.steps)


def build_mlm(settings: MLMBuildSettings) -> dict[str, Any]:
    """Train, evaluate and install the MLM; returns its metrics (also in ``mlm_metrics.json``)."""

    out = settings.output_dir()
    if out.exists() and not out.is_dir():
        raise AdvembedError(f"--output {out} is a file, not a folder for the MLM")
    if (out / METRICS_FILE).is_file() and not settings.overwrite:
        raise AdvembedError(f"{out} already holds a built MLM (see {METRICS_FILE}); "
                            "--overwrite to build it again")
    if out.is_dir() and not (out / METRICS_FILE).is_file() and any(out.iterdir()):
        raise AdvembedError(f"--output {out} is a folder that holds no built MLM (no "
                            f"{METRICS_FILE}); choose a new or empty folder")
    work = out.with_name(out.name + ".partial")
    created = not work.exists()
    try:
        work.mkdir(parents=True, exist_ok=True)  # writable? checked before anything is loaded
        owner = take_lock(lock := out.with_name(f".{out.name}.lock"))
    except OSError as exc:
        raise AdvembedError(f"--output {out}: cannot create {work} ({exc.strerror})") from None
    if owner is not None:  # two builds would write over each other's checkpoints
        raise AdvembedError(f"--output {out} is being built by another advembed process (pid "
                            f"{owner}); wait for it to finish, or stop it and run this again")
    try:
        return _build_in(settings, out, work)
    except BaseException:
        if created and work.is_dir() and not any(work.iterdir()):
            work.rmdir()  # a failure before the first checkpoint leaves no empty folder
        raise
    finally:
        release_lock(lock)


def _build_in(settings: MLMBuildSettings, out: Path, work: Path) -> dict[str, Any]:
    """Load, train (resuming from ``work``), evaluate and install the MLM into ``out``."""
    from advembed.mlm.corpus import CORPUS_VERSION, SPLIT_SEED, corpus, corpus_sha256
    from advembed.provider import sha256_of

    started = time.perf_counter()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer = _load_model(settings)
    model.to(device)
    train, held_out = corpus(held_out=settings.held_out, seed=settings.seed)
    if not train:
        raise AdvembedError(f"--held-out {settings.held_out} keeps every one of the corpus's "
                            f"{len(held_out)} sentences apart: none is left to train on")
    # the corpus is part of the recipe: a resume after it changed would train on sentences
    # it then scores as held out
    recipe = settings.recipe() | {"corpus_version": CORPUS_VERSION,
                                  "corpus_sha256": corpus_sha256(train, held_out)}
    done = _train(model, tokenizer, train, settings, work, device, recipe)
    metrics = evaluate(model, tokenizer, held_out, most_frequent_token(tokenizer, train),
                       device, settings.max_length)
    if settings.fp16:
        model.half()
    staged = work / "model"
    model.save_pretrained(staged)
    tokenizer.save_pretrained(staged)
    metrics |= {"train_sentences": len(train), "steps": done,
                "settings": recipe, "corpus_version": CORPUS_VERSION, "split_seed": SPLIT_SEED,
                "device": str(device),
                "seconds_this_run": round(time.perf_counter() - started, 1),
                "weights_sha256": sha256_of(staged / "model.safetensors")}
    (staged / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    follow_umask(staged)
    replace_folder(staged, out)  # the MLM it replaces (--overwrite) is deleted last
    shutil.rmtree(work)
    return metrics
