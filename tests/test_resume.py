"""A run stopped mid-epoch and resumed from its checkpoint ends with the parameters, optimiser
state, epoch losses and loss curve of the uninterrupted run, bitwise on the CPU: every layout,
noise sharing, optimiser kind, a streamed corpus (its examples drawn on the device), every
draw anew each epoch (on the host for a corpus of one group, on the device for a streamed
one; stopped in the second epoch, whose draws are its own), the device's shuffle, runs trained
together and CBOW, through the one library call (``run.train``). The command line's signals are
tested in ``test_first_hour``."""

from __future__ import annotations

import pytest

from tests.helpers import leaves_equal, prepare_text, topic_config, topic_corpus
from w2v_jax.run import TrainingInterrupted, train

# Streamed in 4 groups an epoch (drawn on the device), every draw anew each epoch.
STREAMED_ANEW = dict(
    block_tokens=1000,
    group_blocks=3,
    resample_each_epoch=True,
    subsample_each_epoch=True,
    subsample_t=0.01,
    **{"noise.sharing": "per_batch"},
)
CASES = {
    "packed, per_context, adam": {},
    "padded, per_batch, adam": {
        "execution.layout": "padded",
        "noise.sharing": "per_batch",
        "noise.shared": 16,
    },
    "lazy_adam": {"optimizer.name": "lazy_adam"},
    "rowwise_adagrad, per_batch": {
        "optimizer.name": "rowwise_adagrad",
        "optimizer.lr": 0.2,
        "noise.sharing": "per_batch",
        "noise.shared": 16,
    },
    "sparse_sgd (a rate decaying over the run)": {
        "optimizer.name": "sparse_sgd",
        "optimizer.lr": 20.0,
    },
    "rowwise_adagrad, warm-up and linear decay": {
        "optimizer.name": "rowwise_adagrad",
        "optimizer.lr": 0.2,
        "optimizer.schedule": "linear",
        "optimizer.warmup_steps": 40,
    },
    "streamed, 4 groups an epoch, drawn on the device": dict(block_tokens=1000, group_blocks=3),
    "one group, every draw anew each epoch": dict(
        resample_each_epoch=True, subsample_each_epoch=True, subsample_t=0.01
    ),
    "streamed, every draw anew each epoch": STREAMED_ANEW,
    "device shuffle": dict(shuffle="device"),
    "runs trained together": {"optimizer.lr": (0.003, 0.01, 0.03)},
    "cbow": dict(objective="cbow"),
    "cbow, streamed, every draw anew, rowwise_adagrad": dict(
        objective="cbow",
        **STREAMED_ANEW,
        **{"optimizer.name": "rowwise_adagrad", "optimizer.lr": 0.2},
    ),
    "cbow, lazy_adam, runs trained together": dict(
        objective="cbow", **{"optimizer.name": "lazy_adam", "optimizer.lr": (0.003, 0.01)}
    ),
}
STOP_AFTER = 30  # dispatches: inside the second epoch (24 dispatches an epoch; fewer subsampled)


@pytest.fixture(scope="module")
def topic_text():
    return topic_corpus(sentences=3000)[0]


def configs_of(overrides: dict):
    """One config, or a list of configs trained together (a tuple of rates)."""
    rates = overrides.get("optimizer.lr")
    if isinstance(rates, tuple):
        return [topic_config(**{**overrides, "optimizer.lr": lr}) for lr in rates]
    return topic_config(**overrides)


@pytest.mark.parametrize("overrides", CASES.values(), ids=CASES.keys())
def test_a_run_resumed_mid_epoch_equals_the_uninterrupted_run(tmp_path, topic_text, overrides):
    config = configs_of(overrides)
    prepared = prepare_text(config[0] if isinstance(config, list) else config, topic_text)

    def run(workdir, should_stop=None):
        return train(
            config,
            data=prepared,
            workdir=workdir,
            should_stop=should_stop,
            progress=False,
            evaluation=None,
        )

    straight = run(tmp_path / "straight")
    asked = iter(range(1_000_000))
    with pytest.raises(TrainingInterrupted) as stopped:
        run(tmp_path / "resumed", should_stop=lambda: next(asked) == STOP_AFTER)
    assert stopped.value.saved and stopped.value.epoch >= 1, "stopped in the second epoch or later"
    resumed = run(tmp_path / "resumed")
    pairs = zip(straight, resumed) if isinstance(config, list) else [(straight, resumed)]
    for alone, again in pairs:
        assert again.resumed_from == stopped.value.step
        assert leaves_equal(alone.state.params, again.state.params), "bitwise on the CPU"
        if not isinstance(config, list):  # runs trained together each hold only their tables
            assert leaves_equal(alone.state.opt_state, again.state.opt_state)
        assert [s.loss for s in alone.history] == [s.loss for s in again.history]
        assert alone.curve == again.curve


def test_a_run_given_more_epochs_continues_from_its_last(tmp_path, topic_text):
    config = topic_config()
    prepared = prepare_text(config, topic_text)
    straight = train(config, data=prepared, progress=False, evaluation=None)
    for epochs in (1, config.num_epochs):
        resumed = train(
            config.replace(num_epochs=epochs),
            data=prepared,
            workdir=tmp_path,
            progress=False,
            evaluation=None,
        )
    assert resumed.resumed_from == straight.history[0].step
    assert leaves_equal(straight.state.params, resumed.state.params)
    assert leaves_equal(straight.state.opt_state, resumed.state.opt_state)
    assert [s.loss for s in straight.history] == [s.loss for s in resumed.history]
    assert straight.curve == resumed.curve
