"""The streamed data stage: blocks of whole sentences, subsampling with the corpus's counts,
groups that shuffle blocks, and a run cut into groups that resumes mid-epoch bitwise."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from tests.helpers import (
    encode_text,
    prepare_text,
    topic_config,
    topic_corpus,
)
from w2v_jax import data, feed
from w2v_jax.evaluation.evaluate import Embeddings
from w2v_jax.feed.group import group_order
from w2v_jax.run import train

# About 12 blocks of 1,000 tokens in groups of 3: 4 groups an epoch.
STREAMED = dict(block_tokens=1000, group_blocks=3)


@pytest.fixture(scope="module")
def topic_text():
    return topic_corpus(sentences=3000)[0]


@pytest.fixture(scope="module", params=["the book's one draw", "every draw anew"])
def streamed(topic_text, request):
    """The streamed corpus (its examples drawn on the device), trained on the first epoch's
    draws, and on draws of each epoch's own."""
    anew = request.param == "every draw anew"
    config = topic_config(
        **STREAMED, resample_each_epoch=anew, subsample_each_epoch=anew, subsample_t=0.01
    )
    return config, prepare_text(config, topic_text)


def test_blocks_are_whole_sentences_of_about_block_tokens(topic_text):
    _, corpus = encode_text(topic_text, 1)
    blocks = data.blocks.block_bounds(corpus.offsets, 1000)
    tokens = np.diff(corpus.offsets[blocks])
    assert blocks[0] == 0 and blocks[-1] == len(corpus.offsets) - 1
    assert np.all(tokens[:-1] >= 1000) and np.all(tokens[:-1] < 1000 + 4)  # sentences of 4
    assert tokens.sum() == len(corpus.ids)
    assert len(data.blocks.block_bounds(corpus.offsets, len(corpus.ids))) == 2, "small: one block"


def test_ptb_is_one_block(ptb_text):
    dataset = data.blocks.build_dataset(*encode_text(ptb_text, 10), 1e-4, seed=0)
    assert len(dataset.blocks) == 2 and dataset.num_centers == 343_062


def test_blocks_subsample_with_the_corpus_counts():
    """A block keeps a word at the rate its count in the whole corpus gives, not its count in
    the block: 'rare' is frequent in the first block only, yet kept as the rare word it is."""
    text = "rare common x\n" * 400 + "common y z\n" * 40_000
    vocab, corpus = encode_text(text, 1)
    dataset = data.blocks.build_dataset(vocab, corpus, 1e-2, seed=0, block_tokens=1200)
    assert len(dataset.blocks) - 1 > 50
    keep = data.examples.keep_probabilities(corpus, 1e-2)
    first = dataset.subsampled_block(0)
    kept = np.bincount(first.ids, minlength=len(vocab))[vocab["rare"]]
    expected = 400 * keep[vocab["rare"]]
    assert abs(kept - expected) < 4 * np.sqrt(expected)
    total = sum(
        np.bincount(dataset.subsampled_block(b).ids, minlength=len(vocab))
        for b in range(len(dataset.blocks) - 1)
    )
    expected = vocab.counts * keep
    assert np.all(np.abs(total - expected)[1:] < 4 * np.sqrt(expected[1:]) + 1)


def test_each_epoch_draws_a_block_order_and_covers_every_row_once(streamed):
    config, prepared = streamed
    assert prepared.examples is None  # drawn as it trains
    config = config.replace(num_epochs=3)
    stream = feed.open_stream(config, prepared.dataset, prepared.examples)
    num_blocks = len(prepared.dataset.blocks) - 1
    orders, counts = [], []
    groups = iter(stream.groups(0))
    for epoch in range(3):
        plan = stream.plan.epoch(epoch)
        blocks = np.concatenate(plan.groups)
        assert np.array_equal(np.sort(blocks), np.arange(num_blocks))
        assert all(len(g) <= config.group_blocks for g in plan.groups)
        orders.append(blocks.tolist())
        seen = 0
        for index in range(len(plan.groups)):
            group = next(groups)
            assert (group.epoch, group.index) == (epoch, index)
            assert group.first_step == stream.plan.group_start(epoch, index)
            order = np.asarray(group_order(config, group.rows, epoch, index))
            rows = order[order < group.rows]
            assert np.array_equal(np.sort(rows), np.arange(group.rows))
            live = np.asarray(group.examples.num_live) > 0
            held = group.layout.device_rows()[:-1]
            assert live[held].all() and not np.delete(live, held).any()
            assert not live[group.layout.padding_row]
            assert len(order) == plan.batches[index] == group.end_step - group.first_step
            seen += len(rows)
        centers = prepared.dataset.block_centers(config.subsample_draw(epoch))
        assert seen == plan.rows.sum() == centers.sum()
        counts.append(seen)
    assert orders[0] != orders[1] != orders[2]
    assert len(plan.groups) == 4
    assert (len(set(counts)) == 3) == config.subsample_each_epoch, "each epoch its centers"


