"""Write a synthetic corpus: Zipf-distributed words with planted partner words whose nearest
neighbours are known, for tests and for training at any scale.

    python -m experiments.make_corpus --tokens N --vocab V --out FILE [--groups 20] [--seed 0]

Background sentences draw their words ``w0`` .. ``w{V-1}`` from a Zipf law (exponent 1). Each of
``--groups`` groups has two partners, ``a{g}`` and ``b{g}``, and eight topic words drawn from a
shared pool (``t0`` .. ``t39``, so that a topic word serves several groups): a planted sentence
holds one partner among four of its group's topic words and a few background words. Partners
never occur together but share all their contexts, which is what skip-gram turns into similar
vectors, while a topic word's contexts mix the groups it serves: after training, each
partner's nearest neighbour should be the other (``planted_partners``). One sentence in ten
is planted. ``FILE`` ending in ``.gz`` is compressed; it is written under a temporary name
and renamed when complete.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path

import numpy as np

from experiments import flags

SENTENCES_PER_BLOCK = 20_000
TOPIC_WORDS = 8
TOPIC_POOL = 40
PLANTED_SHARE = 0.1


def planted_partners(groups: int) -> list[tuple[str, str]]:
    return [(f"a{g}", f"b{g}") for g in range(groups)]


def sentences(tokens: int, vocab: int, groups: int, seed: int):
    """Blocks of sentences (strings, one a line) adding up to ``tokens`` tokens or a sentence
    more."""
    rng = np.random.default_rng(seed)
    topics = [rng.choice(TOPIC_POOL, TOPIC_WORDS, replace=False) for _ in range(groups)]
    zipf = 1.0 / np.arange(1, vocab + 1)
    cdf = np.cumsum(zipf / zipf.sum())
    written = 0
    while written < tokens:
        lengths = rng.integers(5, 21, SENTENCES_PER_BLOCK)
        words = np.char.add(
            "w", np.minimum(np.searchsorted(cdf, rng.random(lengths.sum())), vocab - 1).astype(str)
        )
        lines = [" ".join(s) for s in np.split(words, np.cumsum(lengths)[:-1])]
        for i in np.flatnonzero(rng.random(len(lines)) < PLANTED_SHARE):
            lines[i] = _planted(rng, topics, lines[i].split()[:3])
        sizes = np.cumsum([len(line.split()) for line in lines])
        keep = int(np.searchsorted(sizes, tokens - written)) + 1  # up to the first line reaching it
        written += int(sizes[min(keep, len(lines)) - 1])
        yield lines[:keep]


def _planted(rng: np.random.Generator, topics: list[np.ndarray], background: list[str]) -> str:
    group = int(rng.integers(len(topics)))
    partner = f"{'ab'[int(rng.integers(2))]}{group}"
    topic = [f"t{j}" for j in rng.choice(topics[group], 4, replace=False)]
    words = [partner, *topic, *background]
    rng.shuffle(words)
    return " ".join(words)


def write_corpus(out: Path, tokens: int, vocab: int, groups: int, seed: int) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    opener = gzip.open if out.suffix == ".gz" else open
    with opener(tmp, "wt", encoding="utf-8") as f:
        for block in sentences(tokens, vocab, groups, seed):
            f.write("\n".join(block) + "\n")
    os.replace(tmp, out)  # a killed run never leaves a file that looks complete


@dataclasses.dataclass(frozen=True)
class CorpusShape:
    tokens: int
    """About this many tokens."""
    vocab: int
    """Background words, drawn by a Zipf law."""
    out: Path
    """The file to write (.gz: compressed)."""
    groups: int = 20
    """Planted pairs (a0/b0, ...) whose words share their contexts."""
    seed: int = 0
    """Seeds the draws."""

    def __post_init__(self) -> None:
        for name in ("tokens", "vocab", "groups"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} {getattr(self, name)}: must be at least 1")


def parse_args(argv: list[str] | None = None) -> CorpusShape:
    return flags.cli(
        CorpusShape,
        argv,
        description=flags.summary(__doc__),
        prog="python -m experiments.make_corpus",
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    write_corpus(args.out, args.tokens, args.vocab, args.groups, args.seed)
    print(
        f"wrote {args.out}: about {args.tokens:,} tokens, {args.vocab:,} background words, "
        f"{args.groups} planted pairs (a0/b0 ..)"
    )


if __name__ == "__main__":
    main()
