"""The main job: train skip-gram on PTB with the book's defaults and show chip's neighbours.

    python -m experiments.ptb_skipgram [--optimizer.lr 0.002 --num-epochs 10 ...] [--workdir DIR]

Writes ``metrics.json`` and ``loss.png`` into the workdir (default runs/ptb_skipgram/<run name>,
the name derived from the settings that change the computation, e.g. ``book`` or
``book,optimizer.lr=0.002``) and checkpoints into its ``checkpoints/``; run the same command
again and it resumes from the newest complete checkpoint (``--restart`` starts over). Ctrl-C
(or SIGTERM) saves a checkpoint at the end of the current dispatch and exits with status 130.
The final checkpoint is evaluated on WordSim353, SimLex-999 and the Google analogies.
"""

from __future__ import annotations

import argparse

from experiments import common, flags
from w2v_jax.corpus_config import CorpusConfig

JOB = "ptb_skipgram"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common.job_parser(flags.summary(__doc__), JOB)
    parser.add_argument(
        "--ptb-repeats",
        type=common.at_least_one,
        default=1,
        help="train on PTB's training split repeated this many times: a larger "
        "corpus with PTB's statistics, for speed benchmarks (default 1)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    suffix = f",ptb_repeats={args.ptb_repeats}" if args.ptb_repeats != 1 else ""
    return common.run_job(
        args, lambda: CorpusConfig(repeats=args.ptb_repeats), common.RUNS / JOB, suffix
    )


if __name__ == "__main__":
    main()
