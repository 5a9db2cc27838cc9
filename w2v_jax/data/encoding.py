"""The encode of text files into a cache entry's directory: the files read once, in blocks of
about 4 MiB dealt in turn to one ``vocab.BlockEncoder`` per core (worker processes above
16 MiB of text), while this process merges their words into provisional ids
(``vocab.VocabularyCounter``) and writes them; the ranked vocabulary then renumbers them in
place.
"""

from __future__ import annotations

import bz2
import collections
import contextlib
import dataclasses
import gzip
import hashlib
import lzma
import multiprocessing
import os
import queue
import signal
import sys
import types
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from w2v_jax.corpus_config import CorpusConfig
from w2v_jax.data import CorpusError
from w2v_jax.data.vocab import (
    BlockEncoder,
    EncodedBlock,
    Splitter,
    Vocab,
    VocabularyCounter,
    sentence_lengths,
)

BLOCK_BYTES = 1 << 22
"""Bytes of text per block (about a million tokens): large enough that the per-block work
is a small share, small enough to keep a few blocks in flight per worker."""
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_DAMAGED = (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile, OSError)
# How compressed data begins, for the hint when a file without its suffix is read as text.
_MAGIC = {b"\x1f\x8b": ".gz", b"BZh": ".bz2", b"\xfd7zXZ\x00": ".xz"}
# Below this much text the encode runs in this process: starting workers would take longer.
_INLINE_BYTES = 16 << 20


def encode_files(
    directory: Path, files: list[Path], source: CorpusConfig, min_freq: int, workers: int | None
) -> dict:
    """Count and encode ``files`` into ``directory``; returns what meta.json records."""
    for file in files:  # the cheap check first, before a long encode
        if file.stat().st_size == 0:
            raise _no_words(file)
    workers = workers or len(os.sched_getaffinity(0))
    if workers == 1 or sum(f.stat().st_size for f in files) < _INLINE_BYTES:
        encoders = _InlineEncoders(source)
    else:
        encoders = _EncoderProcesses(workers, source)
    ids_path = directory / "ids.int32"
    digests: dict[Path, Any] = {}
    with encoders, open(ids_path, "wb") as ids_out:
        counter = VocabularyCounter(encoders.count, source.max_vocab_size)
        lines, tokens_of, replaced = _LineLengths(), collections.Counter(), collections.Counter()
        blocks = _blocks_in_order(files, encoders, digests)
        for encoder, file, ends_file, (block, replacements) in blocks:
            provisional, forget = counter.add(encoder, block)
            ids_out.write(provisional.tobytes())
            tokens_of[file] += len(block.ids)
            replaced[file] += replacements
            lines.add(block.line_lengths, ends_file)
            for other, words in enumerate(forget):
                if words:
                    encoders.forget(other, words)
    for file in files:
        if not tokens_of[file]:  # whitespace only
            raise _no_words(file)
    try:
        counted = None if source.max_vocab_size else _count_ids(ids_path, len(counter.words))
        tokens, remap = counter.vocabulary(min_freq, counted)
    except ValueError as err:
        raise CorpusError(f"{err} (read from {_files(len(files))})") from None
    counts = _renumber(ids_path, remap, len(tokens))
    Vocab(tokens, counts).save(directory / "vocab.json")
    line_lengths = lines.all()
    sentences = sentence_lengths(line_lengths, source.max_sentence_length)
    np.concatenate([[0], np.cumsum(sentences)]).astype(np.int64).tofile(directory / "offsets.int64")
    return {
        "tokens": int(counts.sum()),
        "lines": int((line_lengths > 0).sum()),
        "split_lines": int((line_lengths > source.max_sentence_length).sum()),
        "forgotten": counter.forgotten,
        # Per file, the characters read as U+FFFD (encoding_errors="replace"); said each run.
        "replaced": {
            str(file): [count, file.stat().st_size] for file, count in replaced.items() if count
        },
        "source": dataclasses.asdict(source),
        "min_freq": min_freq,
        # Each file's text, digested as it was read: what a changed file is told by.
        "digests": {str(file.resolve()): digest.hexdigest() for file, digest in digests.items()},
    }


def _files(count: int) -> str:
    return f"{count:,} file" + ("s" if count != 1 else "")


def _no_words(file: Path) -> CorpusError:
    return CorpusError(f"{file} holds no words: leave it out or check that it is the right file")


class _LineLengths:
    """The tokens of each line, joined from the blocks' line pieces."""

    def __init__(self) -> None:
        self.done: list[np.ndarray] = []
        self.open = 0

    def add(self, pieces: np.ndarray, ends_file: bool) -> None:
        pieces = pieces.copy()
        pieces[0] += self.open  # the first piece continues the line left open
        self.done.append(pieces[:-1])
        self.open = int(pieces[-1])
        if ends_file:  # a file's end ends its last line
            self.done.append(np.array([self.open], np.int64))
            self.open = 0

    def all(self) -> np.ndarray:
        return np.concatenate(self.done) if self.done else np.zeros(0, np.int64)


