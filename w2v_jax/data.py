"""The data stage, numpy only: PTB download, vocabulary, subsampling, contexts, noise, batches.

Every stage is a pure function of arrays and an explicit ``numpy.random.Generator``; the corpus
is one flat int32 id array plus sentence offsets, and no stage loops in Python per token.
The behaviour is the book's (d2l 14.4), stage by stage; see DESIGN.md.
"""

from __future__ import annotations

import collections
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
SUBSAMPLE_STREAM, EXAMPLES_STREAM, SHUFFLE_STREAM = 0, 1, 2


class CorpusError(RuntimeError):
    """The corpus cannot be obtained or read; the message says what to do."""


# --------------------------------------------------------------------------- download and cache


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory: the argument, else $W2V_JAX_DATA, else the user's cache directory."""
    if data_dir is not None:
        return Path(data_dir)
    if os.environ.get(DATA_ENV_VAR):
        return Path(os.environ[DATA_ENV_VAR])
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "w2v_jax"


def sha1_of(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_ptb(data_dir: str | os.PathLike | None = None, url: str = PTB_URL,
              sha1: str = PTB_SHA1) -> Path:
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
            f"with a good copy.")
    return path


def download(url: str, dest: Path, sha1: str) -> None:
    """Download ``url`` to ``dest`` through a temporary file; only a verified file is moved in."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as err:
        raise CorpusError(f"cannot write to the data directory {dest.parent}: {err}. "
                          f"Choose another with the data_dir argument or ${DATA_ENV_VAR}.") from err
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            actual = _stream_to(url, out)
        if actual != sha1:
            raise CorpusError(f"the file downloaded from {url} has sha1 {actual}, expected "
                              f"{sha1}; it was discarded. Try again, or put a good copy of "
                              f"{dest.name} into {dest.parent}.")
        os.replace(tmp, dest)
    except OSError as err:
        raise CorpusError(
            f"could not download {url} ({err}). Offline, put {dest.name} (sha1 {sha1}) into "
            f"{dest.parent}, or point ${DATA_ENV_VAR} (or the data_dir argument) at a directory "
            f"that holds it.") from err
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
        raise CorpusError(f"{path} is not a readable corpus archive holding {member} ({err}); "
                          f"delete it and download it again.") from err


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
        return (isinstance(other, Vocab) and self.tokens == other.tokens
                and np.array_equal(self.counts, other.counts))

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


# A line break becomes this token so that one split finds both tokens and sentence ends.
_LINE_BREAK = "\x00"


def encode_text(text: str, min_freq: int) -> tuple[Vocab, Corpus]:
    """Build the vocabulary of ``text`` (one sentence a line, tokens split on spaces) and encode it.

    Ties in frequency keep the order of first occurrence, as the book's Vocab does.
    """
    tokens = text.replace("\n", f" {_LINE_BREAK} ").split()
    frequencies = collections.Counter(tokens)  # counted in C; keeps first-occurrence order
    frequencies.pop(_LINE_BREAK, None)
    if not frequencies:
        raise ValueError("the corpus holds no tokens: check that the file is the right one")
    kept = [(t, n) for t, n in frequencies.items() if n >= min_freq and t != UNK]
    if not kept:
        raise ValueError(f"min_freq={min_freq} keeps no word: the most frequent word occurs "
                         f"{max(frequencies.values())} times; lower min_freq")
    kept.sort(key=lambda item: -item[1])  # stable: ties stay in first-occurrence order
    index = {token: i for i, (token, _) in enumerate(kept, start=1)}
    index[_LINE_BREAK] = -1
    ids = np.fromiter(map(index.get, tokens, itertools.repeat(0)), np.int32, len(tokens))
    breaks = np.flatnonzero(ids < 0)
    starts = np.concatenate([[0], breaks + 1])
    lengths = np.diff(np.concatenate([starts, [len(ids)]])) - np.r_[np.ones(len(breaks)), 0]
    ids = ids[ids >= 0]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    counts = np.bincount(ids, minlength=len(kept) + 1).astype(np.int64)
    vocab = Vocab((UNK, *(token for token, _ in kept)), counts)
    return vocab, Corpus(ids, offsets)


# --------------------------------------------------------------------------- subsampling


def subsample(corpus: Corpus, t: float, rng: np.random.Generator,
              formula: str = "book") -> Corpus:
    """Drop ``<unk>``, then keep each token w with probability ``keep_probabilities``."""
    keep_prob = keep_probabilities(corpus, t, formula)
    keep = (corpus.ids != 0) & (rng.random(len(corpus.ids)) < keep_prob[corpus.ids])
    kept_before = np.concatenate([[0], np.cumsum(keep)])
    return Corpus(corpus.ids[keep], kept_before[corpus.offsets].astype(np.int64))


def keep_probabilities(corpus: Corpus, t: float, formula: str = "book") -> np.ndarray:
    """P(keep) per vocabulary id (0 for ``<unk>``), from w's count c(w) among the N tokens
    left once ``<unk>`` is dropped.

    "book": min(1, sqrt(t / f(w))) with f(w) = c(w) / N, as the book.
    "word2vec": min(1, (sqrt(c(w) / (t N)) + 1) t N / c(w)), as the original C tool and gensim;
    it keeps more of the frequent words (on PTB 414k centers an epoch against the book's 343k).
    """
    if formula not in SUBSAMPLE_FORMULAS:
        raise ValueError(f"formula={formula!r}: choose one of {SUBSAMPLE_FORMULAS}")
    known = corpus.ids[corpus.ids != 0]
    counts = np.maximum(np.bincount(known, minlength=int(corpus.ids.max(initial=0)) + 1), 1)
    threshold = t * max(len(known), 1)  # t N
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


def context_extent(corpus: Corpus, positions: np.ndarray,
                   windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def draw_noise(contexts: np.ndarray, table: AliasTable, num_noise: int,
               rng: np.random.Generator) -> np.ndarray:
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
    raise ValueError("cannot draw noise words: some center's context words hold nearly all of the "
                     "noise distribution; the vocabulary is too small (lower min_freq or use a "
                     "larger corpus)")


# Redraw rounds before giving up; each round redraws only the clashing slots.
_MAX_REDRAWS = 1000


def _hits(noise: np.ndarray, contexts: np.ndarray) -> np.ndarray:
    """Which noise slots equal one of their row's context words."""
    hit = noise == contexts[:, :1]
    for column in range(1, contexts.shape[1]):
        hit |= noise == contexts[:, column:column + 1]
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
        return Examples(*(np.concatenate([a, np.zeros((1, *a.shape[1:]), a.dtype)])
                          for a in dataclasses.astuple(self)))


def live_slots(counts: np.ndarray, length: int) -> np.ndarray:
    """bool (..., length): True on the first counts[...] slots of each row."""
    return np.arange(length, dtype=np.int32) < counts[..., None]


def draw_examples(corpus: Corpus, table: AliasTable, max_window: int, num_noise: int,
                  max_len: int, rng: np.random.Generator,
                  windows: np.ndarray | None = None) -> Examples:
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
        _fill_block(packed[block], corpus.ids, positions[block], left[block],
                    num_contexts[block], table, num_noise, block_rng)

    # numpy releases the GIL in these loops, so threads use every core.
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(fill, starts, rng.spawn(len(starts))))
    return Examples(corpus.ids[positions].reshape(-1, 1), packed, num_contexts, num_live)


