"""Exploring a run's vectors: ``Embeddings`` from the run object equal to those read from its
checkpoint, the projector's files and the word2vec formats read back (by gensim too), and the
command-line front door that prints neighbours and scores and exports without training."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from flax import nnx

from experiments import vectors
from tests.helpers import (
    REPO,
    prepare_text,
    random_batch,
    to_pairs,
    topic_config,
    topic_corpus,
)
from w2v_jax.evaluation.evaluate import Embeddings, load_model
from w2v_jax.objectives import TABLES, SkipGram, table_loss
from w2v_jax.run import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    config = topic_config()
    prepared = prepare_text(config, topic_corpus(sentences=1500)[0])
    return train(config, data=prepared, workdir=workdir, progress=False), workdir


@pytest.mark.parametrize("table", sorted(TABLES))
def test_the_runs_embeddings_are_its_checkpoints(trained, table):
    run, workdir = trained
    ours = run.embeddings(table)
    saved = Embeddings.from_checkpoint(workdir, table=table)
    assert ours.vocab == saved.vocab == run.vocab.tokens
    np.testing.assert_array_equal(ours.vectors, saved.vectors)
    with pytest.raises(ValueError, match="table='middle'"):
        run.embeddings("middle")


def test_load_model_gives_the_trained_objective_a_flax_module_owning_its_tables(trained):
    run, workdir = trained
    model, words = load_model(workdir)
    assert isinstance(model, SkipGram) and isinstance(model, nnx.Module)
    assert words == run.vocab.tokens
    state = nnx.state(model, nnx.Param)
    assert sorted(state.keys()) == ["center", "context"]
    np.testing.assert_array_equal(
        np.asarray(model.center[...]), Embeddings.from_checkpoint(workdir).vectors
    )
    # the module scores a batch as the step does: the rows of its own tables
    pairs = to_pairs(random_batch(np.random.default_rng(0), len(words)))
    loss, metrics = table_loss(model, pairs)
    assert np.isfinite(loss) and metrics["num_examples"] > 0


def test_the_projector_files_read_back_equal(trained, tmp_path):
    embeddings = trained[0].embeddings()
    words = embeddings.without_unk()
    assert len(words) == len(embeddings) - 1 and "<unk>" not in words
    vectors_tsv, metadata_tsv = embeddings.save_projector(tmp_path / "projector")
    rows = vectors_tsv.read_text().splitlines()
    assert len(rows) == len(words) and len(rows[0].split("\t")) == embeddings.vectors.shape[1]
    assert metadata_tsv.read_text().splitlines() == list(words.vocab)
    back = Embeddings.load_projector(tmp_path / "projector")
    assert back.vocab == words.vocab
    np.testing.assert_array_equal(back.vectors, words.vectors)  # shortest round-trip text
    embeddings.save_projector(tmp_path / "all", keep_unk=True)
    assert Embeddings.load_projector(tmp_path / "all").vocab == embeddings.vocab


def test_the_front_door_prints_and_exports_without_training(trained, tmp_path, capsys):
    _, workdir = trained
    out = vectors.main(
        [
            str(workdir),
            "--query",
            "a0",
            "--neighbours",
            "3",
            "--word2vec",
            str(tmp_path / "v.bin"),
            "--binary",
            "--projector",
            str(tmp_path / "projector"),
        ]
    )
    printed = capsys.readouterr().out
    assert "neighbours of a0:" in printed and printed.count("cosine sim=") == 3
    assert out["neighbours"]["a0"][0][0] == "b0"  # the planted partner
    assert "wordsim353: not scored, 0 pairs known (0%), below the 10% needed" in printed
    saved = Embeddings.from_checkpoint(workdir).without_unk()
    gensim = pytest.importorskip("gensim.models")
    read = gensim.KeyedVectors.load_word2vec_format(str(tmp_path / "v.bin"), binary=True)
    assert tuple(read.index_to_key) == saved.vocab
    np.testing.assert_array_equal(read.vectors, saved.vectors)
    np.testing.assert_array_equal(
        Embeddings.load_projector(tmp_path / "projector").vectors, saved.vectors
    )


def test_the_front_door_says_in_one_line_when_there_is_no_run(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "experiments.vectors", str(tmp_path / "nothing")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: no checkpoint directory at {tmp_path / 'nothing'}"
