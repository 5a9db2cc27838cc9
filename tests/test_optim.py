"""The optimiser registry: row-sparse SGD makes the same update as dense SGD, touching only
the rows of the batch; every registered optimiser trains."""

import typing

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tests.helpers import (
    assert_finds_partners,
    fresh_state,
    random_batch,
    smoke_config,
    to_pairs,
    topic_config,
    topic_corpus,
)
from w2v_jax import data, objectives
from w2v_jax.objectives.common import Touched
from w2v_jax.sections import Optimizer
from w2v_jax.training import loop, optim, step

OPTIMIZERS = typing.get_args(Optimizer)

VOCAB = 20
NOISE_TABLE = data.noise.AliasTable.build(data.noise.noise_distribution(np.arange(VOCAB) + 1.0))


@pytest.mark.parametrize("objective", list(objectives.REGISTRY))
@pytest.mark.parametrize("shared", [False, True])
def test_a_sparse_sgd_step_is_plain_sgd_on_the_tables_gradient(shared, objective):
    """Row-sparse SGD at a constant rate makes dense SGD's update: the tables less the rate
    times the gradient of the loss with respect to the whole tables."""
    overrides = {"noise.sharing": "per_batch", "noise.shared": 5} if shared else {}
    config = smoke_config(
        embed_size=6,
        max_window=1,
        objective=objective,
        **overrides,
        **{"optimizer.name": "sparse_sgd", "optimizer.lr": 0.5, "optimizer.schedule": "constant"},
    )
    state, sparse_sgd = fresh_state(config, VOCAB)
    batch = random_batch(np.random.default_rng(0), VOCAB, length=6 if shared else 12)
    if shared:
        batch["mask"] = batch["labels"]
    noise = None
    if shared:  # the noise words the step draws at step 0
        key = jax.random.fold_in(jax.random.key(config.seed), 0)
        accept, alias = (jnp.asarray(array) for array in NOISE_TABLE)
        noise = data.noise.sample_on_device(key, accept, alias, (1, 5))
    loss, grads = jax.value_and_grad(
        lambda params: objectives.table_loss(
            objectives.bind(config, params), to_pairs(batch), noise
        )[0]
    )(state.params)
    train_step = step.make_train_step(config, sparse_sgd, NOISE_TABLE if shared else None)
    got, metrics = jax.jit(train_step)(state, to_pairs(batch))
    expected = jax.tree.map(lambda table, grad: table - 0.5 * grad, state.params, grads)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-7), expected, got.params)
    np.testing.assert_allclose(metrics["loss_sum"] / metrics["num_examples"], loss, rtol=1e-6)
    assert int(got.step) == 1


def test_only_the_batch_rows_change():
    config = smoke_config(
        embed_size=6, max_window=1, **{"optimizer.name": "sparse_sgd", "optimizer.lr": 1.0}
    )
    state, optimizer = fresh_state(config, VOCAB)
    batch = random_batch(np.random.default_rng(1), VOCAB)
    new = jax.jit(step.make_train_step(config, optimizer))(state, to_pairs(batch))[0].params
    live_rows = batch["mask"].any(axis=1)  # a fully masked row has no gradient
    for table, ids in (
        ("center", batch["centers"][live_rows]),
        ("context", batch["contexts_negatives"][batch["mask"]]),
    ):
        changed = np.flatnonzero(np.any(new[table] != state.params[table], axis=1))
        assert set(changed) == set(np.unique(ids)), table


def word2vec_alpha(start: float, done: int, total: int) -> float:
    """word2vec.c's rate after ``done`` of ``total`` words: linear, floored at start * 1e-4."""
    return max(start * (1 - done / total), start * 1e-4)


@pytest.mark.parametrize("optimizer", ["sparse_sgd", "rowwise_adagrad"])
def test_a_linear_schedule_decays_as_word2vec_s_rate(optimizer):
    config = smoke_config(**{"optimizer.name": optimizer, "optimizer.schedule": "linear"})
    factor = optim.schedule(config, total_steps=100)
    steps = (0, 1, 37, 50, 99, 100, 150)
    got = [0.5 * float(factor(jnp.int32(s))) for s in steps]
    np.testing.assert_allclose(got, [word2vec_alpha(0.5, s, 100) for s in steps], rtol=1e-6)


