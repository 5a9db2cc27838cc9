"""Checksums of a checkpoint's arrays, so that a step proves itself before its arrays are used.

An array's checksum is two sums, modulo 2**32, of its elements' bit patterns, each weighted by
an odd number drawn from the element's (row, column) position: any change to one element
changes both sums, a change to several goes unnoticed with odds of about 2**-64, and integer
sums do not depend on the order of the additions, so the figure is the same on any device,
mesh or number of processes. A zero element adds nothing, so the zero padding rows a mesh
appends after the vocabulary (``parallel``) leave it unchanged: a checkpoint restored onto
another mesh, with more or fewer of them, checks against the same figures.

The sums run where the arrays are (jitted, on the devices holding a run's state; on the CPU for
arrays read into host memory) and only the figures come back."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_WEIGHTS = ((0x9E3779B1, 0x85EBCA77), (0xC2B2AE3D, 0x27D4EB2F))
"""Multipliers of the row and the column in each sum's weights (odd, far apart in bits)."""


def array_checksums(tree: Any) -> dict[str, list]:
    """Each array leaf of ``tree`` by its path (``leaf_path``): [first sum, second sum, whether
    every element is finite] (integers and booleans count as finite)."""
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    if not flat:
        return {}
    paths, leaves = zip(*flat)
    if isinstance(leaves[0], jax.Array):
        sums, finite = _sums(list(leaves))
        sums, finite = _on_host(sums), _on_host(finite)
    else:  # host arrays: summed on the CPU (not a GPU), a block of rows at a time
        sums, finite = zip(*(_host_sums(np.asarray(leaf)) for leaf in leaves))
    return {
        leaf_path(path): [int(pair[0]), int(pair[1]), bool(ok)]
        for path, pair, ok in zip(paths, sums, finite)
    }


def leaf_path(path: tuple) -> str:
    """A leaf's path as "0/mu/center": the same for optax's named tuples as
    saved and the dicts Orbax restores them as."""
    names = []
    for key in path:
        for attribute in ("name", "key", "idx"):
            if hasattr(key, attribute):
                names.append(str(getattr(key, attribute)))
                break
    return "/".join(names)


def mismatches(saved: dict[str, list] | None, restored: dict[str, list]) -> str | None:
    """What is wrong with restored arrays whose checksums are ``restored``, against those
    saved with them (None: saved before checksums were, checked for finite values only): a sum
    that differs, a non-finite value, or None."""
    for path, (first, second, finite) in restored.items():
        if saved is not None and path not in saved:
            return f"{path} has no saved checksum"
        if saved is not None and [first, second] != saved[path][:2]:
            return f"{path} does not match its checksum (its bytes were damaged)"
        if not finite:
            return f"{path} holds non-finite values"
    return None


@jax.jit
def _sums(leaves: list[jax.Array]) -> tuple[jax.Array, jax.Array]:
    sums = jnp.stack([_weighted_sums(_bits(leaf)) for leaf in leaves])
    finite = jnp.stack([_finite(leaf) for leaf in leaves])
    return sums, finite


_HOST_BLOCK_BYTES = 16 << 20
"""A host array's rows summed at once: a checkpoint read into host memory (a notebook's vectors,
a run's evaluation) is never copied whole to the CPU device for its checksum."""


def _host_sums(leaf: np.ndarray) -> tuple[np.ndarray, bool]:
    """``_sums`` of one host array, a block of rows at a time: the sums modulo 2**32 of the
    blocks add up to the array's (each block's weights drawn from its rows' positions)."""
    cpu = jax.local_devices(backend="cpu")[0]
    if leaf.ndim == 0:
        sums, finite = _sums([jax.device_put(leaf, cpu)])
        return np.asarray(sums)[0], bool(finite[0])
    rows = max(1, _HOST_BLOCK_BYTES // max(leaf[0].nbytes, 1))
    total, finite = np.zeros(2, np.uint32), True
    for start in range(0, leaf.shape[0], rows):
        block = jax.device_put(leaf[start : start + rows], cpu)
        sums, ok = _block_sums(block, np.uint32(start))
        total += np.asarray(sums)  # uint32: wraps modulo 2**32, as the sums do
        finite = finite and bool(ok)
    return total, finite


@jax.jit
def _block_sums(block: jax.Array, first_row: jax.Array) -> tuple[jax.Array, jax.Array]:
    return _weighted_sums(_bits(block), first_row), _finite(block)


def _bits(leaf: jax.Array) -> jax.Array:
    """The elements' bit patterns as uint32, [rows, columns] (a scalar is one row)."""
    leaf = leaf.reshape(leaf.shape[0] if leaf.ndim else 1, -1)
    if leaf.dtype == jnp.bool_:
        return leaf.astype(jnp.uint32)
    unsigned = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint32}[leaf.dtype.itemsize]
    bits = lax.bitcast_convert_type(leaf, unsigned)  # 8 bytes: two words a trailing axis
    return bits.reshape(bits.shape[0], -1).astype(jnp.uint32)


def _weighted_sums(bits: jax.Array, first_row: jax.Array | int = 0) -> jax.Array:
    rows = lax.broadcasted_iota(jnp.uint32, bits.shape, 0) + jnp.uint32(first_row)
    columns = lax.broadcasted_iota(jnp.uint32, bits.shape, 1)
    mixed = (bits, bits ^ (bits >> 16))  # the second sum sees the bits shifted, too
    return jnp.stack(
        [
            jnp.sum(
                value * ((rows * np.uint32(row) + columns * np.uint32(column)) | 1),
                dtype=jnp.uint32,
            )
            for value, (row, column) in zip(mixed, _WEIGHTS)
        ]
    )


def _finite(leaf: jax.Array) -> jax.Array:
    if jnp.issubdtype(leaf.dtype, jnp.inexact):
        return jnp.all(jnp.isfinite(leaf))
    return jnp.array(True)


def _on_host(array: jax.Array) -> np.ndarray:
    """A replicated result, on every process (one process holds only its own devices' copy)."""
    if array.is_fully_addressable:
        return np.asarray(array)
    return np.asarray(array.addressable_data(0))
