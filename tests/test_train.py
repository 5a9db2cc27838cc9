"""Loss, gradients, the compiled epoch loop and a real (small) training run."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import (
    assert_finds_partners,
    fresh_state,
    nearest_neighbours,
    prepare_text,
    random_batch,
    smoke_config,
    to_pairs,
    topic_config,
    topic_corpus,
)
from w2v_jax import data, objectives
from w2v_jax.feed import shards
from w2v_jax.objectives import bind, table_loss
from w2v_jax.objectives.common import masked_sigmoid_bce
from w2v_jax.run import train
from w2v_jax.training import loop, step
from w2v_jax.training.history import History

BOOK_PRED = jnp.full((2, 4), 0.5)
BOOK_LABELS = jnp.array([[1.0, 0.0, 1.0, 0.0]] * 2)
BOOK_MASK = jnp.array([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]])


def test_book_loss_example():
    raw = masked_sigmoid_bce(BOOK_PRED, BOOK_LABELS, BOOK_MASK, normalize=False)
    np.testing.assert_allclose(raw, [0.724077, 0.3620385], rtol=1e-6)
    normalised = masked_sigmoid_bce(BOOK_PRED, BOOK_LABELS, BOOK_MASK)
    np.testing.assert_allclose(normalised, [0.724077, 0.724077], rtol=1e-6)


def test_fully_masked_row_adds_no_loss_and_no_gradient():
    mask = BOOK_MASK.at[1].set(0.0)

    def total(pred):
        return masked_sigmoid_bce(pred, BOOK_LABELS, mask).sum()

    value, grad = jax.value_and_grad(total)(jnp.array([[0.5] * 4, [30.0, -30.0, 7.0, 1e4]]))
    np.testing.assert_allclose(value, 0.724077, rtol=1e-6)
    assert np.all(np.isfinite(grad)) and np.all(grad[1] == 0.0)


def per_row_divisor(slots, per_slot):
    """Each row's divisor before the mean over rows: its own slots (the book's), or the
    batch's mean slots per row (every slot weighed the same: the mean over all slots)."""
    if per_slot:
        slots = np.full_like(slots, slots.sum() / (slots > 0).sum())
    return np.where(slots > 0, slots, 1)


def numpy_gradients(v, u, batch, per_slot=False):
    """The batch loss's gradient with respect to both tables, written out by hand."""
    c, cn = batch["centers"][:, 0], batch["contexts_negatives"]
    mask, labels = batch["mask"].astype(float), batch["labels"].astype(float)
    pred = np.einsum("be,ble->bl", v[c], u[cn])
    live = mask.sum(1)
    num_rows = (live > 0).sum()
    dpred = (1 / (1 + np.exp(-pred)) - labels) * mask / per_row_divisor(live, per_slot)[:, None]
    dpred /= num_rows
    grad_v, grad_u = np.zeros_like(v), np.zeros_like(u)
    np.add.at(grad_v, c, np.einsum("bl,ble->be", dpred, u[cn]))
    np.add.at(grad_u, cn, dpred[:, :, None] * v[c][:, None, :])
    return grad_v, grad_u


@pytest.mark.parametrize("per_slot", [False, True])
def test_gradient_equals_numpy_reference(per_slot):
    config = smoke_config(embed_size=6, max_window=1, **{"noise.count": 5})
    state, _ = fresh_state(config, 20)
    batch = random_batch(np.random.default_rng(0), 20)
    config = config.replace(loss_weighting="per_slot" if per_slot else "per_center")
    loss = lambda p: table_loss(bind(config, p), to_pairs(batch))[0]  # noqa: E731
    grads = jax.grad(loss)(state.params)
    v = np.asarray(state.params["center"], np.float64)
    u = np.asarray(state.params["context"], np.float64)
    grad_v, grad_u = numpy_gradients(v, u, batch, per_slot)
    np.testing.assert_allclose(grads["center"], grad_v, atol=1e-7, rtol=1e-4)
    np.testing.assert_allclose(grads["context"], grad_u, atol=1e-7, rtol=1e-4)


