"""Meshes and processes: the tables split along the vocabulary, batches along the data axis,
the same numbers as one device, checkpoints across meshes, two processes on localhost.

JAX sees its device count once, when it starts, so the meshes of four fake CPU devices run in
a process of their own (tests/mesh_runs.py), once for the module; this process has one device.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from tests.helpers import REPO, smoke_config, topic_corpus
from w2v_jax import parallel
from w2v_jax.config import Config
from w2v_jax.evaluation.evaluate import Embeddings
from w2v_jax.sections import ExecutionConfig
from w2v_jax.training import curves, loop

TABLES = ("center", "context")
# Meshes that split the batch sum the loss's gradient in another order than one device: the
# tables agree within this (float32, after an epoch of 94 steps on tables of norm ~1).
FLOAT32_TOLERANCE = 2e-6


def _child_env(devices: int) -> dict[str, str]:
    env = {**os.environ, **parallel.fake_cpu_devices(devices)}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    """Every run of tests/mesh_runs.py: (params by "<run>/<table>", run records by name)."""
    out = tmp_path_factory.mktemp("meshes")
    done = subprocess.run(
        [sys.executable, "-m", "tests.mesh_runs", str(out)],
        cwd=REPO,
        env=_child_env(4),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(np.load(out / "params.npz")), json.loads((out / "runs.json").read_text())


def _max_difference(params, run, reference, tables=TABLES):
    return max(
        float(np.abs(params[f"{run}/{t}"] - params[f"{reference}/{t}"]).max()) for t in tables
    )


@pytest.mark.parametrize(
    "family",
    ["adam", "lazy_adam", "shared", "padded", "sparse_sgd", "streamed", "cbow", "cbow_shared"],
)
def test_every_mesh_ends_with_one_devices_parameters(four_devices, family):
    params, runs = four_devices
    meshes = [name.split(" ", 1)[1] for name in runs if name.startswith(family + " ")]
    assert len(meshes) >= 2
    for mesh in meshes:
        difference = _max_difference(params, f"{family} {mesh}", f"{family} data=1,vocab=1")
        assert difference <= FLOAT32_TOLERANCE, (mesh, difference)
        loss, reference = runs[f"{family} {mesh}"]["loss"], runs[f"{family} data=1,vocab=1"]["loss"]
        assert abs(loss - reference) < 1e-6
        for count in ("centers", "pairs"):  # counted on the device, where the rows are
            assert runs[f"{family} {mesh}"][count] == runs[f"{family} data=1,vocab=1"][count]
    assert params[f"{family} data=1,vocab=1/center"].shape == (43, 16)


def test_an_objective_s_own_table_is_split_and_trained_on_every_mesh_as_on_one(four_devices):
    """docs/objectives.md's BiasedSkipGram: its bias table [vocab, 1] split along the vocabulary
    with the word tables, and every table as one device's."""
    params, runs = four_devices
    tables = (*TABLES, "bias")
    for mesh in ("vocab=4", "data=2,vocab=2"):
        difference = _max_difference(params, f"biased {mesh}", "biased data=1,vocab=1", tables)
        assert difference <= FLOAT32_TOLERANCE, (mesh, difference)
        shards = runs[f"biased {mesh}"]["shards"]
        bias = next(shapes for path, shapes in shards.items() if "'bias'" in path)
        rows = runs[f"biased {mesh}"]["vocab"]
        assert all(shape[1:] == [1] and shape[0] < rows for shape in bias), bias
    assert np.abs(params["biased data=1,vocab=1/bias"]).max() > 0, "the bias trains"


def test_splitting_only_the_vocabulary_is_bitwise_for_row_sparse_optimisers(four_devices):
    """Lazy Adam's rows are gathered, updated and written back by the device holding them, in
    the order one device uses: nothing is summed differently."""
    params, _ = four_devices
    assert _max_difference(params, "lazy_adam vocab=4", "lazy_adam data=1,vocab=1") == 0.0


