"""A corpus of your own: text files named by paths, directories or globs; plain, ``.gz``,
``.bz2`` or ``.xz``; one sentence a line, split into tokens as ``CorpusConfig.tokenizer`` says
(on whitespace, or into words as gensim's ``simple_preprocess``); encoded once into a cache.

Lines longer than ``max_sentence_length`` tokens (10,000, as word2vec and gensim) are split into
sentences of that length, never truncated, and counted, so a one-line corpus such as text8
trains. Every problem is a ``CorpusError`` whose one line names the file and says what to do; a
damaged compressed file is refused, never trained on in part.

The encode reads the files once, in blocks of about 4 MiB dealt in turn to one
``vocab.BlockEncoder`` per core, which splits and numbers them, while this process merges their
words into provisional ids (``vocab.VocabularyCounter``, bounded by ``max_vocab_size``) and
writes them; the ranked vocabulary then renumbers them in place. The cache entry holds
``ids.int32`` and ``offsets.int64`` (memory-mapped for training), ``vocab.json`` and
``meta.json`` (each file's size, modification and change times, inode and the digest of its
text, taken as it was read; the settings; sha1 checksums of the entry's files). It is written
under a temporary name and renamed when complete; a later run with the same files and settings
reads it and never the text, one whose files changed or whose entry fails its checksums
encodes again, saying why. A file is checked by ``stat`` alone: a size or modification time
that differs is a change; equal ones beside another inode or change time (a file replaced,
perhaps with its old time put back) are settled by the digest of its text. An encode killed
before its rename leaves its temporary directory behind; the next encode of the same entry on
this host removes it.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from w2v_jax.corpus_config import CorpusConfig
from w2v_jax.data import CorpusError, resolve_dir, sha1_of
from w2v_jax.data.encoding import encode_files, text_digest
from w2v_jax.data.ptb import PTB_TRAIN_MEMBER, fetch_ptb
from w2v_jax.data.vocab import Corpus, Vocab

CACHE_ENV_VAR = "W2V_JAX_CACHE"
_FORMAT = 2  # bump when the entry's layout changes: older entries are then never read


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
            f"{_count(len(self.files), 'file')}, {_count(self.lines, 'line')}, "
            f"{_count(len(self.corpus.ids), 'token')}"
            f"{split}{forgot}; {how} in {self.seconds:.1f} s ({self.entry})"
        )


def _count(number: int, thing: str) -> str:
    return f"{number:,} {thing}" + ("s" if number != 1 else "")


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
    """Each file's path, size, modification time, inode change time and inode number."""
    stats = [f.stat() for f in files]
    return [
        [str(f.resolve()), s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_ino]
        for f, s in zip(files, stats)
    ]


def _changed(saved: list, now: list, digest: str | None) -> bool:
    """Whether a file differs from the one encoded. Its size or modification time differing
    says so; both equal but the inode or its change time not (the file was replaced or
    rewritten, perhaps with its old time put back) leaves it in doubt, settled by the digest
    of its text."""
    if saved[1:3] != now[1:3]:
        return True
    if saved[3:] == now[3:]:
        return False
    try:
        return digest != text_digest(Path(now[0]))
    except (OSError, EOFError, ValueError, zlib.error):  # unreadable now: encode and say so
        return True


def _load(
    entry: Path, files: list[Path], seconds: float, from_cache: bool, notes: tuple[str, ...]
) -> EncodedCorpus:
    try:
        meta = json.loads((entry / "meta.json").read_text())
    except (OSError, ValueError) as err:
        raise _Unusable(f"has no readable meta.json ({err})") from None
    if meta.get("format") != _FORMAT:
        raise _Unusable(f"was written in format {meta.get('format')}, this version reads {_FORMAT}")
    fingerprints = _fingerprints(files)
    for saved, now in zip(meta["files"], fingerprints):
        if _changed(saved, now, meta["digests"].get(now[0])):
            raise _Unusable(f"is stale: {now[0]} changed since it was encoded")
    if meta["files"] != fingerprints:  # in doubt, and the same text: cheap to check next time
        _rewrite_meta(entry, {**meta, "files": fingerprints})
    for name, digest in meta["sha1"].items():
        if not (entry / name).is_file() or sha1_of(entry / name) != digest:
            raise _Unusable(f"is damaged: {name} does not match its checksum")
    notes += tuple(_replaced_notes(meta.get("replaced", {})))
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


def _rewrite_meta(entry: Path, meta: dict) -> None:
    tmp = entry / f".meta.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(meta))
        tmp.replace(entry / "meta.json")
    except OSError:  # a cache one may not write: checked by digest again next time
        tmp.unlink(missing_ok=True)


def _replaced_notes(replaced: dict[str, list[int]]) -> list[str]:
    """A line for each file some of whose bytes were not UTF-8 and were read as U+FFFD."""
    return [
        f"{path}: {count:,} characters ({count / max(size, 1):.1%} of its {size:,} bytes) were "
        f"not UTF-8 and were read as U+FFFD" + ("; is it text?" if count > 0.01 * size else "")
        for path, (count, size) in replaced.items()
    ]


def _temp_prefix(entry: Path) -> str:
    """Temporary directories of ``entry``'s encode are named after it, the host and the pid."""
    return f".{entry.name}.{socket.gethostname()}-"


def _remove_abandoned(entry: Path) -> None:
    """Remove the temporary directories of encodes of ``entry`` on this host whose process
    has ended (killed before it could clean up)."""
    prefix = _temp_prefix(entry)
    for path in entry.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = path.name[len(prefix) :].partition(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _write_entry(
    entry: Path, files: list[Path], source: CorpusConfig, min_freq: int, workers: int | None
) -> None:
    """Encode into a temporary directory beside ``entry``, then rename it into place: an
    interrupted encode never leaves an entry that looks complete."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(entry)
        prefix = f"{_temp_prefix(entry)}{os.getpid()}."
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=entry.parent))
    except OSError as err:
        raise CorpusError(
            f"cannot write the corpus cache into {entry.parent} ({err.strerror or err}): point "
            f"the cache_dir argument (or ${CACHE_ENV_VAR}) at a directory you can write "
            f"to"
        ) from None
    try:
        fingerprints = _fingerprints(files)
        meta = encode_files(tmp, files, source, min_freq, workers)
        meta["sha1"] = {
            name: sha1_of(tmp / name) for name in ("ids.int32", "offsets.int64", "vocab.json")
        }
        (tmp / "meta.json").write_text(
            json.dumps({"format": _FORMAT, "files": fingerprints, **meta})
        )
        old = entry.with_name(f"{prefix}old.tmp")  # removed below, or by a later encode
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
