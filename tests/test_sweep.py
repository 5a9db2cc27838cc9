"""Sweep definitions, the resumable runner and its summary, on the real PTB with tiny models."""

import csv
import json
import sys
import types
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from experiments import sweep, sweeps
from tests.helpers import text_corpus, topic_corpus
from w2v_jax.corpus_config import CorpusConfig
from w2v_jax.evaluation import measures
from w2v_jax.evaluation.evaluate import Embeddings
from w2v_jax.training import curves
from w2v_jax.training.checkpoint import CheckpointError

TINY = {"batch_size": 4096, "embed_size": 8, "num_epochs": 1}

MAIN_JOB = {
    *("config", "corpus", "command", "device", "machine", "versions", "vocab_size"),
    *("num_centers", "num_pairs", "blocks", "data_seconds", "compile_seconds", "feed"),
    *("checkpoint_seconds", "resumed_from_step", "diverged", "epochs", "final_loss"),
    *("loss_curve", "neighbours", "evaluation", "evaluation_seconds"),
}
"""What the main job's metrics.json holds (``report.metrics`` and its evaluation)."""


def test_grid_expands_every_combination_last_axis_fastest():
    assert sweeps.grid({"optimizer.lr": [0.1, 0.2], "seed": [0, 1, 2]}) == [
        {"optimizer.lr": lr, "seed": seed} for lr in (0.1, 0.2) for seed in (0, 1, 2)
    ]
    assert sweeps.grid({}) == [{}]


def test_random_search_is_seeded_and_stays_in_its_space():
    space = {
        "optimizer.lr": ("log", 1e-4, 1e-1),
        "b1": ("uniform", 0.8, 0.95),
        "embed_size": [50, 100],
    }
    points = sweeps.random_search(space, 200, seed=3)
    assert points == sweeps.random_search(space, 200, seed=3)
    assert points != sweeps.random_search(space, 200, seed=4)
    lrs = [p["optimizer.lr"] for p in points]
    assert 1e-4 <= min(lrs) and max(lrs) <= 1e-1
    # log-uniform: about a third of the draws in each decade
    assert 40 < sum(1e-3 <= lr < 1e-2 for lr in lrs) < 95
    assert all(0.8 <= p["b1"] <= 0.95 for p in points)
    assert {p["embed_size"] for p in points} == {50, 100}
    with pytest.raises(ValueError, match="embed_size=\\[\\]"):
        sweeps.random_search({"embed_size": []}, 1, seed=0)


def test_shipped_sweeps_are_valid(tmp_path):
    assert {"ptb_lr", "ptb_shape", "ptb_epochs"} <= set(sweeps.available())
    for name in ("ptb_lr", "ptb_shape", "ptb_epochs", "ptb_best"):
        points, metric = sweep.expand(name, tmp_path)
        assert points and metric == "wordsim353_spearman"
    fast_points, metric = sweep.expand("ptb_fast", tmp_path)
    assert len(fast_points) == 36 and metric == "simlex999_spearman"
    assert {p.config.optimizer.name for p in fast_points} == {"sparse_sgd"}
    assert {p.config.noise.groups for p in fast_points} == {1, 16, 64}
    lr_points, _ = sweep.expand("ptb_lr", tmp_path)
    assert {p.config.optimizer.name for p in lr_points} == {"adam", "sparse_sgd"}
    assert {
        p.config.optimizer.schedule for p in lr_points if p.config.optimizer.name == "sparse_sgd"
    } == {"constant"}
    assert {p.config.seed for p in lr_points} == {0, 1, 2}


@pytest.fixture
def define_sweep(monkeypatch):
    def define(name, points, base=TINY):
        module = types.ModuleType(f"experiments.sweeps.{name}")
        module.BASE, module.points = base, lambda: points
        monkeypatch.setitem(sys.modules, module.__name__, module)

    return define


def test_an_invalid_point_is_refused_before_anything_runs(define_sweep, tmp_path):
    define_sweep("bad", [{"optimizer.lr": 0.01}, {"optimizer.lr": -1.0}])
    with pytest.raises(SystemExit, match="point 1 .*Config.optimizer.lr=-1.0 must be positive"):
        sweep.main(["bad", "--out", str(tmp_path)])
    assert not (tmp_path / "bad").exists()
    with pytest.raises(SystemExit, match="no sweep named 'nope'; sweeps: .*ptb_lr"):
        sweep.main(["nope", "--out", str(tmp_path)])


def test_ctrl_c_in_a_sweep_is_one_line(define_sweep, tmp_path, monkeypatch, capsys):
    define_sweep("quick", [{"optimizer.lr": 0.01}])

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "run_points", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        sweep.main(["quick", "--out", str(tmp_path)])
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == (
        "interrupted; run the same command to train the points that have no metrics.json\n"
    )


