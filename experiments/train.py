"""Train skip-gram on your own corpus: text files, one sentence a line.

    python -m experiments.train --corpus PATH [PATH ...] [--lowercase] [--preset fast ...]

PATH is a file, a directory (every file under it) or a glob; plain, .gz, .bz2 or .xz; tokens are
split on whitespace, and lines longer than --max-sentence-length tokens are split (the count is
printed). Every flag of ``python -m experiments.ptb_skipgram`` works the same way: the same job
with another corpus. The workdir defaults to runs/train/<corpus>/<run name>, <corpus> being the
first path's name. The corpus is read into memory for now.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments import common, ptb_skipgram
from w2v_jax.corpus import MAX_SENTENCE_LENGTH, read_corpus

JOB = "train"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ptb_skipgram.job_parser(__doc__.splitlines()[0], JOB, None)
    parser.add_argument("--corpus", nargs="+", required=True, metavar="PATH",
                        help="text files, directories or globs (.gz, .bz2, .xz read as such)")
    parser.add_argument("--lowercase", action="store_true", help="lowercase every token")
    parser.add_argument("--max-sentence-length", type=common.at_least_one,
                        default=MAX_SENTENCE_LENGTH,
                        help=f"longer lines are split into sentences of this many tokens "
                             f"(default {MAX_SENTENCE_LENGTH:,}, as word2vec and gensim)")
    parser.add_argument("--encoding-errors", choices=["strict", "replace"], default="strict",
                        help="strict (default): a file that is not UTF-8 is an error naming "
                             "the byte; replace: read such bytes as U+FFFD")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    args.scores_optional = True  # English benchmarks need not cover your corpus

    def corpus_text() -> tuple[str, str]:
        corpus = read_corpus(args.corpus, args.lowercase, args.max_sentence_length,
                             args.encoding_errors)
        return corpus.text, corpus.summary()

    name = Path(str(args.corpus[0]).rstrip("/")).name or "corpus"
    return ptb_skipgram.run_main(args, corpus_text, common.RUNS / JOB / name, "")


if __name__ == "__main__":
    main()