def test_one_step_changes_both_tables():
    config = smoke_config(embed_size=6, max_window=1)
    state, optimizer = fresh_state(config, 20)
    before = jax.tree.map(np.array, state.params)
    batch = random_batch(np.random.default_rng(1), 20)
    new_state, metrics = jax.jit(step.make_train_step(config, optimizer))(state, to_pairs(batch))
    for name in ("center", "context"):
        changed = new_state.params[name] != before[name]
        assert np.any(changed), name
    assert int(new_state.step) == 1 and metrics["num_examples"] == 7


@pytest.fixture(scope="module")
def topic_data():
    text, partners = topic_corpus()
    config = topic_config(
        num_epochs=4, **{"execution.steps_per_dispatch": 16, "optimizer.lr": 0.02}
    )
    return config, prepare_text(config, text), partners


def test_compiles_once_over_epochs(topic_data, monkeypatch):
    """One trace of the step for every dispatch of two epochs, and so one binding of the
    objective's module to the state (``nnx.merge``): no graph is walked per dispatch."""
    config, prepared, _ = topic_data
    bindings = []
    monkeypatch.setattr(objectives, "bind", lambda *args: bindings.append(1) or bind(*args))
    program = loop.Program(config, prepared.vocab, total_steps=0)
    program.step_fn = chex.assert_max_traces(program.step_fn, n=1)
    state = program.init_state()
    examples = shards.to_device(prepared.examples)
    order = data.examples.batch_order(len(prepared.examples), config.batch_size, None)
    spd = config.execution.steps_per_dispatch
    assert len(order) % spd != 0, "the last dispatch is a short one"
    rows = 0
    for _ in (1, 2):
        for first in range(0, len(order), spd):
            state, dispatch = program(state, examples, order[first : first + spd])
            rows += dispatch.num_examples
            assert np.isfinite(dispatch.mean_loss)
    assert int(state.step) == 2 * len(order) and rows == 2 * len(prepared.examples)
    assert len(bindings) == 1 and len(order) // spd > 1


def test_training_finds_planted_partners(topic_data):
    config, prepared, partners = topic_data
    run = train(config, data=prepared, evaluation=None, progress=False)
    losses = [stats.loss for stats in run.history]
    assert losses[-1] < 0.8 * losses[0] and all(np.diff(losses) < 0)
    vocab, vectors = run.vocab, run.params["center"]
    for a, b in partners:
        assert vocab.to_token(nearest_neighbours(vectors, vocab[a], 1)[0][0]) == b
        assert vocab.to_token(nearest_neighbours(vectors, vocab[b], 1)[0][0]) == a
    # Each partner's own topic fillers score above the other topics' fillers.
    contexts = run.params["context"]
    scores = contexts @ vectors[vocab["a0"]]
    own = [scores[vocab[f"f0x{j}"]] for j in range(5)]
    other = [scores[vocab[f"f1x{j}"]] for j in range(5)]
    assert min(own) > max(other)


def test_non_finite_loss_names_epoch_and_step(topic_data):
    config, prepared, _ = topic_data
    program = loop.Program(config, prepared.vocab, total_steps=0)
    state = program.init_state()
    params = jax.tree.map(lambda x: x.at[:].set(jnp.nan), state.params)
    state = state._replace(params=params)
    order = data.examples.batch_order(len(prepared.examples), config.batch_size, None)
    _, dispatch = program(state, shards.to_device(prepared.examples), order[:2])
    with pytest.raises(FloatingPointError, match="in epoch 3 at step 1"):
        History.empty(1).add(dispatch, 2)  # epochs count from 0, messages from 1


# ----------------------------------------------------------------------------- shared noise words


