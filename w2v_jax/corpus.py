"""A corpus of your own: text files named by paths, directories or globs; plain, ``.gz``,
``.bz2`` or ``.xz``; one sentence a line, tokens split on whitespace; encoded once into a cache.

Lines longer than ``max_sentence_length`` tokens (10,000, as word2vec and gensim) are split into
sentences of that length, never truncated, and counted, so a one-line corpus such as text8
trains. Every problem is a ``CorpusError`` whose one line names the file and says what to do; a
damaged compressed file is refused, never trained on in part.

The encode reads the files once, in blocks of about 4 MiB dealt in turn to one
``data.BlockEncoder`` per core, which splits and numbers them, while this process merges their
words into provisional ids (``data.VocabularyCounter``, bounded by ``max_vocab_size``) and
writes them; the ranked vocabulary then renumbers them in place. The cache entry holds
``ids.int32`` and ``offsets.int64`` (memory-mapped for training), ``vocab.json`` and
``meta.json`` (the files' sizes and modification times, the settings, sha1 checksums). It is
written under a temporary name and renamed when complete; a later run with the same files and
settings reads it and never the text, one whose files changed or whose entry fails its
checksums encodes again, saying why.
"""

from __future__ import annotations

import bz2
import collections
import contextlib
import dataclasses
import glob
import gzip
import hashlib
import json
import lzma
import multiprocessing
import os
import queue
import shutil
import sys
import tempfile
import time
import types
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from w2v_jax.config import CorpusConfig
from w2v_jax.data import (
    PTB_TRAIN_MEMBER,
    BlockEncoder,
    Corpus,
    CorpusError,
    EncodedBlock,
    Vocab,
    VocabularyCounter,
    fetch_ptb,
    resolve_dir,
    sentence_lengths,
    sha1_of,
)

CACHE_ENV_VAR = "W2V_JAX_CACHE"
BLOCK_BYTES = 1 << 22
"""Bytes of text per block (about a million tokens): large enough that the per-block work
is a small share, small enough to keep a few blocks in flight per worker."""
_FORMAT = 1  # bump when the entry's layout changes: older entries are then never read
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_DAMAGED = (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile, OSError)
# Below this much text the encode runs in this process: starting workers would take longer.
_INLINE_BYTES = 16 << 20