@pytest.mark.parametrize("mesh,rows", [("vocab=4", 11), ("data=2,vocab=2", 22), ("data=4", 43)])
def test_each_device_holds_its_share_of_every_table(four_devices, mesh, rows):
    """43 words padded to 44 rows: 11 per device on vocab=4, 22 on vocab=2; the moments and
    the per-row counts of lazy Adam are split the same way; data=4 keeps whole tables."""
    _, runs = four_devices
    shards = runs[f"lazy_adam {mesh}"]["shards"]
    assert len(shards) == 1 + 2 * 4  # the step; per table: itself, mu, nu, count
    for path, shapes in shards.items():
        if path == ".step":  # replicated
            expected = []
        elif path.endswith("['count']"):
            expected = [rows]
        else:
            expected = [rows, 16]
        assert shapes == [expected] * 4, (path, shapes)


def test_the_state_is_created_sharded(four_devices):
    """Creating a lazy Adam state on vocab=4, each device draws and holds a quarter of every
    row table: no array of the program has the vocabulary's 4,000 rows, and its output and
    working memory are a quarter of one device's."""
    _, runs = four_devices
    one, four = runs["init"]["data=1,vocab=1"], runs["init"]["vocab=4"]
    assert one["whole_rows"] and not four["whole_rows"]
    assert four["output"] <= one["output"] / 4 + 64  # + the replicated step
    assert four["temp"] <= one["temp"] / 4 + 1024


def test_a_checkpoint_from_four_devices_restores_on_one_and_on_two_by_two(four_devices):
    params, runs = four_devices
    for mesh in ("data=1,vocab=1", "data=2,vocab=2"):
        assert _max_difference(params, f"restored {mesh}", "saved vocab=4") == 0.0
        assert runs[f"restored {mesh}"]["shards"][".params['center']"][0][0] == (
            43 if mesh.startswith("data=1") else 22
        )
        # Training on continues as an uninterrupted run would (on one device: exactly).
        difference = _max_difference(params, f"continued {mesh}", "straight data=1,vocab=1")
        assert difference <= (0.0 if mesh == "data=1,vocab=1" else FLOAT32_TOLERANCE)
    assert _max_difference(params, "straight vocab=4", "straight data=1,vocab=1") == 0.0


def test_a_mesh_that_does_not_fit_is_one_clear_line():
    with pytest.raises(parallel.MeshError, match=r"needs 8 devices, this run has 1 cpu"):
        parallel.Placement.from_spec("data=2,vocab=4")
    with pytest.raises(
        ValueError, match=r"Config.execution.mesh='data=two': write it as data=N,vocab=M"
    ):
        Config(execution=ExecutionConfig(mesh="data=two"))
    for bad in ("model=2", "data=0", "data=1,data=1", "vocab="):
        with pytest.raises(ValueError, match="write it as"):
            Config(execution=ExecutionConfig(mesh=bad))
    placement = parallel.Placement.from_spec(None)
    assert (placement.data_size, placement.vocab_size) == (jax.device_count(), 1)
    assert parallel.Placement.from_spec("vocab=1").description == "data=1,vocab=1"


def test_the_batch_must_split_evenly_along_data():
    placement = parallel.Placement.single()
    placement.check_batch(7)  # one device takes any batch
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:1] * 3).reshape(3, 1), ("data", "vocab"))
    with pytest.raises(
        parallel.MeshError,
        match=r"batch_size=512 must be a multiple of the "
        r"mesh's data axis \(3\)",
    ):
        parallel.Placement(mesh).check_batch(512)


def test_padding_rows_and_trimming():
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:1] * 4).reshape(1, 4), ("data", "vocab"))
    placement = parallel.Placement(mesh)
    assert [placement.rows(v) for v in (1, 4, 43, 44)] == [4, 4, 44, 44]
    table = parallel.pad_rows(jax.numpy.ones((3, 2)), 4)
    np.testing.assert_array_equal(table, [[1, 1], [1, 1], [1, 1], [0, 0]])
    trimmed = parallel.trimmed({"t": table, "scalar": jax.numpy.zeros(())}, 3)
    assert trimmed["t"].shape == (3, 2) and trimmed["scalar"].shape == ()


