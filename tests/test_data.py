"""The data stage against the book's definitions, on small corpora and on PTB."""

import dataclasses
import math
from typing import NamedTuple

import numpy as np
import pytest

from tests.helpers import encode_text
from w2v_jax import data
from w2v_jax.rows import RowLayout, Rows, live_slots


# The book's batch layout (its batchify), written out as the reference the examples expand to.
class Batches(NamedTuple):
    """An epoch's minibatches in the book's layout, each field (num_batches, batch_size, ...)."""

    centers: np.ndarray  # int32 (..., 1)
    contexts_negatives: np.ndarray  # int32 (..., L)
    mask: np.ndarray  # bool (..., L)
    labels: np.ndarray  # bool (..., L)


def with_padding_row(examples):
    """The examples plus one fully masked row at index N, the target of padding indices."""
    arrays = (
        np.concatenate([a, np.zeros((1, *a.shape[1:]), a.dtype)])
        for a in dataclasses.astuple(examples)
    )
    return Rows(*arrays)


def make_batches(examples, order: np.ndarray) -> Batches:
    """The batches of ``batch_order``; padding rows are all 0 and fully masked."""
    padded = with_padding_row(examples)
    length = padded.contexts_negatives.shape[1]
    return Batches(
        padded.centers[order],
        padded.contexts_negatives[order],
        live_slots(padded.num_live[order], length),
        live_slots(padded.num_contexts[order], length),
    )


SMALL_TEXT = " the cat sat on the mat \n the dog \n dog \n a cat and a dog sat \n"


def naive_centers_and_contexts(sentences, windows):
    """The book's get_centers_and_contexts, with the window sizes given instead of drawn."""
    draws = iter(windows)
    centers, contexts = [], []
    for line in sentences:
        if len(line) < 2:
            continue
        for i in range(len(line)):
            window = next(draws)
            indices = list(range(max(0, i - window), min(len(line), i + 1 + window)))
            indices.remove(i)
            centers.append(line[i])
            contexts.append([line[j] for j in indices])
    return centers, contexts


def sentences_of(corpus):
    return [corpus.ids[a:b].tolist() for a, b in zip(corpus.offsets[:-1], corpus.offsets[1:])]


def rows_of(examples):
    """Per row: center, contexts, noise words, as Python lists."""
    cn, n, live = examples.contexts_negatives, examples.num_contexts, examples.num_live
    return [
        (int(examples.centers[r, 0]), cn[r, : n[r]].tolist(), cn[r, n[r] : live[r]].tolist())
        for r in range(len(examples))
    ]


# ----------------------------------------------------------------------------- vocabulary


def test_ptb_vocabulary(ptb_text):
    vocab, corpus = encode_text(ptb_text, min_freq=10)
    assert len(vocab) == 6719
    assert vocab.to_token(0) == "<unk>" and vocab["<unk>"] == 0
    assert vocab["no-such-word"] == 0 and "no-such-word" not in vocab
    assert len(corpus.ids) == 887_521 and corpus.offsets[-1] == len(corpus.ids)
    assert np.all(np.diff(vocab.counts[1:]) <= 0), "most frequent first"
    assert vocab.counts[1:].min() >= 10
    assert vocab.to_token(1) == "the"


def test_vocab_json_round_trip(tmp_path):
    vocab, _ = encode_text(SMALL_TEXT, min_freq=1)
    path = tmp_path / "vocab.json"
    vocab.save(path)
    loaded = data.vocab.Vocab.load(path)
    assert loaded == vocab and loaded["dog"] == vocab["dog"]


def test_encoding_counts_ties_and_offsets():
    vocab, corpus = encode_text(SMALL_TEXT, min_freq=2)
    # the(3), dog(3), cat(2), sat(2), a(2): ties keep first-occurrence order, as the book's Vocab.
    assert vocab.tokens == ("<unk>", "the", "dog", "cat", "sat", "a")
    assert vocab.counts.tolist() == [3, 3, 3, 2, 2, 2]  # <unk>: on, mat, and
    assert sentences_of(corpus)[:4] == [[1, 3, 4, 0, 1, 0], [1, 2], [2], [5, 3, 0, 5, 2, 4]]


def test_empty_corpus_and_useless_min_freq_are_refused():
    with pytest.raises(ValueError, match="no tokens"):
        encode_text(" \n \n", min_freq=1)
    with pytest.raises(ValueError, match="min_freq=50 keeps no word.*lower it"):
        encode_text(SMALL_TEXT, min_freq=50)


# ----------------------------------------------------------------------------- subsampling


def direct_keep_probability(formula: str, count: int, total: int, t: float) -> float:
    """One word's keep probability, written out as the book and the C tool write it."""
    if formula == "book":  # d2l keeps a token when uniform(0, 1) < sqrt(1e-4 / count * total)
        return min(1.0, math.sqrt(t / (count / total)))
    # word2vec.c: ran = (sqrt(cn / (sample * train_words)) + 1) * (sample * train_words) / cn
    return min(1.0, (math.sqrt(count / (t * total)) + 1) * (t * total) / count)


