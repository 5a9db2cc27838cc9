"""8 learning rates on PTB: trained together in one program, against one run after another.

    python -m benchmarks.vectorised_speed [--epochs 2] [--presets book] [--out runs/sweeps]

For each preset, both ways train the same 8 configs on the same prepared data; each side's wall
time includes its compilation (one program for the group, one per sequential run). Also checks
that both give the same parameters and losses. Writes ``vectorised_speed.json`` and
``vectorised_speed.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks import harness
from w2v_jax import run
from w2v_jax.presets import PRESETS, preset
from w2v_jax.training import optim
from w2v_jax.training.records import write_json, write_text

# Multiples of the preset's learning rate (the book's 0.01: 0.001 to 0.015).
LR_FACTORS = (0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5)


def compare(preset_name: str, epochs: int, data_dir: str | None) -> dict:
    base_lr = optim.learning_rate(preset(preset_name))
    configs = [
        preset(preset_name, num_epochs=epochs, **{"optimizer.lr": base_lr * factor})
        for factor in LR_FACTORS
    ]
    prepared = run.prepare(configs[0], data_dir=data_dir)
    start = time.perf_counter()
    together = run.train(configs, data=prepared, progress=False)
    vectorised_seconds = time.perf_counter() - start
    start = time.perf_counter()
    alone = [run.train(config, data=prepared, progress=False) for config in configs]
    sequential_seconds = time.perf_counter() - start
    param_diff = max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for each, single in zip(together, alone)
        for a, b in zip(_leaves(each.params), _leaves(single.params))
    )
    loss_diff = max(
        abs(run.history[-1].loss - single.history[-1].loss) for run, single in zip(together, alone)
    )
    return {
        "preset": preset_name,
        "runs": len(configs),
        "epochs": epochs,
        "vectorised_seconds": vectorised_seconds,
        "sequential_seconds": sequential_seconds,
        "speedup": sequential_seconds / vectorised_seconds,
        "vectorised_compile_seconds": together[0].compile_seconds,
        "max_param_difference": param_diff,
        "max_final_loss_difference": loss_diff,
        "final_losses": [run.history[-1].loss for run in together],
    }


def _leaves(params: dict) -> list:
    return [params[table] for table in ("center", "context")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = harness.command_line(__doc__)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--presets", nargs="+", default=["book"], choices=sorted(PRESETS))
    parser.add_argument("--out", type=Path, default=harness.RUNS / "sweeps")
    parser.add_argument("--data-dir", default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    results = {**harness.header("benchmarks.vectorised_speed", argv), "comparisons": []}
    for name in args.presets:
        results["comparisons"].append(compare(name, args.epochs, args.data_dir))
        entry = results["comparisons"][-1]
        print(
            f"{name}: {entry['sequential_seconds']:.1f} s one after another, "
            f"{entry['vectorised_seconds']:.1f} s together: {entry['speedup']:.2f}x",
            flush=True,
        )
    write_json(args.out / "vectorised_speed.json", results)
    write_text(args.out / "vectorised_speed.md", report(results))
    return results


def report(results: dict) -> str:
    lines = [
        f"`{results['command']}` on {results['device']}, {results['machine']}: "
        f"{len(LR_FACTORS)} learning rates, trained together or one after another "
        "(wall time including compilation, same prepared data).",
        "",
        "| preset | epochs | one after another s | together s | speedup | "
        "max parameter difference | max final-loss difference |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {c['preset']} | {c['epochs']} | {c['sequential_seconds']:.1f} | "
        f"{c['vectorised_seconds']:.1f} | {c['speedup']:.2f}x | "
        f"{c['max_param_difference']:.1e} | {c['max_final_loss_difference']:.1e} |"
        for c in results["comparisons"]
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