def test_warm_up_rises_linearly_then_the_schedule_goes_on():
    warm = smoke_config(
        **{
            "optimizer.name": "rowwise_adagrad",
            "optimizer.schedule": "linear",
            "optimizer.warmup_steps": 10,
        }
    )
    factor = optim.schedule(warm, total_steps=100)
    got = [float(factor(jnp.int32(s))) for s in (0, 4, 9, 10, 50)]
    np.testing.assert_allclose(got, [0.1 * 1.0, 0.5 * 0.96, 1.0 * 0.91, 0.9, 0.5], rtol=1e-6)
    constant = optim.schedule(warm.replace(**{"optimizer.schedule": "constant"}), total_steps=100)
    np.testing.assert_allclose([float(constant(jnp.int32(s))) for s in (0, 9, 99)], [0.1, 1, 1])


def test_the_book_s_rate_has_no_schedule():
    assert optim.schedule(smoke_config(), 100) is None  # Adam takes its rate as it is
    assert optim.schedule(smoke_config(**{"optimizer.name": "rowwise_adagrad"}), 100) is None
    assert smoke_config(
        **{"optimizer.name": "sparse_sgd"}
    ).optimizer.rate_decays  # word2vec's, its own
    assert not smoke_config(
        **{"optimizer.name": "sparse_sgd", "optimizer.schedule": "constant"}
    ).optimizer.rate_decays


def test_dense_adam_on_a_schedule_equals_optax_s_scheduled_adam():
    config = smoke_config(
        embed_size=6,
        **{"optimizer.lr": 0.05, "optimizer.schedule": "linear", "optimizer.warmup_steps": 2},
    )
    state, ours = fresh_state(config, VOCAB, total_steps=4)
    rates = optax.join_schedules(
        [optax.linear_schedule(0.025, 0.05, 1), lambda n: 0.05 * (1 - (n + 1) / 4)], [1]
    )
    theirs = optim.DenseOptax(optax.adam(rates))
    batch = to_pairs(random_batch(np.random.default_rng(1), VOCAB, length=12))
    expected = state._replace(opt_state=theirs.init(state.params))
    ours_step = jax.jit(step.make_train_step(config, ours))
    theirs_step = jax.jit(step.make_train_step(config, theirs))
    for _ in range(3):
        state, expected = ours_step(state, batch)[0], theirs_step(expected, batch)[0]
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, atol=1e-7), state.params, expected.params
    )


def test_sparse_sgd_finds_planted_partners():
    text, partners = topic_corpus()
    config = topic_config(
        num_epochs=4,
        **{
            "optimizer.name": "sparse_sgd",
            "optimizer.lr": 20.0,
            "noise.sharing": "per_batch",
            "noise.shared": 16,
        },
    )
    assert_finds_partners(config, text, partners)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_registered_optimiser_lowers_the_loss(name):
    """One class per optimiser, one registry: each trains a fixed batch down."""
    lr = {
        "adam": 0.05,
        "sparse_sgd": 50.0,
        "rowwise_adagrad": 5.0,
        "lazy_adam": 0.05,
    }[name]
    config = smoke_config(
        embed_size=6, max_window=1, **{"optimizer.name": name, "optimizer.lr": lr}
    )
    assert set(optim.REGISTRY) == set(OPTIMIZERS)
    state, optimizer = fresh_state(config, VOCAB)
    pairs = to_pairs(random_batch(np.random.default_rng(3), VOCAB))
    train_step = jax.jit(step.make_train_step(config, optimizer))
    losses = []
    for _ in range(20):
        state, metrics = train_step(state, pairs)
        losses.append(float(metrics["loss_sum"]))
    assert losses[-1] < 0.9 * losses[0], losses


