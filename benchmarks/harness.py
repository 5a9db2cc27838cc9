"""What every benchmark shares: a function run in a fresh process (its result as JSON), a timer
of jitted calls, aggregation over seeds, one Markdown table helper and
one results writer (``results/<name>/<name>.json`` and its ``README.md``).

    python -m benchmarks.harness MODULE:FUNCTION 'JSON ARGUMENTS'

runs ``FUNCTION(*ARGUMENTS)`` and prints its result as JSON on the last line: the form
``in_fresh_process`` uses, there to run by hand too.
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from experiments import flags

RUNS = Path("runs")
"""Where a benchmark writes unless pointed elsewhere (ignored by git); the committed results/
are written only when a command is pointed there (docs/refreshing.md)."""


def command_line(doc: str) -> argparse.ArgumentParser:
    """A benchmark's flags, by Python's argparse (a developer's tool, which passes some flags on
    to the jobs as they are; the users' commands read theirs with tyro: experiments.flags), its
    description the first paragraph of ``doc``, no flag abbreviated."""
    return argparse.ArgumentParser(description=flags.summary(doc), allow_abbrev=False)


def at_least_one(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def in_fresh_process(function: Callable, *args: Any) -> tuple[Any, float, float]:
    """``function(*args)`` (JSON arguments and result) in a fresh Python process: its result,
    the process's wall time and the peak RSS in MiB of the children this process has run
    (one child: its own)."""
    module = function.__module__
    if module == "__main__":  # a benchmark run as python -m benchmarks.NAME
        module = sys.modules["__main__"].__spec__.name
    target = f"{module}:{function.__qualname__}"
    command = [sys.executable, "-m", "benchmarks.harness", target, json.dumps(args)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"{target}{tuple(args)} failed ({done.returncode}): {done.stderr[-2000:]}"
        )
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return json.loads(done.stdout.strip().splitlines()[-1]), seconds, rss


def median_ms(call: Callable[[], Any], repeats: int, warmups: int = 1) -> float:
    """Milliseconds of ``call()`` (which must block until its result is ready), the median of
    ``repeats`` after ``warmups`` (the first call compiles)."""
    for _ in range(warmups):
        call()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return 1000 * statistics.median(seconds)


def over_seeds(
    runs: Sequence[dict], timed: Iterable[str], measured: Iterable[str]
) -> dict[str, Any]:
    """Runs of one system over seeds: the median of each ``timed`` figure, the mean, standard
    deviation and range of each ``measured`` one (None where the runs have none)."""
    summary: dict[str, Any] = {}
    for name in timed:
        values = [run[name] for run in runs if run.get(name) is not None]
        summary[name] = statistics.median(values) if values else None
    for name in measured:
        values = [run[name] for run in runs if run.get(name) is not None]
        summary[name] = {
            "mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values),
            "max": max(values),
        } if values else None  # fmt: skip
    return summary


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """A Markdown table's lines: a header of ``columns``, then each row's cells as text."""
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def header(module: str, argv: list[str] | None) -> dict[str, Any]:
    """What every results file starts with: the command as run, the device, the machine and
    the library versions."""
    from w2v_jax.training.records import where_it_ran  # JAX: not in a gensim process's imports

    args = sys.argv[1:] if argv is None else argv
    return {**where_it_ran(), "command": f"python -m {module} {shlex.join(args)}".rstrip()}


def write_results(out: Path, name: str, results: dict, report: str) -> None:
    """``out/<name>.json`` and ``out/README.md``, each written whole or not at all."""
    from w2v_jax.training.records import write_json, write_text

    write_json(out / f"{name}.json", results)
    write_text(out / "README.md", report)


def _run_from_command_line(target: str, arguments: str) -> None:
    module, _, qualname = target.partition(":")
    function: Any = importlib.import_module(module)
    for part in qualname.split("."):
        function = getattr(function, part)
    print(json.dumps(function(*json.loads(arguments))))


if __name__ == "__main__":
    _run_from_command_line(*sys.argv[1:3])
