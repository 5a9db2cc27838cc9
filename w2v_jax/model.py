"""The skip-gram model: the two embedding tables and their row lookups."""

from __future__ import annotations

import flax.linen as nn
import jax


class SkipGram(nn.Module):
    """Center vectors v and context vectors u, each a [vocab_size, embed_size] table.

    Initialised with Xavier-uniform, as the book's PyTorch code does. The loss and the train
    step read rows of the tables with ``lookup`` (``w2v_jax.step``).
    """

    vocab_size: int
    embed_size: int

    def setup(self) -> None:
        init = nn.initializers.xavier_uniform()
        self.center_embed = nn.Embed(self.vocab_size, self.embed_size, embedding_init=init)
        self.context_embed = nn.Embed(self.vocab_size, self.embed_size, embedding_init=init)

    def __call__(self, ids: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The center and the context rows of ``ids`` (int [...]) -> two [..., embed]."""
        return (lookup(self.center_embed.embedding, ids), lookup(self.context_embed.embedding, ids))


def lookup(table: jax.Array, ids: jax.Array) -> jax.Array:
    """Rows of ``table``. Ids come from the vocabulary, so they are in range: promising it spares
    XLA the bounds handling of nn.Embed's default take, in the gather and in its gradient."""
    return table.at[ids].get(mode="promise_in_bounds")
