"""A corpus of your own: text files named by paths, directories or globs; plain, ``.gz``,
``.bz2`` or ``.xz``; one sentence a line, tokens split on whitespace.

Lines longer than ``max_sentence_length`` tokens (10,000, as word2vec and gensim) are split into
sentences of that length, never truncated, and counted, so a one-line corpus such as text8
trains. Every problem is a ``CorpusError`` whose one line names the file and says what to do; a
damaged compressed file is refused, never trained on in part.
"""

from __future__ import annotations

import bz2
import dataclasses
import glob
import gzip
import lzma
import os
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from w2v_jax.data import CorpusError

MAX_SENTENCE_LENGTH = 10_000
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_DAMAGED = (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile, OSError)


@dataclasses.dataclass(frozen=True)
class CorpusText:
    """A corpus read into memory: its sentences one a line, and what reading it found."""

    text: str
    files: tuple[Path, ...]
    lines: int
    split_lines: int
    """Lines longer than max_sentence_length tokens, each split into several sentences."""
    tokens: int

    def summary(self) -> str:
        split = (f"; {self.split_lines:,} lines longer than the sentence limit were split"
                 if self.split_lines else "")
        return (f"{len(self.files):,} files, {self.lines:,} lines, {self.tokens:,} tokens"
                f"{split}")


def corpus_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The files ``paths`` name: a file itself, every file under a directory (hidden ones
    left out), or the files a glob pattern matches; each in sorted order."""
    if not paths:
        raise CorpusError("no corpus given: name one or more files, directories or globs")
    files = []
    for path in map(str, paths):
        if glob.has_magic(path):
            matched = sorted(Path(p) for p in glob.glob(path, recursive=True) if Path(p).is_file())
            if not matched:
                raise CorpusError(f"no file matches {path}: check the pattern")
            files += matched
        elif Path(path).is_dir():
            under = sorted(p for p in Path(path).rglob("*")
                           if p.is_file() and not any(part.startswith(".")
                                                      for part in p.relative_to(path).parts))
            if not under:
                raise CorpusError(f"the directory {path} holds no files: name the text files "
                                  f"or a directory that holds them")
            files += under
        elif Path(path).is_file():
            files.append(Path(path))
        else:
            raise CorpusError(f"no such file or directory: {path}")
    return files


def read_corpus(paths: Sequence[str | os.PathLike], lowercase: bool = False,
                max_sentence_length: int = MAX_SENTENCE_LENGTH,
                encoding_errors: str = "strict") -> CorpusText:
    """Every sentence of the files ``paths`` name (see ``corpus_files``), one a line.

    ``encoding_errors`` is Python's: "strict" refuses a file that is not UTF-8, naming the byte;
    "replace" reads it with U+FFFD for the bad bytes.
    """
    if max_sentence_length < 1:
        raise CorpusError(f"max_sentence_length={max_sentence_length} must be at least 1")
    files = corpus_files(paths)
    sentences, lines, split_lines, tokens = [], 0, 0, 0
    for file in files:
        found = 0
        for words in _file_sentences(file, lowercase, encoding_errors):
            lines += 1
            found += len(words)
            if len(words) > max_sentence_length:
                split_lines += 1
            for start in range(0, len(words), max_sentence_length):
                sentences.append(" ".join(words[start:start + max_sentence_length]))
        if not found:
            raise CorpusError(f"{file} holds no words: leave it out or check that it is the "
                              f"right file")
        tokens += found
    return CorpusText("\n".join(sentences), tuple(files), lines, split_lines, tokens)


def _file_sentences(file: Path, lowercase: bool, errors: str) -> Iterator[list[str]]:
    """Each non-empty line of ``file`` as its words, decoded as UTF-8 line by line so that a bad
    byte is named by its offset in the (uncompressed) file."""
    opener = _OPENERS.get(file.suffix.lower(), open)
    offset = 0
    try:
        with opener(file, "rb") as stream:
            for raw in stream:
                try:
                    line = raw.decode("utf-8", errors=errors)
                except UnicodeDecodeError as err:
                    raise CorpusError(
                        f"{file} is not UTF-8 text: byte {offset + err.start} "
                        f"(0x{raw[err.start]:02x}) cannot be decoded; convert the file, or "
                        f"read such bytes as U+FFFD with encoding_errors='replace'") from None
                offset += len(raw)
                words = (line.lower() if lowercase else line).split()
                if words:
                    yield words
    except CorpusError:
        raise
    except _DAMAGED as err:
        if opener is open and not isinstance(err, EOFError | zlib.error | lzma.LZMAError):
            raise CorpusError(f"cannot read {file}: {err.strerror or err}") from None
        raise CorpusError(f"{file} is damaged or truncated ({err}): nothing of it was used; "
                          f"replace the file or leave it out") from None
