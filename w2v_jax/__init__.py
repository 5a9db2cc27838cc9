"""word2vec (skip-gram with negative sampling) in JAX, faithful to d2l's "Pretraining word2vec".

The public API, each name imported on first use (so that the numpy data stage, ``w2v_jax.data``,
and its encoding worker processes never load JAX)::

    from w2v_jax import Config, CorpusConfig, preset, prepare, train, Run, Embeddings, load_model
    from w2v_jax import NoiseConfig, OptimizerConfig, ExecutionConfig  # Config's sections

``train(config, corpus, workdir)`` is the one run every entry point calls (``w2v_jax.run``);
``Embeddings`` reads a workdir's vectors and ``load_model`` its trained objective, a Flax NNX
module (``w2v_jax.evaluation.evaluate``).
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    "Config": "w2v_jax.config",
    "NoiseConfig": "w2v_jax.sections",
    "OptimizerConfig": "w2v_jax.sections",
    "ExecutionConfig": "w2v_jax.sections",
    "CorpusConfig": "w2v_jax.corpus_config",
    "preset": "w2v_jax.presets",
    "prepare": "w2v_jax.run",
    "train": "w2v_jax.run",
    "Run": "w2v_jax.run",
    "Evaluation": "w2v_jax.evaluation.report",
    "Embeddings": "w2v_jax.evaluation.evaluate",
    "load_model": "w2v_jax.evaluation.evaluate",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'w2v_jax' has no attribute {name!r}")
    return getattr(importlib.import_module(_API[name]), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
