"""A corpus of your own from files: what is read, how it is encoded and cached, and one clear
line for each bad input."""

from __future__ import annotations

import bz2
import gzip
import itertools
import json
import lzma
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import encode_text
from w2v_jax.corpus_config import CorpusConfig
from w2v_jax.data import CorpusError, encoding
from w2v_jax.data.corpus import corpus_files, encode


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def sentences(encoded) -> list[list[str]]:
    ids, offsets = np.asarray(encoded.corpus.ids), encoded.corpus.offsets
    return [[encoded.vocab.to_token(i) for i in ids[a:b]] for a, b in itertools.pairwise(offsets)]


def encode_files(paths, cache_dir, min_freq=1, **settings):
    return encode(CorpusConfig(tuple(map(str, paths)), **settings), min_freq, cache_dir)


@pytest.fixture
def many_small_blocks(monkeypatch):
    """Blocks of a few bytes dealt to two worker processes, as a large corpus would be."""
    monkeypatch.setattr(encoding, "BLOCK_BYTES", 40)
    monkeypatch.setattr(encoding, "_INLINE_BYTES", 0)


def test_files_directories_globs_and_compressed_files_read_alike(tmp_path):
    text = "the cat sat\n\nOn the Mat\n"
    write(tmp_path / "a.txt", text)
    write(tmp_path / "d" / "b.gz", gzip.compress(text.encode()))
    write(tmp_path / "d" / "c.bz2", bz2.compress(text.encode()))
    write(tmp_path / "d" / "e.xz", lzma.compress(text.encode()))
    write(tmp_path / "d" / ".hidden", "never read\n")
    encoded = encode_files([tmp_path / "a.txt", tmp_path / "d"], tmp_path / "cache")
    assert sentences(encoded) == [["the", "cat", "sat"], ["On", "the", "Mat"]] * 4
    assert (encoded.lines, len(encoded.corpus.ids), encoded.split_lines) == (8, 24, 0)
    assert [f.name for f in encoded.files] == ["a.txt", "b.gz", "c.bz2", "e.xz"]
    assert corpus_files([str(tmp_path / "d" / "*.gz")]) == [tmp_path / "d" / "b.gz"]
    lowered = encode_files([tmp_path / "a.txt"], tmp_path / "cache", lowercase=True)
    assert sentences(lowered) == [["the", "cat", "sat"], ["on", "the", "mat"]]


def test_the_encoding_is_the_in_memory_one(tmp_path, ptb_text):
    """The files' encode gives PTB the vocabulary, ids and sentences of the in-memory encode
    (``helpers.encode_text``), ties in frequency in first-occurrence order included."""
    path = write(tmp_path / "ptb.train.txt", ptb_text)
    encoded = encode_files([path], tmp_path / "cache", min_freq=10)
    vocab, corpus = encode_text(ptb_text, 10)
    assert encoded.vocab == vocab and len(vocab) == 6719
    assert np.array_equal(encoded.corpus.ids, corpus.ids)
    assert np.array_equal(encoded.corpus.offsets, corpus.offsets)


def test_worker_processes_and_small_blocks_change_nothing(tmp_path, many_small_blocks):
    rng = np.random.default_rng(0)
    lines = [
        " ".join(f"w{int(z)}" for z in rng.zipf(1.3, int(n)) if z < 10_000)
        for n in rng.integers(1, 30, 300)
    ]
    lines[7] = " ".join(f"long{i}" for i in range(100))  # longer than a block of 40 bytes
    text = "\n".join(lines) + "\n"
    path = write(tmp_path / "c.txt", text)
    vocab, corpus = encode_text(text, 2)
    encoded = encode(CorpusConfig((str(path),)), 2, tmp_path / "cache", workers=2)
    assert encoded.vocab == vocab
    assert np.array_equal(encoded.corpus.ids, corpus.ids)
    assert np.array_equal(encoded.corpus.offsets, corpus.offsets)


def test_a_long_line_is_split_never_truncated_and_counted(tmp_path, many_small_blocks):
    words = [f"w{i}" for i in range(25)]
    write(tmp_path / "one_line.txt", " ".join(words))  # text8's shape: no line break at all
    encoded = encode_files([tmp_path / "one_line.txt"], tmp_path / "cache", max_sentence_length=10)
    assert [len(s) for s in sentences(encoded)] == [10, 10, 5]
    assert [w for s in sentences(encoded) for w in s] == words
    assert (encoded.lines, encoded.split_lines) == (1, 1)
    assert "1 lines longer than the sentence limit were split" in encoded.summary()


