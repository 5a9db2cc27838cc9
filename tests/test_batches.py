"""The two layouts of a batch's pairs: packed pairs are the padded rows' live slots, with the
same loss, gradients, updates and runs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import (
    assert_finds_partners,
    fresh_state,
    prepare_text,
    random_rows,
    smoke_config,
    topic_config,
    topic_corpus,
)
from tests.tolerances import reordered_sums_tol
from w2v_jax import data, objectives
from w2v_jax.feed import batches
from w2v_jax.rows import NOISE_FOR, RowLayout
from w2v_jax.run import train
from w2v_jax.training import loop, step

VOCAB = 30
NOISE_TABLE = data.noise.AliasTable.build(data.noise.noise_distribution(np.arange(VOCAB) + 1.0))


def random_examples(rng, rows=40, length=12, num_noise=2, objective="skipgram"):
    """Device examples as shards.to_device makes them, the last row the padding row, laid out
    for ``objective`` (``w2v_jax.rows``)."""
    layout = RowLayout(2, num_noise, NOISE_FOR[objective])
    most = next(k for k in range(length, -1, -1) if layout.num_live(k) <= length)
    num_contexts = rng.integers(0, most + 1, size=rows)
    num_contexts[-1] = 0
    return random_rows(rng, num_contexts, layout.num_live(num_contexts), length, VOCAB)


def batch_rows(rng, examples, batch=8):
    rows = rng.choice(len(examples) - 1, batch - 1, replace=False)
    return np.append(rows, len(examples) - 1).astype(np.int32)  # and padding


def test_packing_lays_the_live_slots_end_to_end():
    rng = np.random.default_rng(0)
    examples = random_examples(rng)
    rows = batch_rows(rng, examples)
    capacity = capacity_for(examples.num_live[:-1], rows[None])
    got = jax.tree.map(np.asarray, batches.gather_packed(examples, rows, capacity))
    padded = jax.tree.map(np.asarray, batches.gather_padded(examples, rows))
    live = padded.mask
    count = int(live.sum())
    assert capacity % batches.CAPACITY_STEP == 0 and capacity >= count
    np.testing.assert_array_equal(got.words[:count], padded.words[live])
    length = examples.contexts_negatives.shape[1]  # padded pair p belongs to row p // L
    np.testing.assert_array_equal(got.owner[:count], np.nonzero(live)[0] // length)
    np.testing.assert_array_equal(padded.rows_of_pairs, np.arange(live.size) // length)
    np.testing.assert_array_equal(got.labels[:count], padded.labels[live])
    assert got.mask[:count].all() and not got.mask[count:].any()
    assert not got.labels[count:].any()
    # Each pair's slot in its row, as the padded layout has it.
    np.testing.assert_array_equal(got.slot[:count], padded.slot[live])
    assert (padded.slot == np.tile(np.arange(length), len(rows))).all()
    # Each context's place relative to its center: its row's num_left contexts on the left.
    np.testing.assert_array_equal(got.offset[:count], padded.offset[live])
    assert not got.offset[count:].any() and not padded.offset[~padded.labels].any()
    left = np.repeat(examples.num_left[rows], length)[padded.labels]
    slot = padded.slot[padded.labels]
    expected = np.where(slot < left, slot - left, slot - left + 1)
    np.testing.assert_array_equal(padded.offset[padded.labels], expected)
    np.testing.assert_array_equal(padded.distance, np.abs(padded.offset))
    # A row's field as its pairs': each pair's row's, in either layout.
    for pairs in (got, padded):
        left = np.asarray(pairs.rows.num_left)[pairs.rows_of_pairs]
        np.testing.assert_array_equal(pairs.per_pair(pairs.rows.num_left), left)


def capacity_for(num_live: np.ndarray, order: np.ndarray) -> int:
    """The capacity a packed layout fitted to every batch of ``order`` (int32 [batches,
    batch], rows of ``num_live``, the index len(num_live) meaning the padding row) holds."""
    live = np.append(num_live, 0)[order].sum(axis=1, dtype=np.int64)
    return batches.Packed(0).fit(int(live.max(initial=0))).capacity


def test_capacity_holds_every_batch_and_only_grows():
    num_live = np.array([3, 9, 0, 6], np.int32)
    order = np.array([[0, 1], [2, 3], [3, 4]], np.int32)  # 4: the padding row
    assert capacity_for(num_live, order) == batches.CAPACITY_STEP
    assert capacity_for(num_live * 100, order) == 5 * batches.CAPACITY_STEP  # 1,200
    layout = batches.Packed(1000)
    assert layout.fit(10).capacity == 1024, "rounded up, never shrunk"
    assert layout.fit(2000, headroom=True).capacity == 2304, "2,000 and 1/32 more, rounded"
    assert layout.at_least(batches.Packed(1536)).capacity == 1536
    assert layout.at_least(batches.Padded()) == layout
    assert batches.Padded().at_least(layout) == batches.Padded()
    for saved in (batches.Padded(), batches.Packed(1024)):
        assert batches.saved_layout({"layout": saved.to_dict()}) == saved
    assert batches.saved_layout({"layout": None}) is None  # not known (compat.progress_now)


def one_batch_both_ways(seed, shared, objective="skipgram"):
    """A fresh train state and one random batch, padded and packed."""
    rng = np.random.default_rng(seed)
    examples = random_examples(rng, num_noise=0 if shared else 2, objective=objective)
    rows = batch_rows(rng, examples)
    state, _ = fresh_state(smoke_config(embed_size=6), VOCAB)
    return (
        state,
        batches.gather_padded(examples, rows),
        batches.gather_packed(examples, rows, 256),
    )


def assert_close(got, expected):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), got, expected)


@pytest.mark.parametrize("objective", list(objectives.REGISTRY))
@pytest.mark.parametrize("shared", [False, True])
def test_loss_and_gradients_equal_the_padded_layout(shared, objective):
    state, padded_batch, packed_batch = one_batch_both_ways(1, shared, objective)
    noise = jnp.array([[3, 1, 4], [5, 9, 2]], jnp.int32) if shared else None  # 2 groups
    config = smoke_config(objective=objective, **{"noise.count": 5})

    def loss_and_grads(pairs):
        return jax.value_and_grad(
            lambda params: objectives.table_loss(objectives.bind(config, params), pairs, noise),
            has_aux=True,
        )(state.params)

    assert_close(loss_and_grads(packed_batch), loss_and_grads(padded_batch))


@pytest.mark.parametrize("objective", list(objectives.REGISTRY))
@pytest.mark.parametrize("shared", [False, True])
def test_a_packed_sparse_step_equals_a_padded_one(shared, objective):
    state, padded_batch, packed_batch = one_batch_both_ways(2, shared, objective)
    overrides = {"noise.sharing": "per_batch", "noise.shared": 5} if shared else {}
    config = smoke_config(
        embed_size=6,
        objective=objective,
        **overrides,
        **{"optimizer.name": "sparse_sgd", "optimizer.lr": 0.5},
    )
    _, optimizer = fresh_state(config, VOCAB)
    train_step = jax.jit(step.make_train_step(config, optimizer, NOISE_TABLE if shared else None))
    expected = train_step(state, padded_batch)
    got = train_step(state, packed_batch)
    assert_close((got[0].params, got[1]), (expected[0].params, expected[1]))


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"noise.sharing": "per_batch", "noise.shared": 8},
        {"optimizer.name": "sparse_sgd", "optimizer.lr": 5.0},
        {"objective": "cbow"},
        {"objective": "cbow", "noise.sharing": "per_batch", "noise.shared": 8},
    ],
)
def test_a_packed_run_equals_a_padded_run(overrides):
    text, _ = topic_corpus(sentences=300)
    config = smoke_config(min_freq=1, num_epochs=2, resample_each_epoch=True, **overrides)
    prepared = prepare_text(config, text)
    runs = [
        train(
            config.replace(**{"execution.layout": layout}),
            data=prepared,
            evaluation=None,
            progress=False,
        )
        for layout in ("padded", "packed")
    ]
    tol = reordered_sums_tol()
    np.testing.assert_allclose(
        [s.loss for s in runs[1].history], [s.loss for s in runs[0].history], rtol=tol
    )
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, atol=tol), runs[1].params, runs[0].params
    )


def test_an_epoch_needing_more_pairs_compiles_a_larger_program():
    rng = np.random.default_rng(3)
    examples = random_examples(rng, rows=200, length=60, num_noise=2)
    config = smoke_config(embed_size=6, batch_size=64)
    vocab = data.vocab.Vocab(tuple(map(str, range(VOCAB))), np.ones(VOCAB, np.int64))
    program = loop.Program(
        config.replace(**{"execution.layout": "packed", "execution.steps_per_dispatch": 3}),
        vocab,
        0,
    )
    state = program.init_state()
    order = rng.permutation(199).astype(np.int32)[:192].reshape(3, 64)
    capacity = capacity_for(examples.num_live[:-1], order)
    program.fit(capacity)
    state, first = program(state, examples, order)
    assert program.layout.capacity == capacity and np.isfinite(first.mean_loss)
    program.fit(capacity + 1)  # grown: the next dispatch compiles a larger program
    _, second = program(state, examples, order)
    assert program.layout.capacity == capacity + batches.CAPACITY_STEP
    assert second.mean_loss < first.mean_loss


def test_packed_sparse_sgd_finds_planted_partners():
    text, partners = topic_corpus()
    config = topic_config(
        num_epochs=4,
        **{
            "optimizer.name": "sparse_sgd",
            "optimizer.lr": 20.0,
            "execution.layout": "packed",
            "noise.sharing": "per_batch",
            "noise.shared": 16,
        },
    )
    assert_finds_partners(config, text, partners)


def test_a_padded_checkpoint_resumes_packed(tmp_path):
    text, _ = topic_corpus(sentences=300)
    config = smoke_config(min_freq=1, num_epochs=2, **{"execution.layout": "padded"})
    prepared = prepare_text(config, text)
    straight = train(config, data=prepared, evaluation=None, progress=False)
    train(
        config.replace(num_epochs=1),
        data=prepared,
        evaluation=None,
        progress=False,
        workdir=tmp_path,
    )
    resumed = train(
        config.replace(**{"execution.layout": "packed"}),
        data=prepared,
        evaluation=None,
        progress=False,
        workdir=tmp_path,
    )
    assert resumed.resumed_from is not None and len(resumed.history) == 2
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, atol=reordered_sums_tol()),
        resumed.params,
        straight.params,
    )


def test_a_device_drawn_order_is_a_permutation_padded_as_the_hosts():
    order = np.asarray(batches.device_batch_order(1003, 64, jax.random.key(0)))
    host = data.examples.batch_order(1003, 64, np.random.default_rng(0))
    assert order.shape == host.shape == (16, 64) and order.dtype == host.dtype
    np.testing.assert_array_equal(np.sort(order.ravel()[:1003]), np.arange(1003))
    assert (order.ravel()[1003:] == 1003).all()
    other = np.asarray(batches.device_batch_order(1003, 64, jax.random.key(1)))
    assert (order != other).mean() > 0.9


def test_the_auto_layout_packs_on_a_cpu_and_pads_elsewhere():
    expected = "packed" if jax.default_backend() == "cpu" else "padded"
    assert batches.pair_layout("auto").packed == (expected == "packed")
    assert [batches.pair_layout(x).packed for x in ("packed", "padded")] == [True, False]
