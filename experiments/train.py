"""Train skip-gram on your own corpus: text files, one sentence a line.

    python -m experiments.train --corpus PATH [PATH ...] [--lowercase] [--preset fast ...]

PATH is a file, a directory (every file under it) or a glob; plain, .gz, .bz2 or .xz; tokens are
split on whitespace, and lines longer than --max-sentence-length tokens are split (the count is
printed). The corpus is encoded once, on every core, into --cache-dir (default $W2V_JAX_CACHE,
else ~/.cache/w2v_jax/corpora); a later run with the same files and settings reads the cache
and never the text. Every flag of ``python -m experiments.ptb_skipgram`` works the same way:
the same job with another corpus. The workdir defaults to runs/train/<corpus>/<run name>,
<corpus> being the first path's name.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments import common, ptb_skipgram
from w2v_jax.config import Config
from w2v_jax.corpus import CACHE_ENV_VAR, MAX_SENTENCE_LENGTH, TextCorpus, encode

JOB = "train"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ptb_skipgram.job_parser(__doc__.splitlines()[0], JOB, None)
    parser.add_argument(
        "--corpus",
        nargs="+",
        required=True,
        metavar="PATH",
        help="text files, directories or globs (.gz, .bz2, .xz read as such)",
    )
    parser.add_argument("--lowercase", action="store_true", help="lowercase every token")
    parser.add_argument(
        "--max-sentence-length",
        type=common.at_least_one,
        default=MAX_SENTENCE_LENGTH,
        help=f"longer lines are split into sentences of this many tokens "
        f"(default {MAX_SENTENCE_LENGTH:,}, as word2vec and gensim)",
    )
    parser.add_argument(
        "--encoding-errors",
        choices=["strict", "replace"],
        default="strict",
        help="strict (default): a file that is not UTF-8 is an error naming "
        "the byte; replace: read such bytes as U+FFFD",
    )
    parser.add_argument(
        "--max-vocab-size",
        type=common.at_least_one,
        default=None,
        help="bound the distinct words held while counting, forgetting rare "
        "ones as word2vec and gensim do (default: no bound)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help=f"where encoded corpora are kept (default ${CACHE_ENV_VAR}, else "
        f"~/.cache/w2v_jax/corpora)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)

    def load_corpus(config: Config) -> tuple[dict, str]:
        source = TextCorpus(
            tuple(args.corpus),
            args.lowercase,
            args.max_sentence_length,
            args.encoding_errors,
            args.max_vocab_size,
        )
        encoded = encode(source, config.min_freq, args.cache_dir)
        for note in encoded.notes:
            print(note, file=sys.stderr)
        return {"corpus": encoded}, encoded.summary()

    name = Path(str(args.corpus[0]).rstrip("/")).name or "corpus"
    # English benchmarks need not cover your corpus: their scores are optional.
    return ptb_skipgram.run_main(
        args, load_corpus, common.RUNS / JOB / name, "", scores_optional=True
    )


if __name__ == "__main__":
    main()