def test_a_bounded_vocabulary_forgets_rare_words_and_keeps_frequent_counts(
    tmp_path, many_small_blocks
):
    frequent = "the cat sat on the mat\n" * 30
    rare = "".join(f"rare{i} the\n" for i in range(200))
    text = frequent + rare + frequent
    path = write(tmp_path / "c.txt", text)
    encoded = encode_files([path], tmp_path / "cache", max_vocab_size=20)
    assert encoded.forgotten > 100
    counts = dict(zip(encoded.vocab.tokens, encoded.vocab.counts.tolist()))
    assert counts["the"] == 2 * 2 * 30 + 200 and counts["mat"] == 60
    ids = np.asarray(encoded.corpus.ids)
    assert np.array_equal(np.bincount(ids, minlength=len(encoded.vocab)), encoded.vocab.counts)
    assert len(ids) == len(text.split())  # forgotten occurrences are <unk>, never dropped


def test_a_second_run_reads_the_cache_and_never_the_text(tmp_path, monkeypatch):
    path = write(tmp_path / "c.txt", "a b c\nb c\n")
    first = encode_files([path], tmp_path / "cache")
    assert not first.from_cache
    other_settings = encode_files([path], tmp_path / "cache", min_freq=2)
    assert other_settings.entry != first.entry  # the settings key the entry

    def no_reading(files):
        raise AssertionError("the text was read")

    monkeypatch.setattr(encoding, "_raw_blocks", no_reading)
    second = encode_files([path], tmp_path / "cache")
    assert second.from_cache and second.entry == first.entry and not second.notes
    assert second.vocab == first.vocab and sentences(second) == sentences(first)
    assert isinstance(second.corpus.ids, np.memmap)


def test_a_stale_cache_is_encoded_again_in_one_line(tmp_path):
    path = write(tmp_path / "c.txt", "a b c\n")
    encode_files([path], tmp_path / "cache")
    write(path, "a b c d\n")
    os.utime(path, ns=(1, 1))
    again = encode_files([path], tmp_path / "cache")
    assert not again.from_cache and sentences(again) == [["a", "b", "c", "d"]]
    assert again.notes == (
        f"the cached encoding {again.entry} is stale: {path.resolve()} changed "
        f"since it was encoded: encoding the corpus again",
    )
    assert encode_files([path], tmp_path / "cache").from_cache


@pytest.mark.parametrize("suffix", [".txt", ".txt.gz"])
def test_a_file_replaced_by_another_text_of_its_size_and_time_is_encoded_again(tmp_path, suffix):
    """Its size and modification time say nothing: its inode or change time differ, so its
    text's digest is compared, and differs."""

    def content(text: str) -> bytes:
        return gzip.compress(text.encode(), mtime=0) if suffix.endswith(".gz") else text.encode()

    path = write(tmp_path / f"c{suffix}", content("a b c\n"))
    old = path.stat()
    first = encode_files([path], tmp_path / "cache")
    replacement = write(tmp_path / f"other{suffix}", content("a b d\n"))
    assert replacement.stat().st_size == old.st_size
    replacement.replace(path)
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
    again = encode_files([path], tmp_path / "cache")
    assert not again.from_cache and sentences(again) == [["a", "b", "d"]]
    assert again.notes[0].startswith(f"the cached encoding {first.entry} is stale")


def test_a_file_touched_but_unchanged_is_read_from_the_cache_by_its_digest(tmp_path):
    """Its change time moved (a chmod, a copy back with its time kept): the digest of its
    text settles it, and the entry records the new figures, so the next check is stat only."""
    path = write(tmp_path / "c.txt", "a b c\n")
    encode_files([path], tmp_path / "cache")
    os.chmod(path, 0o600)
    again = encode_files([path], tmp_path / "cache")
    assert again.from_cache and again.notes == ()
    meta = json.loads((again.entry / "meta.json").read_text())
    assert meta["files"][0][3] == path.stat().st_ctime_ns


