"""The old home of ``Embeddings``, kept for one release: ``w2v_jax.evaluate`` moved to
``w2v_jax.evaluation.evaluate`` when the subpackages were split by role, and notebooks written
against the README of that time import it from here."""

from __future__ import annotations

import warnings

from w2v_jax.evaluation.benchmark_files import *  # noqa: F403
from w2v_jax.evaluation.evaluate import *  # noqa: F403
from w2v_jax.evaluation.evaluate import Embeddings  # noqa: F401

warnings.warn(
    "w2v_jax.evaluate moved: import Embeddings from w2v_jax (or w2v_jax.evaluation.evaluate)",
    DeprecationWarning,
    stacklevel=2,
)
