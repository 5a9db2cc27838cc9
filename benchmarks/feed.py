"""Examples drawn on the host against examples drawn on the device, side by side in one run.

    python -m benchmarks.feed [--corpora real_text synthetic] [--epochs 1]
        [--real-text runs/real_text/dictionaries.txt] [--synthetic-tokens 100000000]
        [--out runs/feed]

Each corpus is streamed (more than one group of blocks) and trained with a preset (``--preset``,
default fast; gpu on a GPU), each
way of drawing (``Config.draw`` "host" and "device") in a fresh process, the corpus encoded
into its cache beforehand so that neither pays for it: centers per second of training, the
time training waited for examples (and its share of training), the bytes of examples sent to
the device per center (counted as they are sent), the process's peak RSS against the tables
and optimiser state, and the loss. ``real_text`` is the corpus of ``benchmarks.real_text``
(``python -m benchmarks.real_text build``); ``synthetic`` is written here once (Zipf
frequencies over 50,000 words, sentences of 1 to 30 words), ``--synthetic-tokens`` long.
"""

from __future__ import annotations

import argparse
import os
import resource
from pathlib import Path

import numpy as np

from benchmarks import harness

RUNS = harness.RUNS / "feed"
WAYS = ("host", "device")
SYNTHETIC_WORDS = 50_000


def synthetic_corpus(path: Path, tokens: int, seed: int = 0) -> Path:
    """Zipf-distributed words in sentences of 1 to 30, written once (whole or not at all)."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, SYNTHETIC_WORDS + 1)
    words = np.array([f"w{index}" for index in range(SYNTHETIC_WORDS)])
    partial = path.with_suffix(".partial")
    with partial.open("w") as out:
        for start in range(0, tokens, 1 << 20):
            drawn = words[
                rng.choice(SYNTHETIC_WORDS, min(1 << 20, tokens - start), p=weights / weights.sum())
            ]
            cuts = np.cumsum(rng.integers(1, 31, len(drawn) // 10 + 1))
            out.write(
                "\n".join(" ".join(line) for line in np.split(drawn, cuts[cuts < len(drawn)]))
            )
            out.write("\n")
    partial.replace(path)
    return path


def encode(corpus: str) -> dict:
    """The corpus encoded into its cache (a process of its own, before any is timed)."""
    from w2v_jax import presets, run

    data = run.prepare(presets.preset("fast"), corpus)
    return {"tokens": len(data.encoded.corpus.ids), "vocab": len(data.vocab)}


def train_once(corpus: str, way: str, epochs: int, preset: str) -> dict:
    """``preset`` on ``corpus`` with its examples drawn on ``way``: the figures of one fresh
    process."""
    from w2v_jax import loop, presets, run

    config = presets.preset(preset, num_epochs=epochs, draw=way)
    trained = run.train(config, corpus, evaluation=None, progress=False)
    seconds = sum(stats.seconds for stats in trained.history)
    waited = sum(stats.feed_seconds for stats in trained.history)
    centers = sum(stats.centers for stats in trained.history)
    state = loop.state_bytes(config, len(trained.vocab))
    return {
        "centers_per_second": centers / seconds,
        "train_seconds": seconds,
        "waited_seconds": waited,
        "waited_share": waited / seconds,
        "compile_seconds": trained.compile_seconds,
        "data_seconds": trained.data.seconds,
        "sent_bytes_per_center": trained.feed["sent_bytes"] / centers,
        "bytes_per_center_said": trained.feed["bytes_per_center"],
        "state_mib": (state["tables"] + state["optimiser"]) / 2**20,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "final_loss": trained.history[-1].loss,
        "centers": centers,
        "blocks": trained.data.num_blocks,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.feed", description=__doc__)
    parser.add_argument("--corpora", nargs="+", choices=("real_text", "synthetic"),
                        default=["real_text", "synthetic"])  # fmt: skip
    parser.add_argument(
        "--real-text", type=Path, default=harness.RUNS / "real_text" / "dictionaries.txt"
    )
    parser.add_argument("--synthetic-tokens", type=int, default=100_000_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--preset", default="fast", help="the preset trained (gpu on a GPU)")
    parser.add_argument("--out", type=Path, default=RUNS)
    return parser.parse_args(argv)


def report(results: dict) -> str:
    lines = [
        "# Feed",
        "",
        f"`{results['command']}` on {results['device']}: the {results['preset']} preset, "
        f"{results['epochs']} epoch(s), each way in a fresh process.",
        "",
    ]
    for name, corpus in results["corpora"].items():
        lines += [f"## {name}: {corpus['tokens']:,} tokens, {corpus['vocab']:,} words", ""]
        rows = []
        for way, got in corpus["ways"].items():
            rows.append([
                way,
                f"{got['centers_per_second']:,.0f}",
                f"{got['train_seconds']:.1f}",
                f"{got['waited_seconds']:.2f} ({100 * got['waited_share']:.2f}%)",
                f"{got['sent_bytes_per_center']:.1f}",
                f"{got['peak_rss_mib']:,.0f} ({got['peak_rss_mib'] - got['state_mib']:,.0f} over "
                f"{got['state_mib']:,.0f})",
                f"{got['final_loss']:.4f}",
            ])  # fmt: skip
        lines += harness.table(
            ["drawn on", "centers/s", "training s", "waited s (share)", "bytes sent a center",
             "peak RSS MiB (over tables + optimiser)", "loss"],
            rows,
        )  # fmt: skip
        host, device = corpus["ways"].get("host"), corpus["ways"].get("device")
        if host and device:
            speed = device["centers_per_second"] / host["centers_per_second"]
            sent = device["sent_bytes_per_center"] / host["sent_bytes_per_center"]
            lines += [
                "",
                f"Device against host: {speed:.2f}x the centers/s, {sent:.2f}x the bytes.",
            ]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    paths = {}
    if "real_text" in args.corpora:
        if not args.real_text.is_file():
            raise SystemExit(
                f"error: no corpus at {args.real_text}: run python -m benchmarks.real_text build"
            )
        paths["real_text"] = args.real_text
    if "synthetic" in args.corpora:
        paths["synthetic"] = synthetic_corpus(
            RUNS / f"synthetic_{args.synthetic_tokens}.txt", args.synthetic_tokens
        )
    corpora = {}
    for name, path in paths.items():
        sizes, _, _ = harness.in_fresh_process(encode, str(path))
        corpora[name] = {**sizes, "ways": {}}
        for way in WAYS:
            got, wall, _ = harness.in_fresh_process(
                train_once, str(path), way, args.epochs, args.preset
            )
            corpora[name]["ways"][way] = {**got, "process_seconds": wall}
            print(f"{name}, drawn on the {way}: {got}", flush=True)
    results = {
        **harness.header("benchmarks.feed", argv),
        "epochs": args.epochs,
        "preset": args.preset,
        "cpu_count": os.cpu_count(),
        "corpora": corpora,
    }
    harness.write_results(args.out, "feed", results, report(results))
    print(report(results))
    return results


if __name__ == "__main__":
    main()