@pytest.mark.parametrize("name", ["ids.int32", "offsets.int64", "vocab.json", "meta.json"])
def test_a_damaged_cache_is_detected_and_encoded_again(tmp_path, name):
    path = write(tmp_path / "c.txt", "a b c\nb c d\n")
    first = encode_files([path], tmp_path / "cache")
    expected = sentences(first)
    damaged = first.entry / name
    content = bytearray(damaged.read_bytes())
    content[len(content) // 2] ^= 0xFF
    damaged.write_bytes(bytes(content))
    again = encode_files([path], tmp_path / "cache")
    assert not again.from_cache and sentences(again) == expected
    (note,) = again.notes
    assert note.startswith(f"the cached encoding {first.entry} ")
    assert f"is damaged: {name} does not match its checksum" in note or (
        name == "meta.json" and "has no readable meta.json" in note
    )
    assert note.endswith("encoding the corpus again") and "\n" not in note


def test_an_interrupted_encode_leaves_no_entry(tmp_path, monkeypatch):
    path = write(tmp_path / "c.txt", "a b c\n")

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(encoding, "_renumber", interrupted)
    with pytest.raises(KeyboardInterrupt):
        encode_files([path], tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []  # no entry, no temporary left
    monkeypatch.undo()
    assert sentences(encode_files([path], tmp_path / "cache")) == [["a", "b", "c"]]


def test_a_cache_that_cannot_be_written_says_where_to_point_it(tmp_path, monkeypatch):
    path = write(tmp_path / "c.txt", "a b c\n")
    not_a_directory = write(tmp_path / "file", "")
    with pytest.raises(
        CorpusError,
        match=f"cannot write the corpus cache into "
        f"{not_a_directory}/x .*: point the cache_dir "
        f"argument",
    ):
        encode_files([path], not_a_directory / "x")

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    with pytest.raises(CorpusError) as raised:
        encode_files([path], tmp_path / "cache")
    assert str(raised.value) == (
        f"cannot write the corpus cache into {tmp_path / 'cache'} "
        f"(Permission denied): point the cache_dir argument (or "
        f"$W2V_JAX_CACHE) at a directory you can write to"
    )


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.txt", "no such file or directory: {d}/missing.txt"),
        (lambda d: write(d / "empty.txt", ""), "{d}/empty.txt holds no words"),
        (lambda d: write(d / "blank.txt", "\n  \n"), "{d}/blank.txt holds no words"),
        (
            lambda d: (d / "nothing").mkdir() or d / "nothing",
            "the directory {d}/nothing holds no files",
        ),
        (lambda d: str(d / "*.none"), "no file matches {d}/*.none"),
        (
            lambda d: write(d / "latin1.txt", "caf\xe9 ok\n".encode("latin-1")),
            "{d}/latin1.txt is not UTF-8 text: byte 3 (0xe9) cannot be decoded",
        ),
        (
            lambda d: write(d / "late.txt", b"ok fine\n" * 30 + b"bad \xff\n"),
            "{d}/late.txt is not UTF-8 text: byte 244 (0xff) cannot be decoded",
        ),
        (
            lambda d: write(d / "packed.txt", gzip.compress(b"a b c\n" * 1000)),
            "{d}/packed.txt is not UTF-8 text: byte 1 (0x8b) cannot be decoded; it is "
            "gz-compressed data: name it with .gz (e.g. packed.txt.gz)",
        ),
        (
            lambda d: write(d / "packed", bz2.compress(b"a b c\n" * 1000)),
            "it is bz2-compressed data: name it with .bz2",
        ),
        (
            lambda d: write(d / "cut.gz", gzip.compress(b"a b c\n" * 1000)[:-20]),
            "{d}/cut.gz is damaged or truncated",
        ),
        (
            lambda d: write(d / "garbled.gz", b"\x1f\x8b\x08\x00" + b"garbage" * 10),
            "{d}/garbled.gz is damaged or truncated",
        ),
        (
            lambda d: write(d / "cut.xz", lzma.compress(b"a b c\n" * 1000)[:-30]),
            "{d}/cut.xz is damaged or truncated",
        ),
        (
            lambda d: write(d / "rare.txt", "a b c\n"),
            "min_freq=5 keeps no word: the most frequent word occurs 1 time; lower it "
            "(read from 1 file)",
        ),
    ],
)
def test_bad_input_is_one_line_naming_the_file(tmp_path, many_small_blocks, make, message):
    path = make(tmp_path)
    with pytest.raises(CorpusError) as raised:
        encode_files([path], tmp_path / "cache", min_freq=5)
    text = str(raised.value)
    assert message.format(d=tmp_path) in text and "\n" not in text
    cache = tmp_path / "cache"
    assert not cache.exists() or list(cache.iterdir()) == []  # nothing half-written


def test_bad_bytes_can_be_read_as_replacement_characters(tmp_path):
    path = write(tmp_path / "latin1.txt", "caf\xe9 ok\n".encode("latin-1"))
    encoded = encode_files([path], tmp_path / "cache", encoding_errors="replace")
    assert sentences(encoded) == [["caf\ufffd", "ok"]]
    # The share replaced is said, with a question when it is large, and again from the cache.
    said = f"{path}: 1 characters (12.5% of its 8 bytes) were not UTF-8 and were read as U+FFFD"
    assert encoded.notes == (said + "; is it text?",)
    again = encode_files([path], tmp_path / "cache", encoding_errors="replace")
    assert again.from_cache and again.notes == encoded.notes
    clean = encode_files([write(tmp_path / "ok.txt", "ok\n")], tmp_path / "cache")
    assert clean.notes == ()


