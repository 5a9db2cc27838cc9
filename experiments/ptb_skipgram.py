"""The main job: train skip-gram on PTB with the book's defaults and show chip's neighbours.

    python -m experiments.ptb_skipgram [--lr 0.002 --num-epochs 10 ...] [--workdir DIR]

Writes ``metrics.json`` and ``loss.png`` into the workdir (default results/ptb_skipgram/) and
checkpoints into its ``checkpoints/``; run again with the same workdir, it resumes from the newest
complete checkpoint (``--restart`` starts over). The final checkpoint is evaluated on WordSim353,
SimLex-999 and the Google analogies.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt

from experiments import common
from w2v_jax import pipeline
from w2v_jax.checkpoint import CheckpointError
from w2v_jax.data import CorpusError
from w2v_jax.evaluate import Embeddings
from w2v_jax.train import EpochStats

DEFAULT_WORKDIR = Path("results/ptb_skipgram")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_config_flags(parser)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help=f"where results go (default {DEFAULT_WORKDIR})")
    parser.add_argument("--data-dir", default=None,
                        help="directory of ptb.zip (default $W2V_JAX_DATA, else the user cache)")
    parser.add_argument("--query", nargs="+", default=["chip"],
                        help="words whose nearest neighbours are printed (default chip)")
    parser.add_argument("--neighbours", type=int, default=5, help="neighbours per query word")
    parser.add_argument("--restart", action="store_true",
                        help="delete the workdir's checkpoints and start over (default: resume)")
    parser.add_argument("--benchmarks-dir", default=None,
                        help="directory of wordsim353.tsv, simlex999.txt, questions-words.txt "
                             "(default: the copies gensim ships)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    try:
        return run_job(parse_args(argv))
    except (CorpusError, CheckpointError) as err:
        raise SystemExit(f"error: {err}") from err


def run_job(args: argparse.Namespace) -> dict:
    config = common.config_from_args(args)
    device = common.device_description()
    prepared = pipeline.prepare_data(config, args.data_dir)
    print(f"data: {len(prepared.vocab):,} words, {len(prepared.examples.centers):,} centers, "
          f"{prepared.seconds:.2f} s")

    def report(stats: EpochStats) -> None:
        print(f"epoch {stats.epoch}/{config.num_epochs}: loss {stats.loss:.3f}, "
              f"{stats.centers_per_second:,.0f} centers/s, "
              f"{stats.pairs_per_second:,.0f} pairs/s on {device}", flush=True)

    run = pipeline.train_skipgram(config, prepared, report, progress=not args.no_progress,
                                  workdir=args.workdir, restart=args.restart)
    if run.resumed_from is not None:
        print(f"resumed from the checkpoint at step {run.resumed_from} in {args.workdir}")
    start = time.perf_counter()
    embeddings = Embeddings.from_checkpoint(args.workdir)  # the final checkpoint, as saved
    neighbours = print_neighbours(embeddings, args.query, args.neighbours)
    scores = embeddings.evaluate_benchmarks(args.benchmarks_dir)
    evaluation_seconds = time.perf_counter() - start
    print_scores(scores)
    metrics = collect_metrics(run, device, neighbours)
    metrics.update(evaluation=scores, evaluation_seconds=evaluation_seconds)
    common.write_json(args.workdir / "metrics.json", metrics)
    plot_loss(run.history, args.workdir / "loss.png")
    print(f"wrote {args.workdir / 'metrics.json'} and {args.workdir / 'loss.png'}")
    return metrics


def print_neighbours(embeddings: Embeddings, words: list[str],
                     k: int) -> dict[str, list[tuple[str, float]]]:
    """Cosine neighbours in the center table, printed in the book's format."""
    found = {}
    for word in words:
        if word not in embeddings:
            print(f"{word}: not in the vocabulary", file=sys.stderr)
            continue
        found[word] = embeddings.most_similar(word, k)
        print(f"neighbours of {word}:")
        for token, cosine in found[word]:
            print(f"cosine sim={cosine:.3f}: {token}")
    return found


def print_scores(scores: dict) -> None:
    for name in ("wordsim353", "simlex999"):
        result = scores[name]
        print(f"{name}: Spearman {result['spearman']:.3f}, Pearson {result['pearson']:.3f} "
              f"({result['coverage']:.0%} of pairs known)")
    analogies = scores["google_analogies"]
    print(f"google analogies: accuracy {analogies['accuracy']:.3f} "
          f"({analogies['coverage']:.0%} of questions known)")


def collect_metrics(run: pipeline.TrainingRun, device: str, neighbours: dict) -> dict:
    examples = run.prepared.examples
    return {
        "config": run.config.to_dict(),
        "versions": common.library_versions(),
        "device": device,
        "vocab_size": len(run.vocab),
        "num_centers": len(examples.centers),
        "num_pairs": examples.num_pairs,
        "data_seconds": run.prepared.seconds,
        "compile_seconds": run.compile_seconds,
        "checkpoint_seconds": run.checkpoint_seconds,
        "resumed_from_step": run.resumed_from,
        "epochs": [stats.to_dict() for stats in run.history],
        "final_loss": run.history[-1].loss,
        "neighbours": {word: [[token, cosine] for token, cosine in pairs]
                       for word, pairs in neighbours.items()},
    }


def plot_loss(history: list[EpochStats], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([s.epoch for s in history], [s.loss for s in history], marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (masked sigmoid BCE)")
    ax.set_title("PTB skip-gram")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
