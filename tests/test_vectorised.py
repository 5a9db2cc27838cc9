"""Runs trained together in one program equal the same runs trained one after another."""

import jax
import numpy as np
import pytest

from tests.helpers import prepare_text, smoke_config, topic_corpus
from tests.tolerances import reordered_sums_tol
from w2v_jax.evaluation.evaluate import Embeddings
from w2v_jax.run import groups_trainable_together, train
from w2v_jax.training.checkpoint import CheckpointError

LEARNING_RATES = (0.003, 0.01, 0.03)


def assert_same_runs(configs, prepared):
    together = train(configs, data=prepared, evaluation=None, progress=False)
    tol = reordered_sums_tol()
    for config, run in zip(configs, together):
        alone = train(config, data=prepared, evaluation=None, progress=False)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, atol=tol, rtol=0),
            alone.params,
            run.params,
        )
        np.testing.assert_allclose(
            [s.loss for s in run.history], [s.loss for s in alone.history], rtol=tol
        )
        assert [s.centers for s in run.history] == [s.centers for s in alone.history]
        assert run.diverged is None
    return together


@pytest.fixture(scope="module")
def topic_text():
    return topic_corpus(sentences=1500)[0]


def base_config(**overrides):
    values = dict(min_freq=1, max_window=2, batch_size=64, num_epochs=2, **{"noise.count": 3})
    return smoke_config(**{**values, **overrides})


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"noise.sharing": "per_batch", "noise.shared": 16},
        {"resample_each_epoch": True},
        {"optimizer.name": "rowwise_adagrad"},
        {"noise.sharing": "per_batch", "noise.shared": 8, "noise.groups": 4},
        {"execution.layout": "padded"},
    ],
)
def test_three_learning_rates_equal_three_sequential_runs(topic_text, overrides):
    configs = [base_config(**overrides, **{"optimizer.lr": lr}) for lr in LEARNING_RATES]
    _assert_three_distinct_runs(configs, topic_text)


@pytest.mark.parametrize(
    "name, lr", [("sparse_sgd", 20.0), ("rowwise_adagrad", 0.1), ("lazy_adam", 0.01)]
)
def test_row_sparse_optimisers_train_together(topic_text, name, lr):
    configs = [
        base_config(
            **{"optimizer.name": name, "optimizer.lr": lr * factor, "execution.layout": "packed"}
        )
        for factor in (0.3, 1.0, 3.0)
    ]
    _assert_three_distinct_runs(configs, topic_text)


def _assert_three_distinct_runs(configs, topic_text):
    prepared = prepare_text(configs[0], topic_text)
    runs = assert_same_runs(configs, prepared)
    losses = [run.history[-1].loss for run in runs]
    assert len(set(losses)) == 3, "each run trains with its own learning rate"


def test_adam_betas_train_together(topic_text):
    configs = [
        base_config(**{"optimizer.b1": b1, "optimizer.b2": b2})
        for b1, b2 in ((0.9, 0.999), (0.5, 0.99))
    ]
    assert_same_runs(configs, prepare_text(configs[0], topic_text))


def test_grouping_keeps_apart_what_changes_the_data_or_the_shapes():
    configs = [
        base_config(**{"optimizer.lr": 0.01}),
        base_config(**{"optimizer.lr": 0.02}),
        base_config(seed=1, **{"optimizer.lr": 0.01}),
        base_config(embed_size=8),
        base_config(**{"optimizer.lr": 0.03, "optimizer.b1": 0.8}),
        base_config(num_epochs=3),
    ]
    assert groups_trainable_together(configs) == [[0, 1, 4], [2], [3], [5]]
    with pytest.raises(ValueError, match="differ only in"):
        train(configs[:3], data=None, evaluation=None)


def test_a_diverging_run_does_not_stop_the_others(topic_text):
    configs = [
        base_config(**{"optimizer.lr": 1.0, "optimizer.name": "sparse_sgd"}),
        base_config(**{"optimizer.lr": 1e30, "optimizer.name": "sparse_sgd"}),
    ]
    prepared = prepare_text(configs[0], topic_text)
    good, bad = train(configs, data=prepared, evaluation=None, progress=False)
    assert good.diverged is None and np.isfinite(good.history[-1].loss)
    assert bad.diverged.startswith("non-finite loss") and "in epoch 1 at step" in bad.diverged


def test_a_checkpoint_of_runs_trained_together_fits_only_them(topic_text, tmp_path):
    configs = [base_config(num_epochs=1, **{"optimizer.lr": lr}) for lr in LEARNING_RATES]
    prepared = prepare_text(configs[0], topic_text)
    train(configs, data=prepared, evaluation=None, progress=False, workdir=tmp_path)
    with pytest.raises(CheckpointError, match="hold 3 runs trained together, this call trains 2"):
        train(configs[:2], data=prepared, evaluation=None, progress=False, workdir=tmp_path)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        Embeddings.from_checkpoint(tmp_path / "nothing-here")
