"""The panel's corpora: each package's text becomes lines of words as every system reads them
(the downloads themselves are the benchmark's, never a test's), and the panel's systems."""

from __future__ import annotations

import gzip
import struct
import zlib

import pytest

from benchmarks import panel, panel_corpora
from benchmarks.panel_corpora import LINE_LIMIT, entry_lines

SAMPLE = """00-database-short
   The Collaborative International Dictionary of English v.0.48

Abdication \\Ab`di*ca"tion\\, n. [L. abdicatio: cf. F.
   abdication.]
   The act of abdicating; the renunciation of a high office. A na[i^]ve
   [ae]on, [Obs.] [R.]
   [1913 Webster]

Ab \\Ab\\, n.
   [1913 Webster]
"""


def test_an_entry_is_a_line_of_words_without_pronunciation_or_labels():
    """The header entry and the two-word one are left out; the pronunciation and the labels go;
    the accent codes become letters; the etymology stays; words as simple_preprocess."""
    assert entry_lines(SAMPLE) == [
        "abdication abdicatio cf abdication the act of abdicating the renunciation of high "
        "office naive aeon"
    ]


def test_no_line_is_longer_than_gensims_corpus_file_limit():
    long_entry = "Word \\Word\\\n" + " word" * (2 * LINE_LIMIT + 5) + "\n"
    lines = entry_lines(long_entry)
    assert [len(line.split()) for line in lines] == [LINE_LIMIT, LINE_LIMIT, 6]


def test_a_sword_module_is_read_block_by_block_a_paragraph_a_line(tmp_path):
    """zlib blocks found by their (offset, size, size uncompressed) entries; OSIS paragraph
    marks end lines, other markup goes."""
    module = tmp_path / "usr/share/sword/modules/comments/zcom"
    blocks = [
        '<chapter n="1"/><div type="x-p"/>Blessed is the <hi type="italic">man</hi> that '
        'walketh not<div type="x-p"/>in the counsel of the ungodly',
        "<title>THE SECOND PSALM</title>Why do the heathen rage?",
    ]
    for name in ("tdavid", "mhcc"):
        (module / name).mkdir(parents=True)
        data, index = b"", b""
        for block in blocks:
            packed = zlib.compress(block.encode())
            index += struct.pack("<III", len(data), len(packed), len(block))
            data += packed
        (module / name / "ot.bzz").write_bytes(data)
        (module / name / "ot.bzs").write_bytes(index)
    lines = panel_corpora.commentaries(tmp_path)
    assert lines == 2 * [
        "blessed is the man that walketh not",
        "in the counsel of the ungodly",
        "the second psalm",
        "why do the heathen rage",
    ]


def test_the_kernels_paragraphs_leave_out_directives_and_underlines(tmp_path):
    docs = tmp_path / "usr/share/doc/linux-doc-6.1/Documentation/core"
    docs.mkdir(parents=True)
    text = "Workqueues\n==========\n\n.. kernel-doc:: x.h\n\nA work item is run\nby a worker.\n"
    (docs / "wq.rst.gz").write_bytes(gzip.compress(text.encode()))
    assert panel_corpora.kernel(tmp_path) == ["work item is run by worker"]


def test_the_panel_holds_four_kinds_of_real_text_and_ptb_and_gensims_two_epoch_counts():
    assert len(panel_corpora.BUILDERS) >= 4 and "ptb" in panel_corpora.CORPORA
    packages = [set(packages) for packages, _ in panel_corpora.BUILDERS.values()]
    assert all(not a & b for i, a in enumerate(packages) for b in packages[i + 1 :])
    gensim = {spec["gensim"] for spec in panel.SYSTEMS.values() if "gensim" in spec}
    assert gensim == {5, 15}
    assert panel.SYSTEMS[panel.DEFAULT] == {"flags": []}, "the default is the job's own"
    cbow, peer = panel.SYSTEMS[panel.CBOW], panel.SYSTEMS[panel.CBOW_PEER]
    assert cbow == {"flags": ["--objective", "cbow"], "peer": panel.CBOW_PEER}
    assert peer["sg"] == 0 and peer["gensim"] == 5, "gensim's CBOW, 5 epochs"


