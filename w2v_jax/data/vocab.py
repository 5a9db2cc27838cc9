"""Vocabularies and ids: ``Vocab``, ``Corpus`` (sentences as one flat id array), the block
encoder that splits and numbers text, and the vocabulary counter (bounded as word2vec's).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import os
import re
import sys
import unicodedata
from pathlib import Path
from typing import NamedTuple

import numpy as np

from w2v_jax.data.noise import AliasTable, noise_distribution

UNK = "<unk>"


@dataclasses.dataclass(frozen=True, eq=False)
class Vocab:
    """Tokens seen at least ``min_freq`` times, most frequent first, with ``<unk>`` at index 0.

    ``counts[i]`` is how often token i occurs in the corpus it was built from (for ``<unk>``, the
    tokens that map to it). Lookup of any token outside the vocabulary gives 0.
    """

    tokens: tuple[str, ...]
    counts: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {token: i for i, token in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, token: str) -> int:
        return self._index.get(token, 0)

    def __contains__(self, token: str) -> bool:
        return token in self._index and token != UNK

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Vocab)
            and self.tokens == other.tokens
            and np.array_equal(self.counts, other.counts)
        )

    @functools.cached_property
    def noise_table(self) -> AliasTable:
        """The noise words' alias table (counts^0.75, ``data.noise``), built once for the data
        stage and the step that draws shared noise words (a Python pass over the words)."""
        return AliasTable.build(noise_distribution(self.counts))

    def to_token(self, index: int) -> str:
        return self.tokens[index]

    def to_json(self) -> str:
        return json.dumps({"tokens": list(self.tokens), "counts": self.counts.tolist()})

    @classmethod
    def from_json(cls, text: str) -> Vocab:
        values = json.loads(text)
        return cls(tuple(values["tokens"]), np.asarray(values["counts"], dtype=np.int64))

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocab:
        return cls.from_json(Path(path).read_text())


class Corpus(NamedTuple):
    """Sentences as one flat array: sentence s is ``ids[offsets[s]:offsets[s + 1]]``."""

    ids: np.ndarray  # int32 (T,)
    offsets: np.ndarray  # int64 (S + 1,)


# A line break becomes this token so that one split finds both tokens and line ends.
_LINE_BREAK = "\x00"
# gensim's PAT_ALPHABETIC (a run of word characters that are not digits), or a line break.
_WORD_OR_BREAK = re.compile(r"(?:(?!\d)\w)+|\n")


@dataclasses.dataclass(frozen=True)
class Splitter:
    """Text -> its tokens, each line break given as the token ``_LINE_BREAK``; built from a
    ``CorpusConfig`` 's reading settings (``from_config``).

    "whitespace" is str.split; "words" is gensim's ``simple_preprocess`` (lowercase, then
    deaccent, then gensim's alphabetic pattern, then the length bounds and no word starting
    with "_"), token for token, its lowercasing left to ``lowercase``.
    """

    tokenizer: str = "whitespace"
    lowercase: bool = False
    deaccent: bool = False
    min_length: int = 2
    max_length: int = 15

    @classmethod
    def from_config(cls, source) -> Splitter:
        return cls(
            source.tokenizer,
            source.lowercase,
            source.deaccent,
            source.min_word_length,
            source.max_word_length,
        )

    def __call__(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        if self.deaccent:
            text = deaccent(text)
        if self.tokenizer == "whitespace":
            return text.replace(_LINE_BREAK, " ").replace("\n", f" {_LINE_BREAK} ").split()
        low, high = self.min_length, self.max_length
        return [
            _LINE_BREAK if token == "\n" else token
            for token in _WORD_OR_BREAK.findall(text)
            if token == "\n" or (low <= len(token) <= high and token[0] != "_")
        ]


def deaccent(text: str) -> str:
    """``text`` without combining marks (é -> e), as gensim's ``deaccent``: decomposed (NFD),
    the marks (category Mn) removed, composed again (NFC); one str.translate, not a loop."""
    if text.isascii():
        return text
    stripped = unicodedata.normalize("NFD", text).translate(_combining_marks())
    return unicodedata.normalize("NFC", stripped)


@functools.cache
def _combining_marks() -> dict[int, None]:
    return dict.fromkeys(
        code for code in range(sys.maxunicode + 1) if unicodedata.category(chr(code)) == "Mn"
    )


class EncodedBlock(NamedTuple):
    """A block of text as ids of the ``BlockEncoder`` that read it.

    ``line_lengths`` are the tokens of each line piece: the first continues the line left open
    by the block before, the last is left open (0 when the block ends with a line break).
    """

    new_words: list[str]  # words the encoder had not seen, in order: ids first_new_id, ...
    first_new_id: int
    ids: np.ndarray  # int32 (tokens,)
    line_lengths: np.ndarray  # int64 (line breaks + 1,)


class BlockEncoder:
    """Splits blocks of text into tokens (``Splitter``) and line pieces and numbers the words,
    each new one by its first occurrence; the numbering persists from block to block.

    The per-token work is C loops (str.split, dict lookups mapped over the tokens) and numpy;
    a NUL character counts as whitespace. Lookups go first to a small dict of the most frequent
    words seen so far, which stays in the CPU's caches, then to the dict of every word: a
    Zipfian text finds most of its tokens in the small one.
    """

    HOT_WORDS = 1 << 16

    def __init__(self, splitter: Splitter = Splitter()) -> None:
        self.splitter = splitter
        self.index = {_LINE_BREAK: 0}  # the line break is id 0; words are numbered from 1
        self.words = [_LINE_BREAK]
        self.hot = dict(self.index)
        self.counts = np.zeros(1024, np.int64)
        self.blocks = 0

    def encode(self, text: str) -> EncodedBlock:
        tokens = self.splitter(text)
        first_new_id = len(self.words)
        number = self._number_first if first_new_id == 1 else self._number
        ids = number(tokens)
        self._count(ids)
        breaks = np.flatnonzero(ids == 0)
        line_lengths = np.diff(np.concatenate([[-1], breaks, [len(ids)]])) - 1
        return EncodedBlock(
            self.words[first_new_id:],
            first_new_id,
            ids[ids != 0].astype(np.int32),
            line_lengths.astype(np.int64),
        )

    def _number_first(self, tokens: list[str]) -> np.ndarray:
        """The first block's ids: every word is new, numbered in one pass."""
        new_words = [word for word in dict.fromkeys(tokens) if word != _LINE_BREAK]
        self.index.update(zip(new_words, itertools.count(1)))
        self.words += new_words
        return np.fromiter(map(self.index.__getitem__, tokens), np.int64, len(tokens))

    def _number(self, tokens: list[str]) -> np.ndarray:
        """A later block's ids: the hot words, then the others, then the new ones."""
        ids = np.fromiter(map(self.hot.get, tokens, itertools.repeat(-1)), np.int64, len(tokens))
        cold = np.flatnonzero(ids < 0)
        if not cold.size:
            return ids
        cold_tokens = [tokens[i] for i in cold.tolist()]
        ids[cold] = np.fromiter(
            map(self.index.get, cold_tokens, itertools.repeat(-1)), np.int64, len(cold_tokens)
        )
        unseen = np.flatnonzero(ids[cold] < 0)
        if unseen.size:
            unseen_tokens = [cold_tokens[i] for i in unseen.tolist()]
            new_words = list(dict.fromkeys(unseen_tokens))
            self.index.update(zip(new_words, itertools.count(len(self.words))))
            self.words += new_words
            ids[cold[unseen]] = np.fromiter(
                map(self.index.__getitem__, unseen_tokens), np.int64, len(unseen_tokens)
            )
        return ids

    def _count(self, ids: np.ndarray) -> None:
        """Count the block's words; after blocks 1, 2, 4, 8, ... choose the hot words anew."""
        self.counts = _grown(self.counts, len(self.words), 0)
        self.counts[: len(self.words)] += np.bincount(ids, minlength=len(self.words))
        self.blocks += 1
        if self.blocks & (self.blocks - 1) == 0:
            top = np.argsort(-self.counts[: len(self.words)], kind="stable")[: self.HOT_WORDS]
            self.hot = {self.words[i]: i for i in top.tolist() if self.words[i] is not None}
            self.hot[_LINE_BREAK] = 0

    def forget(self, words: list[str]) -> None:
        """Drop ``words`` from the numbering: a later occurrence is a new word again."""
        for word in words:
            word_id = self.index.pop(word, None)
            if word_id is not None:
                self.hot.pop(word, None)
                self.words[word_id] = None
                self.counts[word_id] = 0


