"""Speed at scale, beside gensim with all of the machine's cores: PTB repeated, large batches,
the book's configuration per layout, and learning rates trained together. Meant for a GPU; runs
anywhere.

    python -m benchmarks.scale [--ptb-repeats 16] [--epochs 2] [--seeds 2]
        [--batch-sizes 16384 65536 262144] [--out runs/scale]

Parts, run in the order ``--parts`` gives (default: batch_sizes, race, together, book), each
written to ``scale.json`` and ``README.md`` in ``--out`` as soon as it is done (a run cut short
keeps what it finished):

1. ``race``: gensim (all cores), w2v_jax's gpu preset and the same at batch 65,536 on PTB
   repeated ``--ptb-repeats`` times for ``--epochs`` epochs, each seed in fresh processes
   (``benchmarks.side_by_side``): centers per second and quality.
2. ``batch_sizes``: the gpu preset's centers per second on the same corpus at each batch size
   (one epoch after compiling; quality is not measured here), with an estimate of the bytes a
   train step must move (``_step_bytes``) and the fraction of the device's peak memory
   bandwidth that implies (where the peak is known).
3. ``book``: the book's configuration on PTB, both layouts, centers per second.
4. ``together``: 8 learning rates of the book's configuration trained together against one
   after another (``benchmarks.vectorised_speed``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import jax

from benchmarks import harness, vectorised_speed
from benchmarks.side_by_side import LARGE_BATCH_FLAGS, run_system
from w2v_jax import feed, run
from w2v_jax.corpus_config import CorpusConfig
from w2v_jax.evaluation import measures
from w2v_jax.presets import preset

# Peak memory bandwidth, bytes per second, by jax's device_kind (the vendors' figures).
PEAK_BANDWIDTH = {
    "NVIDIA H100 80GB HBM3": 3.35e12,
    "NVIDIA H100 PCIe": 2.0e12,
    "NVIDIA H200": 4.8e12,
    "NVIDIA A100-SXM4-80GB": 2.04e12,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = harness.command_line(__doc__)
    parser.add_argument("--ptb-repeats", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16384, 65536, 262144])
    parser.add_argument("--parts", nargs="+", default=["batch_sizes", "race", "together", "book"])
    parser.add_argument("--out", type=Path, default=harness.RUNS / "scale")
    parser.add_argument("--data-dir", default=None)
    return parser.parse_args(argv)


def race(args: argparse.Namespace) -> dict:
    """gensim and the gpu preset, each seed in fresh processes."""
    runs = []
    systems = ("gensim, 5 epochs", "w2v_jax, gpu", "w2v_jax, gpu, batch 65536")
    for system in systems:
        for seed in range(args.seeds):
            run_args = (system, seed, args.data_dir, args.ptb_repeats, args.epochs)
            runs.append(harness.in_fresh_process(run_system, *run_args)[0])
            print(
                f"{system}, seed {seed}: {runs[-1]['centers_per_second']:,.0f} centers/s, "
                f"WordSim353 {runs[-1]['wordsim353_spearman']:.3f}",
                flush=True,
            )
    summary = {}
    for system in systems:
        mine = [run for run in runs if run["system"] == system]
        measured = harness.over_seeds(
            mine,
            (),
            ("centers_per_second", "process_seconds", "train_seconds", *measures.QUALITY),
        )
        summary[system] = {name: entry["mean"] for name, entry in measured.items()}
        summary[system]["flags"] = mine[0].get("flags")
    names = {
        "gensim, 5 epochs": f"gensim, {os.cpu_count()} cores",
        "w2v_jax, gpu": "w2v_jax, --preset gpu",
        "w2v_jax, gpu, batch 65536": "w2v_jax, " + " ".join(LARGE_BATCH_FLAGS),
    }
    summary = {names[system]: entry for system, entry in summary.items()}
    return {
        "runs": runs,
        "summary": summary,
        "speedup": summary[names["w2v_jax, gpu"]]["centers_per_second"]
        / summary[names["gensim, 5 epochs"]]["centers_per_second"],
    }


def batch_sizes(args: argparse.Namespace) -> list[dict]:
    """Centers per second of the gpu preset at each batch size, and its memory traffic."""
    corpus = CorpusConfig(repeats=args.ptb_repeats)
    prepared = run.prepare(preset("gpu"), corpus, data_dir=args.data_dir)
    results = []
    for layout in ("packed", "padded"):
        for batch_size in args.batch_sizes:
            config = preset(
                "gpu",
                batch_size=batch_size,
                num_epochs=1,
                **{"execution.layout": layout, "noise.groups": max(1, batch_size // 256)},
            )
            trained = run.train(config, data=prepared, progress=False)
            stats = trained.history[0]
            step_bytes = _step_bytes(config, prepared)
            steps = -(-stats.centers // batch_size)
            bandwidth = step_bytes * steps / stats.seconds
            peak = PEAK_BANDWIDTH.get(jax.devices()[0].device_kind)
            results.append(
                {
                    "layout": layout,
                    "batch_size": batch_size,
                    "centers_per_second": stats.centers_per_second,
                    "seconds": stats.seconds,
                    "compile_seconds": trained.compile_seconds,
                    "step_bytes_estimate": step_bytes,
                    "bytes_per_second": bandwidth,
                    "bandwidth_fraction": bandwidth / peak if peak else None,
                    "loss": stats.loss,
                }
            )
            print(
                f"{layout} batch {batch_size}: {stats.centers_per_second:,.0f} centers/s",
                flush=True,
            )
    return results


# Arrays read and written per touched row by each optimiser: the parameters and its moments.
_ROW_ARRAYS = {"sparse_sgd": 1, "rowwise_adagrad": 1, "lazy_adam": 3}
_DENSE_PASSES = {"adam": 7}  # whole-table reads + writes per step


def _step_bytes(config, prepared) -> float:
    """An estimate of the bytes one train step must move: every gathered row read and its
    gradient written, and each touched row's parameters and optimiser moments read and written
    once (row-sparse optimisers), or the whole tables' passes (dense ones). Duplicates within a
    batch are counted each time, index arrays and the loss's own arithmetic not at all."""
    examples = prepared.examples
    if examples is None:  # streamed: its first group, as the host would draw it
        examples = feed.first_examples(config, prepared.dataset)
    if config.execution.layout == "packed":
        pairs = float(examples.num_live.mean()) * config.batch_size
    else:
        pairs = config.batch_size * config.row_layout.max_len
    noise = config.noise.groups * config.noise.shared if config.noise.shared_by_batch else 0
    rows = config.batch_size + pairs + noise
    row_bytes = config.embed_size * 4
    moved = rows * row_bytes * 2  # gather, then the gradient rows
    if config.optimizer.name in _ROW_ARRAYS:
        moved += rows * row_bytes * 2 * _ROW_ARRAYS[config.optimizer.name]
    else:
        moved += 2 * len(prepared.vocab) * row_bytes * _DENSE_PASSES[config.optimizer.name]
    return moved


