"""What each lever does to quality: the fast preset with one option changed at a time, and the
options that are not about cost together, on PTB and on the real-text corpus, over seeds.

    python -m benchmarks.levers [--seeds 3] [--corpora ptb real_text] [--levers NAME ...]
        [--real-text runs/real_text/dictionaries.txt] [--data-dir DIR] [--out runs/levers]

Every run is ``python -m experiments.train`` in a process of its own (min count 10 on PTB, as
the book, 5 on the real text), scored by the same evaluator; the table gives each lever's mean
± sd over the seeds and its difference from the preset's own runs. Quality only: the runs'
times are recorded, but a lever's speed is the benchmark's to measure.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import harness
from benchmarks.real_text import CORPUS, MIN_COUNT
from benchmarks.real_text import RUNS as REAL_TEXT_RUNS
from experiments import flags

BASE = ["--preset", "fast"]
LEVERS = {
    "fast (the preset)": [],
    "loss per slot (word2vec's weighting)": ["--loss-weighting", "per_slot"],
    "the book's subsampling": ["--subsample", "book"],
    "noise words shared by 4x fewer centers": ["--noise-groups", "64"],
    "10 epochs": ["--num-epochs", "10"],
    "rate decaying linearly to a floor (word2vec's)": ["--lr-schedule", "linear"],
    "warm-up over 100 steps": ["--lr-warmup-steps", "100"],
    "64 noise words a group, not 32": ["--shared-noise", "64"],
    "together: per slot, decay, warm-up, 64 noise words": [
        *("--loss-weighting", "per_slot", "--lr-schedule", "linear"),
        *("--lr-warmup-steps", "100", "--shared-noise", "64"),
    ],
}
MEASURED = ("wordsim353_spearman", "simlex999_spearman", "analogy_accuracy")


def run_once(
    corpus: str, path: str | None, lever_flags: list[str], seed: int, data_dir: str | None
) -> dict:
    with tempfile.TemporaryDirectory() as workdir:
        corpus_flags = ["--corpus", "ptb", *(["--data-dir", data_dir] if data_dir else [])]
        if corpus != "ptb":
            corpus_flags = ["--corpus", path, "--min-freq", str(MIN_COUNT)]
        command = [
            sys.executable,
            "-m",
            "experiments.train",
            *corpus_flags,
            *BASE,
            *lever_flags,
            "--seed",
            str(seed),
            "--workdir",
            workdir,
            "--no-progress",
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stderr[-2000:]}")
        metrics = json.loads((Path(workdir) / "metrics.json").read_text())
    return {
        "final_loss": metrics["final_loss"],
        "train_seconds": sum(e["seconds"] for e in metrics["epochs"]),
        **harness.quality(metrics["evaluation"]),
    }


def report(results: dict) -> str:
    lines = [
        "# Levers: the fast preset, one option at a time",
        "",
        f"`{results['command']}` on {results['machine']} ({results['device']}); mean ± sd over "
        f"{results['seeds']} seeds, and the difference from the preset's own mean.",
        "",
    ]
    for corpus, levers in results["corpora"].items():
        base = levers.get("fast (the preset)")
        rows = []
        for lever, entry in levers.items():
            cells = []
            for name in MEASURED:
                value = entry[name]
                if value is None:
                    cells.append("not scored")
                    continue
                delta = "" if base is None or base[name] is None else (
                    f" ({value['mean'] - base[name]['mean']:+.3f})"
                )  # fmt: skip
                cells.append(f"{value['mean']:.3f} ± {value['sd']:.3f}{delta}")
            rows.append([lever, *cells, f"{entry['final_loss']['mean']:.3f}"])
        lines += [
            f"## {corpus}",
            "",
            *harness.table(["lever", "WordSim353", "SimLex-999", "analogies", "final loss"], rows),
            "",
        ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None):
    parser = flags.ArgumentParser(description=flags.summary(__doc__))
    parser.add_argument("--seeds", type=flags.at_least_one, default=3)
    parser.add_argument("--corpora", nargs="+", default=["ptb", "real_text"])
    parser.add_argument("--levers", nargs="+", default=list(LEVERS), choices=list(LEVERS))
    parser.add_argument("--real-text", type=Path, default=REAL_TEXT_RUNS / CORPUS)
    parser.add_argument("--data-dir", default=None, help="directory of ptb.zip")
    parser.add_argument("--out", type=Path, default=harness.RUNS / "levers")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if "real_text" in args.corpora and not args.real_text.is_file():
        raise SystemExit(
            f"error: no corpus at {args.real_text}: run python -m benchmarks.real_text build"
        )
    corpora: dict[str, dict] = {}
    runs = []
    for corpus in args.corpora:
        corpora[corpus] = {}
        for lever in args.levers:
            mine = []
            for seed in range(args.seeds):
                mine.append(
                    run_once(corpus, str(args.real_text), LEVERS[lever], seed, args.data_dir)
                )
                print(f"{corpus}, {lever}, seed {seed}: {mine[-1]}", flush=True)
            runs += [{"corpus": corpus, "lever": lever, "seed": s, **r} for s, r in enumerate(mine)]
            corpora[corpus][lever] = harness.over_seeds(mine, (), (*MEASURED, "final_loss"))
    results = {
        **harness.header("benchmarks.levers", argv),
        "seeds": args.seeds,
        "corpora": corpora,
        "runs": runs,
    }
    harness.write_results(args.out, "levers", results, report(results))
    print(report(results))
    return results


if __name__ == "__main__":
    main()
