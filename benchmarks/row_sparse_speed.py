"""Train-step time against vocabulary size: row-sparse optimisers against dense Adam.

    python -m benchmarks.row_sparse_speed [--vocab 10000 1000000] [--batch-size 4096]
        [--out runs/row_sparse_speed]

Each optimiser of the registry takes the same random batch (the book's padded rows: windows of
up to 5, 5 noise words per context, d = 100) at each vocabulary size, in one process; the step
is jitted with its state donated, as the training loop runs it, and timed as the median of
``--steps`` calls after a warm-up. A row-sparse step touches only the batch's rows, so its time
should not grow with the vocabulary; a dense step passes over every row of both tables (and,
for Adam, its two moment tables). Writes ``row_sparse_speed.json`` and ``README.md`` into
``--out``; ``--out results/row_sparse_speed`` refreshes the committed table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import numpy as np

from benchmarks import harness
from w2v_jax.config import Config
from w2v_jax.feed import batches
from w2v_jax.pairs import Pairs
from w2v_jax.rows import Rows
from w2v_jax.sections import OptimizerConfig
from w2v_jax.training import optim, step

OPTIMIZERS = {"adam": 0.002, "sparse_sgd": 1000.0, "rowwise_adagrad": 1.0, "lazy_adam": 0.002}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = harness.command_line(__doc__)
    parser.add_argument(
        "--vocab", type=harness.at_least_one, nargs="+", default=[10_000, 1_000_000]
    )
    parser.add_argument("--batch-size", type=harness.at_least_one, default=4096)
    parser.add_argument("--steps", type=harness.at_least_one, default=10)
    parser.add_argument("--out", type=Path, default=harness.RUNS / "row_sparse_speed")
    return parser.parse_args(argv)


def random_pairs(vocab_size: int, batch_size: int, seed: int = 0) -> Pairs:
    """A padded batch of random words: 2 to 10 contexts per center, 5 noise words each."""
    rng = np.random.default_rng(seed)
    length = 60
    num_contexts = rng.integers(2, 11, batch_size + 1).astype(np.int32)
    num_contexts[-1] = 0  # the padding row
    examples = Rows(
        centers=rng.integers(1, vocab_size, (batch_size + 1, 1), dtype=np.int32),
        contexts_negatives=rng.integers(1, vocab_size, (batch_size + 1, length), dtype=np.int32),
        num_contexts=num_contexts,
        num_left=num_contexts // 2,
        num_live=num_contexts * 6,
    )
    return batches.gather_padded(examples, np.arange(batch_size, dtype=np.int32))


def ms_per_step(name: str, vocab_size: int, batch_size: int, steps: int) -> float:
    config = Config(
        batch_size=batch_size, optimizer=OptimizerConfig(name=name, lr=OPTIMIZERS[name])
    )
    optimizer = optim.make(config, total_steps=1_000_000)
    state = step.state_initializer(config, vocab_size, jax.random.key(0), optimizer)()
    train_step = jax.jit(step.make_train_step(config, optimizer), donate_argnums=0)
    pairs = random_pairs(vocab_size, batch_size)
    holder = {"state": state}

    def one_step() -> None:
        holder["state"], metrics = train_step(holder["state"], pairs)
        jax.block_until_ready(metrics)

    return harness.median_ms(one_step, steps)


def report(results: dict) -> str:
    sizes = results["vocab_sizes"]
    lines = [
        f"`{results['command']}` on {results['device']}, {results['machine']}: ms per "
        f"train step, batch {results['batch_size']}, d = 100, the median of "
        f"{results['steps']} steps.",
        "",
        "| optimizer | " + " | ".join(f"V = {v:,}" for v in sizes) + " | largest / smallest |",
        "| --- | " + " | ".join("---" for _ in sizes) + " | --- |",
    ]
    for name, by_size in results["ms_per_step"].items():
        times = [by_size[str(v)] for v in sizes]
        lines.append(
            f"| {name} | "
            + " | ".join(f"{t:.1f}" for t in times)
            + f" | {times[-1] / times[0]:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    results = {
        **harness.header("benchmarks.row_sparse_speed", argv),
        "batch_size": args.batch_size,
        "steps": args.steps,
        "vocab_sizes": args.vocab,
        "ms_per_step": {},
    }
    for name in OPTIMIZERS:
        results["ms_per_step"][name] = {}
        for vocab_size in args.vocab:
            ms = ms_per_step(name, vocab_size, args.batch_size, args.steps)
            results["ms_per_step"][name][str(vocab_size)] = ms
            print(f"{name}, V = {vocab_size:,}: {ms:.1f} ms per step", flush=True)
    harness.write_results(args.out, "row_sparse_speed", results, report(results))
    print(f"wrote {args.out / 'README.md'}")
    return results


if __name__ == "__main__":
    main()
