"""grain's pipeline against a one-thread prefetch of our own, feeding a streamed corpus.

    python -m benchmarks.prefetch [--tokens 6000000] [--repeats 2] [--out runs/prefetch]

Writes a synthetic corpus (``experiments.make_corpus``), then trains the fast preset for one
epoch on it, in a fresh process per run, with each way of drawing the next group of blocks
while the current one trains: the epoch's centers per second and the time it waited for
examples (``EpochStats.feed_seconds``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import harness

WAYS = ("grain", "thread")


def one_epoch(corpus: str, cache: str, way: str) -> dict:
    """In a fresh process: the fast preset's epoch on ``corpus``, groups drawn ``way``."""
    os.environ["W2V_JAX_PREFETCH"] = way
    from w2v_jax import run
    from w2v_jax.config import CorpusConfig, preset

    config = preset("fast", num_epochs=1, min_freq=5)
    data = run.prepare(config, CorpusConfig((corpus,)), cache_dir=cache)
    epoch = run.train(config, data=data, progress=False, evaluation=None).history[0]
    return {
        "way": way,
        "blocks": data.num_blocks,
        "centers_per_second": epoch.centers_per_second,
        "feed_seconds": epoch.feed_seconds,
        "epoch_seconds": epoch.seconds,
        "loss": epoch.loss,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = harness.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=harness.at_least_one, default=6_000_000)
    parser.add_argument("--repeats", type=harness.at_least_one, default=2)
    parser.add_argument("--out", type=Path, default=harness.RUNS / "prefetch")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    results = {**harness.header("benchmarks.prefetch", argv), "runs": []}
    with tempfile.TemporaryDirectory() as work:
        corpus = Path(work) / "zipf.txt"
        make = [sys.executable, "-m", "experiments.make_corpus", "--tokens", str(args.tokens)]
        subprocess.run([*make, "--vocab", "50000", "--out", str(corpus)], check=True)
        for _ in range(args.repeats):
            for way in WAYS:
                run = harness.in_fresh_process(one_epoch, str(corpus), f"{work}/cache", way)[0]
                results["runs"].append(run)
                print(run, flush=True)
    results["ways"] = {
        way: harness.over_seeds(
            [r for r in results["runs"] if r["way"] == way],
            ("centers_per_second", "feed_seconds", "epoch_seconds", "loss"),
            (),
        )
        for way in WAYS
    }
    harness.write_results(args.out, "prefetch", results, report(results))
    print((args.out / "README.md").read_text())
    return results


def report(results: dict) -> str:
    rows = [
        (
            way,
            f"{entry['centers_per_second']:,.0f}",
            f"{entry['feed_seconds']:.3f}",
            f"{entry['feed_seconds'] / entry['epoch_seconds']:.1%}",
            f"{entry['loss']:.4f}",
        )
        for way, entry in results["ways"].items()
    ]
    runs = results["runs"]
    same = statistics.pvariance(r["loss"] for r in runs) == 0
    lines = [
        "# Prefetch",
        "",
        f"`{results['command']}` on {results['device']}, {results['machine']}: the fast preset's "
        f"epoch on {runs[0]['blocks']} blocks of synthetic Zipf text, medians of "
        f"{len(runs) // len(WAYS)} fresh processes per way.",
        "",
        *harness.table(("way", "centers/s", "waited s", "of the epoch", "loss"), rows),
        "",
        f"The same batches either way: every run's loss equal ({same}).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
