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
from pathlib import Path

from experiments import common
from w2v_jax.config import CorpusConfig

JOB = "train"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common.job_parser(__doc__.splitlines()[0], JOB, None)
    parser.add_argument(
        "--corpus",
        nargs="+",
        required=True,
        metavar="PATH",
        help="text files, directories or globs (.gz, .bz2, .xz read as such); ptb: PTB",
    )
    common.add_dataclass_flags(
        parser.add_argument_group("how the corpus is read"), CorpusConfig, skip=("paths", "repeats")
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)

    def corpus() -> CorpusConfig:
        return CorpusConfig(
            tuple(args.corpus),
            args.lowercase,
            args.max_sentence_length,
            args.encoding_errors,
            args.max_vocab_size,
        )

    name = Path(str(args.corpus[0]).rstrip("/")).name or "corpus"
    return common.run_job(args, corpus, common.RUNS / JOB / name, "")


if __name__ == "__main__":
    main()