# Blocks of rows keep the temporaries small enough to stay in cache and be reused.
_ROWS_PER_BLOCK = 1 << 15


def _fill_block(packed: np.ndarray, ids: np.ndarray, positions: np.ndarray, left: np.ndarray,
                num_contexts: np.ndarray, table: AliasTable, num_noise: int,
                rng: np.random.Generator) -> None:
    """Write the contexts and noise words of a block of centers into its rows of ``packed``:
    one vectorised step per context count k."""
    for k in range(1, int(num_contexts.max(initial=0)) + 1):
        rows = np.flatnonzero(num_contexts == k)
        if rows.size:
            contexts = ids[context_positions(positions[rows], left[rows], k)]
            packed[rows, :k] = contexts
            packed[rows, k:k * (1 + num_noise)] = draw_noise(contexts, table, num_noise, rng)


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
    return Batches(padded.centers[order], padded.contexts_negatives[order],
                   live_slots(padded.num_live[order], length),
                   live_slots(padded.num_contexts[order], length))


# --------------------------------------------------------------------------- the whole stage


@dataclasses.dataclass(frozen=True)
class Dataset:
    """What training needs: the vocabulary, the subsampled corpus and the noise sampler."""

    vocab: Vocab
    corpus: Corpus
    noise_table: AliasTable


def build_dataset(text: str, min_freq: int, subsample_t: float, seed: int,
                  subsample_formula: str = "book") -> Dataset:
    """Vocabulary, encoded and subsampled corpus, noise distribution: the epoch-independent part."""
    vocab, corpus = encode_text(text, min_freq)
    subsampled = subsample(corpus, subsample_t, stream_rng(seed, SUBSAMPLE_STREAM),
                           subsample_formula)
    if len(center_positions(subsampled)) == 0:
        raise ValueError("no sentence keeps 2 or more tokens after subsampling, so there is no "
                         "center with a context: use a larger corpus or a larger subsample_t")
    return Dataset(vocab, subsampled, AliasTable.build(noise_distribution(vocab.counts)))


def stream_rng(seed: int, stream: int, epoch: int = 0) -> np.random.Generator:
    """The generator of one stream of draws (subsampling, examples, shuffling) for ``epoch``."""
    return np.random.default_rng([seed, stream, epoch])