def _count_ids(ids_path: Path, size: int) -> np.ndarray:
    """How often each id in [0, size) occurs in the int32 file ``ids_path``."""
    counts = np.zeros(size, np.int64)
    for start in range(0, ids_path.stat().st_size // 4, 1 << 24):
        chunk = np.fromfile(ids_path, np.int32, 1 << 24, offset=4 * start)
        counts += np.bincount(chunk, minlength=size)[:size]
    return counts


def _renumber(ids_path: Path, remap: np.ndarray, vocab_size: int) -> np.ndarray:
    """Rewrite the provisional ids in place as vocabulary ids; returns each word's count."""
    counts = np.zeros(vocab_size, np.int64)
    if not ids_path.stat().st_size:
        return counts
    ids = np.memmap(ids_path, np.int32, "r+")
    for start in range(0, len(ids), 1 << 24):
        chunk = remap[ids[start : start + (1 << 24)]]  # -1 (forgotten) is remap's last entry
        ids[start : start + len(chunk)] = chunk
        counts += np.bincount(chunk, minlength=vocab_size)
    ids.flush()
    del ids
    return counts


def _blocks_in_order(
    files: list[Path], encoders, digests: dict[Path, Any]
) -> Iterator[tuple[int, Path, bool, tuple[EncodedBlock, int]]]:
    """(encoder, file, is the file's last block, (the block encoded, its characters read as
    U+FFFD)) for every block of ``files`` in order, the blocks dealt to the encoders in turn,
    a bounded number ahead; each file's text is digested into ``digests`` as it is read."""
    in_flight = collections.deque()
    for number, (file, offset, raw, ends_file) in enumerate(_raw_blocks(files, digests)):
        encoder = number % encoders.count
        encoders.submit(encoder, raw, file, offset)
        in_flight.append((encoder, file, ends_file))
        if len(in_flight) >= 2 * encoders.count:  # bounded: read as fast as encoded
            encoder, file, ends_file = in_flight.popleft()
            yield encoder, file, ends_file, encoders.result(encoder)
    while in_flight:
        encoder, file, ends_file = in_flight.popleft()
        yield encoder, file, ends_file, encoders.result(encoder)


def _encode_raw(
    encoder: BlockEncoder, raw: bytes, file: Path, offset: int, errors: str
) -> tuple[EncodedBlock, int]:
    """One block of ``file`` (starting at byte ``offset`` of its text) decoded and encoded,
    and how many of its characters are U+FFFD (bytes that were not UTF-8, when replaced)."""
    try:
        text = raw.decode("utf-8", errors=errors)
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"{file} is not UTF-8 text: byte {offset + err.start} (0x{raw[err.start]:02x}) "
            f"cannot be decoded; {_compressed_hint(file)}"
        ) from None
    return encoder.encode(text), text.count("\ufffd") if errors == "replace" else 0


def _compressed_hint(file: Path) -> str:
    """What to do about a file that is not UTF-8: rename compressed data, else convert."""
    with open(file, "rb") as stream:
        start = stream.read(8)
    for magic, suffix in _MAGIC.items():
        if start.startswith(magic):
            return (
                f"it is {suffix[1:]}-compressed data: name it with {suffix} "
                f"(e.g. {file.name}{suffix}) and it is read decompressed"
            )
    return "convert the file, or read such bytes as U+FFFD with encoding_errors='replace'"


class _InlineEncoders:
    """One BlockEncoder in this process, for small corpora: starting workers would take
    longer than the encode."""

    count = 1

    def __init__(self, source: CorpusConfig) -> None:
        self.encoder = BlockEncoder(Splitter.from_config(source))
        self.errors = source.encoding_errors
        self.results = collections.deque()

    def submit(self, encoder: int, raw: bytes, file: Path, offset: int) -> None:
        self.results.append(_encode_raw(self.encoder, raw, file, offset, self.errors))

    def result(self, encoder: int) -> tuple[EncodedBlock, int]:
        return self.results.popleft()

    def forget(self, encoder: int, words: list[str]) -> None:
        self.encoder.forget(words)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


