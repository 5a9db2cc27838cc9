"""The book's examples (d2l 14.4), the reference: subsampling (the book's formula and
word2vec's), random context windows, noise words from counts^0.75, the padded rows of an
epoch and its batch order; and the seeded generators every draw comes from.
"""

from __future__ import annotations

import concurrent.futures
import os
import typing

import numpy as np

from w2v_jax.config import SubsampleFormula
from w2v_jax.data.noise import AliasTable, draw_noise
from w2v_jax.data.vocab import Corpus
from w2v_jax.rows import RowLayout, Rows

# Independent random streams, each seeded by (config seed, stream, epoch).
SUBSAMPLE_STREAM, EXAMPLES_STREAM, SHUFFLE_STREAM, BLOCK_ORDER_STREAM = 0, 1, 2, 3


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
    if formula not in typing.get_args(SubsampleFormula):
        raise ValueError(f"formula={formula!r}: choose one of {typing.get_args(SubsampleFormula)}")
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


# --------------------------------------------------------------------------- examples and batches


def draw_examples(
    corpus: Corpus,
    table: AliasTable,
    layout: RowLayout,
    rng: np.random.Generator,
    windows: np.ndarray | None = None,
) -> Rows:
    """Random windows (unless given), contexts and noise words, in rows as ``layout`` lays
    them out (``w2v_jax.rows``).

    Centers are all tokens of sentences with at least 2 tokens, in corpus order. The rows are
    filled in blocks, on all cores; each block draws from its own generator spawned from
    ``rng``, so the result depends on the seed alone, not on the threads.
    """
    positions = center_positions(corpus)
    if windows is None:
        windows = sample_windows(len(positions), layout.max_window, rng)
    left, right = context_extent(corpus, positions, windows)
    num_contexts = left + right
    num_live = layout.num_live(num_contexts).astype(np.int32)
    if num_live.size and num_live.max() > layout.max_len:
        raise ValueError(
            f"max_len={layout.max_len} is smaller than a row's {num_live.max()} live slots"
        )
    packed = np.zeros((len(positions), layout.max_len), np.int32)
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
            layout,
            block_rng,
        )

    # numpy releases the GIL in these loops, so threads use every core.
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(fill, starts, rng.spawn(len(starts))))
    return Rows(
        centers=corpus.ids[positions].reshape(-1, 1),
        contexts_negatives=packed,
        num_contexts=num_contexts,
        num_left=left,
        num_live=num_live,
    )


# Blocks of rows keep the temporaries small enough to stay in cache and be reused.
_ROWS_PER_BLOCK = 1 << 15


def _fill_block(
    packed: np.ndarray,
    ids: np.ndarray,
    positions: np.ndarray,
    left: np.ndarray,
    num_contexts: np.ndarray,
    table: AliasTable,
    layout: RowLayout,
    rng: np.random.Generator,
) -> None:
    """Write the contexts and noise words of a block of centers into its rows of ``packed``:
    one vectorised step per context count k."""
    for k in range(1, int(num_contexts.max(initial=0)) + 1):
        rows = np.flatnonzero(num_contexts == k)
        if rows.size:
            contexts = ids[context_positions(positions[rows], left[rows], k)]
            packed[rows, :k] = contexts
            if layout.noise_each:
                # The words the noise words avoid: each context's or the center.
                avoid = contexts if layout.per_context else ids[positions[rows]][:, None]
                noise = draw_noise(avoid, table, layout.noise_each, rng)
                packed[rows, k : k + noise.shape[1]] = noise


def batch_order(num_examples: int, batch_size: int, rng: np.random.Generator | None) -> np.ndarray:
    """Row indices of an epoch's batches, int32 (num_batches, batch_size), shuffled when ``rng``
    is given. The last batch is filled with ``num_examples``, the index of an all-padding row."""
    order = rng.permutation(num_examples) if rng is not None else np.arange(num_examples)
    num_batches = -(-num_examples // batch_size)
    padded = np.full(num_batches * batch_size, num_examples, np.int32)
    padded[:num_examples] = order
    return padded.reshape(num_batches, batch_size)


def stream_rng(seed: int, stream: int, epoch: int = 0, block: int = 0) -> np.random.Generator:
    """The generator of one stream of draws (subsampling, examples, shuffling, block order)
    for ``epoch`` and ``block`` (a group, for shuffling). Block 0's is the stream's own, so a
    corpus of one block draws what it drew before it was cut into blocks."""
    return np.random.default_rng([seed, stream, epoch, *([block] if block else [])])
