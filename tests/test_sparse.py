"""Row-sparse SGD: the same update as dense SGD, touching only the rows of the batch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import topic_corpus
from tests.test_train import assert_finds_partners, random_batch
from w2v_jax import data, sparse, train, vectorised
from w2v_jax.config import smoke_config

VOCAB = 20
NOISE_PROBS = data.noise_distribution(np.arange(VOCAB) + 1.0)


@pytest.mark.parametrize("shared", [False, True])
def test_a_sparse_step_equals_a_dense_sgd_step(shared):
    overrides = {"noise_sharing": "per_batch", "shared_noise": 5} if shared else {}
    config = smoke_config(embed_size=6, max_window=1, optimizer="sgd", lr=0.5, **overrides)
    state = train.create_train_state(config, VOCAB, jax.random.key(0))
    batch = random_batch(np.random.default_rng(0), VOCAB, length=6 if shared else 12)
    if shared:
        batch["mask"] = batch["labels"]
        dense = train.make_shared_noise_step(NOISE_PROBS, 5, config.num_noise, config.seed)
    else:
        dense = train.train_step
    step = sparse.make_sparse_sgd_step(0.5, 100, config.num_noise, config.seed,
                                       NOISE_PROBS if shared else None, 5)
    expected, expected_metrics = jax.jit(dense)(state, batch)
    got, metrics = jax.jit(step)(state, batch)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-7), expected.params,
                 got.params)
    np.testing.assert_allclose(metrics["loss_sum"], expected_metrics["loss_sum"], rtol=1e-6)
    assert int(got.step) == 1


def test_only_the_batch_rows_change():
    config = smoke_config(embed_size=6, max_window=1)
    state = train.create_train_state(config, VOCAB, jax.random.key(0))
    batch = random_batch(np.random.default_rng(1), VOCAB)
    step = sparse.make_sparse_sgd_step(1.0, 10, config.num_noise, config.seed)
    new = jax.jit(step)(state, batch)[0].params
    live_rows = batch["mask"].any(axis=1)  # a fully masked row has no gradient
    for table, ids in (("center_embed", batch["centers"][live_rows]),
                       ("context_embed", batch["contexts_negatives"][batch["mask"]])):
        changed = np.flatnonzero(np.any(new[table]["embedding"]
                                        != state.params[table]["embedding"], axis=1))
        assert set(changed) == set(np.unique(ids)), table


def test_learning_rate_decays_linearly_to_a_floor():
    rate = sparse.linear_decay(0.5, 100)
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
