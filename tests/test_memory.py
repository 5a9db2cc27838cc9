"""Memory said and checked before anything is allocated: the estimate stays above XLA's own
figures for the compiled step, and a run that would not fit is refused in one line, with
nothing written, unless told to go ahead."""

from __future__ import annotations

import subprocess
import sys

import jax
import numpy as np
import pytest

from tests.helpers import REPO, prepare_text, smoke_config, topic_corpus
from w2v_jax.config import Config
from w2v_jax.data.vocab import Vocab
from w2v_jax.run import train
from w2v_jax.sections import ExecutionConfig, OptimizerConfig
from w2v_jax.training import memory
from w2v_jax.training.loop import Program, state_bytes

VOCAB = Vocab(tuple(f"w{i}" for i in range(5000)), np.arange(5000, 0, -1, dtype=np.int64))


def xla_step_bytes(config: Config) -> int:
    """XLA's working space for the compiled step of ``config`` on padded batches."""
    program = Program(config, VOCAB, 100)
    rows = 10_000
    examples = config.row_layout.make_rows(rows, jax.ShapeDtypeStruct)
    program.compile(jax.eval_shape(program.init_state), examples)
    return program.memory_analysis().temp_size_in_bytes


@pytest.mark.parametrize("objective", ["skipgram", "cbow"])
@pytest.mark.parametrize("optimizer", ["adam", "sparse_sgd", "rowwise_adagrad", "lazy_adam"])
@pytest.mark.parametrize("embed_size, batch_size", [(100, 512), (400, 2048)])
def test_the_working_space_estimate_is_above_xlas_and_within_twice_it(
    optimizer, embed_size, batch_size, objective
):
    config = Config(
        embed_size=embed_size,
        batch_size=batch_size,
        objective=objective,
        execution=ExecutionConfig(layout="padded"),
        optimizer=OptimizerConfig(name=optimizer),
    )
    xla = xla_step_bytes(config)
    estimate = memory.needs(config, len(VOCAB)).working
    assert xla <= estimate <= 2 * xla, (xla, estimate)


def test_tables_and_state_are_exact_and_the_total_adds_up():
    config = Config(embed_size=64)
    needed = memory.needs(config, len(VOCAB), examples=1000)
    assert needed.tables == 2 * 5000 * 64 * 4 == state_bytes(config, 5000)["tables"]
    assert 0 <= needed.optimiser - 2 * needed.tables <= 16  # two moments and a step count
    assert needed.total == needed.tables + needed.optimiser + needed.working + 1000


def test_a_run_too_large_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    config = smoke_config(min_freq=1, num_epochs=1)
    prepared = prepare_text(config, topic_corpus(sentences=200)[0])
    monkeypatch.setattr(memory, "free_bytes", lambda: (1000, "this machine has {} free"))
    with pytest.raises(memory.NotEnoughMemory) as refused:
        train(config, data=prepared, workdir=tmp_path / "run", progress=False)
    message = str(refused.value)
    assert "\n" not in message and not (tmp_path / "run").exists()
    assert message.startswith("the run needs up to ") and "this machine has 0.0 GiB free" in message
    assert "lower embed_size=" in message and message.endswith("check_memory=False")
    # Told to go ahead, it trains.
    trained = train(
        config, data=prepared, workdir=tmp_path / "run", progress=False, check_memory=False
    )
    assert len(trained.history) == 1 and (tmp_path / "run" / "metrics.json").is_file()


def test_the_free_memory_is_the_hosts_available_ram_on_a_cpu():
    free, who = memory.free_bytes()
    if jax.default_backend() != "cpu":
        pytest.skip("an accelerator reports its own free memory")
    assert 0 < free <= memory._meminfo_available() and "RAM" in who


@pytest.mark.slow
def test_the_main_job_refuses_tables_larger_than_the_machine(ptb_dir, tmp_path):
    workdir = tmp_path / "huge"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.ptb_skipgram",
            "--embed-size",
            "10000000",
            "--data-dir",
            str(ptb_dir),
            "--workdir",
            str(workdir),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1 and not workdir.exists()
    error = done.stderr.strip()
    assert "\n" not in error and error.startswith("error: the run needs up to ")
    assert "lower --embed-size 10000000 or --batch-size 512" in error
    assert error.endswith("go ahead anyway with --no-memory-check")
