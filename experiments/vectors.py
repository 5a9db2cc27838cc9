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

import dataclasses
from pathlib import Path
from typing import Annotated, Literal

import tyro

from experiments import common, flags
from w2v_jax.evaluation import explore, report
from w2v_jax.evaluation.benchmark_files import BenchmarkError
from w2v_jax.evaluation.evaluate import Embeddings
from w2v_jax.objectives import TABLES
from w2v_jax.training.checkpoint import CheckpointError, drop_closed_loop_reports
from w2v_jax.training.workdir import WorkdirError


@dataclasses.dataclass(frozen=True)
class VectorsFlags:
    workdir: Annotated[Path, flags.Positional, tyro.conf.arg(metavar="WORKDIR")]
    """A run's workdir or its checkpoints/."""
    shown: Annotated[common.Shown, tyro.conf.OmitArgPrefixes] = common.Shown()
    scores: bool = True
    """Score WordSim353, SimLex-999, the analogies and the other benchmarks."""
    table: Literal[TABLES] = "words"  # type: ignore[valid-type]
    """words: the run's word vectors (skip-gram's center table, the book's; CBOW's context
    table); center, context, or the sum of the two."""
    step: int | None = None
    """A checkpoint step (None: the newest)."""
    word2vec: Annotated[Path | None, tyro.conf.arg(metavar="FILE")] = None
    """Write the vectors here in the word2vec format."""
    binary: bool = False
    """--word2vec in the binary format."""
    projector: Annotated[Path | None, tyro.conf.arg(metavar="DIR")] = None
    """Write vectors.tsv and metadata.tsv here for the Embedding Projector."""
    keep_unk: bool = False
    """Export the <unk> row too (left out by default: training never updates it)."""


def parse_args(argv: list[str] | None = None) -> VectorsFlags:
    return flags.cli(
        VectorsFlags,
        argv,
        description=flags.summary(__doc__),
        in_flags=common.in_flags,
        prog="python -m experiments.vectors",
    )


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
        queries = args.shown.query or report.default_queries(
            embeddings, explore.trained_on_ptb(args.workdir)
        )
        neighbours = report.neighbours_of(embeddings, queries, args.shown.neighbours)
        common.print_neighbours(neighbours)
        scores = embeddings.evaluate_benchmarks(args.shown.benchmarks_dir) if args.scores else None
        if scores is not None:
            common.print_scores(scores)
        written = export(embeddings, args)
    except (CheckpointError, BenchmarkError, WorkdirError, OSError) as err:
        raise SystemExit(f"error: {common.in_flags(str(err))}") from None
    for path in written:
        print(f"wrote {path}")
    return {"neighbours": neighbours, "evaluation": scores, "written": [str(p) for p in written]}


def export(embeddings: Embeddings, args: VectorsFlags) -> list[Path]:
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
