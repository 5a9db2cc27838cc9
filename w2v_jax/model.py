"""The skip-gram model: two embedding tables and their batched dot products."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class SkipGram(nn.Module):
    """Center vectors v and context vectors u, each a [vocab_size, embed_size] table.

    Initialised with Xavier-uniform, as the book's PyTorch code does.
    """

    vocab_size: int
    embed_size: int

    def setup(self) -> None:
        init = nn.initializers.xavier_uniform()
        self.center_embed = nn.Embed(self.vocab_size, self.embed_size, embedding_init=init)
        self.context_embed = nn.Embed(self.vocab_size, self.embed_size, embedding_init=init)

    def __call__(self, centers: jax.Array, contexts_negatives: jax.Array) -> jax.Array:
        """Logits pred[b, 0, l] = v[centers[b, 0]] . u[contexts_negatives[b, l]].

        Args:
          centers: int [batch, 1].
          contexts_negatives: int [batch, length].
        Returns:
          float32 [batch, 1, length].
        """
        v = lookup(self.center_embed.embedding, centers)  # [batch, 1, embed]
        u = lookup(self.context_embed.embedding, contexts_negatives)  # [batch, length, embed]
        return row_logits(v, u)

    def noise_logits(self, centers: jax.Array, noise: jax.Array) -> jax.Array:
        """Logits of every center against the noise words its group of centers shares.

        Args:
          centers: int [batch, 1], in groups of batch / groups consecutive centers.
          noise: int [groups, num_noise].
        Returns:
          float32 [batch, num_noise].
        """
        v = lookup(self.center_embed.embedding, centers[:, 0])  # [batch, embed]
        u = lookup(self.context_embed.embedding, noise)  # [groups, num_noise, embed]
        return group_logits(v, u)


def row_logits(v: jax.Array, u: jax.Array) -> jax.Array:
    """Dot products of gathered rows: center rows v [batch, 1, embed] with context rows
    u [batch, length, embed] -> [batch, 1, length]. Shared with the row-sparse train step,
    which differentiates with respect to the gathered rows rather than the tables."""
    return jnp.einsum("bie,ble->bil", v, u)


def group_logits(v: jax.Array, u: jax.Array) -> jax.Array:
    """Dot products of center rows v [batch, embed] with the rows u [groups, shared, embed] of
    their group's shared noise words (group g: centers g * batch / groups onwards)
    -> [batch, shared]."""
    groups = u.shape[0]
    grouped = v.reshape(groups, -1, v.shape[-1])
    return jnp.einsum("gbe,gse->gbs", grouped, u).reshape(v.shape[0], u.shape[1])


def lookup(table: jax.Array, ids: jax.Array) -> jax.Array:
    """Rows of ``table``. Ids come from the vocabulary, so they are in range: promising it spares
    XLA the bounds handling of nn.Embed's default take, in the gather and in its gradient."""
    return table.at[ids].get(mode="promise_in_bounds")
