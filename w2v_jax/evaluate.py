"""Reading trained vectors: cosine nearest neighbours."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


@jax.jit
def cosine_similarities(vectors: jax.Array, query: jax.Array) -> jax.Array:
    """Cosine of ``query`` [d] with every row of ``vectors`` [V, d] -> [V].

    The book's formula: W x / sqrt(|W|^2 |x|^2 + 1e-9), so a zero row gives 0, not NaN.
    """
    dots = vectors @ query
    norms = jnp.sum(vectors * vectors, axis=1) * jnp.sum(query * query)
    return dots / jnp.sqrt(norms + 1e-9)


def nearest_neighbours(vectors: np.ndarray | jax.Array, query_index: int,
                       k: int) -> list[tuple[int, float]]:
    """The ``k`` rows most cosine-similar to row ``query_index``, itself excluded, best first."""
    vectors = jnp.asarray(vectors)
    cosines = np.array(cosine_similarities(vectors, vectors[query_index]))
    cosines[query_index] = -np.inf
    best = np.argsort(-cosines, kind="stable")[:k]
    return [(int(i), float(cosines[i])) for i in best]
