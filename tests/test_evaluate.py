"""The evaluator against gensim on the same vectors, the word2vec formats, and the notebook."""

import numpy as np
import pytest

from w2v_jax.evaluation.benchmark_files import BENCHMARK_FILES, benchmark_path
from w2v_jax.evaluation.evaluate import COVERAGE_FLOOR, Embeddings
from w2v_jax.evaluation.explore import probe_words
from w2v_jax.evaluation.measures import PAIR_SETS

gensim_models = pytest.importorskip("gensim.models")
pytestmark = pytest.mark.slow  # all of it reads the checkpoint of a real PTB run


@pytest.fixture(scope="module")
def trained(ptb_run):
    workdir, _ = ptb_run
    return Embeddings.from_checkpoint(workdir)


@pytest.fixture(scope="module")
def as_gensim(trained, tmp_path_factory):
    path = tmp_path_factory.mktemp("w2v") / "vectors.txt"
    trained.save_word2vec_format(path)
    return gensim_models.KeyedVectors.load_word2vec_format(path)


def test_word2vec_round_trips_are_exact_without_the_untrained_unk_row(trained, tmp_path):
    """PTB's vocabulary is <unk> and 6,718 words: the file holds the words, as gensim's would,
    or all 6,719 rows with keep_unk."""
    words = trained.without_unk()
    assert trained.vocab[0] == "<unk>" and words.vocab == trained.vocab[1:]
    np.testing.assert_array_equal(words.vectors, trained.vectors[1:])
    for binary in (False, True):
        path = tmp_path / f"vectors.{'bin' if binary else 'txt'}"
        trained.save_word2vec_format(path, binary=binary)
        loaded = Embeddings.load_word2vec_format(path, binary=binary)
        assert loaded.vocab == words.vocab
        assert np.array_equal(loaded.vectors, words.vectors)
        theirs = gensim_models.KeyedVectors.load_word2vec_format(path, binary=binary)
        assert list(theirs.index_to_key) == list(words.vocab)
        assert np.array_equal(theirs.vectors, words.vectors)
    assert (tmp_path / "vectors.txt").read_text().split("\n", 1)[0] == "6718 100"
    trained.save_word2vec_format(tmp_path / "all.txt", keep_unk=True)
    kept = Embeddings.load_word2vec_format(tmp_path / "all.txt")
    assert kept.vocab == trained.vocab and np.array_equal(kept.vectors, trained.vectors)
    assert words.without_unk() is words, "vectors without <unk> are kept as they are"


def test_gensim_reads_what_we_write_and_we_read_what_gensim_writes(trained, as_gensim, tmp_path):
    as_gensim.save_word2vec_format(tmp_path / "theirs.bin", binary=True)
    ours = Embeddings.load_word2vec_format(tmp_path / "theirs.bin", binary=True)
    words = trained.without_unk()
    assert np.array_equal(ours.vectors, words.vectors) and ours.vocab == words.vocab


@pytest.mark.parametrize("word", ["chip", "intel", "stock", "president", "japan"])
def test_most_similar_matches_gensim(trained, as_gensim, word):
    ours = trained.most_similar(word, 10)
    theirs = as_gensim.most_similar(word, topn=10)
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    np.testing.assert_allclose([c for _, c in ours], [c for _, c in theirs], atol=1e-6)
    assert word not in [w for w, _ in ours]
    assert abs(trained.similarity(word, ours[0][0]) - ours[0][1]) < 1e-6


@pytest.mark.parametrize("name", ["wordsim353", "simlex999"])
def test_word_pairs_match_gensim(trained, as_gensim, name):
    ours = trained.evaluate_word_pairs(benchmark_path(name))
    pearson, spearman, oov_percent = as_gensim.evaluate_word_pairs(benchmark_path(name))
    assert abs(ours["spearman"] - spearman.statistic) < 1e-6
    assert abs(ours["pearson"] - pearson.statistic) < 1e-6
    assert abs(ours["coverage"] - (1 - oov_percent / 100)) < 1e-12


def test_analogies_match_gensim(trained, as_gensim):
    ours = trained.evaluate_analogies(benchmark_path("google_analogies"))
    accuracy, sections = as_gensim.evaluate_word_analogies(benchmark_path("google_analogies"))
    assert abs(ours["accuracy"] - accuracy) < 1e-6
    for section in sections[:-1]:  # the last is gensim's total
        answered = len(section["correct"]) + len(section["incorrect"])
        if answered:
            assert (
                abs(ours["sections"][section["section"]] - len(section["correct"]) / answered)
                < 1e-6
            )
    assert 0 < ours["coverage"] < 1


@pytest.mark.parametrize("name", [*PAIR_SETS])
def test_hyperwords_word_pairs_match_gensim(trained, as_gensim, name):
    """Fields split at any whitespace (MEN's are spaces): gensim's own delimiter for each."""
    ours = trained.evaluate_benchmarks(names=(name,))
    assert list(ours) == [name]
    delimiter = " " if name == "men" else "\t"
    pearson, spearman, oov_percent = as_gensim.evaluate_word_pairs(
        benchmark_path(name), delimiter=delimiter
    )
    score = ours[name]
    assert abs(score["coverage"] - (1 - oov_percent / 100)) < 1e-12
    if score["scored"]:
        assert abs(score["spearman"] - spearman.statistic) < 1e-6
        assert abs(score["pearson"] - pearson.statistic) < 1e-6
    else:
        assert score["coverage"] < COVERAGE_FLOOR


