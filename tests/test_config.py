import dataclasses
import math

import pytest

from tests.helpers import smoke_config
from w2v_jax.config import DATA, EXECUTION, PER_RUN, Config
from w2v_jax.presets import preset
from w2v_jax.training import optim


def test_defaults_are_the_books():
    config = Config()
    assert (config.batch_size, config.max_window, config.num_noise, config.embed_size) == (
        512,
        5,
        5,
        100,
    )
    assert (config.lr, config.num_epochs, config.min_freq, config.subsample_t, config.seed) == (
        None,
        5,
        10,
        1e-4,
        0,
    )
    assert optim.learning_rate(config) == 0.01  # the optimiser's own: Adam's, the book's
    assert config.resample_each_epoch is False
    assert config.row_layout.max_len == 60


def test_frozen_and_json_round_trip():
    config = Config(lr=0.002, resample_each_epoch=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.lr = 0.1
    assert Config.from_dict(config.to_dict()) == config
    assert smoke_config().embed_size == 16


@pytest.mark.parametrize(
    "field, value",
    [
        ("batch_size", 0),
        ("batch_size", -4),
        ("batch_size", 2.5),
        ("batch_size", True),
        ("max_window", 0),
        ("num_noise", 0),
        ("embed_size", 0),
        ("num_epochs", 0),
        ("min_freq", 0),
        ("steps_per_dispatch", 0),
        ("seed", -1),
        ("seed", "0"),
        ("lr", 0.0),
        ("lr", -0.01),
        ("lr", math.nan),
        ("lr", math.inf),
        ("lr", "fast"),
        ("subsample_t", 0.0),
        ("subsample_t", math.nan),
        ("resample_each_epoch", 1),
        ("noise_sharing", "per_word"),
        ("noise_sharing", 1),
        ("shared_noise", 0),
        ("checkpoint_every", -1),
        ("max_to_keep", 0),
        ("layout", "ragged"),
        ("noise_groups", 0),
        ("noise_groups", 3),  # does not divide the batch of 512
    ],
)
def test_invalid_value_names_field_and_value(field, value):
    with pytest.raises(ValueError) as err:
        Config(**{field: value})
    assert field in str(err.value) and repr(value) in str(err.value)


def test_a_removed_optimiser_is_refused_naming_what_replaces_it():
    with pytest.raises(ValueError, match="optimizer='sgd' was removed: optimizer='sparse_sgd'"):
        Config.from_dict({"optimizer": "sgd", "lr": 1000.0})
    with pytest.raises(ValueError, match="optimizer='adagrad' was removed.*rowwise_adagrad"):
        Config(optimizer="adagrad")
    assert Config(objective="cbow").row_layout.max_len == 2 * 5 + 5, "5 noise words a center"


def test_unknown_field_is_refused():
    with pytest.raises(ValueError, match="unknown config fields.*'windw'"):
        Config.from_dict({"windw": 3})


def test_presets():
    fast = preset("fast", batch_size=1024)
    assert fast.noise_sharing == "per_batch" and fast.batch_size == 1024
    assert fast.row_layout.max_len == 10 and fast.row_layout.noise_each == 0
    assert preset("book") == Config()
    best = preset("best")
    assert (best.lr, best.num_epochs, best.resample_each_epoch) == (0.002, 10, True)
    assert best.batch_size == Config().batch_size
    with pytest.raises(ValueError, match="unknown preset 'quick'"):
        preset("quick")


def test_field_roles_replace_the_hand_kept_lists():
    assert set(Config.fields_of(EXECUTION)) == {
        "num_epochs",
        "layout",
        "steps_per_dispatch",
        "checkpoint_every",
        "max_to_keep",
        "deterministic",
        "mesh",
    }
    assert set(Config.fields_of(PER_RUN)) == {"lr", "adam_b1", "adam_b2"}
    assert "min_freq" in Config.fields_of(DATA) and "lr" not in Config.fields_of(DATA)
    config = Config()
    assert not set(config.math_fields()) & set(Config.fields_of(EXECUTION))
    assert config.data_key() == config.replace(lr=0.5, embed_size=8).data_key()
    assert config.data_key() != config.replace(min_freq=3).data_key()
    assert config.vectorisation_key() == config.replace(lr=0.5, layout="padded").vectorisation_key()
    assert config.vectorisation_key() != config.replace(num_epochs=3).vectorisation_key()


def test_the_public_api_is_the_modules_own_names_and_loads_no_jax_for_the_data_stage():
    """``from w2v_jax import train`` is ``w2v_jax.run.train``; importing the package, or its
    numpy data stage (which the encoding workers import), loads no JAX."""
    import importlib
    import pkgutil
    import subprocess
    import sys

    import w2v_jax
    from w2v_jax import config, presets, run
    from w2v_jax.evaluation import evaluate, report

    # Every module loaded first: a subpackage named as a public name would shadow it.
    for module in pkgutil.walk_packages(w2v_jax.__path__, "w2v_jax."):
        importlib.import_module(module.name)

    assert w2v_jax.train is run.train and w2v_jax.prepare is run.prepare
    assert w2v_jax.Run is run.Run and w2v_jax.Embeddings is evaluate.Embeddings
    assert w2v_jax.Config is config.Config and w2v_jax.CorpusConfig is config.CorpusConfig
    assert w2v_jax.preset is presets.preset and w2v_jax.Evaluation is report.Evaluation
    assert set(w2v_jax.__all__) <= set(dir(w2v_jax))
    probe = "import sys, w2v_jax, w2v_jax.data.encoding; print('jax' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr
