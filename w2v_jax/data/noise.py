"""The noise words: their distribution (counts^0.75) and its two samplers, Walker's alias table
drawn on the host (numpy: the book's numpy stage, the reference) and on the device (JAX: the
rows drawn there and the noise words a batch shares), each with the book's rejection of a draw
equal to a word of its row. Both read the same ``AliasTable``; they are tested equal in
distribution (tests/test_draws.py).

JAX is imported by the device's sampler alone: the numpy stage, which the encoding workers
import, never loads it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from w2v_jax.data import CorpusError

# Redraw rounds before giving up (the host) or letting a clash stand (the device); each round
# redraws only the clashing slots.
_MAX_REDRAWS = 1000


def noise_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """P(noise word = i) proportional to counts[i] ** power over i >= 1; index 0 never drawn."""
    weights = counts.astype(np.float64) ** power
    weights[0] = 0.0
    return weights / weights.sum()


class AliasTable(NamedTuple):
    """Walker's alias table: O(1) exact draws from a discrete distribution."""

    accept: np.ndarray  # float32 (V,)
    alias: np.ndarray  # int32 (V,)

    @classmethod
    def build(cls, probs: np.ndarray) -> AliasTable:
        # Vose's construction; one pass over the vocabulary, not over tokens.
        n = len(probs)
        scaled = probs * n
        accept, alias = np.ones(n), np.arange(n, dtype=np.int32)
        small = [i for i in range(n) if scaled[i] < 1.0]
        large = [i for i in range(n) if scaled[i] >= 1.0]
        while small and large:
            s, g = small.pop(), large.pop()
            accept[s], alias[s] = scaled[s], g
            scaled[g] -= 1.0 - scaled[s]
            (small if scaled[g] < 1.0 else large).append(g)
        # The coin is float32: its 2**-24 steps bias no acceptance by more than 6e-8.
        return cls(accept.astype(np.float32), alias)

    def sample(self, shape: int | tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        column = rng.integers(0, len(self.accept), size=shape, dtype=np.int32)
        rejected = rng.random(shape, dtype=np.float32) >= self.accept[column]
        column[rejected] = self.alias[column[rejected]]
        return column


def draw_noise(
    contexts: np.ndarray, table: AliasTable, num_noise: int, rng: np.random.Generator
) -> np.ndarray:
    """``num_noise`` noise words per word of ``contexts``, none equal to a word of its row.

    contexts: int (R, k), every entry live: a row's context words (skip-gram), or its center
    (CBOW, k = 1). Returns int32 (R, k * num_noise). A draw that hits a word of its row is
    redrawn, which gives each slot the book's distribution (rejection sampling).
    """
    noise = table.sample((len(contexts), contexts.shape[1] * num_noise), rng)
    rows, clash = np.arange(len(contexts)), _hits(noise, contexts)
    for _ in range(_MAX_REDRAWS):
        clashing = clash.any(axis=1)
        rows, clash = rows[clashing], clash[clashing]
        if not rows.size:
            return noise
        block = noise[rows]
        block[clash] = table.sample(int(clash.sum()), rng)
        noise[rows] = block
        clash &= _hits(block, contexts[rows])
    raise CorpusError(
        "cannot draw noise words: some center's context words hold nearly all of the "
        "noise distribution; the vocabulary is too small (lower min_freq or use a "
        "larger corpus)"
    )


def _hits(noise: np.ndarray, contexts: np.ndarray) -> np.ndarray:
    """Which noise slots equal one of their row's context words."""
    hit = noise == contexts[:, :1]
    for column in range(1, contexts.shape[1]):
        hit |= noise == contexts[:, column : column + 1]
    return hit


# --------------------------------------------------------------------------- on the device


def sample_on_device(key, accept, alias, shape: int | tuple[int, ...]):
    """Draws of ``shape`` (int32) from the alias table (``accept``, ``alias``, device arrays):
    a uniform column, kept with probability accept[column], else its alias."""
    import jax
    import jax.numpy as jnp

    column_key, coin_key = jax.random.split(key)
    column = jax.random.randint(column_key, shape, 0, accept.shape[0], jnp.int32)
    coin = jax.random.uniform(coin_key, shape)
    return jnp.where(coin < accept[column], column, alias[column])


def draw_noise_on_device(keys, contexts, live, accept, alias, noise_per_context: int):
    """``noise_per_context`` noise words per slot of ``contexts`` (int32 [batch, slots]: a row's
    contexts, or its center; ``live`` says which slots are), int32 [batch, slots *
    noise_per_context], each row from its own key of ``keys``: a draw equal to one of its row's
    live ``contexts`` is drawn again, with fresh bits each round, until none is (rejection
    sampling, the book's distribution), as the host's ``draw_noise``."""
    import jax
    import jax.numpy as jnp

    width = contexts.shape[1] * noise_per_context
    needed = jnp.arange(width) < (live.sum(axis=1) * noise_per_context)[:, None]

    def sample(round_):
        def one(key):
            return sample_on_device(jax.random.fold_in(key, round_), accept, alias, (width,))

        return jax.vmap(one)(keys)

    def clashing(noise):
        hits = (noise[:, :, None] == contexts[:, None, :]) & live[:, None, :]
        return hits.any(axis=-1) & needed

    def redraw(carry):
        round_, noise, clash = carry
        noise = jnp.where(clash, sample(round_), noise)
        return round_ + 1, noise, clash & clashing(noise)

    first = sample(0)
    _, noise, _ = jax.lax.while_loop(
        lambda carry: (carry[0] < _MAX_REDRAWS) & carry[2].any(),
        redraw,
        (jnp.int32(1), first, clashing(first)),
    )
    return noise