@dataclasses.dataclass(frozen=True)
class EncodedCorpus:
    """A corpus encoded (or read from its cache entry): vocabulary, ids and what reading found."""

    vocab: Vocab
    corpus: Corpus
    """``ids`` and ``offsets`` memory-mapped from the cache entry."""
    files: tuple[Path, ...]
    lines: int
    split_lines: int
    """Lines longer than max_sentence_length tokens, each split into several sentences."""
    forgotten: int
    """Distinct words forgotten while counting to stay within max_vocab_size."""
    entry: Path
    """The cache entry."""
    seconds: float
    from_cache: bool
    notes: tuple[str, ...] = ()
    """One line for each thing worth saying: a stale or damaged entry encoded again."""

    def summary(self) -> str:
        split = (
            f"; {self.split_lines:,} lines longer than the sentence limit were split"
            if self.split_lines
            else ""
        )
        forgot = (
            f"; {self.forgotten:,} rare words forgotten to stay within max_vocab_size"
            if self.forgotten
            else ""
        )
        how = "read from the cache" if self.from_cache else "encoded"
        return (
            f"{len(self.files):,} files, {self.lines:,} lines, {len(self.corpus.ids):,} "
            f"tokens{split}{forgot}; {how} in {self.seconds:.1f} s ({self.entry})"
        )


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
            under = sorted(
                p
                for p in Path(path).rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not under:
                raise CorpusError(
                    f"the directory {path} holds no files: name the text files "
                    f"or a directory that holds them"
                )
            files += under
        elif Path(path).is_file():
            files.append(Path(path))
        else:
            raise CorpusError(f"no such file or directory: {path}")
    return files


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The corpus cache: the argument, else $W2V_JAX_CACHE, else ~/.cache/w2v_jax/corpora."""
    return resolve_dir(cache_dir, CACHE_ENV_VAR, "corpora")


def encode(
    source: CorpusConfig,
    min_freq: int,
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    data_dir: str | os.PathLike | None = None,
) -> EncodedCorpus:
    """The corpus ``source`` names, encoded with the vocabulary of ``min_freq``: read from its
    cache entry when there is a good one, else encoded into a new one on ``workers`` processes
    (default: every core this process may use). PTB is fetched into ``data_dir`` (see
    ``data.fetch_ptb``) and its training split extracted into the cache once."""
    start = time.perf_counter()
    root = resolve_cache_dir(cache_dir)
    files = [ptb_file(data_dir, root)] if source.is_ptb else corpus_files(source.paths)
    files = files * source.repeats
    entry = _entry_path(root, files, source, min_freq)
    notes = []
    if entry.exists():
        try:
            return _load(entry, files, time.perf_counter() - start, True, ())
        except _Unusable as why:
            notes.append(f"the cached encoding {entry} {why}: encoding the corpus again")
    _write_entry(entry, files, source, min_freq, workers)
    return _load(entry, files, time.perf_counter() - start, False, tuple(notes))


def ptb_file(data_dir: str | os.PathLike | None, cache_root: Path) -> Path:
    """PTB's training split as a text file in the corpus cache, extracted from the verified
    ``ptb.zip`` when absent or not the archive's (its CRC)."""
    archive = fetch_ptb(data_dir)
    try:
        with zipfile.ZipFile(archive) as opened:
            info = opened.getinfo(PTB_TRAIN_MEMBER)
            path = cache_root / "ptb" / Path(PTB_TRAIN_MEMBER).name
            if path.is_file() and zlib.crc32(path.read_bytes()) == info.CRC:
                return path
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(opened.read(info))
    except (zipfile.BadZipFile, KeyError, EOFError) as err:
        raise CorpusError(
            f"{archive} is not a readable corpus archive holding {PTB_TRAIN_MEMBER} ({err}); "
            f"delete it and download it again."
        ) from err
    except OSError as err:
        raise CorpusError(
            f"cannot write the corpus cache into {cache_root} ({err.strerror or err}): point "
            f"the cache_dir argument (or ${CACHE_ENV_VAR}) at a directory you can write to"
        ) from None
    tmp.replace(path)  # whole or not at all
    return path


class _Unusable(Exception):
    """A cache entry that must be encoded again; the message says why."""


def _entry_path(root: Path, files: list[Path], source: CorpusConfig, min_freq: int) -> Path:
    """The entry of these files and settings. Sizes and times are not in the name: a changed
    file finds its old entry, which is then said to be stale and replaced."""
    key = json.dumps(
        [
            _FORMAT,
            [str(f.resolve()) for f in files],
            dataclasses.asdict(source) | {"paths": None},
            min_freq,
        ]
    )
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in files[0].name)[:40]
    return root / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:16]}"


