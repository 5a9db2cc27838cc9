"""CBOW (``w2v_jax.objectives.cbow``): its loss and gradients against a numpy reference written
out by hand, in both layouts, with noise words in the rows and shared; its rows drawn on the
host and on the device; and real runs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import fresh_state, random_rows, smoke_config
from w2v_jax import presets
from w2v_jax.config import Config
from w2v_jax.evaluation.evaluate import Embeddings
from w2v_jax.feed import batches
from w2v_jax.objectives import bind, table_loss
from w2v_jax.run import train

VOCAB, EMBED, MAX_CONTEXTS, NUM_NOISE = 20, 6, 4, 3


def cbow_examples(rng, rows=8, shared=False):
    """CBOW rows as the data stage lays them out: contexts, then NUM_NOISE noise words (none
    when they are shared), then 0s; the last row the padding row."""
    noise = 0 if shared else NUM_NOISE
    num_contexts = rng.integers(1, MAX_CONTEXTS + 1, size=rows)
    num_contexts[-1] = 0
    num_live = num_contexts + (num_contexts > 0) * noise
    return random_rows(rng, num_contexts, num_live, MAX_CONTEXTS + noise, VOCAB)


def numpy_cbow(center, context, examples, shared_noise=None, per_slot=False):
    """The batch's CBOW loss and its gradients with respect to both tables, by hand: each row's
    mean context vector h (context table) scored against the center (label 1) and its noise
    words (label 0; shared ones weighted NUM_NOISE / shared) in the center table, the row's
    terms divided by its 1 + NUM_NOISE slots, the batch's loss the mean over its real rows."""
    rows = len(examples.centers)
    real = np.flatnonzero(examples.num_contexts > 0)
    terms, slots = {}, np.zeros(rows)
    for b in real:
        k, live = examples.num_contexts[b], examples.num_live[b]
        words = examples.contexts_negatives[b]
        scored = [(examples.centers[b, 0], 1.0, 1.0)]
        scored += [(word, 0.0, 1.0) for word in words[k:live]]
        if shared_noise is not None:
            group = shared_noise[b * len(shared_noise) // rows]
            scored += [(word, 0.0, NUM_NOISE / len(group)) for word in group]
        terms[b] = (words[:k], scored)
        slots[b] = 1 + (NUM_NOISE if shared_noise is not None else live - k)
    divisor = slots if not per_slot else np.full(rows, slots.sum() / len(real))
    loss = 0.0
    grad_center, grad_context = np.zeros_like(center), np.zeros_like(context)
    for b, (contexts, scored) in terms.items():
        h = context[contexts].mean(axis=0)
        grad_h = np.zeros_like(h)
        for word, label, weight in scored:
            z = h @ center[word]
            scale = weight / divisor[b] / len(real)
            loss += scale * (np.logaddexp(0, z) - label * z)  # BCE of sigmoid(z)
            dz = scale * (1 / (1 + np.exp(-z)) - label)
            grad_center[word] += dz * h
            grad_h += dz * center[word]
        for word in contexts:
            grad_context[word] += grad_h / len(contexts)
    return loss, grad_center, grad_context


@pytest.mark.parametrize("layout", ["padded", "packed"])
@pytest.mark.parametrize("per_slot", [False, True])
@pytest.mark.parametrize("shared", [False, True])
def test_loss_and_gradients_equal_numpy_reference(layout, per_slot, shared):
    rng = np.random.default_rng(7)
    examples = cbow_examples(rng, shared=shared)
    rows = np.arange(len(examples.centers) - 1, dtype=np.int32)
    rows = np.append(rows, len(rows)).astype(np.int32)  # every row, then the padding row again
    picked = jax.tree.map(lambda values: values[rows], examples)
    noise = np.array([[3, 7, 7, 11], [19, 3, 5, 2]], np.int32) if shared else None
    gathered = jax.tree.map(jnp.asarray, examples)
    pairs = (
        batches.gather_padded(gathered, rows)
        if layout == "padded"
        else batches.gather_packed(gathered, rows, 256)
    )
    weighting = "per_slot" if per_slot else "per_center"
    config = smoke_config(
        embed_size=EMBED, objective="cbow", loss_weighting=weighting, **{"noise.count": NUM_NOISE}
    )
    state, _ = fresh_state(config, VOCAB)

    def loss(params):
        noise_ids = None if noise is None else jnp.asarray(noise)
        return table_loss(bind(config, params), pairs, noise_ids)

    (value, metrics), grads = jax.value_and_grad(loss, has_aux=True)(state.params)
    center = np.asarray(state.params["center"], np.float64)
    context = np.asarray(state.params["context"], np.float64)
    expected, grad_center, grad_context = numpy_cbow(center, context, picked, noise, per_slot)
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    assert float(metrics["num_examples"]) == len(rows) - 1
    np.testing.assert_allclose(grads["center"], grad_center, atol=1e-7, rtol=1e-4)
    np.testing.assert_allclose(grads["context"], grad_context, atol=1e-7, rtol=1e-4)


COMPUTING = {
    "intel", "microprocessor", "chips", "memory", "computer", "computers", "semiconductor",
    "semiconductors", "laptop", "mainframes", "disk", "disks", "software", "hardware", "ibm",
    "workstations", "micro", "personal", "pc", "machines", "microprocessors", "digital",
}  # fmt: skip


@pytest.mark.slow
def test_a_ptb_run_learns_and_its_chip_neighbours_make_sense(ptb_dir, tmp_path):
    """CBOW on PTB with the book's settings, every draw anew each epoch: the loss falls, chip's
    nearest words are about computing, and its word vectors are the context table's."""
    config = Config(objective="cbow", num_epochs=3, **presets.ANEW)
    run = train(config, workdir=tmp_path, data_dir=ptb_dir, progress=False, evaluation=None)
    losses = [stats.loss for stats in run.history]
    assert losses[0] < 0.5 and losses[-1] < 0.85 * losses[0], losses
    embeddings = Embeddings.from_checkpoint(tmp_path)
    assert np.array_equal(embeddings.vectors, np.asarray(run.params["context"]))
    assert np.array_equal(run.embeddings().vectors, embeddings.vectors)
    neighbours = [word for word, _ in embeddings.most_similar("chip", 10)]
    assert len(COMPUTING.intersection(neighbours)) >= 3, neighbours