class _EncoderProcesses:
    """BlockEncoders on worker processes, one each, taking messages in order: a block to
    encode or words to forget.

    The processes come from a clean server process ("forkserver"): no thread of this one
    (JAX's, say) is copied into them, as a plain fork would. They run only w2v_jax's code, so
    they start without the caller's main module (``_without_main_module``).
    """

    def __init__(self, count: int, source: CorpusConfig) -> None:
        context = multiprocessing.get_context("forkserver")
        self.count = count
        self.inboxes = [context.Queue() for _ in range(count)]
        self.outboxes = [context.Queue() for _ in range(count)]
        self.processes = [
            context.Process(
                target=_serve,
                daemon=True,
                args=(inbox, outbox, Splitter.from_config(source), source.encoding_errors),
            )
            for inbox, outbox in zip(self.inboxes, self.outboxes)
        ]
        with _without_main_module():
            for process in self.processes:
                process.start()

    def submit(self, encoder: int, raw: bytes, file: Path, offset: int) -> None:
        self.inboxes[encoder].put(("encode", (raw, file, offset)))

    def result(self, encoder: int) -> tuple[EncodedBlock, int]:
        while True:  # a worker that died never answers: said, not waited for
            try:
                outcome = self.outboxes[encoder].get(timeout=1.0)
                break
            except queue.Empty:
                process = self.processes[encoder]
                if not process.is_alive():
                    raise CorpusError(
                        f"an encoding worker process exited (status {process.exitcode}) "
                        f"before it answered: see its message above"
                    ) from None
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def forget(self, encoder: int, words: list[str]) -> None:
        self.inboxes[encoder].put(("forget", words))

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        stopped = exc[0] is not None  # Ctrl-C, or an error: their work is not wanted
        for inbox in self.inboxes:
            if stopped:  # blocks not yet fed to a worker ended here are dropped, not waited on
                inbox.cancel_join_thread()
            inbox.put(None)
        for process in self.processes:
            if stopped:
                process.terminate()
            process.join()


@contextlib.contextmanager
def _without_main_module() -> Iterator[None]:
    """Processes started in here do not import the caller's main module.

    multiprocessing's server and workers would otherwise run the caller's script again as
    ``__mp_main__``: a script that calls the encode at module level, without an
    ``if __name__ == "__main__":`` guard, then starts an encode in each of them, which
    multiprocessing refuses there, and the workers never answer. Ours need nothing of it.
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")  # no __file__, no __spec__
    try:
        yield
    finally:
        if main is None:
            del sys.modules["__main__"]
        else:
            sys.modules["__main__"] = main


def _serve(inbox, outbox, splitter: Splitter, errors: str) -> None:
    """A worker process: encode blocks and forget words as the messages say, until None.
    Ctrl-C (sent to the terminal's whole process group) is the main process's to handle: it
    ends the workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    encoder = BlockEncoder(splitter)
    while (message := inbox.get()) is not None:
        kind, payload = message
        if kind == "forget":
            encoder.forget(payload)
            continue
        try:
            outbox.put(_encode_raw(encoder, *payload, errors))
        except Exception as err:  # said in the main process, which stops the encode
            outbox.put(err)


def _raw_blocks(
    files: list[Path], digests: dict[Path, Any]
) -> Iterator[tuple[Path, int, bytes, bool]]:
    """(file, byte offset, bytes, is the file's last block) of about BLOCK_BYTES each, cut
    after a line break, or after whitespace within a line longer than a block; each file's
    text (decompressed) digested into ``digests`` (once for a file read twice)."""
    for file in files:
        opener = _OPENERS.get(file.suffix.lower(), open)
        offset, carry = 0, b""
        digest = None if file in digests else digests.setdefault(file, hashlib.sha1())
        try:
            with opener(file, "rb") as stream:
                while True:
                    data = stream.read(BLOCK_BYTES)
                    if digest is not None:
                        digest.update(data)
                    block = carry + data
                    if not data:
                        yield file, offset, block, True
                        break
                    cut = _cut(block)
                    carry = block[cut:]
                    yield file, offset, block[:cut], False
                    offset += cut
        except _DAMAGED as err:
            if opener is open and not isinstance(err, EOFError | zlib.error | lzma.LZMAError):
                raise CorpusError(f"cannot read {file}: {err.strerror or err}") from None
            raise CorpusError(
                f"{file} is damaged or truncated ({err}): nothing of it was "
                f"used; replace the file or leave it out"
            ) from None


def text_digest(file: Path) -> str:
    """The digest ``encode_files`` records of ``file``'s text (decompressed), read again."""
    digest = hashlib.sha1()
    with _OPENERS.get(file.suffix.lower(), open)(file, "rb") as stream:
        for data in iter(lambda: stream.read(BLOCK_BYTES), b""):
            digest.update(data)
    return digest.hexdigest()


def _cut(block: bytes) -> int:
    """Where a block ends: after its last line break, else after its last whitespace (a line
    longer than a block continues in the next), else at its end (one token longer than a
    block: cut anyway, the rare case of a gigantic token)."""
    for ending in (b"\n", b" ", b"\t", b"\r"):
        position = block.rfind(ending)
        if position >= 0:
            return position + 1
    cut = len(block) - 1  # the last character goes to the next block, whole
    while cut > 0 and block[cut] & 0xC0 == 0x80:  # a UTF-8 continuation byte
        cut -= 1
    return cut or len(block)