@pytest.mark.slow
@pytest.mark.parametrize("vectorise", [False, True])
def test_killed_sweep_reruns_only_unfinished_points(
    define_sweep, tmp_path, ptb_dir, monkeypatch, vectorise
):
    points = [
        {"optimizer.lr": 0.01, "seed": 0},
        {"optimizer.lr": 0.03, "seed": 0},
        {"optimizer.lr": 0.03, "seed": 1},
    ]
    define_sweep("tiny", points)
    flag = "--vectorise=on" if vectorise else "--vectorise=off"
    args = ["tiny", "--out", str(tmp_path), "--data-dir", str(ptb_dir), flag]
    trained = []
    real = sweep.train_points

    def killed_after_first(members, prepared, vectorise):
        if trained:
            raise KeyboardInterrupt  # the sweep is killed after its first group of points
        trained.extend(p.workdir.name for p in members)
        return real(members, prepared, vectorise)

    monkeypatch.setattr(sweep, "train_points", killed_after_first)
    with pytest.raises(SystemExit) as exit_info:
        sweep.main(args)
    assert exit_info.value.code == 130
    first = set(trained)
    assert first == (
        {"optimizer.lr=0.01,seed=0", "optimizer.lr=0.03,seed=0"}
        if vectorise
        else {"optimizer.lr=0.01,seed=0"}
    )

    def counting(members, prepared, vectorise):
        trained.extend(p.workdir.name for p in members)
        return real(members, prepared, vectorise)

    trained.clear()
    monkeypatch.setattr(sweep, "train_points", counting)
    rows = sweep.main(args)
    assert set(trained) == {sweep.point_id(p) for p in points} - first

    directory = tmp_path / "tiny"
    with (directory / "summary.csv").open() as f:
        table = list(csv.DictReader(f))
    assert {row["point"] for row in table} == {sweep.point_id(p) for p in points}
    for row in table:
        point = directory / row["point"]
        metrics = json.loads((point / "metrics.json").read_text())
        assert json.loads((point / "config.json").read_text()) == metrics["config"]
        # What the main job writes, trained with others or not.
        assert set(metrics) == MAIN_JOB and (point / "loss.png").stat().st_size > 1000
        assert metrics["neighbours"]["chip"] and metrics["evaluation"]["wordsim353"]["scored"]
        measured = measures.of_run(metrics)
        for name in sweep.sweep_summary.METRICS:  # unscored (PTB's Rare Words): nan
            expected = float("nan") if measured[name] is None else measured[name]
            assert float(row[name]) == pytest.approx(expected, nan_ok=True), name
        assert 0.3 < float(row["final_loss"]) < 0.7 and float(row["centers_per_second"]) > 0
        # Each point opens as a run trained alone would (trained with others, or not).
        scores = Embeddings.from_checkpoint(point).evaluate_benchmarks()
        assert scores["wordsim353"]["spearman"] == pytest.approx(measured["wordsim353_spearman"])
        # Its curves in its own workdir, for `tensorboard --logdir` over the sweep's directory.
        events = EventAccumulator(str(point / curves.DIRECTORY))
        events.Reload()
        final = events.Scalars("scores/wordsim353_spearman")[-1].value
        assert final == pytest.approx(measured["wordsim353_spearman"])
        assert events.Scalars("optimizer/lr")[-1].value == pytest.approx(float(row["optimizer.lr"]))
    for group in (directory / "groups").glob("*") if vectorise else ():
        # A group's checkpoints (one of two points, then one of the point left) are not a run's.
        with pytest.raises(CheckpointError, match="runs trained together: open a run's own"):
            Embeddings.from_checkpoint(group)
    spearman = [row["wordsim353_spearman"] for row in rows]
    assert spearman == sorted(spearman, reverse=True)
    readme = (directory / "README.md").read_text()
    assert "| optimizer.lr | seeds | wordsim353_spearman |" in readme
    assert readme.count("| finished |") == 3
    assert (directory / "wordsim353_spearman.png").stat().st_size > 1000


