"""The equality guard: the book configuration's parameters after one PTB epoch, recorded before
the training floor is refactored into one loss, one step and one loop.

Recorded on the CPU (2-core x86-64 machine, jax 0.10.2) from the code as it stood before that
refactor (commit f2344ce gives the same bytes). A change that keeps the arithmetic order keeps
the checksum; one that reorders float32 additions must stay within ``ROUNDING`` of the rows and
norms and say why in its commit.
"""

from __future__ import annotations

import hashlib

import jax
import numpy as np
import pytest

from w2v_jax.config import Config
from w2v_jax.run import train
from w2v_jax.sections import ExecutionConfig
from w2v_jax.training import checkpoint

SHA256 = "3818c53335ce5ec214e42e9fb10bacf5dc453401d1bf287c4dc21ae18d271f15"
LOSS = 0.446328386944725
NORMS = {"center": 186.8076075864801, "context": 256.6153624338625}
ROWS = {  # the first 4 values of rows 1, 100 and 5000 of each table
    "center": {
        1: [0.016051702201366425, -0.09295444190502167, 0.24541203677654266, 0.14492017030715942],
        100: [
            -0.03345715254545212,
            -0.3192494809627533,
            0.051361218094825745,
            -0.16547425091266632,
        ],
        5000: [
            -0.18094012141227722,
            -0.058215800672769547,
            0.04862909018993378,
            -0.06127770617604256,
        ],
    },
    "context": {
        1: [0.4147140085697174, 0.31243231892585754, -0.48301467299461365, -0.11290493607521057],
        100: [0.24328172206878662, -0.05193839594721794, -0.3954050540924072, -0.46593329310417175],
        5000: [-0.2367103099822998, -0.131365567445755, 0.11436604708433151, -0.483679860830307],
    },
}
# One epoch is 671 Adam steps of at most lr = 0.01 each; reordering the float32 sums inside a
# step changes a gradient by ~1e-7 relative, which Adam's normalised steps carry into the
# parameters at ~1e-6 after an epoch (packed against padded rows differ by that much). 1e-5 on
# values of order 0.1 to 0.5 leaves a 10x margin and still catches any change of the
# computation, which moves them by 1e-3 or more.
ROUNDING = 1e-5


EPOCH_LOSSES = [0.446, 0.390, 0.356, 0.339, 0.328]  # the README's default run, to 3 decimals
STEPS_PER_EPOCH = 671


@pytest.fixture(scope="module")
def book_run(ptb_dir, tmp_path_factory):
    """The book's configuration for its 5 epochs, every epoch's checkpoint kept."""
    workdir = tmp_path_factory.mktemp("book")
    config = Config(execution=ExecutionConfig(max_to_keep=5))
    run = train(config, workdir=workdir, data_dir=ptb_dir, progress=False, evaluation=None)
    return run, workdir


@pytest.mark.slow
def test_the_book_configuration_after_one_epoch_is_unchanged(book_run):
    run, workdir = book_run
    manager = checkpoint.open_manager(workdir / "checkpoints", read_only=True)
    params = checkpoint.restore_latest(manager, {"params": None}, step=STEPS_PER_EPOCH)[1]
    tables = {name: np.asarray(params["params"][name], np.float32) for name in NORMS}
    assert run.history[0].loss == pytest.approx(LOSS, abs=1e-6)
    for name, table in tables.items():
        assert float(np.linalg.norm(table.astype(np.float64))) == pytest.approx(
            NORMS[name], rel=ROUNDING
        )
        for row, values in ROWS[name].items():
            np.testing.assert_allclose(table[row, :4], values, atol=ROUNDING, rtol=0)
    if jax.default_backend() == "cpu":  # bitwise where the arithmetic order is the same
        digest = hashlib.sha256(b"".join(t.tobytes() for t in tables.values())).hexdigest()
        assert digest == SHA256, "same values within rounding, but not the same bits"


@pytest.mark.slow
def test_the_book_configurations_five_epoch_losses_are_unchanged(book_run):
    run, _ = book_run
    assert [round(stats.loss, 3) for stats in run.history] == EPOCH_LOSSES
