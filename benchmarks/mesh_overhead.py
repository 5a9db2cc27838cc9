"""What the mesh path costs on one device: the training program jitted with the shardings of
a 1x1 mesh against the same program jitted without any, side by side in one process.

    python -m benchmarks.mesh_overhead [--presets book fast gpu] [--dispatches 20]
        [--out runs/mesh_overhead]

For each preset, PTB's examples (the data stage as the main job has it) go to the device once;
both programs (``loop.make_chunk_runner`` with and without shardings, each with its own state)
run the same dispatches of ``steps_per_dispatch`` steps in turn (each first every other
round), and each dispatch is timed to the host reading its losses. The ratio of the medians is
the mesh path's cost; the compiled programs are also compared instruction by instruction
(sharding annotations left out). Writes ``mesh_overhead.json`` and ``README.md`` into
``--out``; ``--out results/mesh_overhead`` refreshes the committed table (its device is named
there: a CPU's figure says little of a GPU's).
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from pathlib import Path

import jax
import numpy as np

from benchmarks import harness
from w2v_jax import feed, parallel, run
from w2v_jax.feed import shards
from w2v_jax.feed.group import group_order
from w2v_jax.presets import preset
from w2v_jax.training import loop


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = harness.command_line(__doc__)
    parser.add_argument("--presets", nargs="+", default=["book", "fast"])
    parser.add_argument("--dispatches", type=harness.at_least_one, default=20)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=harness.RUNS / "mesh_overhead")
    return parser.parse_args(argv)


def compare(name: str, data_dir: str | None, dispatches: int) -> dict:
    config = preset(name)
    prepared = run.prepare(config, data_dir=data_dir)
    placement = parallel.Placement.single()
    stream = feed.open_stream(config, prepared.dataset, prepared.examples, placement)
    program = loop.Program(config, prepared.vocab, stream.plan.total_steps, placement=placement)
    program.fit(stream.most_live())
    train_step, layout = program.step_fn, program.layout
    examples = shards.to_device(prepared.examples, placement=placement)
    order = group_order(config, len(prepared.examples), 0, 0)
    steps = config.execution.steps_per_dispatch
    chunks = [
        loop.pad_steps(order[i * steps : (i + 1) * steps], steps)
        for i in range(min(dispatches, len(order) // steps))
    ]

    def fresh_state():
        return program.init_state()

    state = fresh_state()
    shardings = (
        placement.state_shardings(
            jax.eval_shape(lambda: state), placement.rows(len(prepared.vocab))
        ),
        jax.tree.map(lambda _: placement.replicated, examples),
        placement.batch_rows,
    )
    runners = {
        "unsharded": loop.make_chunk_runner(train_step, layout=layout),
        "mesh 1x1": loop.make_chunk_runner(train_step, layout=layout, shardings=shardings),
    }
    states = {label: fresh_state() for label in runners}
    seconds = {label: [] for label in runners}
    for index in range(len(chunks) + 1):  # the first round compiles
        # Each goes first every other round, so that neither always follows the other.
        for label in list(runners)[:: 1 if index % 2 else -1]:
            runner = runners[label]
            chunk = parallel.put(chunks[index % len(chunks)], placement.batch_rows)
            start = time.perf_counter()
            states[label], losses, _ = runner(states[label], examples, chunk, np.int32(steps))
            np.asarray(losses)
            if index:
                seconds[label].append(time.perf_counter() - start)
    programs = [
        _instructions(
            runner.lower(states[label], examples, chunks[0], np.int32(steps)).compile().as_text()
        )
        for label, runner in runners.items()
    ]
    equal = all(
        np.array_equal(a, b)
        for a, b in zip(
            jax.tree.leaves(states["unsharded"].params), jax.tree.leaves(states["mesh 1x1"].params)
        )
    )
    medians = {label: statistics.median(times) for label, times in seconds.items()}
    return {
        "preset": name,
        "layout": layout.to_dict(),
        "steps_per_dispatch": steps,
        "dispatches": len(chunks),
        "centers_per_second": {
            label: steps * config.batch_size / median for label, median in medians.items()
        },
        "ratio": medians["mesh 1x1"] / medians["unsharded"],
        "parameters_bitwise_equal": equal,
        "same_instructions": programs[0] == programs[1],
    }


def _instructions(hlo: str) -> list[str]:
    """A compiled program's instructions without names, source locations and sharding
    annotations, in order: equal lists mean the same computation."""
    hlo = re.sub(r", (metadata|sharding)=\{[^}]*\}", "", hlo)
    hlo = re.sub(r", frontend_attributes=.*$", "", hlo, flags=re.MULTILINE)  # last, nested
    hlo = re.sub(r"\.\d+", "", hlo)  # instruction numbers
    return [
        line.strip()
        for line in hlo.splitlines()
        if line.strip() and not re.match(r"(HloModule|\d+ \{file_name_id)", line.strip())
    ]


def report(results: dict) -> str:
    lines = [
        f"`{results['command']}` on {results['device']}, {results['machine']}: the "
        f"training program with the shardings of a 1x1 mesh against the same program "
        f"without shardings, dispatches alternated in one process (medians).",
        "",
        "| preset | layout | unsharded centers/s | mesh 1x1 centers/s | time ratio (mesh / "
        "unsharded) | parameters bitwise equal | same compiled instructions |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for entry in results["runs"]:
        speed = entry["centers_per_second"]
        lines.append(
            f"| {entry['preset']} | {entry['layout']} | {speed['unsharded']:,.0f} | "
            f"{speed['mesh 1x1']:,.0f} | {entry['ratio']:.3f} | "
            f"{'yes' if entry['parameters_bitwise_equal'] else 'no'} | "
            f"{'yes' if entry['same_instructions'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    results = {**harness.header("benchmarks.mesh_overhead", argv), "runs": []}
    for name in args.presets:
        results["runs"].append(compare(name, args.data_dir, args.dispatches))
        print(report(results).splitlines()[-1], flush=True)
    harness.write_results(args.out, "mesh_overhead", results, report(results))
    print(report(results))
    return results


if __name__ == "__main__":
    main()
