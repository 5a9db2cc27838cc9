"""Where a train step's time goes: the compiled multi-step program of a preset, profiled op by
op, its time grouped by the step's parts, beside XLA's own count of the bytes it moves.

    python -m benchmarks.step_profile [--preset fast] [--objectives skipgram cbow]
        [--vocab 30000 400000] [--label NAME] [--out runs/step_profile]

For each objective and vocabulary size, one process builds the preset's program as a run
builds it (``loop.make_chunk_runner``: the pair layout of this backend, the shared noise drawn
on the device, the optimiser) on examples of Zipf-distributed words (1 to 8 contexts a center,
4.5 on average, about what word2vec's subsampling leaves of English text), and reports:

- centers a second: the fastest of ``--repeats`` dispatches of ``--steps`` steps (this
  machine is shared: a neighbour's load can slow every dispatch of a second or two threefold,
  so the fastest of many is the figure that repeats);
- each part's share of a step, from a ``jax.profiler`` trace: every operation XLA ran is
  assigned to the part whose named scope it carries (``training.step.PARTS``: draws, pairs,
  rows, loss, its gradients, touched, the optimiser's duplicate sums and row updates), the
  operations XLA made up itself to the part of the scope most common inside them;
- XLA's cost analysis of one step: bytes accessed per center, the part of them that does not
  grow with the vocabulary (XLA's CPU cost model charges a gather or scatter the whole table it
  reads or writes: two vocabulary sizes separate the two), and the least a step must move, each
  touched row (a center, a pair's word, a shared noise word) read and written once with its
  optimiser state.

Writes ``step_profile.json`` and ``README.md`` into ``--out``, keeping the runs of other
``--label``s already there, so that a commit before a change, measured from its worktree with
this file copied in (docs/refreshing.md), stands beside this tree (a tree without the step's
named scopes has no shares); ``--out results/step_profile`` refreshes the committed table
(docs/performance.md shows it).
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import tempfile
import time
from pathlib import Path

from benchmarks import harness

PARTS = (
    "draws",
    "pairs",
    "rows",
    "loss",
    "gradients",
    "touched",
    "sum_duplicates",
    "row_updates",
    "loop and other",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = harness.command_line(__doc__)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--objectives", nargs="+", default=["skipgram", "cbow"])
    parser.add_argument("--vocab", type=harness.at_least_one, nargs="+", default=[30_000, 400_000])
    parser.add_argument("--steps", type=harness.at_least_one, default=16)
    parser.add_argument("--repeats", type=harness.at_least_one, default=60)
    parser.add_argument("--label", default="this tree")
    parser.add_argument("--out", type=Path, default=harness.RUNS / "step_profile")
    return parser.parse_args(argv)


def synthetic_examples(config, vocab_size: int, rows: int, seed: int = 0):
    """Device examples of ``rows`` rows (and the padding row) of Zipf-distributed words, and
    the noise words' alias table of their counts."""
    import dataclasses

    import numpy as np

    from w2v_jax.data.noise import AliasTable, noise_distribution

    rng = np.random.default_rng(seed)
    zipf = 1.0 / np.arange(1, vocab_size)
    zipf /= zipf.sum()
    words = np.arange(1, vocab_size)
    layout = config.row_layout
    num_contexts = rng.integers(1, 9, rows + 1).astype(np.int32)
    num_contexts[-1] = 0
    slots = rng.choice(words, (rows + 1, layout.max_len), p=zipf).astype(np.int32)
    examples = dataclasses.replace(
        layout.make_rows(rows + 1),
        centers=rng.choice(words, (rows + 1, 1), p=zipf).astype(np.int32),
        contexts_negatives=slots,
        num_contexts=num_contexts,
        num_left=(num_contexts // 2).astype(np.int32),
        num_live=layout.num_live(num_contexts).astype(np.int32),
    )
    counts = np.concatenate([[0], np.maximum(1e8 * zipf, 1)]).astype(np.int64)
    return examples, AliasTable.build(noise_distribution(counts))


def build(preset: str, objective: str, vocab_size: int, steps: int):
    """The preset's program, its state and a dispatch's inputs."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from w2v_jax import presets
    from w2v_jax.feed import batches
    from w2v_jax.training import loop, optim, step

    config = presets.preset(preset, objective=objective)
    examples, noise_table = synthetic_examples(config, vocab_size, config.batch_size * steps)
    optimizer = optim.make(config, total_steps=10**6)
    noise = noise_table if config.noise.shared_by_batch else None
    step_fn = step.make_train_step(config, optimizer, noise)
    order = np.random.default_rng(1).permutation(config.batch_size * steps).astype(np.int32)
    order = order.reshape(steps, config.batch_size)
    layout = batches.pair_layout(config.execution.layout)
    most_live = max(int(examples.num_live[rows].sum()) for rows in order)
    layout = layout.fit(most_live)
    runner = loop.make_chunk_runner(step_fn, None, layout)
    state = step.state_initializer(config, vocab_size, jax.random.key(0), optimizer)()
    inputs = (jax.tree.map(jnp.asarray, examples), jnp.asarray(order))
    pairs = float(examples.num_contexts[order].sum()) / steps
    return config, layout, step_fn, runner, state, inputs, pairs


def bytes_per_center(preset: str, objective: str, vocab_size: int) -> float:
    """XLA's bytes accessed by one step, per center."""
    import jax

    config, layout, step_fn, _, state, (examples, order), _ = build(
        preset, objective, vocab_size, 1
    )
    one = jax.jit(lambda s, e, r: step_fn(s, layout.gather(e, r)), donate_argnums=0)
    cost = one.lower(state, examples, order[0]).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return cost["bytes accessed"] / config.batch_size


def profile(preset: str, objective: str, vocab_size: int, steps: int, repeats: int) -> dict:
    """One objective at one vocabulary size: speed, the parts' shares, bytes (in this process)."""
    import jax
    import numpy as np

    config, _, _, runner, state, (examples, order), pairs = build(
        preset, objective, vocab_size, steps
    )
    compiled = runner.lower(state, examples, order, np.int32(steps)).compile()
    seconds = []
    for _ in range(repeats + 2):
        began = time.perf_counter()
        state, losses, _ = compiled(state, examples, order, np.int32(steps))
        jax.block_until_ready(losses)
        seconds.append(time.perf_counter() - began)
    ms_per_step = 1000 * min(seconds[2:]) / steps
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
            for _ in range(3):
                state, losses, _ = compiled(state, examples, order, np.int32(steps))
                jax.block_until_ready(losses)
        durations = op_durations(trace_dir)
    shares = part_shares(durations, compiled.as_text())
    here = bytes_per_center(preset, objective, vocab_size)
    doubled = bytes_per_center(preset, objective, 2 * vocab_size)
    per_vocab_row = (doubled - here) / vocab_size
    touched = config.batch_size + pairs + config.noise.groups * config.noise.shared
    least = touched * 2 * (4 * config.embed_size + 4) / config.batch_size
    return {
        "objective": objective,
        "vocab_size": vocab_size,
        "batch_size": config.batch_size,
        "pairs_per_step": pairs,
        "ms_per_step": ms_per_step,
        "centers_per_second": config.batch_size / ms_per_step * 1000,
        "shares": shares,
        "bytes_per_center": here,
        "bytes_per_center_without_tables": here - per_vocab_row * vocab_size,
        "least_bytes_per_center": least,
    }


def op_durations(trace_dir: str) -> dict[str, float]:
    """Microseconds each XLA operation ran, summed over the trace."""
    [path] = Path(trace_dir).rglob("perfetto_trace.json.gz")
    events = json.loads(gzip.open(path).read())
    events = events["traceEvents"] if isinstance(events, dict) else events
    totals: dict[str, float] = collections.Counter()
    for event in events:
        if event.get("ph") == "X" and "dur" in event:
            totals[event["name"]] += event["dur"]
    return totals


def part_shares(durations: dict[str, float], hlo: str) -> dict[str, float]:
    """Each part's share of the operations' time (``PARTS``), from the program's text: an
    operation's part is its named scope's, or the most common one inside what it calls."""
    computations = _computations(hlo)
    by_part: dict[str, float] = collections.Counter()
    for line in hlo.splitlines():
        match = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = \S+ ([\w\-]+)\(", line)
        if not match or match.group(1) not in durations:
            continue
        part = _part_of(line)
        called = re.search(r"calls=%?([\w.\-]+)", line)
        if part is None and called:
            inside = [_part_of(op) for op in computations.get(called.group(1), [])]
            counts = collections.Counter(p for p in inside if p is not None)
            part = counts.most_common(1)[0][0] if counts else None
        by_part[part or "loop and other"] += durations[match.group(1)]
    total = sum(by_part.values())
    if by_part.get("loop and other", 0.0) == total:
        return {}  # a tree whose step has no named scopes
    return {part: by_part.get(part, 0.0) / total for part in PARTS}


def _part_of(line: str) -> str | None:
    """The part of an operation by its named scopes (``training.step.PARTS``): the optimiser's
    split into its duplicate sums and its row updates, the loss's into itself and its
    gradients (the scope transposed)."""
    from w2v_jax.training.step import PARTS as SCOPES

    name = re.search(r'op_name="([^"]*)"', line)
    if name is None:
        return None
    scopes = name.group(1).split("/")
    if "sum_duplicates" in scopes:
        return "sum_duplicates"
    if "optimizer" in scopes:
        return "row_updates"
    if "transpose(jvp(loss))" in scopes:
        return "gradients"
    if "jvp(loss)" in scopes:
        return "loss"
    return next((scope for scope in scopes if scope in SCOPES), None)


def _computations(hlo: str) -> dict[str, list[str]]:
    """Each computation's instruction lines, by name."""
    found: dict[str, list[str]] = {}
    current = None
    for line in hlo.splitlines():
        header = re.match(r"%?([\w.\-]+) .*\{\s*$", line)
        if header and not line.startswith(" "):
            current = found.setdefault(header.group(1), [])
        elif current is not None and line.strip() and line.strip() != "}":
            current.append(line)
    return found


def report(results: dict) -> str:
    lines = [
        f"`{' then '.join(results['commands'])}` on {results['device']}, {results['machine']}: the "
        f"`{results['preset']}` preset's compiled step on Zipf-distributed words "
        f"(benchmarks/step_profile.py), each objective and vocabulary size in a process of its "
        "own. Time: the fastest of the dispatches; shares: a `jax.profiler` trace, each XLA "
        "operation's time assigned to its named scope (`w2v_jax.training.step.PARTS`); bytes: "
        "XLA's cost analysis of one step, per center.",
        "",
    ]
    rows = []
    for run in results["runs"]:
        shares = run["shares"]
        rows.append(
            [
                run["label"],
                run["objective"],
                f"{run['vocab_size']:,}",
                f"{run['ms_per_step']:.2f}",
                f"{run['centers_per_second']:,.0f}",
                *(f"{100 * shares[part]:.0f}%" if shares else "" for part in PARTS),
            ]
        )
    lines += harness.table(["tree", "objective", "words", "ms a step", "centers/s", *PARTS], rows)
    lines += ["", "Bytes a step moves per center (KB), by XLA's cost analysis:", ""]
    rows = [
        [
            run["label"],
            run["objective"],
            f"{run['vocab_size']:,}",
            f"{run['bytes_per_center'] / 1e3:.1f}",
            f"{run['bytes_per_center_without_tables'] / 1e3:.1f}",
            f"{run['least_bytes_per_center'] / 1e3:.1f}",
            f"{run['bytes_per_center'] / run['least_bytes_per_center']:.1f}x",
            f"{run['bytes_per_center_without_tables'] / run['least_bytes_per_center']:.1f}x",
        ]
        for run in results["runs"]
    ]
    lines += harness.table(
        [
            "tree",
            "objective",
            "words",
            "all",
            "not growing with the words",
            "least (touched rows once)",
            "all / least",
            "not growing / least",
        ],
        rows,
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    earlier = args.out / "step_profile.json"
    results = json.loads(earlier.read_text()) if earlier.is_file() else {"runs": []}
    header = harness.header("benchmarks.step_profile", argv)
    commands = [c for c in results.get("commands", []) if c != header["command"]]
    results = {
        **results,
        **header,
        "preset": args.preset,
        "commands": [*commands, header["command"]],
    }
    results["runs"] = [run for run in results["runs"] if run["label"] != args.label]
    for objective in args.objectives:
        for vocab_size in args.vocab:
            run, _, _ = harness.in_fresh_process(
                profile, args.preset, objective, vocab_size, args.steps, args.repeats
            )
            results["runs"].append({"label": args.label, **run})
            print(
                f"{args.label}: {objective}, {vocab_size:,} words: {run['ms_per_step']:.2f} ms a "
                f"step, {run['centers_per_second']:,.0f} centers/s",
                flush=True,
            )
    harness.write_results(args.out, "step_profile", results, report(results))
    print(report(results))
    return results


if __name__ == "__main__":
    main()