def _fingerprints(files: list[Path]) -> list[list]:
    return [[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in files]


def _load(
    entry: Path, files: list[Path], seconds: float, from_cache: bool, notes: tuple[str, ...]
) -> EncodedCorpus:
    try:
        meta = json.loads((entry / "meta.json").read_text())
    except (OSError, ValueError) as err:
        raise _Unusable(f"has no readable meta.json ({err})") from None
    if meta.get("format") != _FORMAT:
        raise _Unusable(f"was written in format {meta.get('format')}, this version reads {_FORMAT}")
    for saved, now in zip(meta["files"], _fingerprints(files)):
        if saved != now:
            raise _Unusable(f"is stale: {now[0]} changed since it was encoded")
    for name, digest in meta["sha1"].items():
        if not (entry / name).is_file() or sha1_of(entry / name) != digest:
            raise _Unusable(f"is damaged: {name} does not match its checksum")
    vocab = Vocab.load(entry / "vocab.json")
    ids = np.memmap(entry / "ids.int32", np.int32, "r") if meta["tokens"] else np.zeros(0, np.int32)
    offsets = np.memmap(entry / "offsets.int64", np.int64, "r")
    return EncodedCorpus(
        vocab,
        Corpus(ids, offsets),
        tuple(files),
        meta["lines"],
        meta["split_lines"],
        meta["forgotten"],
        entry,
        seconds,
        from_cache,
        notes,
    )


def _write_entry(
    entry: Path, files: list[Path], source: CorpusConfig, min_freq: int, workers: int | None
) -> None:
    """Encode into a temporary directory beside ``entry``, then rename it into place: an
    interrupted encode never leaves an entry that looks complete."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".tmp", dir=entry.parent))
    except OSError as err:
        raise CorpusError(
            f"cannot write the corpus cache into {entry.parent} ({err.strerror or err}): point "
            f"the cache_dir argument (or ${CACHE_ENV_VAR}) at a directory you can write "
            f"to"
        ) from None
    try:
        fingerprints = _fingerprints(files)
        meta = _encode_files(tmp, files, source, min_freq, workers)
        meta["sha1"] = {
            name: sha1_of(tmp / name) for name in ("ids.int32", "offsets.int64", "vocab.json")
        }
        (tmp / "meta.json").write_text(
            json.dumps({"format": _FORMAT, "files": fingerprints, **meta})
        )
        old = entry.with_name(f".{entry.name}.old-{os.getpid()}")
        if entry.exists():
            entry.rename(old)
        tmp.rename(entry)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as err:
        raise CorpusError(
            f"cannot write the corpus cache entry {entry} ({err}): point the "
            f"cache_dir argument (or ${CACHE_ENV_VAR}) at a directory with "
            f"room"
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _encode_files(
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
    with encoders, open(ids_path, "wb") as ids_out:
        counter = VocabularyCounter(encoders.count, source.max_vocab_size)
        lines, tokens_of = _LineLengths(), collections.Counter()
        for encoder, file, ends_file, block in _blocks_in_order(files, encoders):
            provisional, forget = counter.add(encoder, block)
            ids_out.write(provisional.tobytes())
            tokens_of[file] += len(block.ids)
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
        raise CorpusError(f"{err} ({len(files)} files)") from None
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
        "source": dataclasses.asdict(source),
        "min_freq": min_freq,
    }


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


def _blocks_in_order(files: list[Path], encoders) -> Iterator[tuple[int, Path, bool, EncodedBlock]]:
    """(encoder, file, is the file's last block, the block encoded) for every block of
    ``files`` in order, the blocks dealt to the encoders in turn, a bounded number ahead."""
    in_flight = collections.deque()
    for number, (file, offset, raw, ends_file) in enumerate(_raw_blocks(files)):
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
) -> EncodedBlock:
    """One block of ``file`` (starting at byte ``offset`` of its text) decoded and encoded."""
    try:
        text = raw.decode("utf-8", errors=errors)
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"{file} is not UTF-8 text: byte {offset + err.start} (0x{raw[err.start]:02x}) "
            f"cannot be decoded; convert the file, or read such bytes as U+FFFD with "
            f"encoding_errors='replace'"
        ) from None
    return encoder.encode(text)


class _InlineEncoders:
    """One BlockEncoder in this process, for small corpora: starting workers would take
    longer than the encode."""

    count = 1

    def __init__(self, source: CorpusConfig) -> None:
        self.encoder, self.errors = BlockEncoder(source.lowercase), source.encoding_errors
        self.results = collections.deque()

    def submit(self, encoder: int, raw: bytes, file: Path, offset: int) -> None:
        self.results.append(_encode_raw(self.encoder, raw, file, offset, self.errors))

    def result(self, encoder: int) -> EncodedBlock:
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
                args=(inbox, outbox, source.lowercase, source.encoding_errors),
            )
            for inbox, outbox in zip(self.inboxes, self.outboxes)
        ]
        with _without_main_module():
            for process in self.processes:
                process.start()

    def submit(self, encoder: int, raw: bytes, file: Path, offset: int) -> None:
        self.inboxes[encoder].put(("encode", (raw, file, offset)))

    def result(self, encoder: int) -> EncodedBlock:
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
        for inbox in self.inboxes:
            inbox.put(None)
        for process in self.processes:
            process.join(timeout=None if exc[0] is None else 1)
            if process.is_alive():
                process.terminate()


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


def _serve(inbox, outbox, lowercase: bool, errors: str) -> None:
    """A worker process: encode blocks and forget words as the messages say, until None."""
    encoder = BlockEncoder(lowercase)
    while (message := inbox.get()) is not None:
        kind, payload = message
        if kind == "forget":
            encoder.forget(payload)
            continue
        try:
            outbox.put(_encode_raw(encoder, *payload, errors))
        except Exception as err:  # said in the main process, which stops the encode
            outbox.put(err)


def _raw_blocks(files: list[Path]) -> Iterator[tuple[Path, int, bytes, bool]]:
    """(file, byte offset, bytes, is the file's last block) of about BLOCK_BYTES each, cut
    after a line break, or after whitespace within a line longer than a block."""
    for file in files:
        opener = _OPENERS.get(file.suffix.lower(), open)
        offset, carry = 0, b""
        try:
            with opener(file, "rb") as stream:
                while True:
                    data = stream.read(BLOCK_BYTES)
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
