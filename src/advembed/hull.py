"""The convex hull of a word's synonyms in the embedding space (ASCC's threat model).

A word-substitution attack such as PWWS swaps a word x_i for one of its WordNet synonyms
S(x_i).  ASCC (Dong et al. 2021, "Towards robustness against natural language word
substitutions"; TextDefender's ``ascc``) models every such swap, and every mixture of them, as a
point of the convex hull of the embeddings of {x_i} ∪ S(x_i)::

    v̂_i = Σ_j w_ij · v(s_ij),   w_i = softmax(ŵ_i),   s_i0 = x_i

:func:`search_hull` finds the worst weights by a few Adam steps on ŵ (the inner maximisation).
A position that is not a complete word, or whose word has no synonym in the vocabulary, keeps
its own embedding (w_i0 = 1).  The synonyms are PWWS's own (TextAttack's ``WordSwapWordNet``):
the lemma names of every WordNet synset of the word, one word each, other than the word; stop
words get none, since PWWS never swaps one.  TextDefender reads its neighbours from a file
(``nbr_file``) instead; WordNet's are ours, chosen so that the hulls hold the attack measured.
Neighbours are looked up as whole words in the form the vocabulary spells them: WordPiece's
``word``, SentencePiece's ``▁word``, and both of byte-level BPE's (``Ġword`` after a space, ``word``
opening a sentence), each with synonyms of its own form.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import torch

from advembed.errors import AdvembedError
from advembed.words import WordFlags, complete_word_mask, word_flags

SynonymsOf = Callable[[str], Iterable[str]]


@dataclass(frozen=True)
class SynonymTable:
    """Per vocabulary id t: ``neighbours[t]`` = t, then its synonyms' ids (padded with t);
    ``valid[t]`` marks the real entries.  ``flags`` tell which positions are complete words.

    With synonyms in word pieces (``synonym_table(..., pieces=P)``, P > 1) ``neighbours`` is
    ``(V, K, P)``: each entry's piece ids, −1 past its last piece; :func:`vertex_embeddings`
    reads both shapes."""

    neighbours: torch.Tensor  # (V, K) or (V, K, P) long
    valid: torch.Tensor  # (V, K) bool
    flags: WordFlags

    @property
    def words_with_synonyms(self) -> int:
        return int(self.valid[:, 1:].any(-1).sum())

    def to(self, device: torch.device) -> SynonymTable:
        """The table with its tensors on ``device`` (itself if they are there already), so that
        a training loop moves it once, not at every lookup."""
        if self.neighbours.device == torch.device(device):
            return self
        return replace(self, neighbours=self.neighbours.to(device), valid=self.valid.to(device))

    def lookup(self, inputs: dict, allowed: torch.Tensor,
               cut_edges: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids, valid)``, each ``(B, L, K)``, for the batch: a position's hull is its own
        token plus, where ``allowed`` (``(B, L)`` bool) and it is a complete word, its
        synonyms.  ``cut_edges``: rows cut from a token stream (language-modelling blocks),
        whose first and last pieces may be parts of words cut in two."""
        input_ids = inputs["input_ids"]
        attention = inputs.get("attention_mask")
        if attention is None:
            attention = torch.ones_like(input_ids)
        words = complete_word_mask(input_ids, attention, self.flags,
                                   cut_edges=cut_edges) & allowed
        ids = self.neighbours.to(input_ids.device)[input_ids]
        valid = self.valid.to(input_ids.device)[input_ids] & words.unsqueeze(-1)
        valid[..., 0] = True
        return ids, valid


def _nltk_data() -> None:
    """WordNet and the stop words through NLTK (built offline, as for ``advembed attack``)."""
    try:
        import nltk  # noqa: F401
    except ImportError:
        raise AdvembedError("method 'ascc' reads WordNet through NLTK, which is not installed: "
                            "pip install 'advembed[attack]'") from None
    from advembed.nltk_data import ensure_nltk_data

    ensure_nltk_data()


def wordnet_synonyms(word: str) -> list[str]:
    """PWWS's candidates for ``word``: the lemma names of its WordNet synsets (all parts of
    speech, WordNet's sense order), letters only, other than the word itself."""
    _nltk_data()
    from nltk.corpus import wordnet

    found: list[str] = []
    for synset in wordnet.synsets(word):
        for name in synset.lemma_names():
            if name != word and name.isalpha() and name not in found:
                found.append(name)
    return found


def english_stopwords() -> frozenset[str]:
    _nltk_data()
    from nltk.corpus import stopwords

    return frozenset(stopwords.words("english"))


def lowercases(tokenizer) -> bool:
    """Whether the tokenizer folds case (an uncased vocabulary)."""
    return tokenizer.tokenize("Zebra Quilt") == tokenizer.tokenize("zebra quilt")


