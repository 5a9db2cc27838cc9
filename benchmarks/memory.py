"""A run's peak memory against its vocabulary: the default job on synthetic corpora of 20k,
170k and 400k words, each in a process of its own, beside what its tables and optimiser state
take.

    python -m benchmarks.memory [--vocab 20000 170000 400000] [--tokens-per-word 20]
        [--epochs 1] [--corpus-dir runs/memory] [--out runs/memory]

Each corpus is ``experiments.make_corpus``'s Zipf text of ``--tokens-per-word`` times the
vocabulary's tokens (written under ``--corpus-dir``, never committed), read with
``--min-freq 1`` so that the vocabulary is about the asked size; the job is
``python -m experiments.train`` with its own defaults (the fast preset, its evaluation
included), its peak RSS measured by ``/usr/bin/time``. The figure aimed at: peak RSS at most
tables + optimiser state + 0.5 GiB. Writes ``memory.json`` and ``README.md`` into ``--out``;
``--out results/memory`` refreshes the
committed table (docs/performance.md shows it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import harness

ALLOWANCE_MIB = 512


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = harness.command_line(__doc__)
    parser.add_argument(
        "--vocab", type=harness.at_least_one, nargs="+", default=[20_000, 170_000, 400_000]
    )
    parser.add_argument("--tokens-per-word", type=harness.at_least_one, default=20)
    parser.add_argument("--epochs", type=harness.at_least_one, default=1)
    parser.add_argument("--corpus-dir", type=Path, default=harness.RUNS / "memory")
    parser.add_argument("--out", type=Path, default=harness.RUNS / "memory")
    return parser.parse_args(argv)


def corpus(vocab_size: int, tokens: int, directory: Path) -> Path:
    """The synthetic corpus of ``vocab_size`` background words, written once."""
    path = directory / f"zipf_{vocab_size}_{tokens}.txt"
    if not path.is_file():
        command = [sys.executable, "-m", "experiments.make_corpus", "--tokens", str(tokens)]
        command += ["--vocab", str(vocab_size), "--out", str(path)]
        subprocess.run(command, check=True, capture_output=True)
    return path


def measure(path: Path, epochs: int) -> dict:
    """The default job on ``path`` in a process of its own: its peak RSS and vocabulary."""
    from w2v_jax import presets
    from w2v_jax.training import loop

    with tempfile.TemporaryDirectory() as work:
        command = [
            *("/usr/bin/time", "-f", "%M", "-o", f"{work}/rss", sys.executable, "-m"),
            *("experiments.train", "--corpus", str(path), "--min-freq", "1"),
            *("--num-epochs", str(epochs), "--workdir", work, "--cache-dir", f"{work}/cache"),
            "--no-progress",
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stderr[-2000:]}")
        peak_kib = int(Path(f"{work}/rss").read_text().split()[-1])
        metrics = json.loads((Path(work) / "metrics.json").read_text())
    vocab_size = metrics["vocab_size"]
    state = loop.state_bytes(presets.preset(presets.OWN_TEXT), vocab_size)
    return {
        "vocab_size": vocab_size,
        "tokens": metrics["corpus"].get("tokens"),
        "peak_rss_mib": peak_kib / 1024,
        "tables_mib": state["tables"] / 2**20,
        "optimiser_mib": state["optimiser"] / 2**20,
        "feed": metrics.get("feed", {}).get("drawn_on"),
    }


def report(results: dict) -> str:
    lines = [
        f"`{results['command']}` on {results['device']}, {results['machine']}: the default job "
        f"(`python -m experiments.train`, {results['epochs']} epoch(s), its evaluation "
        "included) on `experiments.make_corpus`'s Zipf text, peak RSS by `/usr/bin/time`. "
        f"Target: at most tables + optimiser state + {ALLOWANCE_MIB} MiB.",
        "",
    ]
    rows = []
    for run in results["runs"]:
        state = run["tables_mib"] + run["optimiser_mib"]
        beyond = run["peak_rss_mib"] - state
        rows.append(
            [
                f"{run['vocab_size']:,}",
                f"{run['tokens']:,}" if run["tokens"] else "",
                run["feed"] or "",
                f"{run['tables_mib']:,.0f}",
                f"{run['optimiser_mib']:,.1f}",
                f"{run['peak_rss_mib']:,.0f}",
                f"{beyond:,.0f}",
                "yes" if beyond <= ALLOWANCE_MIB else "no",
            ]
        )
    lines += harness.table(
        [
            "words",
            "tokens",
            "examples drawn on",
            "tables MiB",
            "optimiser MiB",
            "peak RSS MiB",
            "beyond the state MiB",
            f"within {ALLOWANCE_MIB} MiB",
        ],
        rows,
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    args.corpus_dir.mkdir(parents=True, exist_ok=True)
    results = {**harness.header("benchmarks.memory", argv), "epochs": args.epochs, "runs": []}
    for vocab_size in args.vocab:
        path = corpus(vocab_size, vocab_size * args.tokens_per_word, args.corpus_dir)
        run = measure(path, args.epochs)
        results["runs"].append(run)
        print(f"{run['vocab_size']:,} words: peak RSS {run['peak_rss_mib']:,.0f} MiB", flush=True)
    harness.write_results(args.out, "memory", results, report(results))
    print(report(results))
    return results


if __name__ == "__main__":
    main()
