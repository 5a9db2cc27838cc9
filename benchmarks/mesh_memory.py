"""Per-device memory of a large vocabulary split over the vocab axis of a mesh.

    python -m benchmarks.mesh_memory [--vocab 1000000] [--embed-size 300] [--devices 4]
        [--out runs/mesh_memory]

Creates the state of a lazy Adam run (both tables, their two moment tables and a count per row)
on meshes data=1,vocab=M for M = 1, 2, 4, sharded from the start as training creates it, and
reads what each device holds from the arrays' shards; then compiles the train step on the mesh
and runs a few steps of random batches, reporting XLA's temporary memory per device (the
step's working space: a step that gathered a whole table would need a table's bytes). Runs on
fake CPU devices (``--devices`` of them, set before JAX starts): they show how the arrays are
split, not how fast a mesh is. Writes ``mesh_memory.json`` and ``README.md`` into ``--out``;
``--out results/mesh_memory`` refreshes the committed table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import jax
import numpy as np

from benchmarks import harness
from benchmarks.row_sparse_speed import random_pairs
from w2v_jax import data, parallel
from w2v_jax.config import Config
from w2v_jax.sections import ExecutionConfig, OptimizerConfig
from w2v_jax.training import loop


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = harness.command_line(__doc__)
    parser.add_argument("--vocab", type=harness.at_least_one, default=1_000_000)
    parser.add_argument("--embed-size", type=harness.at_least_one, default=300)
    parser.add_argument("--devices", type=harness.at_least_one, default=4)
    parser.add_argument("--batch-size", type=harness.at_least_one, default=4096)
    parser.add_argument("--out", type=Path, default=harness.RUNS / "mesh_memory")
    return parser.parse_args(argv)


def _vocab(size: int) -> data.vocab.Vocab:
    """A vocabulary of ``size`` words, for the tables' shapes."""
    return data.vocab.Vocab(tuple(map(str, range(size))), np.ones(size, np.int64))


def measure(vocab_size: int, embed_size: int, vocab_axis: int, batch_size: int) -> dict:
    config = Config(
        embed_size=embed_size,
        batch_size=batch_size,
        execution=ExecutionConfig(mesh=f"data=1,vocab={vocab_axis}", steps_per_dispatch=4),
        optimizer=OptimizerConfig(name="lazy_adam"),
    )
    placement = parallel.Placement.from_spec(config.execution.mesh)
    program = loop.Program(config, _vocab(vocab_size), 1000, placement=placement)
    start = time.perf_counter()
    state = program.init_state()
    jax.block_until_ready(state)
    init_seconds = time.perf_counter() - start
    held = placement.shard_bytes(state)
    tables = placement.shard_bytes(state.params)

    # A few steps of random padded batches through the training loop's compiled program.
    # The batch's rows, then a padding row.
    examples = jax.tree.map(
        lambda rows: parallel.put(
            np.concatenate([rows, np.zeros_like(rows[:1])]), placement.replicated
        ),
        random_pairs(vocab_size, batch_size).rows,
    )
    program.compile(state, examples)
    temp = program.memory_analysis().temp_size_in_bytes
    order = np.tile(np.arange(batch_size, dtype=np.int32), (config.execution.steps_per_dispatch, 1))
    loss_sum = num_examples = 0.0
    for _ in range(2):
        state, dispatch = program(state, examples, order)
        loss_sum, num_examples = loss_sum + dispatch.loss_sum, num_examples + dispatch.num_examples
    # The same program for a vocabulary 10 times smaller, compiled only: working space that
    # does not shrink with it belongs to the batch, not to the tables.
    small_program = loop.Program(config, _vocab(vocab_size // 10), 1000, placement=placement)
    small_program.compile(jax.eval_shape(small_program.init_state), examples)
    return {
        "mesh": placement.description,
        "devices": vocab_axis,
        "state_bytes_per_device": max(held.values()),
        "table_bytes_per_device": max(tables.values()),
        "state_bytes_total": sum(held.values()),
        "step_temp_bytes_per_device": temp,
        "step_temp_bytes_per_device_tenth_vocab": (
            small_program.memory_analysis().temp_size_in_bytes
        ),
        "init_seconds": init_seconds,
        "loss_after_8_steps": float(loss_sum / num_examples),
    }


def report(results: dict) -> str:
    runs = results["runs"]
    one = runs[0]["state_bytes_per_device"]
    lines = [
        f"`{results['command']}` on {results['device']}, {results['machine']}: lazy Adam, "
        f"V = {results['vocab']:,}, d = {results['embed_size']}; bytes each device holds, "
        f"read from the arrays' shards, and XLA's temporary memory per device for a "
        f"dispatch of train steps of {results['batch_size']:,} centers (padded rows, "
        f"L = 60), at V and at V / 10: the step's working space is its batch's gathered "
        f"rows and their gradients, the same whatever the vocabulary (no table is "
        f"gathered whole). Fake CPU devices: this shows how the arrays are split, not a "
        f"mesh's speed.",
        "",
        "| mesh | tables per device | tables + lazy Adam state per device | against one "
        "device | step's temporary memory per device | the same at V / 10 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        lines.append(
            f"| {run['mesh']} | {run['table_bytes_per_device'] / 2**30:.3f} GiB | "
            f"{run['state_bytes_per_device'] / 2**30:.3f} GiB | "
            f"{run['state_bytes_per_device'] / one:.3f} (1/M = "
            f"{1 / run['devices']:.3f}) | "
            f"{run['step_temp_bytes_per_device'] / 2**20:.0f} MiB | "
            f"{run['step_temp_bytes_per_device_tenth_vocab'] / 2**20:.0f} MiB |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    # JAX reads the device count when its backend starts: fake CPU devices are set before any
    # use (importing JAX does not start it).
    os.environ.update(parallel.fake_cpu_devices(args.devices))

    sizes = [m for m in (1, 2, 4, 8) if m <= args.devices]
    results = {
        **harness.header("benchmarks.mesh_memory", argv),
        "vocab": args.vocab,
        "embed_size": args.embed_size,
        "batch_size": args.batch_size,
        "runs": [],
    }
    for vocab_axis in sizes:
        run = measure(args.vocab, args.embed_size, vocab_axis, args.batch_size)
        print(
            f"{run['mesh']}: {run['state_bytes_per_device'] / 2**30:.3f} GiB per device, "
            f"step temporary {run['step_temp_bytes_per_device'] / 2**20:.0f} MiB",
            flush=True,
        )
        results["runs"].append(run)
    harness.write_results(args.out, "mesh_memory", results, report(results))
    sys.stdout.write(report(results))
    return results


if __name__ == "__main__":
    main()
