"""The optimiser registry: row-sparse SGD makes the same update as dense SGD, touching only
the rows of the batch; every registered optimiser trains."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import topic_corpus
from tests.test_train import assert_finds_partners, fresh_state, random_batch, to_pairs
from w2v_jax import data, optim, step, vectorised
from w2v_jax.config import OPTIMIZERS, smoke_config

VOCAB = 20
NOISE_PROBS = data.noise_distribution(np.arange(VOCAB) + 1.0)


@pytest.mark.parametrize("shared", [False, True])
def test_a_sparse_step_equals_a_dense_sgd_step(shared):
    overrides = {"noise_sharing": "per_batch", "shared_noise": 5} if shared else {}
    config = smoke_config(embed_size=6, max_window=1, optimizer="sgd", lr=0.5, **overrides)
    state, dense_sgd = fresh_state(config, VOCAB)
    batch = random_batch(np.random.default_rng(0), VOCAB, length=6 if shared else 12)
    if shared:
        batch["mask"] = batch["labels"]
    noise_probs = NOISE_PROBS if shared else None
    sparse_sgd = optim.make(config.replace(optimizer="sparse_sgd"), total_steps=100)
    dense = step.make_train_step(config, dense_sgd, noise_probs)
    sparse = step.make_train_step(config, sparse_sgd, noise_probs)
    expected, expected_metrics = jax.jit(dense)(state, to_pairs(batch))
    got, metrics = jax.jit(sparse)(state.replace(opt_state=sparse_sgd.init(state.params)),
                                   to_pairs(batch))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-7), expected.params,
                 got.params)
    np.testing.assert_allclose(metrics["loss_sum"], expected_metrics["loss_sum"], rtol=1e-6)
    assert int(got.step) == 1


def test_only_the_batch_rows_change():
    config = smoke_config(embed_size=6, max_window=1, optimizer="sparse_sgd", lr=1.0)
    state, optimizer = fresh_state(config, VOCAB)
    batch = random_batch(np.random.default_rng(1), VOCAB)
    new = jax.jit(step.make_train_step(config, optimizer))(state, to_pairs(batch))[0].params
    live_rows = batch["mask"].any(axis=1)  # a fully masked row has no gradient
    for table, ids in (("center_embed", batch["centers"][live_rows]),
                       ("context_embed", batch["contexts_negatives"][batch["mask"]])):
        changed = np.flatnonzero(np.any(new[table]["embedding"]
                                        != state.params[table]["embedding"], axis=1))
        assert set(changed) == set(np.unique(ids)), table


def test_learning_rate_decays_linearly_to_a_floor():
    rate = optim.linear_decay(0.5, 100)
    values = [float(rate(jnp.int32(step))) for step in (0, 50, 100, 150)]
    np.testing.assert_allclose(values, [0.5, 0.25, 0.5e-4, 0.5e-4], rtol=1e-6)


def test_sparse_sgd_finds_planted_partners():
    text, partners = topic_corpus()
    config = smoke_config(min_freq=1, subsample_t=1.0, max_window=2, num_noise=3, batch_size=64,
                          optimizer="sparse_sgd", lr=20.0, num_epochs=4,
                          noise_sharing="per_batch", shared_noise=16)
    prepared = assert_finds_partners(config, text, partners)
    with pytest.raises(ValueError, match="sparse_sgd.*one after another"):
        vectorised.train_together([config, config.replace(lr=10.0)], prepared)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_registered_optimiser_lowers_the_loss(name):
    """One class per optimiser, one registry: each trains a fixed batch down."""
    lr = {"adam": 0.05, "adagrad": 1.0, "sgd": 50.0, "sparse_sgd": 50.0}[name]
    config = smoke_config(embed_size=6, max_window=1, optimizer=name, lr=lr)
    assert set(optim.REGISTRY) == set(OPTIMIZERS)
    state, optimizer = fresh_state(config, VOCAB)
    pairs = to_pairs(random_batch(np.random.default_rng(3), VOCAB))
    train_step = jax.jit(step.make_train_step(config, optimizer))
    losses = []
    for _ in range(20):
        state, metrics = train_step(state, pairs)
        losses.append(float(metrics["loss_sum"]))
    assert losses[-1] < 0.9 * losses[0], losses