def synonym_table(tokenizer, synonyms_of: SynonymsOf | None = None, *, max_neighbours: int,
                  stopwords: Iterable[str] | None = None, size: int = 0,
                  pieces: int = 1) -> SynonymTable:
    """Each letters-only vocabulary word's synonyms that are themselves one vocabulary word —
    or, with ``pieces`` > 1, that the tokenizer splits into at most that many pieces (none
    unknown) — the first ``max_neighbours`` in ``synonyms_of``'s order (default
    :func:`wordnet_synonyms`; stop words — default NLTK's English list — get none).  ``size``:
    rows of the embedding matrix, when it has more than the tokenizer has entries (ids past
    those have no synonyms and are no word).

    A byte-level BPE vocabulary spells a word two ways: ``Ġgood`` after a space, ``good`` at the
    start of a sentence.  Each form gets its synonyms in the same form — one entry looked up
    among the entries of that form, or the pieces the tokenizer gives for it with (``Ġ`` form)
    or without a leading space."""
    if max_neighbours < 1:
        raise AdvembedError(f"max_neighbours must be at least 1, not {max_neighbours}")
    if pieces < 1:
        raise AdvembedError(f"pieces must be at least 1, not {pieces}")
    flags = _padded(word_flags(tokenizer), size)
    words = _WordForms(tokenizer, synonyms_of or wordnet_synonyms,
                       frozenset(english_stopwords() if stopwords is None else stopwords),
                       lowercases(tokenizer), max_neighbours, pieces)
    byte_level = flags.marker == "Ġ"
    rows = words.rows(flags.words, " " if byte_level else "", True if byte_level else None)
    rows.update(words.rows(flags.bare, "", False))
    return _table(rows, flags, pieces)


@dataclass(frozen=True)
class _WordForms:
    """:func:`synonym_table`'s lookups for one spelling of the vocabulary's words."""

    tokenizer: object
    synonyms_of: SynonymsOf
    skip: frozenset[str]
    fold: bool
    max_neighbours: int
    pieces: int

    def rows(self, words: dict[int, str], prefix: str,
             marked: bool | None) -> dict[int, list[tuple[int, ...]]]:
        """Token id → its synonyms' piece ids, for the entries ``words`` (id → text), whose
        synonyms are spelt as the tokenizer spells ``prefix + synonym``; ``marked``: whether
        the first piece must carry ``Ġ`` (True) or must not (False; a tokenizer that adds a
        prefix space cannot spell a bare synonym in pieces), ``None``: no such test."""
        by_text: dict[str, int] = {}
        for token_id, text in sorted(words.items()):
            by_text.setdefault(text.lower() if self.fold else text, token_id)
        found: dict[str, list[tuple[int, ...]]] = {}
        rows: dict[int, list[tuple[int, ...]]] = {}
        for token_id, text in words.items():
            key = text.lower() if self.fold else text
            if key.lower() in self.skip:
                continue
            if key not in found:
                entries = []
                for synonym in self.synonyms_of(key):
                    other = self._entry(synonym, by_text, prefix, marked)
                    if other is not None and other != (by_text[key],) and other not in entries:
                        entries.append(other)
                found[key] = entries[:self.max_neighbours]
            if found[key]:
                rows[token_id] = found[key]
        return rows

    def _entry(self, synonym: str, by_text: dict[str, int], prefix: str,
               marked: bool | None) -> tuple[int, ...] | None:
        """The synonym's piece ids, if it is one entry or (``pieces`` > 1) a few.  No piece
        may be the unknown token (WordPiece turns a whole word it cannot split into one, which
        the length test drops; SentencePiece vocabularies can put one among known pieces)."""
        text = synonym.lower() if self.fold else synonym
        if text in by_text:
            return (by_text[text],)
        if self.pieces == 1:
            return None
        ids = self.tokenizer(prefix + text, add_special_tokens=False)["input_ids"]
        if not 1 < len(ids) <= self.pieces or self.tokenizer.unk_token_id in ids:
            return None
        first = self.tokenizer.convert_ids_to_tokens(ids[0])
        return None if marked is not None and first.startswith("Ġ") != marked else tuple(ids)


def _table(rows: dict[int, list[tuple[int, ...]]], flags: WordFlags, pieces: int) -> SynonymTable:
    size = len(flags.start)
    width = 1 + max((len(entries) for entries in rows.values()), default=0)
    neighbours = torch.full((size, width, pieces), -1)
    neighbours[..., 0] = torch.arange(size).unsqueeze(1)  # padding slots repeat the word
    valid = torch.zeros(size, width, dtype=torch.bool)
    valid[:, 0] = True
    for token_id, entries in rows.items():
        for slot, ids in enumerate(entries, start=1):
            neighbours[token_id, slot, :len(ids)] = torch.tensor(ids)
            valid[token_id, slot] = True
    return SynonymTable(neighbours[..., 0] if pieces == 1 else neighbours, valid, flags)