def test_state_bytes_per_device_on_one_device():
    sizes = loop.state_bytes(smoke_config(**{"optimizer.name": "lazy_adam"}), 1000)
    assert sizes["mesh"] == "data=1,vocab=1"
    # Two tables, their two moments and one int32 count per row; each device holds the step.
    assert (
        sizes["per_device"] - 4
        == sizes["tables"] + sizes["optimiser"]
        == (  # 4: the step
            2 * 1000 * 16 * 4 * 3 + 2 * 1000 * 4
        )
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_processes_on_localhost_agree_with_one_process(tmp_path):
    """Two processes of one device each (gloo collectives, 127.0.0.1), mesh data=2, against
    one process with two devices: the same checkpoint and the same scores at each epoch's end
    (the tables gathered to process 0); process 1 prints and writes nothing, TensorBoard's
    curves included."""
    corpus = tmp_path / "topics.txt"
    text, partners = topic_corpus(sentences=1500)
    corpus.write_text(text)
    benchmarks = tmp_path / "benchmarks"  # in the topics' words, so that epochs are scored
    benchmarks.mkdir()
    pairs = "".join(f"{a}\t{b}\t9\n{a}\tf{t}x1\t5\n" for t, (a, b) in enumerate(partners))
    for name in ("wordsim353.tsv", "simlex999.txt"):
        (benchmarks / name).write_text(pairs)
    questions = "".join(f"a{t} b{t} a{t + 1} b{t + 1}\n" for t in range(len(partners) - 1))
    (benchmarks / "questions-words.txt").write_text(": partners\n" + questions)
    # Streamed (6 blocks, 2 windows of 3): each process draws the blocks of its data shard.
    flags = [
        "-m",
        "experiments.train",
        "--corpus",
        str(corpus),
        "--min-freq",
        "1",
        "--block-tokens",
        "1000",
        "--group-blocks",
        "3",
        "--subsample-t",
        "1.0",
        "--max-window",
        "2",
        "--noise.count",
        "3",
        "--batch-size",
        "64",
        "--embed-size",
        "16",
        "--optimizer.lr",
        "0.02",
        "--num-epochs",
        "1",
        "--optimizer.name",
        "lazy_adam",
        "--execution.mesh",
        "data=2",
        "--no-progress",
        "--query",
        "a0",
        "--benchmarks-dir",
        str(benchmarks),
        "--scores-each-epoch=all",
    ]
    port = _free_port()
    together = [
        subprocess.Popen(
            [
                sys.executable,
                *flags,
                "--workdir",
                str(tmp_path / "two"),
                "--coordinator",
                f"127.0.0.1:{port}",
                "--num-processes",
                "2",
                "--process-id",
                str(rank),
            ],
            cwd=REPO,
            env=_child_env(1),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    alone = subprocess.run(
        [sys.executable, *flags, "--workdir", str(tmp_path / "one")],
        cwd=REPO,
        env=_child_env(2),
        capture_output=True,
        text=True,
        timeout=300,
    )
    outputs = []
    try:
        for process in together:
            outputs.append(process.communicate(timeout=300))
    finally:
        for process in together:
            process.kill()
    for process, (_, err) in zip(together, outputs):
        assert process.returncode == 0, err[-3000:]
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert "epoch 1/1" in outputs[0][0] and "neighbours of a0" in outputs[0][0]
    assert "2 x cpu" in outputs[0][0]
    assert "epoch" not in outputs[1][0] and "neighbours" not in outputs[1][0]
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["device"].startswith("2 x cpu")
    single = json.loads((tmp_path / "one" / "metrics.json").read_text())
    scores = [epoch["scores"] for epoch in metrics["epochs"]]
    assert scores == [epoch["scores"] for epoch in single["epochs"]]
    assert scores[0]["wordsim353_spearman"] is not None
    events = list((tmp_path / "two" / curves.DIRECTORY).glob("events.out.tfevents.*"))
    assert len(events) == 1, "process 0 alone writes the curves"
    for table in ("center", "context"):
        two = Embeddings.from_checkpoint(tmp_path / "two", table=table)
        one = Embeddings.from_checkpoint(tmp_path / "one", table=table)
        assert two.vocab == one.vocab
        np.testing.assert_array_equal(two.vectors, one.vectors)