@pytest.mark.parametrize("formula", ["book", "word2vec"])
def test_subsampling_keeps_each_word_with_the_stated_probability(formula):
    rng = np.random.default_rng(1)
    counts = np.array([0, 20000, 8000, 3000, 1000, 300, 100])
    ids = rng.permutation(np.repeat(np.arange(len(counts)), counts)).astype(np.int32)
    ids = np.concatenate([ids, np.zeros(500, np.int32)])  # <unk> tokens are always dropped
    corpus = data.vocab.Corpus(ids, np.array([0, len(ids) // 2, len(ids)]))
    t = 1e-2
    expected = np.array(
        [0.0] + [direct_keep_probability(formula, c, counts.sum(), t) for c in counts[1:]]
    )
    assert 0 < expected.min(initial=1.0, where=expected > 0) and expected[1] < 1
    kept = np.bincount(
        data.examples.subsample(corpus, t, np.random.default_rng(7), formula).ids,
        minlength=len(counts),
    )
    assert kept[0] == 0
    for word in range(1, len(counts)):
        sd = np.sqrt(counts[word] * expected[word] * (1 - expected[word]))
        assert abs(kept[word] - counts[word] * expected[word]) <= 4 * sd + 1e-9
    np.testing.assert_allclose(
        data.examples.keep_probabilities(corpus, t, formula), expected, rtol=1e-12
    )


def test_word2vecs_formula_keeps_more_of_the_frequent_words():
    corpus = data.vocab.Corpus(
        np.repeat(np.arange(1, 4), [5000, 500, 5]).astype(np.int32), np.array([0, 5505])
    )
    book, word2vec = (
        data.examples.keep_probabilities(corpus, 1e-3, f) for f in ("book", "word2vec")
    )
    assert np.all(word2vec[1:] >= book[1:]) and word2vec[1] > book[1]


@pytest.mark.slow
def test_word2vecs_formula_on_ptb_keeps_as_many_centers_as_gensim(ptb_text):
    """gensim's effective words on PTB with sample=1e-4: 414k an epoch (the benchmark)."""
    dataset = data.blocks.build_dataset(
        *encode_text(ptb_text, 10), 1e-4, seed=0, subsample_formula="word2vec"
    )
    assert 405_000 < len(dataset.subsampled_block(0).ids) < 425_000


def test_subsampling_keeps_sentence_boundaries():
    _, corpus = encode_text(SMALL_TEXT * 50, min_freq=1)
    sub = data.examples.subsample(corpus, 0.05, np.random.default_rng(0))
    assert sub.offsets[-1] == len(sub.ids) and np.all(np.diff(sub.offsets) >= 0)
    for before, after in zip(sentences_of(corpus), sentences_of(sub)):
        it = iter(before)
        assert all(token in it for token in after), "a subsequence of its sentence"


# ----------------------------------------------------------------------------- windows and contexts


@pytest.fixture(scope="module")
def ptb_dataset(ptb_text):
    return data.blocks.build_dataset(*encode_text(ptb_text, 10), 1e-4, seed=0)


def test_contexts_equal_the_naive_reference_given_the_same_windows():
    _, corpus = encode_text(SMALL_TEXT * 3, min_freq=1)
    positions = data.examples.center_positions(corpus)
    windows = np.random.default_rng(3).integers(1, 4, size=len(positions)).astype(np.int32)
    table = data.noise.AliasTable.build(data.noise.noise_distribution(np.arange(1, 12)))
    examples = data.examples.draw_examples(
        corpus, table, RowLayout(3, 2), np.random.default_rng(0), windows
    )
    centers, contexts = naive_centers_and_contexts(sentences_of(corpus), windows.tolist())
    rows = rows_of(examples)
    assert [r[0] for r in rows] == centers
    assert [r[1] for r in rows] == contexts


def test_every_context_lies_in_its_window_and_sentence(ptb_dataset):
    corpus = ptb_dataset.subsampled_block(0)
    positions = data.examples.center_positions(corpus)
    windows = data.examples.sample_windows(len(positions), 5, np.random.default_rng(0))
    left, right = data.examples.context_extent(corpus, positions, windows)
    sentence = np.searchsorted(corpus.offsets, positions, side="right") - 1
    for k in range(1, 11):
        rows = np.flatnonzero(left + right == k)
        where = data.examples.context_positions(positions[rows], left[rows], k)
        distance = where - positions[rows, None]
        assert np.all(distance != 0), "no center is its own context"
        assert np.all(np.abs(distance) <= windows[rows, None])
        assert np.all(corpus.offsets[sentence[rows], None] <= where)
        assert np.all(where < corpus.offsets[sentence[rows] + 1, None])


def test_window_sizes_are_uniform():
    windows = data.examples.sample_windows(100_000, 5, np.random.default_rng(0))
    observed = np.bincount(windows, minlength=6)
    assert observed[0] == 0
    chi2 = (((observed[1:] - 20_000) ** 2) / 20_000).sum()
    assert chi2 < 18.47  # 99.9th percentile of chi-square with 4 degrees of freedom


# ----------------------------------------------------------------------------- noise words


def test_alias_sampler_follows_counts_to_the_three_quarters():
    counts = np.array([500, 1000, 300, 50, 10, 1, 2000])
    probs = data.noise.noise_distribution(counts)
    expected = counts**0.75 * (np.arange(len(counts)) > 0)
    assert np.allclose(probs, expected / expected.sum())
    draws = data.noise.AliasTable.build(probs).sample(2_000_000, np.random.default_rng(0))
    freq = np.bincount(draws, minlength=len(counts)) / len(draws)
    assert freq[0] == 0
    assert 0.5 * np.abs(freq - probs).sum() < 0.002  # total variation


def test_noise_words_avoid_contexts_and_unk_and_count_num_noise(ptb_dataset):
    examples = data.examples.draw_examples(
        ptb_dataset.subsampled_block(0),
        ptb_dataset.noise_table,
        RowLayout(5, 5),
        np.random.default_rng(0),
    )
    assert np.array_equal(examples.num_live, examples.num_contexts * 6)
    cn, n = examples.contexts_negatives, examples.num_contexts
    noise_slot = examples.mask & ~examples.labels
    assert np.all(cn[noise_slot] > 0), "noise is never <unk>"
    assert np.all(cn[~examples.mask] == 0), "padding is 0"
    for k in range(10):  # no noise word equals one of its row's context words
        has = n > k
        clash = (cn[has] == cn[has, k : k + 1]) & noise_slot[has]
        assert not clash.any()
    # Noise frequencies follow counts^0.75, up to the few draws rejected as contexts.
    freq = np.bincount(cn[noise_slot], minlength=len(ptb_dataset.vocab)) / noise_slot.sum()
    probs = data.noise.noise_distribution(ptb_dataset.vocab.counts)
    assert 0.5 * np.abs(freq - probs).sum() < 0.03


def test_impossible_noise_is_an_error_not_a_hang():
    _, corpus = encode_text(" a b \n a b \n", min_freq=1)
    table = data.noise.AliasTable.build(
        np.array([0.0, 0.0, 1.0])
    )  # only "b", always a context of a
    with pytest.raises(data.CorpusError, match="vocabulary is too small"):
        data.examples.draw_examples(corpus, table, RowLayout(1, 1), np.random.default_rng(0))


# ----------------------------------------------------------------------------- batches


def test_batches_shapes_masks_and_coverage(ptb_dataset):
    examples = data.examples.draw_examples(
        ptb_dataset.subsampled_block(0),
        ptb_dataset.noise_table,
        RowLayout(5, 5),
        np.random.default_rng(0),
    )
    order = data.examples.batch_order(len(examples), 512, np.random.default_rng(1))
    batches = make_batches(examples, order)
    num_batches = -(-len(examples) // 512)
    assert batches.centers.shape == (num_batches, 512, 1)
    for name in ("contexts_negatives", "mask", "labels"):
        assert getattr(batches, name).shape == (num_batches, 512, 60)
    assert batches.centers.dtype == batches.contexts_negatives.dtype == np.int32
    assert batches.mask.dtype == batches.labels.dtype == bool
    assert not np.any(batches.labels & ~batches.mask), "every label sits on a live slot"
    # mask and labels are prefixes of each row
    assert np.all(np.diff(batches.mask.astype(int), axis=-1) <= 0)
    assert np.all(np.diff(batches.labels.astype(int), axis=-1) <= 0)
    padding = order == len(examples)
    assert padding.sum() == num_batches * 512 - len(examples)
    assert not batches.mask[padding].any() and not batches.centers[padding].any()
    assert np.array_equal(np.sort(order[~padding]), np.arange(len(examples)))


def test_same_seed_same_arrays_other_seed_other_arrays(ptb_text):
    first = data.blocks.build_dataset(*encode_text(ptb_text, 10), 1e-4, seed=3)
    again = data.blocks.build_dataset(*encode_text(ptb_text, 10), 1e-4, seed=3)
    other = data.blocks.build_dataset(*encode_text(ptb_text, 10), 1e-4, seed=4)
    first_ids, other_ids = first.subsampled_block(0).ids, other.subsampled_block(0).ids
    assert np.array_equal(first_ids, again.subsampled_block(0).ids)
    assert not np.array_equal(first_ids[:1000], other_ids[:1000])

    def draw(dataset, seed):
        return data.examples.draw_examples(
            dataset.subsampled_block(0),
            dataset.noise_table,
            RowLayout(5, 5),
            np.random.default_rng(seed),
        )

    a, b = draw(first, 0), draw(again, 0)
    assert all(np.array_equal(x, y) for x, y in zip(vars(a).values(), vars(b).values()))
    assert not np.array_equal(a.contexts_negatives, draw(first, 1).contexts_negatives)
