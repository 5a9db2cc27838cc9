"""The real-text benchmark's corpus: a dictionary's entries become lines of words as every
system reads them (the download itself is the benchmark's, never a test's)."""

from __future__ import annotations

from benchmarks.real_text import LINE_LIMIT, SYSTEMS, entry_lines

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


def test_the_systems_are_gensims_two_modes_at_5_and_15_epochs_and_ours():
    gensim = {(s["gensim"], s["epochs"]) for s in SYSTEMS.values() if "gensim" in s}
    assert {("corpus_file", 5), ("corpus_file", 15), ("iterable", 5), ("iterable", 15)} <= gensim
    assert any(s.get("one_line") for s in SYSTEMS.values())
    assert any("flags" in s and "fast" in s["flags"] for s in SYSTEMS.values())
