"""Which vocabulary entries are words: word starts, continuation pieces, letters-only words.

Shared by ATCL's complete-word mask (paper 004), the probes, and ASCC's synonym table (a
word's synonyms are looked up by its text).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

import torch

_ALPHA = re.compile(r"^[^\W\d_]{2,}$")  # letters only, at least two of them
_WORDISH = re.compile(r"[^\W_]")  # contains a letter or digit
_LETTER = re.compile(r"[^\W\d_]")  # contains a letter
_APOSTROPHES = ("'", "\u2019")


@dataclass(frozen=True)
class WordFlags:
    """Per vocabulary id: starts a word / continues a word / letters-only (≥ 2 letters);
    ``words``: the text of each letters-only entry that starts a word, marker removed
    (``Ġgood`` → ``good``); ``marker``: the vocabulary's word marker (:func:`_scheme`);
    ``bare``: byte-level BPE only, the text of each letters-only entry without the marker —
    how a sentence's first word is spelt (RoBERTa's ``The``), elsewhere the tail of a word;
    ``apostrophe``: an apostrophe that can join two parts of a word (WordPiece's ``'``, which
    its pre-tokenizer cuts out of *don't*; SentencePiece's ``'`` without the marker), and
    ``lettered``: the entry holds a letter."""

    start: torch.Tensor
    continuation: torch.Tensor
    alpha: torch.Tensor
    words: dict[int, str] = field(default_factory=dict)
    marker: str | None = None
    bare: dict[int, str] = field(default_factory=dict)
    apostrophe: torch.Tensor | None = None
    lettered: torch.Tensor | None = None


def _scheme(tokens: list[str | None]) -> str | None:
    """The marker of the vocabulary's scheme — ``##`` (WordPiece continuations), ``Ġ``
    (byte-level BPE word starts) or ``▁`` (SentencePiece word starts) — whichever most entries
    carry, so that one stray entry (a ``##`` learnt from text) cannot flip it; ``None``: no
    marker, a vocabulary of whole words."""
    counts = {marker: sum(1 for t in tokens if t is not None and t.startswith(marker))
              for marker in ("##", "Ġ", "▁")}
    marker = max(counts, key=counts.get)
    return marker if counts[marker] else None


@functools.lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode

    return {char: byte for byte, char in bytes_to_unicode().items()}


def _byte_level_text(token: str) -> str | None:
    """A byte-level BPE piece as the text it stands for (``ĠcafÃ©`` → `` café``); ``None``
    where it holds part of a multi-byte character (a word cut inside a letter)."""
    decoder = _byte_decoder()
    if not all(char in decoder for char in token):
        return token  # an added token, outside the byte alphabet
    try:
        return bytes(decoder[char] for char in token).decode("utf-8")
    except UnicodeDecodeError:
        return None


def word_flags(tokenizer) -> WordFlags:
    """Classify every vocabulary entry for ATCL's complete-word mask.

    Schemes (:func:`_scheme`): WordPiece (continuations start with ``##``), byte-level BPE
    (word starts carry ``Ġ``; each piece is read as the UTF-8 text its bytes spell, so
    ``ĠcafÃ©`` is the word *café*) and SentencePiece (``▁``).  In the marker schemes a piece
    without the marker that holds a letter or digit, or part of a multi-byte character,
    continues the previous word; punctuation pieces — with the marker or without (``Ġ"``,
    ``Ġ(``) — neither start nor continue a word, so the bare word after them (``a "good"``:
    ``Ġ"`` ``good``) starts one.
    Special tokens are none of these.
    """
    size = len(tokenizer)
    tokens = tokenizer.convert_ids_to_tokens(list(range(size)))
    special = set(tokenizer.all_special_ids)
    marker = _scheme(tokens)
    wordpiece = marker in (None, "##")
    start = torch.zeros(size, dtype=torch.bool)
    continuation = torch.zeros(size, dtype=torch.bool)
    alpha = torch.zeros(size, dtype=torch.bool)
    apostrophe = torch.zeros(size, dtype=torch.bool)
    lettered = torch.zeros(size, dtype=torch.bool)
    words: dict[int, str] = {}
    bare: dict[int, str] = {}
    for i, token in enumerate(tokens):
        if token is None or i in special:
            continue
        if wordpiece:
            is_cont = token.startswith("##")
            text = token[2:] if is_cont else token
            is_start = not is_cont
        else:
            is_start = token.startswith(marker)
            text = _byte_level_text(token) if marker == "Ġ" else token
            if text is None:  # bytes of a letter cut between pieces: part of a word, not one
                start[i], continuation[i] = is_start, not is_start
                continue
            text = text[1:] if is_start else text  # the marker (a space, once decoded)
            wordish = bool(_WORDISH.search(text))
            is_start, is_cont = is_start and wordish, not is_start and wordish
        start[i], continuation[i] = is_start, is_cont
        alpha[i] = bool(_ALPHA.match(text))
        lettered[i] = bool(_LETTER.search(text))
        apostrophe[i] = marker != "Ġ" and token in _APOSTROPHES
        if alpha[i] and is_start:
            words[i] = text
        elif alpha[i] and marker == "Ġ":
            bare[i] = text
    return WordFlags(start, continuation, alpha, words, marker, bare, apostrophe, lettered)


def complete_word_mask(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, flags: WordFlags, *,
    cut_edges: bool = False,
) -> torch.Tensor:
    """Boolean ``(B, L)``: tokens that are a whole word by themselves (ATCL's mask ℳ).

    Kept: letters-only tokens (≥ 2 letters) that start a word and are not followed by a
    continuation piece.  Dropped: special tokens, padding, punctuation and symbols, numbers,
    single characters, every piece of a word split into sub-words, and both sides of an
    apostrophe between letters (:func:`_beside_apostrophe`: *don't*).  The parts of a
    hyphenated word (*well-known*) are words of their own here.  A continuation-looking
    piece right after a special token or punctuation starts a word (RoBERTa's first word has
    no ``Ġ``) — except at the start of a row with ``cut_edges``: rows cut from a token stream
    (language-modelling blocks) may begin inside a word and end inside one, so there the first
    piece starts a word only by its marker and the last piece is never taken.
    """
    start = flags.start.to(input_ids.device)[input_ids]
    cont = flags.continuation.to(input_ids.device)[input_ids]
    alpha = flags.alpha.to(input_ids.device)[input_ids]
    real = attention_mask.bool()
    after_boundary = torch.ones_like(real)
    after_boundary[:, 1:] = ~(start[:, :-1] | cont[:, :-1])
    followed_by_piece = torch.zeros_like(real)
    followed_by_piece[:, :-1] = cont[:, 1:] & real[:, 1:]
    if cut_edges:
        after_boundary[:, 0] = False
        followed_by_piece[:, -1] = True
    word_start = start | (cont & after_boundary)
    return real & word_start & ~followed_by_piece & alpha & ~_beside_apostrophe(input_ids, flags)


def _beside_apostrophe(input_ids: torch.Tensor, flags: WordFlags) -> torch.Tensor:
    """``(B, L)``: the token is one side of ``x ' y`` with letters on both sides — *don't*
    cut as ``don`` ``'`` ``t``, *we're* as ``we`` ``'`` ``re`` by WordPiece, whose tokens
    cannot tell a contraction from a quote, so a quoted word (``'good' film``) is left out
    too: fewer candidates, never a fragment.  Byte-level BPE keeps ``'t`` in one piece, which
    continues the word already."""
    beside = torch.zeros_like(input_ids, dtype=torch.bool)
    if flags.apostrophe is None or flags.lettered is None or input_ids.shape[1] < 3:
        return beside
    apostrophe = flags.apostrophe.to(input_ids.device)[input_ids]
    lettered = flags.lettered.to(input_ids.device)[input_ids]
    joined = apostrophe[:, 1:-1] & lettered[:, :-2] & lettered[:, 2:]  # at position t + 1
    beside[:, :-2] |= joined
    beside[:, 2:] |= joined
    return beside
