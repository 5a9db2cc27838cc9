"""A run's curves: TensorBoard event files read back by TensorBoard's own reader (every
dispatch's loss, the rate, each epoch's loss and scores, the settings as hparams; a resumed
run continues them with no step twice, even past a crash), each epoch's scores in
metrics.json, equal to the scores of the vectors of that epoch, and scores.png."""

from __future__ import annotations

import functools
import json
import time

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboardX import SummaryWriter

from tests.helpers import prepare_text, topic_config, topic_corpus
from w2v_jax.evaluation.report import Evaluation
from w2v_jax.run import TrainingInterrupted, train
from w2v_jax.training import curves

STOP_AFTER = 30  # dispatches: inside the second epoch (24 dispatches an epoch)


@pytest.fixture(scope="module")
def topic():
    return topic_corpus(sentences=3000)


@pytest.fixture(scope="module")
def benchmarks(topic, tmp_path_factory):
    """The three benchmark files in the topic corpus's words: partners similar, a word and
    another topic's filler not; analogies between topics."""
    _, partners = topic
    directory = tmp_path_factory.mktemp("benchmarks")
    pairs = [f"{a}\t{b}\t9.0" for a, b in partners]
    pairs += [f"{a}\tf{(t + 1) % len(partners)}x0\t1.0" for t, (a, _) in enumerate(partners)]
    pairs += [f"{a}\tf{t}x1\t5.0" for t, (a, _) in enumerate(partners)]
    text = "# Word 1\tWord 2\tHuman (mean)\n" + "\n".join(pairs) + "\n"
    (directory / "wordsim353.tsv").write_text(text)
    (directory / "simlex999.txt").write_text(text)
    questions = [f"a{t} b{t} a{t + 1} b{t + 1}" for t in range(len(partners) - 1)]
    (directory / "questions-words.txt").write_text(": partners\n" + "\n".join(questions) + "\n")
    return directory


def read(directory):
    events = EventAccumulator(str(directory))
    events.Reload()
    return events


def steps(events, tag):
    return [event.step for event in events.Scalars(tag)]


def values(events, tag):
    return [event.value for event in events.Scalars(tag)]


def test_a_run_writes_its_curves_scores_each_epoch_and_its_settings(tmp_path, topic, benchmarks):
    config = topic_config()
    run = train(
        config,
        data=prepare_text(config, topic[0]),
        workdir=tmp_path,
        progress=False,
        evaluation=Evaluation(benchmarks_dir=benchmarks, each_epoch=True),
    )
    events = read(tmp_path / curves.DIRECTORY)
    dispatch_steps = steps(events, "loss/dispatch")
    assert dispatch_steps == [step for step, _ in run.curve], "every dispatch, in order"
    assert values(events, "loss/dispatch") == pytest.approx([loss for _, loss in run.curve])
    assert values(events, "optimizer/lr") == pytest.approx([0.02] * len(dispatch_steps))
    ends = [stats.step for stats in run.history]
    assert steps(events, "loss/epoch") == ends
    assert values(events, "loss/epoch") == pytest.approx([stats.loss for stats in run.history])
    assert len(events.Scalars("speed/centers_per_second")) == len(dispatch_steps)

    metrics = json.loads((tmp_path / "metrics.json").read_text())
    scores = [epoch["scores"]["wordsim353_spearman"] for epoch in metrics["epochs"]]
    assert len(scores) == config.num_epochs and None not in scores
    assert all(epoch["scoring_seconds"] > 0 for epoch in metrics["epochs"])
    assert steps(events, "scores/wordsim353_spearman") == ends
    assert values(events, "scores/wordsim353_spearman") == pytest.approx(scores)
    # The last epoch's vectors are the run's: its scores are the final evaluation's.
    assert scores[-1] == pytest.approx(metrics["evaluation"]["wordsim353"]["spearman"])
    assert scores[-1] > 0.5, "partners found by the third epoch"
    assert (tmp_path / "scores.png").stat().st_size > 0

    start = events.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    hparams = plugin_data_pb2.HParamsPluginData.FromString(start).session_start_info.hparams
    assert hparams["optimizer.lr"].number_value == pytest.approx(0.02)
    assert hparams["objective"].string_value == "skipgram"
    assert hparams["batch_size"].number_value == config.batch_size


def test_an_epoch_s_scores_are_those_of_a_run_that_ends_there(tmp_path, topic, benchmarks):
    config = topic_config()
    prepared = prepare_text(config, topic[0])
    evaluation = Evaluation(benchmarks_dir=benchmarks, each_epoch=True)
    whole = train(config, data=prepared, progress=False, evaluation=evaluation)
    first = train(
        config.replace(num_epochs=1),
        data=prepared,
        workdir=tmp_path,
        progress=False,
        evaluation=evaluation,
    )
    assert whole.history[0].scores == first.history[0].scores
    final = json.loads((tmp_path / "metrics.json").read_text())["evaluation"]
    assert first.history[0].scores["simlex999_spearman"] == final["simlex999"]["spearman"]