# Punctuation, digits, case, accents, underscores, apostrophes, hyphens, long and one-letter
# words, other scripts: where tokenizers differ.
AWKWARD_TEXT = """The License; use, license. Applicable-LAW (2.25) e-mail: x@y.org
Café naïve résumé Œuvre ÉCOLE straße don't I'm O'Neil
_private __init__ snake_case abc123 123abc 3.14 1,000 a b cc
Supercalifragilisticexpialidocious antidisestablishment fifteenletters1 sixteenletterss
Москва Καλημέρα 東京 日本語 naïveté Ångström fiancée

tabs\tand  spaces   and\rcarriage returns
"""


@pytest.mark.parametrize("deaccent", [False, True])
@pytest.mark.parametrize("bounds", [(2, 15), (1, 30), (4, 8)])
def test_the_words_tokenizer_is_gensims_simple_preprocess(
    tmp_path, many_small_blocks, deaccent, bounds
):
    """``--tokenizer words --lowercase`` splits every line as gensim's simple_preprocess does,
    with its deacc, min_len and max_len; on worker processes and in small blocks too."""
    from gensim.utils import simple_preprocess

    path = write(tmp_path / "awkward.txt", AWKWARD_TEXT * 3)
    low, high = bounds
    encoded = encode_files(
        [path],
        tmp_path / "cache",
        tokenizer="words",
        lowercase=True,
        deaccent=deaccent,
        min_word_length=low,
        max_word_length=high,
    )
    expected = [
        tokens
        for line in (AWKWARD_TEXT * 3).split("\n")  # lines end at \n only
        if (tokens := simple_preprocess(line, deacc=deaccent, min_len=low, max_len=high))
    ]
    assert sentences(encoded) == expected
    assert len(encoded.corpus.ids) == sum(map(len, expected)) > 40


def test_tokenizer_settings_are_part_of_the_cache_key(tmp_path):
    path = write(tmp_path / "c.txt", "The cat, the CAT.\n")
    split = encode_files([path], tmp_path / "cache")
    words = encode_files([path], tmp_path / "cache", tokenizer="words")
    lowered = encode_files([path], tmp_path / "cache", tokenizer="words", lowercase=True)
    assert sentences(split) == [["The", "cat,", "the", "CAT."]]
    assert sentences(words) == [["The", "cat", "the", "CAT"]]
    assert sentences(lowered) == [["the", "cat", "the", "cat"]]
    assert len({split.entry, words.entry, lowered.entry}) == 3
    assert not any(e.from_cache for e in (split, words, lowered))
    assert encode_files([path], tmp_path / "cache", tokenizer="words").from_cache
    with pytest.raises(ValueError, match="max_word_length=2 is below min_word_length=3"):
        CorpusConfig(min_word_length=3, max_word_length=2)


def test_an_encode_killed_mid_way_leaves_nothing_for_good(tmp_path):
    """The temporary directory of an encode whose process is gone is removed by the next
    encode of that entry; one of a live process is left alone."""
    path = write(tmp_path / "c.txt", "a b c\n")
    entry = encode_files([path], tmp_path / "cache").entry
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    prefix = f".{entry.name}.{socket.gethostname()}-"
    abandoned = tmp_path / "cache" / f"{prefix}{dead}.x1y2.tmp"
    running = tmp_path / "cache" / f"{prefix}{os.getpid()}.z3.tmp"
    for directory in (abandoned, running):
        write(directory / "ids.int32", b"\0" * 8)
    write(path, "a b c d\n")  # changed: encoded again
    encode_files([path], tmp_path / "cache")
    assert not abandoned.exists() and running.exists()


UNGUARDED_SCRIPT = """
from w2v_jax.corpus_config import CorpusConfig
from w2v_jax.data.corpus import encode

encoded = encode(CorpusConfig(("big.txt",)), 1, "cache")
print("vocabulary", len(encoded.vocab), "tokens", len(encoded.corpus.ids))
"""


@pytest.mark.slow
def test_a_script_without_a_main_guard_encodes_a_large_corpus(tmp_path):
    """Above the inline size the encode starts worker processes, which must not run the
    caller's unguarded script again (they hung there, waiting for each other, for ever)."""
    import subprocess
    import sys

    line = " ".join(f"w{i}" for i in range(200)) + "\n"
    repeats = (encoding._INLINE_BYTES + (1 << 20)) // len(line) + 1
    (tmp_path / "big.txt").write_text(line * repeats)
    (tmp_path / "script.py").write_text(UNGUARDED_SCRIPT)
    done = subprocess.run(
        [sys.executable, "script.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["vocabulary", "201", "tokens", str(200 * repeats)]


def test_a_worker_that_dies_is_an_error_not_a_wait():
    with encoding._EncoderProcesses(1, CorpusConfig(("unused",))) as encoders:
        encoders.processes[0].kill()
        encoders.processes[0].join()
        with pytest.raises(CorpusError, match="encoding worker process exited"):
            encoders.result(0)
