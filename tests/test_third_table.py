"""An objective with a table of its own (docs/objectives.md's worked example, a bias per word)
trains on every path with no change outside its module: rows drawn on the host and on the
device, a dense and a row-sparse optimiser, checkpoints and ``load_model``; on meshes of four
devices in tests/mesh_runs.py (tests/test_parallel.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import docs_python, prepare_text, topic_config, topic_corpus
from w2v_jax import objectives
from w2v_jax.evaluation.evaluate import load_model
from w2v_jax.run import train

BiasedSkipGram = docs_python("objectives.md", "class BiasedSkipGram")["BiasedSkipGram"]

PATHS = {
    "host-drawn, dense Adam": {"optimizer.name": "adam"},
    "device-drawn, lazy Adam": dict(
        block_tokens=1000, group_blocks=3, **{"optimizer.name": "lazy_adam"}
    ),
    "shared noise, row-wise Adagrad": {
        "optimizer.name": "rowwise_adagrad",
        "optimizer.lr": 0.2,
        "noise.sharing": "per_batch",
        "noise.shared": 8,
        "noise.groups": 2,
    },
}


@pytest.fixture
def biased(monkeypatch):
    monkeypatch.setitem(objectives.REGISTRY, "skipgram", BiasedSkipGram)


@pytest.mark.parametrize("path", list(PATHS))
def test_a_third_table_trains_is_saved_and_comes_back(biased, tmp_path, path):
    config = topic_config(num_epochs=2, **PATHS[path])
    prepared = prepare_text(config, topic_corpus(sentences=1500)[0])
    run = train(config, data=prepared, workdir=tmp_path, evaluation=None, progress=False)
    drawn_on = "device" if "block_tokens" in PATHS[path] else "host"
    assert run.feed["drawn_on"] == drawn_on
    bias = np.asarray(run.params["bias"])
    assert bias.shape == (len(run.vocab), 1) and np.abs(bias).max() > 0, "the bias trains"
    assert run.history[-1].loss < run.history[0].loss
    model, words = load_model(tmp_path)
    assert isinstance(model, BiasedSkipGram) and words == run.vocab.tokens
    np.testing.assert_array_equal(np.asarray(model.bias[...]), bias)
    np.testing.assert_array_equal(np.asarray(model.center[...]), np.asarray(run.params["center"]))
