"""Which text a run trains on and how it is read (``CorpusConfig``)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Literal

from w2v_jax.fields import check_types

EncodingErrors = Literal["strict", "replace"]
Tokenizer = Literal["whitespace", "words"]

PTB = "ptb"
"""The corpus name that means PTB's training split (``CorpusConfig.paths``)."""
MAX_SENTENCE_LENGTH = 10_000


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
    """Which text a run trains on and how it is read: saved with the run's checkpoints and in
    its ``metrics.json``, part of the corpus cache's key (``w2v_jax.data.corpus.encode``).

    Invalid values raise ValueError on construction, naming the field and the value.
    """

    paths: tuple[str, ...] = (PTB,)
    """Text files, directories (every file under them) or globs; plain, .gz, .bz2 or .xz; one
    sentence a line. "ptb": PTB's training split, fetched and verified (the default)."""
    tokenizer: Tokenizer = "whitespace"
    """"whitespace": a token is what lies between spaces, punctuation included (PTB's text is
    already split so); "words": runs of letters, digits and punctuation left out, from
    min_word_length to max_word_length characters, as gensim's simple_preprocess (which also
    lowercases: add lowercase)."""
    lowercase: bool = False
    """Lowercase every token."""
    deaccent: bool = False
    """Strip accents before splitting (é -> e), as simple_preprocess's deacc=True."""
    min_word_length: int = 2
    """The "words" tokenizer leaves out shorter words (simple_preprocess's min_len)."""
    max_word_length: int = 15
    """The "words" tokenizer leaves out longer words (simple_preprocess's max_len)."""
    max_sentence_length: int = MAX_SENTENCE_LENGTH
    """Longer lines are split into sentences of this many tokens (as word2vec and gensim)."""
    encoding_errors: EncodingErrors = "strict"
    """"strict": a file that is not UTF-8 is an error naming the byte; "replace": such bytes
    are read as U+FFFD."""
    max_vocab_size: int | None = None
    """Bound on the distinct words held while counting, forgetting rare ones as word2vec and
    gensim do (None: no bound)."""
    repeats: int = 1
    """The files read this many times in turn: a larger corpus with the same statistics, for
    speed benchmarks (PTB x16)."""

    def __post_init__(self) -> None:
        paths = (self.paths,) if isinstance(self.paths, str | os.PathLike) else self.paths
        object.__setattr__(self, "paths", tuple(map(str, paths)))
        check_types(self)
        if not self.paths:
            raise ValueError(
                "CorpusConfig.paths=(): name one or more files, directories or globs, or ptb"
            )
        for name in ("max_sentence_length", "repeats", "min_word_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"CorpusConfig.{name}={getattr(self, name)} must be at least 1")
        if self.max_word_length < self.min_word_length:
            raise ValueError(
                f"CorpusConfig.max_word_length={self.max_word_length} is below "
                f"min_word_length={self.min_word_length}: no word could be kept"
            )
        if self.max_vocab_size is not None and self.max_vocab_size < 1:
            raise ValueError(
                f"CorpusConfig.max_vocab_size={self.max_vocab_size} must be at least 1"
            )

    @property
    def is_ptb(self) -> bool:
        return self.paths == (PTB,)

    @property
    def name(self) -> str:
        """A short name for directories: "ptb", else the first path's last part."""
        name = Path(self.paths[0].rstrip("/")).name or "corpus"
        return name + (f"x{self.repeats}" if self.repeats > 1 else "")

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "paths": list(self.paths)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CorpusConfig:
        return cls(**{**values, "paths": tuple(values["paths"])})