def test_a_resumed_run_continues_its_curves_with_no_step_twice(tmp_path, topic, benchmarks):
    config = topic_config()
    prepared = prepare_text(config, topic[0])
    evaluation = Evaluation(benchmarks_dir=benchmarks, each_epoch=True)

    run = functools.partial(train, config, data=prepared, progress=False, evaluation=evaluation)
    straight = run(workdir=tmp_path / "straight")
    asked = iter(range(1_000_000))
    with pytest.raises(TrainingInterrupted) as stopped:
        run(workdir=tmp_path / "resumed", should_stop=lambda: next(asked) == STOP_AFTER)
    # A process that crashed after its checkpoint had written curves past it.
    directory = tmp_path / "resumed" / curves.DIRECTORY
    with SummaryWriter(str(directory), filename_suffix=f".{time.time_ns()}") as crashed:
        for step in range(stopped.value.step + 1, stopped.value.step + 40):
            crashed.add_scalar("loss/dispatch", 99.0, step)
    run(workdir=tmp_path / "resumed")

    before, after = (
        read(tmp_path / "straight" / curves.DIRECTORY),
        read(tmp_path / "resumed" / curves.DIRECTORY),
    )
    for tag in ("loss/dispatch", "loss/epoch", "scores/wordsim353_spearman", "optimizer/lr"):
        assert steps(after, tag) == steps(before, tag), tag
        assert np.all(np.diff(steps(after, tag)) > 0)
        assert values(after, tag) == pytest.approx(values(before, tag)), tag
    assert len(after.Scalars("loss/dispatch")) == len(straight.curve)


def test_runs_trained_together_each_have_their_curves_named_by_their_rate(tmp_path, topic):
    configs = [topic_config(**{"optimizer.lr": lr}) for lr in (0.01, 0.03)]
    train(configs, data=prepare_text(configs[0], topic[0]), workdir=tmp_path, progress=False)
    for lr in (0.01, 0.03):
        events = read(tmp_path / curves.DIRECTORY / f"optimizer.lr={lr}")
        rates = values(events, "optimizer/lr")
        assert rates == pytest.approx([lr] * len(rates)) and len(rates) > 10


def test_curves_go_where_asked_or_nowhere(tmp_path, topic):
    config = topic_config(num_epochs=1)
    prepared = prepare_text(config, topic[0])
    train(config, data=prepared, workdir=tmp_path / "off", progress=False, tensorboard=False)
    assert not (tmp_path / "off" / curves.DIRECTORY).exists()
    run = train(config, data=prepared, progress=False, tensorboard=[tmp_path / "mine"])
    assert steps(read(tmp_path / "mine"), "loss/epoch") == [run.history[-1].step]


def test_each_epoch_scores_by_default_the_word_pairs_on_one_s_own_text_with_a_workdir():
    default, pairs = Evaluation(), ("wordsim353", "simlex999")
    assert default.benchmarks_each_epoch(is_ptb=False, has_workdir=True) == pairs
    assert default.benchmarks_each_epoch(is_ptb=True, has_workdir=True) == ()
    assert default.benchmarks_each_epoch(is_ptb=False, has_workdir=False) == ()
    asked = Evaluation(each_epoch=True).benchmarks_each_epoch(is_ptb=True, has_workdir=False)
    assert asked == ("wordsim353", "simlex999", "google_analogies")
    assert Evaluation(each_epoch=False).benchmarks_each_epoch(is_ptb=False, has_workdir=True) == ()


def test_by_default_an_epoch_scores_the_word_pairs_and_not_the_analogies(
    tmp_path, topic, benchmarks
):
    config = topic_config(num_epochs=2)
    run = train(
        config,
        data=prepare_text(config, topic[0]),
        workdir=tmp_path,
        progress=False,
        evaluation=Evaluation(benchmarks_dir=benchmarks),
    )
    for stats in run.history:
        assert set(stats.scores) == {
            "wordsim353_spearman",
            "wordsim353_coverage",
            "simlex999_spearman",
            "simlex999_coverage",
        }
    events = read(tmp_path / curves.DIRECTORY)
    ends = [stats.step for stats in run.history]
    assert steps(events, "scores/wordsim353_spearman") == ends
    # The analogies once, at the end, from the final evaluation.
    assert steps(events, "scores/analogy_accuracy") == ends[-1:]
