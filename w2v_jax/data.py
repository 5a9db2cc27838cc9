"""The data stage, numpy only: PTB download, vocabulary, subsampling, contexts, noise, batches.

Every stage is a pure function of arrays and an explicit ``numpy.random.Generator``; the corpus
is one flat int32 id array plus sentence offsets, and no stage loops in Python per token.
The behaviour is the book's (d2l 14.4), stage by stage; see DESIGN.md.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import itertools
import json
import os
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from w2v_jax.config import SUBSAMPLE_FORMULAS

PTB_URL = "http://d2l-data.s3-accelerate.amazonaws.com/ptb.zip"
PTB_SHA1 = "319d85e578af0cdc590547f26231e4e31cdf1e42"
PTB_TRAIN_MEMBER = "ptb/ptb.train.txt"
DATA_ENV_VAR = "W2V_JAX_DATA"
UNK = "<unk>"

# Independent random streams, each seeded by (config seed, stream, epoch).
SUBSAMPLE_STREAM, EXAMPLES_STREAM, SHUFFLE_STREAM, BLOCK_ORDER_STREAM = 0, 1, 2, 3


class CorpusError(RuntimeError):
    """The corpus cannot be obtained or read; the message says what to do."""


# --------------------------------------------------------------------------- download and cache


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory: the argument, else $W2V_JAX_DATA, else the user's cache directory."""
    return resolve_dir(data_dir, DATA_ENV_VAR, "")


def resolve_dir(directory: str | os.PathLike | None, env_var: str, under_cache: str) -> Path:
    """``directory``, else ``$env_var``, else ``under_cache`` in w2v_jax's directory of the
    user's cache ($XDG_CACHE_HOME, else ~/.cache)."""
    if directory is not None:
        return Path(directory)
    if os.environ.get(env_var):
        return Path(os.environ[env_var])
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "w2v_jax" / under_cache