def test_a_group_is_the_same_whenever_it_is_drawn(streamed):
    config, prepared = streamed
    stream = feed.open_stream(config.replace(num_epochs=2), prepared.dataset)
    epoch_one = stream.plan.epoch_start(1)
    first = [g.examples for g in stream.groups(epoch_one)]
    again = [g.examples for g in stream.groups(stream.plan.group_start(1, 2) + 1)]
    for a, b in zip(first[2:], again, strict=True):
        jax.tree.map(np.testing.assert_array_equal, a, b)  # every field of the group


def test_streamed_training_learns_the_topics(streamed):
    config, prepared = streamed
    run = train(config.replace(num_epochs=4), data=prepared, evaluation=None, progress=False)
    assert run.history[-1].loss < 0.8 * run.history[0].loss
    assert [stats.centers for stats in run.history] == [
        prepared.dataset.block_centers(config.subsample_draw(epoch)).sum() for epoch in range(4)
    ]
    vectors = Embeddings(prepared.vocab.tokens, run.params["center"])
    for a, b in topic_corpus()[1]:
        assert vectors.most_similar(a, 1)[0][0] == b and vectors.most_similar(b, 1)[0][0] == a


def test_the_feed_said_before_training_is_what_it_sends(streamed, caplog):
    """The bytes a center sends, said before training, are the bytes sent: the device's slots
    of token ids, a seventh of the bytes of the book's rows or less."""
    config, prepared = streamed
    with caplog.at_level("INFO", logger="w2v_jax"):
        run = train(config.replace(num_epochs=1), data=prepared, evaluation=None, progress=False)
    feed_line = next(r.message for r in caplog.records if r.message.startswith("examples: "))
    assert feed_line.startswith("examples: drawn on the device, ")
    said = run.feed["bytes_per_center"]
    assert f"{said:.1f} bytes a center to the device" in feed_line
    assert run.feed["sent_bytes"] == pytest.approx(said * prepared.num_centers, rel=1e-9)
    assert said < (config.row_layout.max_len + 3) * 4 / 7


@pytest.mark.parametrize(
    "anew", [(False, False), (True, False), (False, True), (True, True)], ids=str
)
def test_a_corpus_of_one_group_draws_anew_what_the_config_says(topic_text, anew):
    """The numpy stage's draws of an epoch: windows and noise words (resample_each_epoch)
    and the subsampling (subsample_each_epoch) anew, or the first epoch's."""
    resample, subsample = anew
    config = topic_config(
        resample_each_epoch=resample, subsample_each_epoch=subsample, subsample_t=0.01
    )
    prepared = prepare_text(config, topic_text)
    block = np.array([0])
    first, second = (
        data.blocks.draw_group(config, prepared.dataset, block, epoch) for epoch in (1, 2)
    )
    assert np.array_equal(first.centers, second.centers) != subsample
    same = len(first) == len(second) and np.array_equal(
        first.contexts_negatives, second.contexts_negatives
    )
    assert same != (resample or subsample)
    stream = feed.open_stream(config.replace(num_epochs=3), prepared.dataset, prepared.examples)
    sent = [group.examples.centers for group in stream.groups(0)]
    assert (sent[0] is sent[2]) != (resample or subsample), "kept on the device unless drawn"