def numpy_rowwise_adagrad(table, acc, ids, rows, lr, eps=1e-10):
    """Row-wise Adagrad written out: duplicates summed, then each touched row updated."""
    table, acc = table.copy(), acc.copy()
    summed = {}
    for i, row in zip(ids, rows):
        summed[i] = summed.get(i, 0) + row
    for i, g in summed.items():
        acc[i] += np.mean(g * g)
        table[i] -= lr * g / np.sqrt(acc[i] + eps)
    return table, acc


def numpy_lazy_adam(table, mu, nu, count, ids, rows, lr, b1=0.9, b2=0.999, eps=1e-8):
    """Lazy Adam written out: duplicates summed; moments and counts move on touched rows only."""
    table, mu, nu, count = table.copy(), mu.copy(), nu.copy(), count.copy()
    summed = {}
    for i, row in zip(ids, rows):
        summed[i] = summed.get(i, 0) + row
    for i, g in summed.items():
        count[i] += 1
        mu[i] = b1 * mu[i] + (1 - b1) * g
        nu[i] = b2 * nu[i] + (1 - b2) * g * g
        mu_hat, nu_hat = mu[i] / (1 - b1 ** count[i]), nu[i] / (1 - b2 ** count[i])
        table[i] -= lr * mu_hat / (np.sqrt(nu_hat) + eps)
    return table, mu, nu, count


INITIAL_TABLE = np.random.default_rng(5).normal(size=(10, 3)).astype(np.float32)
UPDATES = [
    (np.array([1, 4, 4, 7, 1, 2]), np.random.default_rng(6).normal(size=(6, 3))),
    (np.array([4, 9, 9]), np.random.default_rng(7).normal(size=(3, 3))),
]


def two_updates(optimizer):
    """The table and state after each of UPDATES (duplicate ids; the second touches fewer
    rows than the first) from INITIAL_TABLE."""
    params = {"t": jnp.asarray(INITIAL_TABLE)}
    state, history = optimizer.init(params), []
    for step_number, (ids, rows) in enumerate(UPDATES):
        grads = {"t": [Touched(jnp.asarray(ids, jnp.int32), jnp.asarray(rows, jnp.float32))]}
        params, state = optimizer.update(params, state, grads, jnp.int32(step_number))
        history.append((np.asarray(params["t"]), jax.tree.map(np.asarray, state)))
    return history


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_rows_shared_through_an_index_update_as_the_rows_copied_per_id(name):
    """CBOW hands a center's one gradient row for each of its contexts (``Touched.index``):
    every optimiser updates as if the row were copied for each id, bitwise."""
    ids = jnp.asarray([1, 4, 4, 7, 1, 2, 9], jnp.int32)
    shared = jnp.asarray(np.random.default_rng(8).normal(size=(3, 3)), jnp.float32)
    index = jnp.asarray([0, 2, 1, 1, 0, 2, 0], jnp.int32)
    centers = Touched(jnp.asarray([[3, 4]], jnp.int32), shared[None, :2])
    optimizer = optim.make(smoke_config(**{"optimizer.name": name}))
    params = {"t": jnp.asarray(INITIAL_TABLE)}
    state = optimizer.init(params)
    copied = optimizer.update(
        params, state, {"t": [centers, Touched(ids, shared[index])]}, jnp.int32(0)
    )
    indexed = optimizer.update(
        params, state, {"t": [centers, Touched(ids, shared, index)]}, jnp.int32(0)
    )
    jax.tree.map(np.testing.assert_array_equal, copied, indexed)
    assert not np.array_equal(copied[0]["t"], INITIAL_TABLE)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_ids_a_step_did_not_read_are_neither_moved_nor_counted(name):
    """``Touched.mask``: an id left out (whatever its id and row hold) changes neither the
    tables nor the optimiser's state (lazy Adam's per-row counts, Adagrad's accumulators): the
    update is the one of the read ids alone, bitwise, with a row indexed or a row per id."""
    rng = np.random.default_rng(9)
    ids = jnp.asarray([1, 0, 4, 4, 0, 7], jnp.int32)
    rows = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    read = np.array([True, False, True, False, False, True])
    shared, index = rows[:3], jnp.asarray([0, 1, 2, 2, 1, 0], jnp.int32)
    optimizer = optim.make(smoke_config(**{"optimizer.name": name}))
    params = {"t": jnp.asarray(INITIAL_TABLE)}
    state = optimizer.init(params)
    for masked, alone in [
        (Touched(ids, rows, mask=jnp.asarray(read)), Touched(ids[read], rows[read])),
        (Touched(ids, shared, index, jnp.asarray(read)), Touched(ids[read], shared[index[read]])),
    ]:
        got = optimizer.update(params, state, {"t": [masked]}, jnp.int32(0))
        expected = optimizer.update(params, state, {"t": [alone]}, jnp.int32(0))
        jax.tree.map(np.testing.assert_array_equal, got, expected)
        assert np.array_equal(got[0]["t"][0], INITIAL_TABLE[0]), "row 0 left alone"


