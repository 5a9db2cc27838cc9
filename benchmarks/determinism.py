"""What ``--execution.deterministic`` costs: the same runs with and without XLA's deterministic ops.

    python -m benchmarks.determinism [--epochs 3] [--presets book fast] [--out runs/determinism]

For each preset, trains on PTB twice with ``deterministic=False`` and twice with ``True``, all in
this one process on the same prepared data, and reports the training throughput of each setting
(the median of the two runs, compile time excluded), their ratio, and whether the two runs of
a setting ended with bitwise equal parameters. On the CPU both settings are deterministic and
cost the same; the option is for GPUs. Writes ``determinism.json`` and ``README.md`` into
``--out``; ``--out results/determinism`` refreshes the committed table.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import jax
import numpy as np

from benchmarks import harness
from w2v_jax import run
from w2v_jax.presets import PRESETS, preset


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = harness.command_line(__doc__)
    parser.add_argument("--epochs", type=harness.at_least_one, default=3)
    parser.add_argument("--presets", nargs="+", default=["book", "fast"], choices=sorted(PRESETS))
    parser.add_argument("--out", type=Path, default=harness.RUNS / "determinism")
    parser.add_argument("--data-dir", default=None)
    return parser.parse_args(argv)


def compare(name: str, epochs: int, data_dir: str | None) -> dict:
    """Two runs of each setting of ``deterministic`` for the preset ``name``."""
    config = preset(name, num_epochs=epochs)
    prepared = run.prepare(config, data_dir=data_dir)
    entry = {"preset": name, "epochs": epochs}
    for deterministic in (False, True):
        runs = [
            run.train(
                config.replace(**{"execution.deterministic": deterministic}),
                data=prepared,
                progress=False,
            )
            for _ in range(2)
        ]
        speeds = [
            sum(s.centers for s in run.history) / sum(s.seconds for s in run.history)
            for run in runs
        ]
        same = all(
            np.array_equal(a, b)
            for a, b in zip(jax.tree.leaves(runs[0].params), jax.tree.leaves(runs[1].params))
        )
        key = "deterministic" if deterministic else "default"
        entry[key] = {
            "centers_per_second": statistics.median(speeds),
            "runs_bitwise_equal": same,
            "final_loss": runs[0].history[-1].loss,
        }
    entry["speed_ratio"] = (
        entry["deterministic"]["centers_per_second"] / entry["default"]["centers_per_second"]
    )
    return entry


def report(results: dict) -> str:
    lines = [
        f"`{results['command']}` on {results['device']}, {results['machine']}: each "
        f"setting trained twice on PTB in one process (training throughput, median of "
        f"the two; compile time excluded).",
        "",
        "| preset | epochs | default centers/s | deterministic centers/s | "
        "deterministic / default | default runs bitwise equal | "
        "deterministic runs bitwise equal |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for e in results["comparisons"]:
        lines.append(
            f"| {e['preset']} | {e['epochs']} | "
            f"{e['default']['centers_per_second']:,.0f} | "
            f"{e['deterministic']['centers_per_second']:,.0f} | "
            f"{e['speed_ratio']:.2f}x | {e['default']['runs_bitwise_equal']} | "
            f"{e['deterministic']['runs_bitwise_equal']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    results = {**harness.header("benchmarks.determinism", argv), "comparisons": []}
    for name in args.presets:
        entry = compare(name, args.epochs, args.data_dir)
        results["comparisons"].append(entry)
        print(
            f"{name}: deterministic / default throughput {entry['speed_ratio']:.2f}x; "
            f"bitwise repeatable: default {entry['default']['runs_bitwise_equal']}, "
            f"deterministic {entry['deterministic']['runs_bitwise_equal']}",
            flush=True,
        )
    harness.write_results(args.out, "determinism", results, report(results))
    print(f"wrote {args.out / 'README.md'}")
    return results


if __name__ == "__main__":
    main()