def numpy_shared_noise(v, u, batch, noise, num_noise, per_slot=False):
    """Loss and table gradients of noise_sharing="per_batch" with noise [groups, shared],
    written out by hand."""
    c, ctx = batch["centers"][:, 0], batch["contexts_negatives"]
    noise = noise[np.arange(len(c)) * len(noise) // len(c)]  # each center's group's words
    mask = batch["mask"].astype(float)
    pos = np.einsum("be,ble->bl", v[c], u[ctx])
    neg = np.einsum("be,bse->bs", v[c], u[noise])
    n = mask.sum(1)
    weight = n * num_noise / noise.shape[1]
    live = per_row_divisor(n * (1 + num_noise), per_slot)
    rows = (n > 0).sum()
    per_example = (np.logaddexp(0, -pos) * mask).sum(1) + weight * np.logaddexp(0, neg).sum(1)
    loss = (per_example / live).sum() / rows
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    dpos = (sigmoid(pos) - 1) * mask / live[:, None] / rows
    dneg = sigmoid(neg) * (weight / live)[:, None] / rows
    grad_v, grad_u = np.zeros_like(v), np.zeros_like(u)
    np.add.at(
        grad_v, c, np.einsum("bl,ble->be", dpos, u[ctx]) + np.einsum("bs,bse->be", dneg, u[noise])
    )
    np.add.at(grad_u, ctx, dpos[:, :, None] * v[c][:, None, :])
    np.add.at(grad_u, noise, dneg[:, :, None] * v[c][:, None, :])
    return loss, grad_v, grad_u


@pytest.mark.parametrize("per_slot", [False, True])
@pytest.mark.parametrize("noise", [[[3, 7, 7, 11, 19]], [[3, 7, 7], [11, 19, 3]]])
def test_shared_noise_loss_and_gradient_equal_numpy_reference(noise, per_slot):
    config = smoke_config(embed_size=6, max_window=1, **{"noise.sharing": "per_batch"})
    state, _ = fresh_state(config, 20)
    batch = random_batch(np.random.default_rng(2), 20, length=6)
    batch["mask"] = batch["labels"]  # rows hold only contexts
    noise = jnp.array(noise, jnp.int32)  # one group of 8 centers, or two of 4

    def loss(params):
        weighting = "per_slot" if per_slot else "per_center"
        objective = bind(config.replace(loss_weighting=weighting), params)
        return table_loss(objective, to_pairs(batch), noise)[0]

    value, grads = jax.value_and_grad(loss)(state.params)
    v = np.asarray(state.params["center"], np.float64)
    u = np.asarray(state.params["context"], np.float64)
    expected, grad_v, grad_u = numpy_shared_noise(v, u, batch, np.asarray(noise), 5, per_slot)
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    np.testing.assert_allclose(grads["center"], grad_v, atol=1e-7, rtol=1e-4)
    np.testing.assert_allclose(grads["context"], grad_u, atol=1e-7, rtol=1e-4)


def test_the_device_sampler_draws_the_hosts_distribution():
    """The two noise samplers (``data.noise``) read one alias table: the device's draws (the
    shared noise words, and the rows drawn there before rejection) follow counts^0.75 as the
    host's do, and never draw index 0."""
    counts = np.array([900, 5000, 300, 20, 1, 700])
    probs = data.noise.noise_distribution(counts)
    table = data.noise.AliasTable.build(probs)
    accept, alias = (jnp.asarray(array) for array in table)
    on_device = np.concatenate(
        [
            np.asarray(data.noise.sample_on_device(jax.random.key(i), accept, alias, 50_000))
            for i in range(4)
        ]
    )
    on_host = table.sample(200_000, np.random.default_rng(0))
    for draws in (on_device, on_host):
        freq = np.bincount(draws, minlength=len(counts)) / len(draws)
        assert freq[0] == 0
        assert 0.5 * np.abs(freq - probs).sum() < 0.005
    a, b = np.bincount(on_device, minlength=6), np.bincount(on_host, minlength=6)
    assert np.all(np.abs(a - b) <= 5 * np.sqrt(a + b) + 2), "the same distribution"


def test_shared_noise_training_finds_planted_partners(topic_data):
    config, _, partners = topic_data
    config = config.replace(**{"noise.sharing": "per_batch", "noise.shared": 16})
    text, _ = topic_corpus()
    prepared = assert_finds_partners(config, text, partners)
    assert prepared.examples.contexts_negatives.shape[1] == 2 * config.max_window
