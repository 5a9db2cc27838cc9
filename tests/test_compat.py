"""The readers of earlier versions' formats (``w2v_jax.compat``), each against the form it
reads; whole checkpoints of those forms are resumed or read in tests/test_checkpoint.py and
flat configs read in tests/test_config.py."""

from __future__ import annotations

import numpy as np
import pytest

from w2v_jax import compat
from w2v_jax.config import Config
from w2v_jax.sections import OptimizerConfig


def test_a_flat_config_s_settings_are_read_at_their_paths_and_removed_ones_dropped():
    saved = {"lr": 0.02, "num_noise": 3, "draw": "host", "batch_size": 64, "optimizer": "adam"}
    assert compat.settings_now(saved) == {
        "optimizer.lr": 0.02,
        "noise.count": 3,
        "batch_size": 64,
        "optimizer.name": "adam",
    }
    current = {"batch_size": 64, "optimizer": {"name": "adam"}, "noise": {"count": 5}}
    assert compat.settings_now(current) == current
    assert compat.moved_message("lr") == "Config.lr is Config.optimizer.lr now: set optimizer.lr"
    assert compat.moved_message("batch_size") is None
    with pytest.raises(ValueError, match="Config.lr is Config.optimizer.lr now"):
        Config().replace(lr=0.1)


def test_a_removed_optimiser_is_refused_with_what_replaces_it():
    assert "rowwise_adagrad" in compat.removed_optimizer("adagrad")
    assert compat.removed_optimizer("adam") is None
    with pytest.raises(ValueError, match="'sgd' was removed"):
        OptimizerConfig("sgd")


def test_tables_under_linen_s_names_are_renamed_in_params_and_optimiser_state():
    center, context = np.zeros((3, 2)), np.ones((3, 2))
    saved = {
        "params": {"center_embed": {"embedding": center}, "context_embed": {"embedding": context}},
        "opt_state": [{"mu": {"center_embed": {"embedding": center}, "context_embed": context}}],
    }
    now = compat.tables_from_linen(saved)
    assert set(now["params"]) == {"center", "context"}
    assert now["params"]["context"] is context and now["opt_state"][0]["mu"]["center"] is center
    current = {"params": {"center": center, "context": context}}
    assert compat.tables_from_linen(current) == current
    assert compat.under_linen_names({"params": saved["params"]})
    assert not compat.under_linen_names(current)


def test_progress_without_a_layout_is_numbered_from_zero_with_its_packed_capacity():
    saved = {"step": 8, "epochs": [[{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4}]]}
    now = compat.progress_now({**saved, "capacity": 768})
    assert [stats["epoch"] for stats in now["epochs"][0]] == [0, 1]
    assert now["layout"] == {"name": "packed", "capacity": 768} and "capacity" not in now
    assert compat.progress_now({**saved, "capacity": None})["layout"] is None
    assert saved["epochs"][0][0]["epoch"] == 1, "the saved record is left as it was"
    current = {**saved, "layout": {"name": "padded"}}
    assert compat.progress_now(current) is current


def test_the_flags_of_earlier_versions_have_their_names_now():
    renamed = compat.renamed_flags(["execution.deterministic", "resample_each_epoch"])
    assert renamed["--lr"] == "--optimizer.lr"
    assert renamed["--noise-sharing"] == "--noise.sharing"
    assert renamed["--no-execution.deterministic"] == "--execution.no-deterministic"
    assert "--no-resample-each-epoch" not in renamed, "a top-level flag kept its name"
    assert renamed["--no-vectorise"] == "--vectorise off"
