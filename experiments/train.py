"""Train skip-gram on your own corpus: text files, one sentence a line.

    python -m experiments.train --corpus PATH [PATH ...] [--tokenizer words --lowercase]
        [--preset book ...]

It trains the fast preset unless told otherwise: the panel of real corpora's pick for your own
text (every draw anew each epoch, noise words shared by groups of centers, row-wise Adagrad;
results/panel); ``--preset book`` trains the book's configuration.

PATH is a file, a directory (every file under it) or a glob; plain, .gz, .bz2 or .xz; tokens are
split on whitespace (``--tokenizer words``: into words as gensim's simple_preprocess), and lines
longer than --max-sentence-length tokens are split (the count is printed). The corpus is encoded
once, on every core, into --cache-dir (default $W2V_JAX_CACHE, else ~/.cache/w2v_jax/corpora); a
later run with the same files and settings reads the cache and never the text. Every flag of
``python -m experiments.ptb_skipgram`` works the same way: the same job with another corpus. The
workdir defaults to runs/train/<corpus>/<run name>, <corpus> being the first path's name.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments import common, flags
from w2v_jax import presets

JOB = "train"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common.job_parser(
        flags.summary(__doc__), JOB, "<first path's name>/<run name>", presets.OWN_TEXT
    )
    common.add_corpus_flags(parser, None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    name = Path(str(args.corpus[0]).rstrip("/")).name or "corpus"
    return common.run_job(args, lambda: common.corpus_from_args(args), common.RUNS / JOB / name, "")


if __name__ == "__main__":
    main()
