"""A corpus of your own from files: what is read, and one clear line for each bad input."""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

import pytest

from w2v_jax.corpus import corpus_files, read_corpus
from w2v_jax.data import CorpusError


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_files_directories_globs_and_compressed_files_read_alike(tmp_path):
    text = "the cat sat\n\nOn the Mat\n"
    write(tmp_path / "a.txt", text)
    write(tmp_path / "d" / "b.gz", gzip.compress(text.encode()))
    write(tmp_path / "d" / "c.bz2", bz2.compress(text.encode()))
    write(tmp_path / "d" / "e.xz", lzma.compress(text.encode()))
    write(tmp_path / "d" / ".hidden", "never read\n")
    corpus = read_corpus([tmp_path / "a.txt", tmp_path / "d"])
    assert corpus.text.split("\n") == ["the cat sat", "On the Mat"] * 4
    assert (corpus.lines, corpus.tokens, corpus.split_lines) == (8, 24, 0)
    assert [f.name for f in corpus.files] == ["a.txt", "b.gz", "c.bz2", "e.xz"]
    assert corpus_files([str(tmp_path / "d" / "*.gz")]) == [tmp_path / "d" / "b.gz"]
    assert read_corpus([tmp_path / "a.txt"], lowercase=True).text == "the cat sat\non the mat"


def test_a_long_line_is_split_never_truncated_and_counted(tmp_path):
    words = [f"w{i}" for i in range(25)]
    write(tmp_path / "one_line.txt", " ".join(words))  # text8's shape: no line break at all
    corpus = read_corpus([tmp_path / "one_line.txt"], max_sentence_length=10)
    assert [len(s.split()) for s in corpus.text.split("\n")] == [10, 10, 5]
    assert corpus.text.split() == words
    assert (corpus.lines, corpus.split_lines, corpus.tokens) == (1, 1, 25)
    assert "1 lines longer than the sentence limit were split" in corpus.summary()


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.txt", "no such file or directory: {d}/missing.txt"),
    (lambda d: write(d / "empty.txt", ""), "{d}/empty.txt holds no words"),
    (lambda d: write(d / "blank.txt", "\n  \n"), "{d}/blank.txt holds no words"),
    (lambda d: (d / "nothing").mkdir() or d / "nothing", "the directory {d}/nothing holds no "
                                                          "files"),
    (lambda d: str(d / "*.none"), "no file matches {d}/*.none"),
    (lambda d: write(d / "latin1.txt", "caf\xe9 ok\n".encode("latin-1")),
     "{d}/latin1.txt is not UTF-8 text: byte 3 (0xe9) cannot be decoded"),
    (lambda d: write(d / "cut.gz", gzip.compress(b"a b c\n" * 1000)[:-20]),
     "{d}/cut.gz is damaged or truncated"),
    (lambda d: write(d / "garbled.gz", b"\x1f\x8b\x08\x00" + b"garbage" * 10),
     "{d}/garbled.gz is damaged or truncated"),
    (lambda d: write(d / "cut.xz", lzma.compress(b"a b c\n" * 1000)[:-30]),
     "{d}/cut.xz is damaged or truncated"),
])
def test_bad_input_is_one_line_naming_the_file(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(CorpusError) as raised:
        read_corpus([path])
    text = str(raised.value)
    assert message.format(d=tmp_path) in text and "\n" not in text


def test_bad_bytes_can_be_read_as_replacement_characters(tmp_path):
    write(tmp_path / "latin1.txt", "caf\xe9 ok\n".encode("latin-1"))
    corpus = read_corpus([tmp_path / "latin1.txt"], encoding_errors="replace")
    assert corpus.text == "caf\ufffd ok"
