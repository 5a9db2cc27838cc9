"""The job for your own corpus: a synthetic corpus with planted partners trains to them, and a
bad corpus is one line before anything is written."""

from __future__ import annotations

import gzip

import pytest

from experiments import make_corpus, train
from w2v_jax.evaluation.benchmark_files import BENCHMARK_FILES
from w2v_jax.evaluation.evaluate import Embeddings

GROUPS = 10


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus") / "synthetic.txt.gz"
    make_corpus.main(
        ["--tokens", "300000", "--vocab", "3000", "--groups", str(GROUPS), "--out", str(out)]
    )
    return out


def test_the_synthetic_corpus_is_complete_and_zipf_shaped(synthetic):
    lines = gzip.decompress(synthetic.read_bytes()).decode().splitlines()
    words = [w for line in lines for w in line.split()]
    assert 300_000 <= len(words) < 300_040  # a sentence more at most
    assert not list(synthetic.parent.glob("*.tmp"))
    counts = {w: words.count(w) for w in ("w0", "w9", "w99")}
    assert counts["w0"] > 5 * counts["w9"] > 25 * counts["w99"] / 10  # about 1 / rank
    assert all(f"a{g}" in words and f"b{g}" in words for g in range(GROUPS))


def test_planted_partners_become_nearest_neighbours(synthetic, tmp_path):
    """The job's default for one's own text (the fast preset) finds the planted partners."""
    metrics = train.main(
        [
            "--corpus",
            str(synthetic),
            "--num-epochs",
            "3",
            "--no-progress",
            "--workdir",
            str(tmp_path),
            "--query",
            "a0",
        ]
    )
    assert metrics["blocks"] == 1
    # English benchmarks do not cover w0 .. w2999: none is scored, each says its coverage.
    scored = {name: score["scored"] for name, score in metrics["evaluation"].items()}
    assert scored == dict.fromkeys(BENCHMARK_FILES, False)
    assert metrics["evaluation"]["wordsim353"] == {"coverage": 0.0, "pairs": 0, "scored": False}
    embeddings = Embeddings.from_checkpoint(tmp_path)
    nearest = 0
    for a, b in make_corpus.planted_partners(GROUPS):
        for word, partner in ((a, b), (b, a)):
            top = [w for w, _ in embeddings.most_similar(word, 3)]
            assert partner in top, (word, top)
            nearest += top[0] == partner
    assert nearest >= 0.9 * 2 * GROUPS


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "error: no such file or directory: {d}/corpus.txt"),
        (b"", "error: {d}/corpus.txt holds no words"),
        (
            b"caf\xe9\n",
            "error: {d}/corpus.txt is not UTF-8 text: byte 3 (0xe9) cannot be decoded; "
            "convert the file, or read such bytes as U+FFFD with --encoding-errors "
            "replace",
        ),
        (
            b"\x1f\x8b\x08\x00rest",
            "error: {d}/corpus.txt is not UTF-8 text: byte 1 (0x8b) cannot be decoded; it is "
            "gz-compressed data: name it with .gz (e.g. corpus.txt.gz) and it is read "
            "decompressed",
        ),
        (
            b"a b c\n",
            "error: --min-freq 10 keeps no word: the most frequent word occurs 1 time; lower it "
            "(read from 1 file)",
        ),
    ],
)
def test_a_bad_corpus_is_one_line_and_leaves_no_workdir(tmp_path, content, message):
    path, workdir = tmp_path / "corpus.txt", tmp_path / "run"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SystemExit) as raised:
        train.main(["--corpus", str(path), "--workdir", str(workdir), "--no-progress"])
    assert message.format(d=tmp_path) in str(raised.value)
    assert "\n" not in str(raised.value) and not workdir.exists()


def test_help_says_where_the_workdir_goes(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert shown.startswith("usage: python -m experiments.train ")
    assert "(None: runs/train/<first path's name>/<run name>)" in shown
    assert "--tokenizer {whitespace,words}" in shown