def test_a_lever_is_judged_against_the_default_seed_by_seed():
    """The differences are taken on the seeds both ran, each seed against itself: a lever that
    adds 0.01 to every seed shows +0.010 ± 0.000 however far the seeds are apart."""
    lever = "rate decaying linearly (word2vec's)"

    def run(system, seed, simlex):
        scores = {"wordsim353_spearman": 0.2, "simlex999_spearman": simlex}
        return {"corpus": "kernel", "system": system, "seed": seed, **scores}

    runs = [run(panel.DEFAULT, seed, value) for seed, value in enumerate([0.05, 0.15, 0.10])]
    runs += [run(lever, seed, value + 0.01) for seed, value in enumerate([0.05, 0.15])]
    entry = panel.paired(runs, "kernel", lever)
    assert entry["seeds"] == [0, 1]
    assert entry["simlex999_spearman"]["mean"] == pytest.approx(0.01)
    assert entry["simlex999_spearman"]["sd"] == pytest.approx(0.0, abs=1e-12)
    assert entry["wordsim353_spearman"]["mean"] == pytest.approx(0.0)
    assert entry["analogy_accuracy"] is None  # not scored by either
    assert panel.paired(runs, "manuals", lever) is None
    table = "\n".join(panel.levers_table(runs, "kernel", {panel.DEFAULT: {}, lever: {}}))
    assert (
        f"| {lever} | {panel.DEFAULT} | 2 | +0.000 ± 0.000 | +0.010 ± 0.000 | not scored |" in table
    )


def test_pythons_pages_are_read_a_paragraph_a_line_without_their_indexes(tmp_path):
    html = tmp_path / "usr/share/doc/python3.11/html/library"
    html.mkdir(parents=True)
    page = (
        "<html><head><title>os</title><script>var x;</script></head><body>"
        '<div class="related"><p>previous topic next topic this page</p></div>'
        '<div class="body" role="main"><h1>The os module</h1><p>This module provides a portable '
        "way of using operating system functionality &amp; more.</p><pre>import os</pre></div>"
        '<div class="sphinxsidebar"><p>report a bug show source</p></div></body></html>'
    )
    (html / "os.html").write_text(page)
    (html.parent / "genindex-A.html").write_text("<p>every word of the index here</p>")
    assert panel_corpora.python_docs(tmp_path) == [
        "the os module",
        "this module provides portable way of using operating system functionality more",
    ]


def test_the_probe_words_are_the_corpus_most_frequent_content_words(tmp_path, monkeypatch):
    """Function words, numbers and words of two letters give way to the next word."""
    monkeypatch.setattr(panel, "PROBES", 3)
    words = ["the", "kernel", "42", "of", "ab", "driver", "which", "memory", "buffer"]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(" ".join([word] * (30 - i)) for i, word in enumerate(words)))
    assert panel.probe_words(corpus) == ["kernel", "driver", "memory"]


def test_two_seeds_agree_by_the_probe_neighbours_they_share():
    """Three seeds, two probes of 3 neighbours: the pairs share 3+1, 2+0 and 2+1 of 6."""
    runs = [
        {"neighbours": {"a": ["x", "y", "z"], "b": ["p", "q", "r"], "other": ["y"]}},
        {"neighbours": {"a": ["z", "x", "y"], "b": ["q", "s", "t"]}},
        {"neighbours": {"a": ["x", "y", "k"], "b": ["p", "u", "v"]}},
    ]
    entry = panel.agreement(runs, ["a", "b"])
    assert entry["of"] == 2 * panel.PROBE_NEIGHBOURS and entry["pairs"] == 3
    assert (entry["mean"], entry["min"], entry["max"]) == (pytest.approx(3.0), 2, 4)
    assert panel.agreement(runs[:1], ["a", "b"]) is None, "one seed agrees with nothing"
    assert panel.agreement(runs, ["a", "missing"]) is None, "runs without the probes"


def test_the_spread_is_judged_against_gensims_per_measure():
    """An SD within 1.5x gensim's, or under 0.01, is reached; agreement at least gensim's."""

    def entry(sds, agree):
        scores = {name: {"mean": 0.1, "sd": sd} for name, sd in zip(panel.MEASURED, sds)}
        return {**scores, "seeds": 3, "agreement": {"mean": agree, "of": 80}}

    corpora = {
        "kernel": {
            panel.PEER: entry([0.02, 0.002, 0.004], 40.0),
            panel.DEFAULT: entry([0.031, 0.009, 0.012], 40.0),
        }
    }
    table = "\n".join(panel.steadiness(corpora))
    assert (
        "| kernel | 0.031 / 0.020 (not reached) | 0.009 / 0.002 (reached) "
        "| 0.012 / 0.004 (not reached) | 40.0 of 80 / 40.0 (reached) |" in table
    )


def test_each_fortune_is_a_line_without_the_index_files_and_drawings(tmp_path):
    games = tmp_path / "usr/share/games/fortunes"
    games.mkdir(parents=True)
    (games / "wisdom").write_text(
        "A fool and his money\nare soon parted.\n%\nNo.\n%\nKnow thyself, said he.\n"
    )
    (games / "wisdom.dat").write_bytes(b"\x00\x02index")
    (games / "wisdom.u8").symlink_to("wisdom")
    (games / "ascii-art").write_text("  /\\\\_/\\\\  a cat drawn here\n%\n")
    assert panel_corpora.quotations(tmp_path) == [
        "fool and his money are soon parted",
        "know thyself said he",
    ]