def book(args: argparse.Namespace) -> list[dict]:
    prepared = run.prepare(preset("book"), data_dir=args.data_dir)
    results = []
    for layout in ("padded", "packed"):
        config = preset("book", num_epochs=3, **{"execution.layout": layout})
        history = run.train(config, data=prepared, progress=False).history
        rate = statistics.median(s.centers_per_second for s in history)
        results.append(
            {
                "layout": layout,
                "centers_per_second": rate,
                "epoch_seconds": [s.seconds for s in history],
            }
        )
        print(f"book, {layout}: {rate:,.0f} centers/s", flush=True)
    return results


def write(results: dict, out: Path) -> None:
    harness.write_results(out, "scale", results, report(results))


def report(results: dict) -> str:
    lines = [
        "# Speed at scale",
        "",
        f"`{results['command']}` on {results['device']}, {results['machine']}.",
        "",
    ]
    if "race" in results:
        race_ = results["race"]
        lines += [
            f"PTB repeated {results['ptb_repeats']} times, {results['epochs']} epochs, "
            f"mean of {results['seeds']} seeds, each in fresh processes; gensim with all "
            "cores:",
            "",
            "| system | centers/s | train s | process s | WordSim353 | SimLex-999 | analogies |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for system, e in race_["summary"].items():
            lines.append(
                f"| {system} | {e['centers_per_second']:,.0f} | "
                f"{e['train_seconds']:.2f} | {e['process_seconds']:.1f} | "
                f"{e['wordsim353_spearman']:.3f} | {e['simlex999_spearman']:.3f} | "
                f"{e['analogy_accuracy']:.3f} |"
            )
        lines += ["", f"w2v_jax's gpu preset over gensim: {race_['speedup']:.1f}x centers/s.", ""]
        lines += [
            f"- {system}: `python -m experiments.ptb_skipgram {' '.join(e['flags'])} "
            f"--ptb-repeats {results['ptb_repeats']}`"
            for system, e in race_["summary"].items()
            if e["flags"]
        ]
        lines.append("")
    if "batch_sizes" in results:
        lines += [
            "The gpu preset's speed by batch size and layout (one epoch, same corpus; "
            "an estimate of the bytes a step must move (its rows, their gradients and "
            "their optimiser state, read and written once), and the share of the "
            "device's peak memory bandwidth it implies):",
            "",
            "| layout | batch | centers/s | epoch s | bytes/step (estimate) | "
            "share of peak bandwidth |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for e in results["batch_sizes"]:
            share = f"{e['bandwidth_fraction']:.1%}" if e["bandwidth_fraction"] else "n/a"
            step_bytes = f"{e['step_bytes_estimate'] / 1e6:,.1f} MB"
            lines.append(
                f"| {e['layout']} | {e['batch_size']:,} | "
                f"{e['centers_per_second']:,.0f} | {e['seconds']:.2f} | {step_bytes} | "
                f"{share} |"
            )
        lines.append("")
    if "book" in results:
        lines += [
            "The book's configuration on PTB (batch 512), median of 3 epochs:",
            "",
            "| layout | centers/s |",
            "| --- | --- |",
        ]
        lines += [f"| {e['layout']} | {e['centers_per_second']:,.0f} |" for e in results["book"]]
        lines.append("")
    if "together" in results:
        t = results["together"]
        lines += [
            f"8 learning rates of the book's configuration, {t['epochs']} epochs: "
            f"{t['sequential_seconds']:.1f} s one after another, "
            f"{t['vectorised_seconds']:.1f} s trained together: {t['speedup']:.2f}x "
            f"(largest parameter difference {t['max_param_difference']:.1e}).",
            "",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    results = {
        **harness.header("benchmarks.scale", argv),
        "ptb_repeats": args.ptb_repeats,
        "epochs": args.epochs,
        "seeds": args.seeds,
    }
    parts = {
        "race": race,
        "batch_sizes": batch_sizes,
        "book": book,
        "together": lambda a: vectorised_speed.compare("book", 2, a.data_dir),
    }
    for name in args.parts:
        start = time.perf_counter()
        results[name] = parts[name](args)
        results.setdefault("part_seconds", {})[name] = time.perf_counter() - start
        write(results, args.out)
    print(report(results))
    return results


if __name__ == "__main__":
    main()