def test_rowwise_adagrad_equals_its_numpy_reference():
    history = two_updates(optim.RowwiseAdagrad(lr=0.5))
    table, acc = INITIAL_TABLE.astype(np.float64), np.zeros(10)
    for (ids, rows), (got_table, got_state) in zip(UPDATES, history):
        table, acc = numpy_rowwise_adagrad(table, acc, ids, rows.astype(np.float32), 0.5)
        np.testing.assert_allclose(got_table, table, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got_state["t"], acc, rtol=1e-5)
    untouched = [0, 3, 5, 6, 8]
    np.testing.assert_array_equal(history[1][0][untouched], INITIAL_TABLE[untouched])


def test_lazy_adam_equals_its_numpy_reference_and_leaves_untouched_rows_alone():
    history = two_updates(optim.LazyAdam(lr=0.1))
    table = INITIAL_TABLE.astype(np.float64)
    mu, nu, count = np.zeros((10, 3)), np.zeros((10, 3)), np.zeros(10, int)
    for (ids, rows), (got_table, got_state) in zip(UPDATES, history):
        table, mu, nu, count = numpy_lazy_adam(
            table, mu, nu, count, ids, rows.astype(np.float32), 0.1
        )
        np.testing.assert_allclose(got_table, table, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got_state["t"]["mu"], mu, rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(got_state["t"]["count"], count)
    # Rows 1, 2 and 7, touched by the first update only, stay where it left them.
    np.testing.assert_array_equal(history[1][0][[1, 2, 7]], history[0][0][[1, 2, 7]])


def test_lazy_adams_first_step_is_dense_adams():
    """From a fresh state an untouched row has no momentum: both move the same rows alike."""
    config = smoke_config(
        embed_size=6, max_window=1, **{"optimizer.name": "adam", "optimizer.lr": 0.01}
    )
    state, adam = fresh_state(config, VOCAB)
    lazy = optim.make(config.replace(**{"optimizer.name": "lazy_adam"}))
    pairs = to_pairs(random_batch(np.random.default_rng(4), VOCAB))
    dense_params = jax.jit(step.make_train_step(config, adam))(state, pairs)[0].params
    lazy_state = state._replace(opt_state=lazy.init(state.params))
    lazy_params = jax.jit(step.make_train_step(config, lazy))(lazy_state, pairs)[0].params
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
        dense_params,
        lazy_params,
    )


@pytest.mark.parametrize("name, lr", [("lazy_adam", 0.02), ("rowwise_adagrad", 2.0)])
def test_adaptive_row_sparse_optimisers_find_planted_partners(name, lr):
    text, partners = topic_corpus()
    config = topic_config(num_epochs=4, **{"optimizer.name": name, "optimizer.lr": lr})
    assert_finds_partners(config, text, partners)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_the_memory_said_before_training_is_the_state_a_run_holds(name):
    config = smoke_config(embed_size=6, **{"optimizer.name": name})
    state, _ = fresh_state(config, VOCAB)
    expected = loop.state_bytes(config, VOCAB)

    def size(tree):
        return sum(np.asarray(leaf).nbytes for leaf in jax.tree.leaves(tree))

    assert expected == {
        "tables": size(state.params),
        "optimiser": size(state.opt_state),
        "per_device": size(state),
        "mesh": "data=1,vocab=1",
    }
    assert expected["tables"] == 2 * VOCAB * 6 * 4
