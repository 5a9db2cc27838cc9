"""A trained run's vectors from the command line, without training: neighbours, scores, export.

    python -m experiments.vectors WORKDIR [--query chip intel] [--no-scores]
        [--word2vec FILE [--binary]] [--projector DIR] [--keep-unk] [--table center] [--step N]

WORKDIR is a run's workdir (or its checkpoints/ directory); the newest readable checkpoint is
read, or ``--step``'s. It prints the cosine neighbours of the query words (default: chip on
PTB, else the most frequent content words) and the benchmark scores, then writes what is
asked for: the word2vec format (``--word2vec``, text or ``--binary``, as gensim's
``KeyedVectors.load_word2vec_format`` reads it) and the TensorBoard Embedding Projector's
``vectors.tsv`` and ``metadata.tsv`` (``--projector``; load them at
projector.tensorflow.org). Exports leave out the ``<unk>`` row, which training never updates,
as gensim's have none (``--keep-unk`` keeps it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments import common, flags
from w2v_jax.evaluation import explore, report
from w2v_jax.evaluation.benchmark_files import BenchmarkError
from w2v_jax.evaluation.evaluate import Embeddings
from w2v_jax.objectives import TABLES
from w2v_jax.training.checkpoint import CheckpointError, drop_closed_loop_reports
from w2v_jax.training.workdir import WorkdirError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = flags.ArgumentParser(description=flags.summary(__doc__))
    parser.add_argument("workdir", type=Path, help="a run's workdir or its checkpoints/")
    common.add_evaluation_flags(parser)
    parser.add_argument(
        "--no-scores", action="store_true", help="skip WordSim353, SimLex-999 and the analogies"
    )
    parser.add_argument(
        "--table",
        choices=TABLES,
        default="words",
        help="words: the run's word vectors (skip-gram's center table, the book's; CBOW's "
        "context table); center, context, or the sum of the two (default words)",
    )
    parser.add_argument("--step", type=int, default=None, help="a checkpoint step (default newest)")
    parser.add_argument("--word2vec", type=Path, default=None, metavar="FILE", help="write here")
    parser.add_argument("--binary", action="store_true", help="--word2vec in the binary format")
    parser.add_argument(
        "--projector",
        type=Path,
        default=None,
        metavar="DIR",
        help="write vectors.tsv, metadata.tsv",
    )
    parser.add_argument(
        "--keep-unk",
        action="store_true",
        help="export the <unk> row too (left out by default: training never updates it)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    common.one_line_warnings()
    common.show_notes()
    drop_closed_loop_reports()
    try:
        embeddings = Embeddings.from_checkpoint(args.workdir, args.step, args.table)
        print(
            f"{args.workdir}: {len(embeddings):,} words, {embeddings.vectors.shape[1]} dimensions"
        )
        queries = args.query or report.default_queries(
            embeddings, explore.trained_on_ptb(args.workdir)
        )
        neighbours = report.neighbours_of(embeddings, queries, args.neighbours)
        common.print_neighbours(neighbours)
        scores = None if args.no_scores else embeddings.evaluate_benchmarks(args.benchmarks_dir)
        if scores is not None:
            common.print_scores(scores)
        written = export(embeddings, args)
    except (CheckpointError, BenchmarkError, WorkdirError, OSError) as err:
        raise SystemExit(f"error: {common.in_flags(str(err))}") from None
    for path in written:
        print(f"wrote {path}")
    return {"neighbours": neighbours, "evaluation": scores, "written": [str(p) for p in written]}


def export(embeddings: Embeddings, args: argparse.Namespace) -> list[Path]:
    written = []
    if args.word2vec is not None:
        args.word2vec.parent.mkdir(parents=True, exist_ok=True)
        embeddings.save_word2vec_format(args.word2vec, args.binary, args.keep_unk)
        written.append(args.word2vec)
    if args.projector is not None:
        written += embeddings.save_projector(args.projector, args.keep_unk)
    return written


if __name__ == "__main__":
    main()