def sha1_of(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_ptb(
    data_dir: str | os.PathLike | None = None, url: str = PTB_URL, sha1: str = PTB_SHA1
) -> Path:
    """Path of a verified ``ptb.zip`` in the data directory, downloading it when absent.

    A file whose sha1 differs from ``sha1`` is never used: an existing one raises CorpusError,
    a downloaded one is deleted before the error is raised.
    """
    directory = resolve_data_dir(data_dir)
    path = directory / "ptb.zip"
    if not path.exists():
        download(url, path, sha1)
    actual = sha1_of(path)
    if actual != sha1:
        raise CorpusError(
            f"{path} has sha1 {actual}, expected {sha1}: the file is damaged or not the PTB "
            f"archive, so it is not used. Delete it to download again from {url}, or replace it "
            f"with a good copy."
        )
    return path


def download(url: str, dest: Path, sha1: str) -> None:
    """Download ``url`` to ``dest`` through a temporary file; only a verified file is moved in."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as err:
        raise CorpusError(
            f"cannot write to the data directory {dest.parent}: {err}. "
            f"Choose another with the data_dir argument or ${DATA_ENV_VAR}."
        ) from err
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            actual = _stream_to(url, out)
        if actual != sha1:
            raise CorpusError(
                f"the file downloaded from {url} has sha1 {actual}, expected "
                f"{sha1}; it was discarded. Try again, or put a good copy of "
                f"{dest.name} into {dest.parent}."
            )
        os.replace(tmp, dest)
    except OSError as err:
        raise CorpusError(
            f"could not download {url} ({err}). Offline, put {dest.name} (sha1 {sha1}) into "
            f"{dest.parent}, or point ${DATA_ENV_VAR} (or the data_dir argument) at a directory "
            f"that holds it."
        ) from err
    finally:
        tmp.unlink(missing_ok=True)


def _stream_to(url: str, out) -> str:
    """Copy ``url`` into the open file ``out`` with a progress bar; returns the bytes' sha1."""
    from tqdm.auto import tqdm  # the progress bar is only needed when downloading

    digest = hashlib.sha1()
    with urllib.request.urlopen(url, timeout=30) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {url}") as bar:
            for block in iter(lambda: response.read(1 << 16), b""):
                out.write(block)
                digest.update(block)
                bar.update(len(block))
    return digest.hexdigest()


def read_zip_text(path: Path, member: str = PTB_TRAIN_MEMBER) -> str:
    """The text of ``member`` inside the archive ``path``, read without extracting to disk."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.read(member).decode("utf-8")
    except (zipfile.BadZipFile, KeyError, EOFError, UnicodeDecodeError) as err:
        raise CorpusError(
            f"{path} is not a readable corpus archive holding {member} ({err}); "
            f"delete it and download it again."
        ) from err


def read_ptb(data_dir: str | os.PathLike | None = None) -> str:
    """The text of PTB's training split (one sentence a line), fetched and verified if needed."""
    return read_zip_text(fetch_ptb(data_dir))


# --------------------------------------------------------------------------- vocabulary and ids


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
    """Splits blocks of text on whitespace into tokens and line pieces and numbers the words,
    each new one by its first occurrence; the numbering persists from block to block.

    The per-token work is C loops (str.split, dict lookups mapped over the tokens) and numpy;
    a NUL character counts as whitespace. Lookups go first to a small dict of the most frequent
    words seen so far, which stays in the CPU's caches, then to the dict of every word: a
    Zipfian text finds most of its tokens in the small one.
    """

    HOT_WORDS = 1 << 16

    def __init__(self, lowercase: bool = False) -> None:
        self.lowercase = lowercase
        self.index = {_LINE_BREAK: 0}  # the line break is id 0; words are numbered from 1
        self.words = [_LINE_BREAK]
        self.hot = dict(self.index)
        self.counts = np.zeros(1024, np.int64)
        self.blocks = 0

    def encode(self, text: str) -> EncodedBlock:
        if self.lowercase:
            text = text.lower()
        tokens = text.replace(_LINE_BREAK, " ").replace("\n", f" {_LINE_BREAK} ").split()
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
            raise ValueError(
                f"min_freq={min_freq} keeps no word: the most frequent word occurs "
                f"{counts.max(initial=0)} times; lower min_freq"
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


def encode_text(text: str, min_freq: int) -> tuple[Vocab, Corpus]:
    """Build the vocabulary of ``text`` (one sentence a line, tokens split on whitespace) and
    encode it, in memory: the encode of ``w2v_jax.corpus`` with one block.

    Ties in frequency keep the order of first occurrence, as the book's Vocab does.
    """
    counter = VocabularyCounter()
    block = BlockEncoder().encode(text)
    provisional, _ = counter.add(0, block)
    tokens, remap = counter.vocabulary(min_freq, np.bincount(provisional))
    ids = remap[provisional]
    lengths = sentence_lengths(block.line_lengths, max(len(ids), 1))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    counts = np.bincount(ids, minlength=len(tokens)).astype(np.int64)
    return Vocab(tokens, counts), Corpus(ids, offsets)


# --------------------------------------------------------------------------- subsampling


def subsample(
    corpus: Corpus,
    t: float,
    rng: np.random.Generator,
    formula: str = "book",
    counts: np.ndarray | None = None,
) -> Corpus:
    """Drop ``<unk>``, then keep each token w with probability ``keep_probabilities`` (of
    ``counts``, the whole corpus's counts when ``corpus`` is a block of it)."""
    keep_prob = keep_probabilities(corpus, t, formula, counts)
    keep = (corpus.ids != 0) & (rng.random(len(corpus.ids)) < keep_prob[corpus.ids])
    kept_before = np.concatenate([[0], np.cumsum(keep)])
    return Corpus(corpus.ids[keep], kept_before[corpus.offsets].astype(np.int64))


def keep_probabilities(
    corpus: Corpus, t: float, formula: str = "book", counts: np.ndarray | None = None
) -> np.ndarray:
    """P(keep) per vocabulary id (0 for ``<unk>``), from w's count c(w) among the N tokens
    left once ``<unk>`` is dropped: counted in ``corpus``, or given as ``counts`` (per id).

    "book": min(1, sqrt(t / f(w))) with f(w) = c(w) / N, as the book.
    "word2vec": min(1, (sqrt(c(w) / (t N)) + 1) t N / c(w)), as the original C tool and gensim;
    it keeps more of the frequent words (on PTB 414k centers an epoch against the book's 343k).
    """
    if formula not in SUBSAMPLE_FORMULAS:
        raise ValueError(f"formula={formula!r}: choose one of {SUBSAMPLE_FORMULAS}")
    if counts is None:
        known = corpus.ids[corpus.ids != 0]
        counts = np.bincount(known, minlength=int(corpus.ids.max(initial=0)) + 1)
    counts = np.concatenate([[0], counts[1:]])  # <unk> is dropped
    threshold = t * max(int(counts.sum()), 1)  # t N
    counts = np.maximum(counts, 1)
    if formula == "book":
        probs = np.sqrt(threshold / counts)
    else:
        probs = (np.sqrt(counts / threshold) + 1) * threshold / counts
    probs = np.minimum(1.0, probs)
    probs[0] = 0.0
    return probs


# --------------------------------------------------------------------------- centers and contexts


def center_positions(corpus: Corpus) -> np.ndarray:
    """Positions (into ``corpus.ids``) of every token in a sentence of at least 2 tokens."""
    lengths = np.diff(corpus.offsets)
    sentence = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)
    return np.flatnonzero(lengths[sentence] >= 2).astype(np.int32)


def sample_windows(num_centers: int, max_window: int, rng: np.random.Generator) -> np.ndarray:
    """One window size per center, uniform on 1..max_window."""
    return rng.integers(1, max_window + 1, size=num_centers, dtype=np.int32)


def context_extent(
    corpus: Corpus, positions: np.ndarray, windows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """How many context words each center has on its left and on its right: the window,
    cut at the sentence's edges."""
    sentence = np.searchsorted(corpus.offsets, positions, side="right") - 1
    start, end = corpus.offsets[sentence], corpus.offsets[sentence + 1]
    left = np.minimum(windows, positions - start).astype(np.int32)
    right = np.minimum(windows, end - 1 - positions).astype(np.int32)
    return left, right


def context_positions(positions: np.ndarray, left: np.ndarray, width: int) -> np.ndarray:
    """Positions of the ``width`` context words of centers that have exactly that many,
    left to right with the center skipped: int (R, width)."""
    slot = np.arange(width, dtype=np.int32)
    first = (positions - left)[:, None]
    return first + slot + (slot >= left[:, None])


# --------------------------------------------------------------------------- noise words


def noise_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """P(noise word = i) proportional to counts[i] ** power over i >= 1; index 0 never drawn."""
    weights = counts.astype(np.float64) ** power
    weights[0] = 0.0
    return weights / weights.sum()


class AliasTable(NamedTuple):
    """Walker's alias table: O(1) exact draws from a discrete distribution."""

    accept: np.ndarray  # float32 (V,)
    alias: np.ndarray  # int32 (V,)

    @classmethod
    def build(cls, probs: np.ndarray) -> AliasTable:
        # Vose's construction; one pass over the vocabulary, not over tokens.
        n = len(probs)
        scaled = probs * n
        accept, alias = np.ones(n), np.arange(n, dtype=np.int32)
        small = [i for i in range(n) if scaled[i] < 1.0]
        large = [i for i in range(n) if scaled[i] >= 1.0]
        while small and large:
            s, g = small.pop(), large.pop()
            accept[s], alias[s] = scaled[s], g
            scaled[g] -= 1.0 - scaled[s]
            (small if scaled[g] < 1.0 else large).append(g)
        # The coin is float32: its 2**-24 steps bias no acceptance by more than 6e-8.
        return cls(accept.astype(np.float32), alias)

    def sample(self, shape: int | tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        column = rng.integers(0, len(self.accept), size=shape, dtype=np.int32)
        rejected = rng.random(shape, dtype=np.float32) >= self.accept[column]
        column[rejected] = self.alias[column[rejected]]
        return column


def draw_noise(
    contexts: np.ndarray, table: AliasTable, num_noise: int, rng: np.random.Generator
) -> np.ndarray:
    """``num_noise`` noise words per context word, none equal to a context word of its row.

    contexts: int (R, k), every entry live. Returns int32 (R, k * num_noise). A draw that hits a
    context word is redrawn, which gives each slot the book's distribution (rejection sampling).
    """
    noise = table.sample((len(contexts), contexts.shape[1] * num_noise), rng)
    rows, clash = np.arange(len(contexts)), _hits(noise, contexts)
    for _ in range(_MAX_REDRAWS):
        clashing = clash.any(axis=1)
        rows, clash = rows[clashing], clash[clashing]
        if not rows.size:
            return noise
        block = noise[rows]
        block[clash] = table.sample(int(clash.sum()), rng)
        noise[rows] = block
        clash &= _hits(block, contexts[rows])
    raise ValueError(
        "cannot draw noise words: some center's context words hold nearly all of the "
        "noise distribution; the vocabulary is too small (lower min_freq or use a "
        "larger corpus)"
    )


# Redraw rounds before giving up; each round redraws only the clashing slots.
_MAX_REDRAWS = 1000


def _hits(noise: np.ndarray, contexts: np.ndarray) -> np.ndarray:
    """Which noise slots equal one of their row's context words."""
    hit = noise == contexts[:, :1]
    for column in range(1, contexts.shape[1]):
        hit |= noise == contexts[:, column : column + 1]
    return hit


# --------------------------------------------------------------------------- examples and batches


@dataclasses.dataclass(frozen=True)
class Examples:
    """The book's padded examples, one row per center (its ``batchify`` over a whole epoch).

    ``contexts_negatives[n]`` holds center n's contexts left to right, then their noise words,
    then 0s up to L. The book's ``mask`` (1 on the live slots) and ``labels`` (1 on the contexts)
    follow from the counts, so they are stored as counts and expanded on demand.
    """

    centers: np.ndarray  # int32 (N, 1)
    contexts_negatives: np.ndarray  # int32 (N, L)
    num_contexts: np.ndarray  # int32 (N,): context words of each row
    num_live: np.ndarray  # int32 (N,): context and noise words of each row

    def __len__(self) -> int:
        return len(self.centers)

    @property
    def mask(self) -> np.ndarray:
        """bool (N, L): the live slots."""
        return live_slots(self.num_live, self.contexts_negatives.shape[1])

    @property
    def labels(self) -> np.ndarray:
        """bool (N, L): the context slots."""
        return live_slots(self.num_contexts, self.contexts_negatives.shape[1])

    @property
    def num_pairs(self) -> int:
        """(center, context) pairs."""
        return int(self.num_contexts.sum())

    def with_padding_row(self) -> Examples:
        """These examples plus one fully masked row at index N, the target of padding indices."""
        return Examples(
            *(
                np.concatenate([a, np.zeros((1, *a.shape[1:]), a.dtype)])
                for a in dataclasses.astuple(self)
            )
        )


def live_slots(counts: np.ndarray, length: int) -> np.ndarray:
    """bool (..., length): True on the first counts[...] slots of each row."""
    return np.arange(length, dtype=np.int32) < counts[..., None]


def draw_examples(
    corpus: Corpus,
    table: AliasTable,
    max_window: int,
    num_noise: int,
    max_len: int,
    rng: np.random.Generator,
    windows: np.ndarray | None = None,
) -> Examples:
    """Random windows (unless given), contexts and noise words, packed into padded rows.

    Centers are all tokens of sentences with at least 2 tokens, in corpus order. The rows are
    filled in blocks, on all cores; each block draws from its own generator spawned from
    ``rng``, so the result depends on the seed alone, not on the threads.
    """
    positions = center_positions(corpus)
    if windows is None:
        windows = sample_windows(len(positions), max_window, rng)
    left, right = context_extent(corpus, positions, windows)
    num_contexts = left + right
    num_live = num_contexts * (1 + num_noise)
    if num_live.size and num_live.max() > max_len:
        raise ValueError(f"max_len={max_len} is smaller than a row's {num_live.max()} live slots")
    packed = np.zeros((len(positions), max_len), np.int32)
    starts = range(0, len(positions), _ROWS_PER_BLOCK)

    def fill(block_start: int, block_rng: np.random.Generator) -> None:
        block = slice(block_start, block_start + _ROWS_PER_BLOCK)
        _fill_block(
            packed[block],
            corpus.ids,
            positions[block],
            left[block],
            num_contexts[block],
            table,
            num_noise,
            block_rng,
        )

    # numpy releases the GIL in these loops, so threads use every core.
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(fill, starts, rng.spawn(len(starts))))
    return Examples(corpus.ids[positions].reshape(-1, 1), packed, num_contexts, num_live)


# Blocks of rows keep the temporaries small enough to stay in cache and be reused.
_ROWS_PER_BLOCK = 1 << 15


def _fill_block(
    packed: np.ndarray,
    ids: np.ndarray,
    positions: np.ndarray,
    left: np.ndarray,
    num_contexts: np.ndarray,
    table: AliasTable,
    num_noise: int,
    rng: np.random.Generator,
) -> None:
    """Write the contexts and noise words of a block of centers into its rows of ``packed``:
    one vectorised step per context count k."""
    for k in range(1, int(num_contexts.max(initial=0)) + 1):
        rows = np.flatnonzero(num_contexts == k)
        if rows.size:
            contexts = ids[context_positions(positions[rows], left[rows], k)]
            packed[rows, :k] = contexts
            packed[rows, k : k * (1 + num_noise)] = draw_noise(contexts, table, num_noise, rng)


def batch_order(num_examples: int, batch_size: int, rng: np.random.Generator | None) -> np.ndarray:
    """Row indices of an epoch's batches, int32 (num_batches, batch_size), shuffled when ``rng``
    is given. The last batch is filled with ``num_examples``, the index of an all-padding row."""
    order = rng.permutation(num_examples) if rng is not None else np.arange(num_examples)
    num_batches = -(-num_examples // batch_size)
    padded = np.full(num_batches * batch_size, num_examples, np.int32)
    padded[:num_examples] = order
    return padded.reshape(num_batches, batch_size)


class Batches(NamedTuple):
    """An epoch's minibatches in the book's layout, each field (num_batches, batch_size, ...)."""

    centers: np.ndarray  # int32 (..., 1)
    contexts_negatives: np.ndarray  # int32 (..., L)
    mask: np.ndarray  # bool (..., L)
    labels: np.ndarray  # bool (..., L)


def make_batches(examples: Examples, order: np.ndarray) -> Batches:
    """The batches of ``batch_order``; padding rows are all 0 and fully masked."""
    padded = examples.with_padding_row()
    length = padded.contexts_negatives.shape[1]
    return Batches(
        padded.centers[order],
        padded.contexts_negatives[order],
        live_slots(padded.num_live[order], length),
        live_slots(padded.num_contexts[order], length),
    )


# --------------------------------------------------------------------------- the whole stage


@dataclasses.dataclass(frozen=True)
class Dataset:
    """What training needs: the vocabulary, the corpus in blocks, and the noise sampler.

    A block is whole sentences, about ``block_tokens`` tokens (``Config.block_tokens``); each
    is subsampled and turned into examples on its own, so host memory holds a few blocks, not
    the corpus. Subsampling is drawn once per block, as the book draws it once for the corpus:
    the centers of each block are the same every epoch.
    """

    vocab: Vocab
    corpus: Corpus
    """As encoded: every token, ``<unk>`` included; memory-mapped for a cached corpus."""
    noise_table: AliasTable
    blocks: np.ndarray
    """int64 [blocks + 1]: the sentence where each block starts, then the sentence count."""
    block_centers: np.ndarray
    """int64 [blocks]: the centers of each block once subsampled."""
    subsample_t: float
    subsample_formula: str
    seed: int

    @property
    def num_centers(self) -> int:
        return int(self.block_centers.sum())

    def subsampled_block(self, block: int) -> Corpus:
        """Block ``block`` read, ``<unk>`` dropped and subsampled: the same every call."""
        rng = stream_rng(self.seed, SUBSAMPLE_STREAM, block=block)
        return subsample(
            corpus_block(self.corpus, self.blocks, block),
            self.subsample_t,
            rng,
            self.subsample_formula,
            self.vocab.counts,
        )


def build_dataset(
    vocab: Vocab,
    corpus: Corpus,
    subsample_t: float,
    seed: int,
    subsample_formula: str = "book",
    block_tokens: int = 1 << 20,
) -> Dataset:
    """Blocks, their centers and the noise distribution of an encoded corpus: the
    epoch-independent part. One pass over the corpus, a block at a time."""
    blocks = block_bounds(corpus.offsets, block_tokens)
    dataset = Dataset(
        vocab,
        corpus,
        AliasTable.build(noise_distribution(vocab.counts)),
        blocks,
        np.zeros(len(blocks) - 1, np.int64),
        subsample_t,
        subsample_formula,
        seed,
    )

    def count(block: int) -> None:
        dataset.block_centers[block] = len(center_positions(dataset.subsampled_block(block)))

    # numpy leaves the interpreter in these loops, so threads use every core.
    with concurrent.futures.ThreadPoolExecutor(min(os.cpu_count(), len(blocks) - 1)) as pool:
        list(pool.map(count, range(len(blocks) - 1)))
    if dataset.num_centers == 0:
        raise ValueError(
            "no sentence keeps 2 or more tokens after subsampling, so there is no "
            "center with a context: use a larger corpus or a larger subsample_t"
        )
    return dataset


def block_bounds(offsets: np.ndarray, block_tokens: int) -> np.ndarray:
    """The sentences where blocks of about ``block_tokens`` tokens start, then the sentence
    count: int64 [blocks + 1]. A block ends at the first sentence end at or after a multiple
    of ``block_tokens``; a corpus of at most ``block_tokens`` tokens is one block."""
    targets = np.arange(block_tokens, int(offsets[-1]), block_tokens)
    cuts = np.searchsorted(offsets, targets, side="left")
    return np.unique(np.concatenate([[0], cuts, [len(offsets) - 1]])).astype(np.int64)


def corpus_block(corpus: Corpus, blocks: np.ndarray, block: int) -> Corpus:
    """The sentences of block ``block``, as a corpus of its own."""
    offsets = read_slice(corpus.offsets, int(blocks[block]), int(blocks[block + 1]) + 1)
    ids = read_slice(corpus.ids, int(offsets[0]), int(offsets[-1]))
    return Corpus(ids, offsets - offsets[0])


def read_slice(array: np.ndarray, start: int, stop: int) -> np.ndarray:
    """``array[start:stop]``. A memory-mapped array is read from its file rather than through
    the map, so that the pages of a large corpus never pile up in this process's memory."""
    if isinstance(array, np.memmap) and array.filename is not None:
        return np.fromfile(
            array.filename, array.dtype, stop - start, offset=array.offset + start * array.itemsize
        )
    return np.asarray(array[start:stop])


def epoch_groups(dataset: Dataset, group_blocks: int, epoch: int) -> list[np.ndarray]:
    """The blocks of each group of ``epoch``: the blocks in an order drawn for the epoch,
    ``group_blocks`` at a time. Rows are shuffled within a group (``stream.group_order``), so
    a row meets the rows of its group's blocks, not those of the whole corpus."""
    num_blocks = len(dataset.blocks) - 1
    order = np.arange(num_blocks)
    if num_blocks > 1:
        order = stream_rng(dataset.seed, BLOCK_ORDER_STREAM, epoch).permutation(num_blocks)
    return [order[start : start + group_blocks] for start in range(0, num_blocks, group_blocks)]


def group_examples(
    dataset: Dataset,
    blocks: np.ndarray,
    draw_epoch: int,
    max_window: int,
    num_noise: int,
    max_len: int,
) -> Examples:
    """The examples of a group's blocks, block after block; each block draws its windows
    and noise words from its own generator (the draw of ``draw_epoch``)."""
    parts = [
        draw_examples(
            dataset.subsampled_block(int(block)),
            dataset.noise_table,
            max_window,
            num_noise,
            max_len,
            stream_rng(dataset.seed, EXAMPLES_STREAM, draw_epoch, int(block)),
        )
        for block in blocks
    ]
    if len(parts) == 1:
        return parts[0]
    return Examples(
        *(
            np.concatenate([getattr(part, field.name) for part in parts])
            for field in dataclasses.fields(Examples)
        )
    )


def stream_rng(seed: int, stream: int, epoch: int = 0, block: int = 0) -> np.random.Generator:
    """The generator of one stream of draws (subsampling, examples, shuffling, block order)
    for ``epoch`` and ``block`` (a group, for shuffling). Block 0's is the stream's own, so a
    corpus of one block draws what it drew before it was cut into blocks."""
    return np.random.default_rng([seed, stream, epoch, *([block] if block else [])])