def test_msr_analogies_match_gensim_reading_them_as_one_section(trained, as_gensim, tmp_path):
    """MSR's file has no ': section' lines: one section, as gensim reads it with one header."""
    ours = trained.evaluate_benchmarks(names=("msr_analogies",))["msr_analogies"]
    headed = tmp_path / "msr.txt"
    headed.write_text(": msr_analogies\n" + benchmark_path("msr_analogies").read_text())
    accuracy, _ = as_gensim.evaluate_word_analogies(headed)
    assert ours["scored"] and abs(ours["accuracy"] - accuracy) < 1e-6
    assert list(ours["sections"]) == ["msr_analogies"] and 0.1 < ours["coverage"] < 1


def test_every_shipped_benchmark_is_scored_in_order(trained):
    assert list(trained.evaluate_benchmarks()) == list(BENCHMARK_FILES)


def test_analogy_excludes_query_words_and_ranks_by_3cosadd(trained):
    answers = trained.analogy("japan", "japanese", "france", k=5)
    assert {w for w, _ in answers}.isdisjoint({"japan", "japanese", "france"})
    unit = trained.vectors / np.linalg.norm(trained.vectors, axis=1, keepdims=True)
    target = (
        unit[trained.index("japanese")]
        - unit[trained.index("japan")]
        + unit[trained.index("france")]
    )
    best = answers[0][0]
    np.testing.assert_allclose(answers[0][1], unit[trained.index(best)] @ target, rtol=1e-5)


def test_unknown_word_is_a_key_error_naming_it(trained):
    with pytest.raises(KeyError, match="xyzzy"):
        trained.most_similar("xyzzy")
    with pytest.raises(KeyError, match="plugh"):
        trained.analogy("japan", "plugh", "france")


def test_context_and_sum_tables(ptb_run, trained):
    workdir, _ = ptb_run
    context = Embeddings.from_checkpoint(workdir, table="context")
    both = Embeddings.from_checkpoint(workdir / "checkpoints", table="sum")
    np.testing.assert_allclose(both.vectors, trained.vectors + context.vectors, rtol=1e-6)
    with pytest.raises(ValueError, match="table='middle'"):
        Embeddings.from_checkpoint(workdir, table="middle")


def test_a_benchmark_covered_too_little_is_not_scored():
    """Below the coverage floor a benchmark holds its coverage and count, and no score; at
    or above it, the scores of evaluate_word_pairs / evaluate_analogies."""
    lines = benchmark_path("wordsim353").read_text().splitlines()
    words = sorted({w.lower() for line in lines[1:10] for w in line.split("\t")[:2]})
    vectors = np.random.default_rng(0).normal(size=(len(words), 8))
    few = Embeddings(tuple(words), vectors)
    scores = few.evaluate_benchmarks()
    pairs = few._known_pairs(benchmark_path("wordsim353"), "\t")[0]
    assert scores["wordsim353"] == {
        "coverage": len(pairs) / 353,
        "pairs": len(pairs),
        "scored": False,
    }
    assert 0 < scores["wordsim353"]["coverage"] < COVERAGE_FLOOR
    assert scores["google_analogies"] == {"coverage": 0.0, "questions": 0, "scored": False}
    anyway = few.evaluate_benchmarks(floor=0.0)["wordsim353"]
    assert anyway == {**few.evaluate_word_pairs(), "scored": True}


def test_probe_words_are_frequent_content_words():
    vocab = ("<unk>", "the", "of", "N", "license", ",", "2.25", "You", "software", "it's", "work")
    assert probe_words(vocab) == ["license", "software", "work"]
    assert probe_words(vocab, 1) == ["license"] and probe_words(("the", "a")) == []
    assert probe_words(("<unk>", "w0", "of", "w1", "12", "w2", "w3")) == ["w0", "w1", "w2"]
    assert probe_words(vocab, 5) == ["license", "software", "work", "N", "it's"]
    # what a tokenizer that splits on apostrophes leaves of don't and didn't
    assert probe_words(("<unk>", "one", "don", "like", "didn", "man")) == ["one", "like", "man"]


def test_a_word_the_vocabulary_lacks_is_said_with_its_lowercase_form():
    from w2v_jax.evaluation.report import absent

    vectors = np.eye(3, dtype=np.float32)
    lowercased = Embeddings(("<unk>", "datei", "der"), vectors)
    assert absent(lowercased, "Datei") == (
        "Datei: not in the vocabulary, datei is (this run's words are lowercased)"
    )
    assert absent(lowercased, "Haus") == "Haus: not in the vocabulary"
    assert absent(lowercased, "haus") == "haus: not in the vocabulary"
    cased = Embeddings(("<unk>", "datei", "Der"), vectors)
    assert absent(cased, "Datei") == "Datei: not in the vocabulary, datei is"


def test_the_analogies_are_scored_in_bounded_memory(trained, monkeypatch):
    """Scored a few questions at a time (the scores of every word for each), the same result
    as in blocks of thousands: a run's peak memory is its training's, not its evaluation's."""
    from w2v_jax.evaluation import evaluate

    whole = trained.evaluate_analogies()
    monkeypatch.setattr(evaluate, "_SCORES_BYTES", 3 * 4 * len(trained))  # 3 questions a time
    assert trained.evaluate_analogies() == whole
    assert whole["questions"] > 100