class VocabularyCounter:
    """Counts the words of the blocks of one or more ``BlockEncoder`` s as they come, in
    corpus order, giving each new word a provisional id in order of first occurrence;
    ``vocabulary`` then ranks them by count.

    With ``max_vocab_size``, memory stays bounded as word2vec's and gensim's does: when more
    distinct words are held, those seen at most ``min_reduce`` times are forgotten (their
    occurrences so far become ``<unk>``, a later one counts afresh) and ``min_reduce`` grows
    by one. ``add`` then returns, for each encoder, the words it must forget. Only then does
    the counter count as it goes; otherwise ``vocabulary`` takes the counts of the provisional
    ids, counted once at the end (a pass over the ids rather than one over the vocabulary per
    block).
    """

    def __init__(self, num_encoders: int = 1, max_vocab_size: int | None = None) -> None:
        self.max_vocab_size = max_vocab_size
        self.index: dict[str, int] = {}
        self.words: list[str | None] = []
        self.counts = np.zeros(1024, np.int64)
        # Per encoder: its ids -> provisional ids (-1: not seen; its id 0 is the line break).
        self.remaps = [np.full(1024, -1, np.int64) for _ in range(num_encoders)]
        self.min_reduce = 1
        self.forgotten = 0

    def add(self, encoder: int, block: EncodedBlock) -> tuple[np.ndarray, list[list[str]]]:
        """Count a block of encoder ``encoder``; returns its tokens as provisional ids (int32)
        and, for each encoder, the words it must forget (all empty unless max_vocab_size)."""
        provisional = self._remap_with(encoder, block)[block.ids]
        forget = [[] for _ in self.remaps]
        if self.max_vocab_size is None:
            return provisional.astype(np.int32), forget
        live = provisional >= 0  # a word forgotten since the encoder numbered it: <unk>
        self.counts += np.bincount(provisional[live], minlength=len(self.counts))
        if len(self.index) > self.max_vocab_size:
            forget = self._forget_rare()
        return np.where(live, provisional, -1).astype(np.int32), forget

    def _remap_with(self, encoder: int, block: EncodedBlock) -> np.ndarray:
        """The encoder's map to provisional ids, extended by the block's new words."""
        words = block.new_words
        ids = np.fromiter(map(self.index.get, words, itertools.repeat(-1)), np.int64, len(words))
        fresh = ids < 0
        if fresh.any():
            first = len(self.words)
            ids[fresh] = np.arange(first, first + int(fresh.sum()))
            new = list(itertools.compress(words, fresh))
            self.index.update(zip(new, itertools.count(first)))
            self.words += new
            if self.max_vocab_size is not None:
                self.counts = _grown(self.counts, len(self.words), 0)
        end = block.first_new_id + len(words)
        remap = self.remaps[encoder] = _grown(self.remaps[encoder], end, -1)
        remap[block.first_new_id : end] = ids
        return remap

    def _forget_rare(self) -> list[list[str]]:
        live = np.fromiter(self.index.values(), np.int64, len(self.index))
        rare = live[self.counts[live] <= self.min_reduce]
        words = [self.words[i] for i in rare.tolist()]
        for word_id, word in zip(rare.tolist(), words):
            del self.index[word]
            self.words[word_id] = None
        dead = np.zeros(len(self.counts), bool)
        dead[rare] = True
        for remap in self.remaps:  # occurrences still to come from encoders become <unk>
            remap[(remap >= 0) & dead[np.maximum(remap, 0)]] = -1
        self.counts[rare] = 0
        self.forgotten += len(rare)
        self.min_reduce += 1
        return [words for _ in self.remaps]

    def vocabulary(
        self, min_freq: int, counts: np.ndarray | None = None
    ) -> tuple[tuple[str, ...], np.ndarray]:
        """The words counted at least ``min_freq`` times (``<unk>`` excluded), most frequent
        first, ties in first-occurrence order; and the map from provisional ids to their ids
        in ``(<unk>, *words)``, 0 for the rest, with one more entry (-1 -> 0). ``counts``: of
        each provisional id, unless the counter counted them (max_vocab_size). ValueError when
        none is kept."""
        counts = self.counts if counts is None else counts
        counts = _grown(counts, len(self.words), 0)[: len(self.words)].copy()
        if not counts.any() and not self.forgotten:
            raise ValueError("the corpus holds no tokens: check that the file is the right one")
        if UNK in self.index:
            counts[self.index[UNK]] = 0  # a literal <unk> is the unknown word
        kept = np.flatnonzero(counts >= min_freq)
        if not kept.size:
            most = int(counts.max(initial=0))
            raise ValueError(
                f"min_freq={min_freq} keeps no word: the most frequent word occurs "
                f"{most:,} time{'s' if most != 1 else ''}; lower it"
            )
        kept = kept[np.argsort(-counts[kept], kind="stable")]  # stable: ties by first sight
        remap = np.zeros(len(self.words) + 1, np.int32)  # the last entry: index -1, <unk>
        remap[kept] = np.arange(1, len(kept) + 1, dtype=np.int32)
        return (UNK, *(self.words[i] for i in kept.tolist())), remap


def _grown(array: np.ndarray, size: int, fill: int) -> np.ndarray:
    """``array`` with room for ``size`` entries, doubled when it must grow (new ones ``fill``)."""
    if size <= len(array):
        return array
    grown = np.full(max(size, 2 * len(array)), fill, array.dtype)
    grown[: len(array)] = array
    return grown


def sentence_lengths(line_lengths: np.ndarray, max_length: int) -> np.ndarray:
    """The tokens of each sentence: lines of no token dropped, lines longer than ``max_length``
    split into sentences of ``max_length`` and the rest."""
    lines = line_lengths[line_lengths > 0]
    pieces = -(-lines // max_length)
    lengths = np.full(int(pieces.sum()), max_length, np.int64)
    lengths[np.cumsum(pieces) - 1] = lines - (pieces - 1) * max_length
    return lengths
