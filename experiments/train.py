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

import dataclasses
from pathlib import Path
from typing import Annotated

import tyro

from experiments import common, flags
from w2v_jax import presets

JOB = "train"


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainFlags(common.CorpusFlags, common.JobFlags):
    preset: Annotated[
        common.PresetName, tyro.conf.arg(help=common.preset_help(presets.OWN_TEXT))
    ] = presets.OWN_TEXT
    workdir: Path | None = None
    """Where results and checkpoints go (None: runs/train/<first path's name>/<run name>)."""


def parse_args(argv: list[str] | None = None) -> TrainFlags:
    return common.parse_job(
        TrainFlags, argv, flags.summary(__doc__), f"python -m experiments.{JOB}"
    )


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    name = Path(str(args.corpus[0]).rstrip("/")).name or "corpus"
    return common.run_job(args, lambda: args.corpus_config, common.RUNS / JOB / name, "")


if __name__ == "__main__":
    main()
