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

import dataclasses

from experiments import common, flags
from w2v_jax.corpus_config import CorpusConfig

JOB = "ptb_skipgram"


@dataclasses.dataclass(frozen=True, kw_only=True)
class PtbFlags(common.JobFlags):
    ptb_repeats: int = 1
    """Train on PTB's training split repeated this many times: a larger corpus with PTB's
    statistics, for speed benchmarks."""

    def __post_init__(self) -> None:
        if self.ptb_repeats < 1:
            raise ValueError(f"--ptb-repeats {self.ptb_repeats}: must be at least 1")


def parse_args(argv: list[str] | None = None) -> PtbFlags:
    return common.parse_job(PtbFlags, argv, flags.summary(__doc__), f"python -m experiments.{JOB}")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    suffix = f",ptb_repeats={args.ptb_repeats}" if args.ptb_repeats != 1 else ""
    return common.run_job(
        args, lambda: CorpusConfig(repeats=args.ptb_repeats), common.RUNS / JOB, suffix
    )


if __name__ == "__main__":
    main()
