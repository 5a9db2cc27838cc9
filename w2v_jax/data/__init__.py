"""The data stage, numpy only, one concern a module: ``ptb`` (fetch and verify PTB),
``vocab`` (vocabulary and the block encoder), ``corpus`` and ``encoding`` (text files encoded
once into a cache, PTB included), ``noise`` (the noise words' distribution and its samplers:
the host's, and the device's, which alone loads JAX), ``examples`` (the book's subsampling,
contexts, noise words and padded rows) and ``blocks`` (blocks of sentences, the epoch plan,
the groups of blocks shuffled together).

Every stage is a pure function of arrays and an explicit ``numpy.random.Generator``; the corpus
is one flat int32 id array plus sentence offsets, and no stage loops in Python per token.
The behaviour is the book's (d2l 14.4), stage by stage; see DESIGN.md.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


class CorpusError(RuntimeError):
    """The corpus cannot be obtained or read; the message says what to do."""


def resolve_dir(directory: str | os.PathLike | None, env_var: str, under_cache: str) -> Path:
    """``directory``, else ``$env_var``, else ``under_cache`` in w2v_jax's directory of the
    user's cache ($XDG_CACHE_HOME, else ~/.cache)."""
    if directory is not None:
        return Path(directory)
    if os.environ.get(env_var):
        return Path(os.environ[env_var])
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "w2v_jax" / under_cache


def sha1_of(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# The stage's modules, so that ``from w2v_jax import data`` reaches them all; imported last,
# since they import the names above.
from w2v_jax.data import blocks, corpus, encoding, examples, noise, ptb, vocab  # noqa: E402

__all__ = ["CorpusError", "blocks", "corpus", "encoding", "examples", "noise", "ptb",
           "resolve_dir", "sha1_of", "vocab"]  # fmt: skip