def test_summary_keeps_every_point_and_marks_a_diverged_one(tmp_path):
    from experiments import common, sweep_summary
    from w2v_jax.config import Config

    def finished(wordsim):
        """A run's metrics.json, in the main job's schema (the parts the summary reads)."""
        scores = {"spearman": wordsim, "scored": True}
        return {
            "evaluation": {
                "wordsim353": scores,
                "simlex999": {"spearman": 0.1},
                "google_analogies": {"accuracy": 0.01},
                "men": {"spearman": 1 - wordsim},  # the other order
            },
            "final_loss": 0.4,
            "epochs": [{"centers": 3e5, "seconds": 2.0}, {"centers": 1e5, "seconds": 2.0}],
            "diverged": None,
        }

    written = {
        (0.01, 0): finished(0.2),
        (0.01, 1): finished(0.3),
        (9.0, 0): {"config": {}, "diverged": "the loss is nan at step 3"},
        # A point written before points wrote the main job's schema: its own "status".
        (9.0, 1): {"status": "diverged", "error": "the loss is nan"},
    }
    points = []
    for (lr, seed), metrics in written.items():
        overrides = {"optimizer.lr": lr, "seed": seed}
        point = sweep.Point(
            overrides, Config().replace(**overrides), tmp_path / "s" / sweep.point_id(overrides)
        )
        common.write_json(point.workdir / "metrics.json", metrics)
        assert point.finished
        points.append(point)
    rows = sweep_summary.write(
        points, tmp_path / "s", "wordsim353_spearman", "s", "python -m experiments.sweep s"
    )
    assert [row["point"] for row in rows[:2]] == [
        "optimizer.lr=0.01,seed=1",
        "optimizer.lr=0.01,seed=0",
    ]
    assert [row["status"] for row in rows] == ["finished"] * 2 + ["diverged"] * 2
    assert rows[0]["centers_per_second"] == 1e5 and rows[0]["final_loss"] == 0.4
    groups = sweep_summary.over_seeds(rows, ["optimizer.lr", "seed"], "wordsim353_spearman")
    assert groups[0]["optimizer.lr"] == 0.01 and groups[0]["n"] == 2
    assert groups[0]["wordsim353_spearman"] == pytest.approx((0.25, 0.0707107), rel=1e-5)
    readme = (tmp_path / "s" / "README.md").read_text()
    assert "| 9 | 2 | nan ± nan |" in readme and "| diverged |" in readme
    # Any benchmark's score sorts it, and its column joins the README's tables.
    rows = sweep_summary.write(points, tmp_path / "s", "men_spearman", "s", "python -m x")
    assert rows[0]["point"] == "optimizer.lr=0.01,seed=0" and rows[0]["men_spearman"] == 0.8
    readme = (tmp_path / "s" / "README.md").read_text()
    assert "| seeds | wordsim353_spearman | simlex999_spearman | analogy_accuracy |" in readme
    assert "| final_loss | men_spearman |" in readme
    assert "men_spearman" in (tmp_path / "s" / "summary.csv").read_text().splitlines()[0]


def test_a_sweep_trains_on_any_corpus(define_sweep, tmp_path, capsys):
    """A sweep on a corpus of your own; English benchmarks its vocabulary lacks are skipped."""
    base = dict(min_freq=1, subsample_t=1.0, batch_size=64, embed_size=8, num_epochs=1)
    define_sweep("tiny_topic", [{"optimizer.lr": 0.01}, {"optimizer.lr": 0.02}], base)
    corpus = text_corpus(topic_corpus(sentences=300)[0]).paths[0]
    listed = sweep.main(["tiny_topic", "--out", str(tmp_path), "--corpus", corpus, "--list"])
    directory = sweep.sweep_directory(tmp_path, "tiny_topic", CorpusConfig((corpus,)))
    assert listed == [] and not directory.exists()  # listed, nothing trained
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "optimizer.lr=0.01",
        "optimizer.lr=0.02",
        f"sweep tiny_topic: 2 points, 0 finished, in {directory}",
        "each point trains the book's configuration under the sweep's base (batch_size=64,"
        "embed_size=8,min_freq=1,num_epochs=1,subsample_t=1.0) with the settings of its name, "
        "not the fast preset that experiments.train gives a corpus of one's own",
    ]
    rows = sweep.main(["tiny_topic", "--out", str(tmp_path), "--corpus", corpus])
    assert [row["status"] for row in rows] == ["finished", "finished"]
    # Its own directory, apart from the same sweep's points on PTB or read otherwise.
    assert directory.parent == tmp_path / "tiny_topic" and directory.name.startswith(
        Path(corpus).name
    )
    assert directory != sweep.sweep_directory(
        tmp_path, "tiny_topic", CorpusConfig((corpus,), lowercase=True)
    )
    summary = capsys.readouterr().out
    assert "\n# Sweep tiny_topic\n" in f"\n{summary}" and "| optimizer.lr | status |" in summary
    written = json.loads((directory / "optimizer.lr=0.01" / "metrics.json").read_text())
    assert written["final_loss"] < 0.7 and measures.of_run(written)["wordsim353_spearman"] is None
    assert not written["evaluation"]["wordsim353"]["scored"]


def test_a_point_killed_midway_resumes_from_its_checkpoint(define_sweep, tmp_path, monkeypatch):
    from w2v_jax.training.resume import RunCheckpoints

    define_sweep("one", [{"num_epochs": 2, "min_freq": 1}])
    path = text_corpus(topic_corpus(sentences=1500)[0]).paths[0]
    args = ["one", "--out", str(tmp_path), "--corpus", path, "--vectorise", "off"]
    real_save = RunCheckpoints.save

    def killed_after_the_first_epoch(self, state, history, layout):
        real_save(self, state, history, layout)
        raise KeyboardInterrupt

    monkeypatch.setattr(RunCheckpoints, "save", killed_after_the_first_epoch)
    with pytest.raises(SystemExit):
        sweep.main(args)
    monkeypatch.setattr(RunCheckpoints, "save", real_save)
    sweep.main(args)
    (point,) = (tmp_path / "one").rglob("metrics.json")
    record = json.loads(point.read_text())
    assert record["resumed_from_step"] == record["epochs"][0]["step"]
