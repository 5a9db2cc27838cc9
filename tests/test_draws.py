"""Examples drawn on the device (w2v_jax.feed.draws) against the book's numpy stage, the reference:
the same rows given the same subsampling and windows, and the same distributions where the
random streams differ (keep rates, windows, noise words)."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from tests.helpers import encode_text, topic_config
from w2v_jax import data, parallel
from w2v_jax.data.examples import draw_examples, keep_probabilities
from w2v_jax.data.noise import noise_distribution
from w2v_jax.data.vocab import Corpus
from w2v_jax.feed import batches, device, draws
from w2v_jax.feed.stream import KeptGroup
from w2v_jax.rows import ROW_FIELDS, Rows


def zipf_text(tokens: int = 60_000, words: int = 400, seed: int = 0) -> str:
    """Sentences of 1 to 30 words drawn with Zipf frequencies (frequent words to subsample,
    rare ones under min_freq to become <unk>)."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, words + 1)
    drawn = rng.choice(words, tokens, p=weights / weights.sum())
    cuts = np.cumsum(rng.integers(1, 31, tokens // 10))
    lines = np.split(drawn, cuts[cuts < tokens])
    return "\n".join(" ".join(f"w{w}" for w in line) for line in lines) + "\n"


def device_dataset(text, t=1e-3, formula="book", min_freq=3, block_tokens=20_000, seed=0):
    vocab, corpus = encode_text(text, min_freq)
    return data.blocks.build_dataset(
        vocab, corpus, t, seed, formula, block_tokens, count_on_device=device.count_on_device
    )


drawn_rows = jax.jit(draws.batch_rows, static_argnames=("seed", "layout"))


def expanded(config, dataset, block: int, draw_epoch: int = 0, subsample_draw: int = 0):
    """Block ``block`` expanded alone on the default device, and every row of it drawn."""
    placement = parallel.Placement.single()
    dataset.count(range(subsample_draw + 1))
    drawer = device.DeviceDrawer(
        config.replace(num_epochs=subsample_draw + 1, subsample_each_epoch=True),
        dataset,
        placement,
        1,
    )
    slots = data.blocks.block_slots(dataset, np.array([block]), drawer.slots)
    examples = drawer.expand({0: slots}, draw_epoch, subsample_draw)
    rows, _ = drawn_rows(
        examples,
        np.arange(drawer.slot_rows, dtype=np.int32),
        seed=config.seed,
        layout=config.row_layout,
    )
    count = int(dataset.block_centers(subsample_draw)[block])
    rows = {name: np.asarray(getattr(rows, name))[:count] for name in ROW_FIELDS}
    return examples, rows


def device_keep(dataset, block: int, subsample_draw: int = 0) -> np.ndarray:
    """bool [block tokens]: which tokens of the block the device keeps in a draw."""
    slots = data.blocks.block_slots(dataset, np.array([block]), 1)
    length = int(slots.lengths[0])
    keep, *_ = draws.subsampled(
        slots.ids[0],
        slots.offsets[0],
        length,
        block,
        subsample_draw,
        device.keep_probabilities(dataset),
        dataset.seed,
    )
    return np.asarray(keep)[:length]


def host_reference(config, dataset, block: int, draw_epoch: int = 0):
    """The block subsampled as the device subsamples it, and drawn by the numpy stage with
    the device's windows."""
    slots = data.blocks.block_slots(dataset, np.array([block]), 1)
    length = int(slots.lengths[0])
    keep = device_keep(dataset, block)
    ids, offsets = slots.ids[0, :length], slots.offsets[0]
    kept_before = np.concatenate([[0], np.cumsum(keep)])
    corpus = Corpus(ids[keep], kept_before[offsets[offsets <= length]].astype(np.int64))
    count = int(dataset.block_centers(0)[block])
    windows = np.asarray(
        draws.center_windows(dataset.seed, draw_epoch, block, count, config.max_window)
    )
    return corpus, draw_examples(
        corpus,
        dataset.noise_table,
        config.row_layout,
        np.random.default_rng(0),
        windows=windows,
    )


@pytest.fixture(scope="module")
def dataset():
    return device_dataset(zipf_text())


@pytest.mark.parametrize("objective", ["skipgram", "cbow"])
def test_the_rows_are_the_references_given_its_subsampling_and_windows(dataset, objective):
    config = topic_config(max_window=4, subsample_t=1e-3, objective=objective, **{"noise.count": 2})
    assert len(dataset.blocks) - 1 == 3
    for block in range(3):
        _, rows = expanded(config, dataset, block)
        _, reference = host_reference(config, dataset, block)
        assert len(reference) == dataset.block_centers(0)[block] > 1000
        assert np.array_equal(rows["centers"], reference.centers)
        assert np.array_equal(rows["num_contexts"], reference.num_contexts)
        assert np.array_equal(rows["num_left"], reference.num_left)
        assert np.array_equal(rows["num_live"], reference.num_live)
        contexts = reference.labels  # the context slots: the same words
        assert np.array_equal(
            rows["contexts_negatives"][contexts], reference.contexts_negatives[contexts]
        )
        assert not rows["contexts_negatives"][~reference.mask].any(), "0s after the live slots"


def test_the_host_s_rows_the_device_s_rows_and_their_shapes_follow_the_declared_fields(dataset):
    """``rows.ROW_FIELDS``, declared once: the numpy stage's examples, the device's drawn rows,
    the shapes a program is compiled for and the bytes a group sends all have its fields."""
    config = topic_config(max_window=4, subsample_t=1e-3, **{"noise.count": 2})
    layout = config.row_layout
    _, rows = expanded(config, dataset, 0)
    _, host = host_reference(config, dataset, 0)
    assert [field.name for field in dataclasses.fields(host)] == list(ROW_FIELDS)
    for name, field in ROW_FIELDS.items():
        for values in (rows[name], getattr(host, name)):
            assert values.dtype == field.dtype and values.shape[1:] == layout.field_shape(name)
    whole = data.blocks.build_dataset(*encode_text(zipf_text(3000), 3), 1e-3, 0, "book", 1 << 20)
    stream = KeptGroup(config, whole, parallel.Placement.single())
    shapes = stream.device_shapes()
    assert isinstance(shapes, Rows)
    assert stream.group_bytes() == sum(
        int(np.prod(shape.shape)) * shape.dtype.itemsize for shape in jax.tree.leaves(shapes)
    )


@pytest.mark.parametrize("formula", ["book", "word2vec"])
def test_each_word_is_kept_at_its_formulas_rate(formula):
    text = zipf_text(tokens=100_000, words=200, seed=1)
    ours = device_dataset(text, t=1e-3, formula=formula, min_freq=1, block_tokens=1 << 20)
    vocab = ours.vocab
    keep = keep_probabilities(ours.corpus, 1e-3, formula, vocab.counts)
    config = topic_config(subsample_t=1e-3, subsample=formula)
    examples, _ = expanded(config, ours, 0)
    kept = np.bincount(np.asarray(examples.tokens), minlength=len(vocab))[1:]
    expected = vocab.counts[1:] * keep[1:]
    spread = np.sqrt(vocab.counts[1:] * keep[1:] * (1 - keep[1:]))
    assert np.all(np.abs(kept - expected) <= 4 * spread + 1)
    assert keep[1] < 0.2, "the most frequent word is mostly dropped"


def test_windows_are_uniform_and_contexts_stay_in_the_sentence(dataset):
    config = topic_config(max_window=5, subsample_t=1e-3, **{"noise.count": 1})
    windows = np.asarray(draws.center_windows(0, 0, 0, 200_000, 5))
    counts = np.bincount(windows, minlength=6)
    assert counts[0] == 0 and np.all(np.abs(counts[1:] - 40_000) < 4 * np.sqrt(32_000))
    examples, rows = expanded(config, dataset, 0)
    tokens = np.asarray(examples.tokens)
    position = np.asarray(examples.position)[: len(rows["centers"])]
    left = np.asarray(examples.left)[: len(rows["centers"])]
    kept, reference = host_reference(config, dataset, 0)
    assert np.array_equal(tokens[position], rows["centers"][:, 0])
    slot = np.arange(10)
    places = position[:, None] - left[:, None] + slot + (slot >= left[:, None])
    live = slot < rows["num_contexts"][:, None]
    assert not np.any((places == position[:, None]) & live), "never the center itself"
    rows["contexts_negatives"] = rows["contexts_negatives"][:, :10]
    assert np.array_equal(tokens[np.where(live, places, 0)][live], rows["contexts_negatives"][live])
    sentence = np.searchsorted(kept.offsets, np.arange(len(kept.ids)), side="right") - 1
    assert np.all((sentence[np.where(live, places, 0)] == sentence[position][:, None])[live])
    assert np.array_equal(rows["num_contexts"], reference.num_contexts)
    assert rows["num_contexts"].max() == 10


@pytest.mark.parametrize("objective", ["skipgram", "cbow"])
def test_noise_words_follow_the_reference_and_avoid_their_rows_words(dataset, objective):
    """Skip-gram's noise words are never one of their row's contexts, CBOW's never its
    center; either way they follow the host's reference and counts^0.75."""
    config = topic_config(max_window=3, subsample_t=1e-3, objective=objective, **{"noise.count": 5})
    layout = config.row_layout
    ours, theirs = [], []
    for block in range(3):
        _, rows = expanded(config, dataset, block)
        _, reference = host_reference(config, dataset, block)
        noise = rows["contexts_negatives"]
        noise_slots = reference.mask & ~reference.labels
        for row in range(len(noise)):
            count = rows["num_contexts"][row]
            drawn = noise[row, count : layout.num_live(count)]
            avoided = noise[row, :count] if layout.per_context else rows["centers"][row]
            assert len(drawn) == layout.num_noise(count) and not np.isin(drawn, avoided).any()
        assert np.array_equal(rows["num_live"], layout.num_live(rows["num_contexts"]))
        ours.append(noise[noise_slots])
        theirs.append(reference.contexts_negatives[noise_slots])
    ours, theirs = np.concatenate(ours), np.concatenate(theirs)
    assert len(ours) == len(theirs) > (100_000 if layout.per_context else 20_000)
    assert ours.min() >= 1
    size = len(dataset.vocab)
    a, b = np.bincount(ours, minlength=size), np.bincount(theirs, minlength=size)
    assert np.all(np.abs(a - b) <= 5 * np.sqrt(a + b) + 2), "the reference's distribution"
    expected = noise_distribution(dataset.vocab.counts) * len(ours)
    frequent = expected > 2000  # frequent words are excluded a little more often
    assert np.all(np.abs(a[frequent] - expected[frequent]) < 0.1 * expected[frequent])


def test_a_block_draws_the_same_rows_until_its_epoch_is_drawn_anew(dataset):
    config = topic_config(max_window=4, subsample_t=1e-3, **{"noise.count": 2})
    _, first = expanded(config, dataset, 1, draw_epoch=0)
    _, again = expanded(config, dataset, 1, draw_epoch=0)
    _, windows = expanded(config, dataset, 1, draw_epoch=1)
    _, subsampled = expanded(config, dataset, 1, draw_epoch=0, subsample_draw=1)
    for name in first:
        assert np.array_equal(first[name], again[name])
    assert np.array_equal(first["centers"], windows["centers"]), "the same subsampling"
    assert not np.array_equal(first["num_contexts"], windows["num_contexts"])
    assert not np.array_equal(first["contexts_negatives"], windows["contexts_negatives"])
    assert len(subsampled["centers"]) == dataset.block_centers(1)[1]
    assert len(subsampled["centers"]) != len(first["centers"]), "another subsampling"


@pytest.mark.parametrize("side", ["host", "device"])
def test_each_epochs_subsampling_keeps_a_word_at_its_rate_independently(side):
    """Over 6 draws, each word's keep rate is its formula's, and a token kept in one draw is
    kept in the next at the word's rate, not more often: the draws are independent."""
    # Text from another generator than the subsampling's (numpy's seed 0 is the stream
    # [0, 0, 0] of draw 0, block 0).
    dataset = device_dataset(zipf_text(seed=2))
    epochs, block = 6, 0
    if side == "device":
        kept = np.stack([device_keep(dataset, block, draw) for draw in range(epochs)])
    else:
        kept = np.stack([host_keep(dataset, block, draw) for draw in range(epochs)])
    part = data.blocks.corpus_block(dataset.corpus, dataset.blocks, block)
    keep = keep_probabilities(part, dataset.subsample_t, "book", dataset.vocab.counts)
    rate = keep[part.ids]
    judged = (part.ids != 0) & (rate < 0.9)  # words whose draws vary
    assert judged.sum() > 5_000
    for word in np.unique(part.ids[judged]):
        at = part.ids == word
        n, p = at.sum() * epochs, keep[word]
        assert abs(kept[:, at].sum() - n * p) <= 4 * np.sqrt(n * p * (1 - p)) + 1
    both = (kept[:-1] & kept[1:])[:, judged].sum()
    expected = (epochs - 1) * np.sum(rate[judged] ** 2)
    spread = np.sqrt((epochs - 1) * np.sum(rate[judged] ** 2 * (1 - rate[judged] ** 2)))
    assert abs(both - expected) <= 4 * spread, "kept again at the word's rate"
    assert not np.array_equal(kept[0], kept[1])


def host_keep(dataset, block: int, draw: int) -> np.ndarray:
    """bool [block tokens]: which tokens the host's subsampling keeps in a draw (the numpy
    stage's generator of that draw, as ``Dataset.subsampled_block`` uses it)."""
    part = data.blocks.corpus_block(dataset.corpus, dataset.blocks, block)
    keep = keep_probabilities(part, dataset.subsample_t, "book", dataset.vocab.counts)
    rng = data.examples.stream_rng(dataset.seed, data.examples.SUBSAMPLE_STREAM, draw, block)
    kept = (part.ids != 0) & (rng.random(len(part.ids)) < keep[part.ids])
    assert np.array_equal(part.ids[kept], dataset.subsampled_block(block, draw).ids)
    return kept


def test_a_pair_s_offset_places_its_context_beside_its_center(dataset):
    """``Pairs.offset``, from a row's ``num_left``: on the device's rows and on the host's, the
    kept token at its center's place plus a context's offset is that context."""
    config = topic_config(max_window=5, subsample_t=1e-3, **{"noise.count": 1})
    examples, rows = expanded(config, dataset, 0)
    _, reference = host_reference(config, dataset, 0)
    tokens, position = np.asarray(examples.tokens), np.asarray(examples.position)
    for drawn in (Rows(**rows), reference):
        on_device = jax.tree.map(jax.numpy.asarray, drawn)
        pairs = jax.tree.map(np.asarray, batches.gather_padded(on_device, np.arange(len(drawn))))
        row = np.arange(pairs.words.size) // drawn.contexts_negatives.shape[1]
        context = pairs.labels
        at = position[row[context]] + pairs.offset[context]
        assert np.array_equal(tokens[at], pairs.words[context])
        assert set(np.unique(pairs.distance[context])) == set(range(1, 6))
        assert not pairs.offset[~context].any()


def test_a_row_is_the_same_in_any_batch(dataset):
    """A row's noise words come from its own key, not the batch's: any order, any mesh."""
    config = topic_config(max_window=4, subsample_t=1e-3, **{"noise.count": 2})
    examples, rows = expanded(config, dataset, 2)
    picked = np.array([7, 3, 1000, 5], np.int32)
    drawn, _ = drawn_rows(
        examples,
        jax.numpy.asarray(picked),
        seed=0,
        layout=config.row_layout,
    )
    assert np.array_equal(np.asarray(drawn.contexts_negatives), rows["contexts_negatives"][picked])