def vertex_embeddings(embedding: Callable[[torch.Tensor], torch.Tensor],
                      ids: torch.Tensor) -> torch.Tensor:
    """The hull's vertices ``(B, L, K, d)`` from :meth:`SynonymTable.lookup`'s ids: each entry's
    embedding, or, for an entry in word pieces (ids ``(B, L, K, P)``, −1 past its pieces), the
    mean of its pieces' embeddings — the one-position stand-in for a substitute the model would
    read as several (an approximation of ours; ASCC's hulls hold one-entry synonyms only)."""
    if ids.dim() == 3:
        return embedding(ids)
    total = None
    for piece in ids.unbind(-1):  # one (B, L, K, d) at a time, not (B, L, K, P, d) at once
        embeds = embedding(piece.clamp(min=0)) * (piece >= 0).unsqueeze(-1)
        total = embeds if total is None else total + embeds
    return total / (ids >= 0).sum(-1, keepdim=True).clamp(min=1).to(total.dtype)


def _padded(flags: WordFlags, size: int) -> WordFlags:
    extra = size - len(flags.start)
    if extra <= 0:
        return flags
    pad = torch.zeros(extra, dtype=torch.bool)

    def padded(values: torch.Tensor | None) -> torch.Tensor | None:
        return None if values is None else torch.cat([values, pad])

    return replace(flags, start=padded(flags.start), continuation=padded(flags.continuation),
                   alpha=padded(flags.alpha), apostrophe=padded(flags.apostrophe),
                   lettered=padded(flags.lettered))


def hull_weights(logits: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``softmax(ŵ)`` over each position's valid entries (0 elsewhere)."""
    return torch.softmax(logits.masked_fill(~valid, float("-inf")), dim=-1)


def hull_embeddings(logits: torch.Tensor, neighbour_embeds: torch.Tensor,
                    valid: torch.Tensor) -> torch.Tensor:
    """``v̂_i = Σ_j w_ij · v(s_ij)``: ``(B, L, d)`` from ``(B, L, K)`` weights' logits and
    ``(B, L, K, d)`` neighbour embeddings."""
    weights = hull_weights(logits, valid).to(neighbour_embeds.dtype)
    return (weights.unsqueeze(-1) * neighbour_embeds).sum(-2)


def hull_entropy(logits: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean entropy ``−Σ_j w_ij log w_ij`` over the positions with at least two entries (the
    others have none to spread over); 0 when there are none."""
    log_weights = torch.log_softmax(logits.masked_fill(~valid, float("-inf")), dim=-1)
    log_weights = log_weights.masked_fill(~valid, 0.0)
    entropy = -(log_weights.exp() * log_weights).sum(-1)
    open_positions = valid.sum(-1) > 1
    if not open_positions.any():
        return logits.new_zeros(())
    return entropy[open_positions].mean()


def search_hull(loss_at: Callable[[torch.Tensor], torch.Tensor], neighbour_embeds: torch.Tensor,
                valid: torch.Tensor, *, steps: int, step_size: float,
                sparsity: float, loss_scale: float = 1.0) -> torch.Tensor:
    """The inner maximisation: ``max_ŵ loss_at(v̂(ŵ)) − α·H(w)`` by ``steps`` Adam steps of
    learning rate ``step_size`` on ŵ, from ŵ = 0 (the hull's centroid; TextDefender starts at
    Kaiming-normal noise of std ≈ 0.04, which Adam's first step of size 1 swamps).  The entropy
    penalty α pushes each w_i toward one vertex — one real substitution.  ``loss_scale`` (mixed
    precision's, as the other methods' inner gradients take it) multiplies the whole objective
    before its backward, so fp16 does not flush small gradients to zero, and divides the
    gradient after it, as a gradient scaler does (Adam's ε makes its step depend on the
    gradient's scale, unlike the other methods' normalised directions).
    Returns ŵ (detached); no parameter gradient is touched."""
    neighbour_embeds = neighbour_embeds.detach()
    logits = torch.zeros(valid.shape, device=valid.device, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=step_size)
    for _ in range(steps):
        objective = loss_at(hull_embeddings(logits, neighbour_embeds, valid))
        objective = objective - sparsity * hull_entropy(logits, valid)
        (grad,) = torch.autograd.grad(-objective * loss_scale, logits)
        logits.grad = grad / loss_scale  # unscaled: Adam's ε makes its step scale-dependent
        optimizer.step()
    return logits.detach()
