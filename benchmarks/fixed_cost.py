"""Where a run's seconds outside training go: a first run (empty corpus and compile caches)
and the same command again (both caches warm), each a process of its own.

    python -m benchmarks.fixed_cost [--corpus runs/panel/dictionaries.txt] [--tree DIR]
        [--label NAME] [--flags ...] [--out runs/fixed_cost]

``--tree`` runs another checkout's ``experiments.train`` (``git worktree add DIR COMMIT``),
so that a commit before a change is measured beside it; its figures join those already in
``--out`` under ``--label``. Outside training is the process's wall time less its epochs';
``metrics.json`` gives the data stage, the compiles, the checkpoints and the evaluation, and
the rest is the imports, the start and the results written.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import harness

RUNS = harness.RUNS / "fixed_cost"
PARTS = ("data_seconds", "compile_seconds", "checkpoint_seconds", "evaluation_seconds")


def run_once(tree: Path, corpus: Path, job_flags: list[str], cache: str) -> dict:
    with tempfile.TemporaryDirectory() as work:
        command = [
            *("/usr/bin/time", "-f", "%M", "-o", f"{work}/rss", sys.executable, "-m"),
            *("experiments.train", "--corpus", str(corpus.resolve()), "--min-freq", "5"),
            *("--workdir", work, "--cache-dir", cache, "--no-progress", *job_flags),
        ]
        began = time.perf_counter()
        done = subprocess.run(command, cwd=tree, capture_output=True, text=True)
        wall = time.perf_counter() - began
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stderr[-2000:]}")
        metrics = json.loads(Path(work, "metrics.json").read_text())
        peak = int(Path(work, "rss").read_text().split()[-1]) / 1024
    train = sum(epoch["seconds"] for epoch in metrics["epochs"])
    parts = {name: metrics.get(name, 0.0) for name in PARTS}
    rest = wall - train - sum(parts.values())
    return {"wall": wall, "train": train, "outside": wall - train, **parts, "rest": rest,
            "peak_rss_mib": peak}  # fmt: skip


def report(results: dict) -> str:
    rows = []
    for label, runs in results["trees"].items():
        for which, run in runs.items():
            rows.append(
                [f"{label}, {which}", *(f"{run[name]:.2f}" for name in (
                    "wall", "train", "outside", *PARTS, "rest")), f"{run['peak_rss_mib']:,.0f}"]
            )  # fmt: skip
    columns = ["run", "wall s", "training s", "outside training s", "data s", "compile s",
               "checkpoints s", "evaluation s", "rest s", "peak RSS MiB"]  # fmt: skip
    lines = [
        "# A run's fixed cost",
        "",
        f"{' then '.join(f'`{c}`' for c in results['commands'])} on {results['machine']} "
        f"({results['device']}); the corpus {results['corpus']}.",
        "",
        *harness.table(columns, rows),
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = harness.command_line(__doc__)
    parser.add_argument("--corpus", type=Path, default=Path("runs/panel/dictionaries.txt"))
    parser.add_argument("--tree", type=Path, default=Path("."))
    parser.add_argument("--label", default="this tree")
    parser.add_argument("--flags", nargs=argparse.REMAINDER, default=[])
    parser.add_argument("--out", type=Path, default=RUNS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if not args.corpus.is_file():
        raise SystemExit(f"error: no corpus at {args.corpus}: run python -m benchmarks.panel build")
    earlier = args.out / "fixed_cost.json"
    results = json.loads(earlier.read_text()) if earlier.is_file() else {"trees": {}}
    with tempfile.TemporaryDirectory() as cache:
        runs = {
            "first run": run_once(args.tree, args.corpus, args.flags, cache),
            "the same again": run_once(args.tree, args.corpus, args.flags, cache),
        }
    header = harness.header("benchmarks.fixed_cost", argv)
    commands = [c for c in results.get("commands", []) if c != header["command"]]
    results = {**results, **header, "commands": [*commands, header["command"]]}
    results["corpus"] = str(args.corpus)
    results["trees"][args.label] = runs
    harness.write_results(args.out, "fixed_cost", results, report(results))
    print(report(results))
    return results


if __name__ == "__main__":
    main()
