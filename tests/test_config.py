import dataclasses
import math

import pytest

from tests.helpers import smoke_config
from w2v_jax.compat import MOVED
from w2v_jax.config import Config
from w2v_jax.presets import preset
from w2v_jax.sections import (
    DATA,
    EXECUTION,
    PER_RUN,
    SECTIONS,
    ExecutionConfig,
    NoiseConfig,
    OptimizerConfig,
)
from w2v_jax.training import optim


def test_defaults_are_the_books():
    config = Config()
    assert (config.batch_size, config.max_window, config.noise.count, config.embed_size) == (
        512,
        5,
        5,
        100,
    )
    assert (
        config.optimizer.lr,
        config.num_epochs,
        config.min_freq,
        config.subsample_t,
        config.seed,
    ) == (
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
    config = Config(resample_each_epoch=True, optimizer=OptimizerConfig(lr=0.002))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.optimizer.lr = 0.1
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
        ("noise.count", 0),
        ("embed_size", 0),
        ("num_epochs", 0),
        ("min_freq", 0),
        ("execution.steps_per_dispatch", 0),
        ("seed", -1),
        ("seed", "0"),
        ("optimizer.lr", 0.0),
        ("optimizer.lr", -0.01),
        ("optimizer.lr", math.nan),
        ("optimizer.lr", math.inf),
        ("optimizer.lr", "fast"),
        ("subsample_t", 0.0),
        ("subsample_t", math.nan),
        ("resample_each_epoch", 1),
        ("noise.sharing", "per_word"),
        ("noise.sharing", 1),
        ("noise.shared", 0),
        ("execution.checkpoint_every", -1),
        ("execution.max_to_keep", 0),
        ("execution.layout", "ragged"),
        ("noise.groups", 0),
        ("noise.groups", 3),  # does not divide the batch of 512
    ],
)
def test_invalid_value_names_field_and_value(field, value):
    with pytest.raises(ValueError) as err:
        Config().replace(**{field: value})
    assert field in str(err.value) and repr(value) in str(err.value)


def test_a_removed_optimiser_is_refused_naming_what_replaces_it():
    removed = "optimizer.name='sgd' was removed: optimizer.name='sparse_sgd'"
    with pytest.raises(ValueError, match=removed):
        Config.from_dict({"optimizer": "sgd", "lr": 1000.0})  # as saved before
    with pytest.raises(ValueError, match="optimizer.name='adagrad' was removed.*rowwise_adagrad"):
        Config(optimizer=OptimizerConfig(name="adagrad"))
    assert Config(objective="cbow").row_layout.max_len == 2 * 5 + 5, "5 noise words a center"


def test_unknown_setting_is_refused_listing_the_settings():
    with pytest.raises(
        ValueError, match="unknown config setting 'windw'; settings: .*optimizer.lr"
    ):
        Config.from_dict({"windw": 3})
    with pytest.raises(ValueError, match="unknown config setting 'noise.size'"):
        Config().replace(**{"noise.size": 3})


def test_settings_are_named_by_their_paths():
    config = Config().replace(**{"optimizer.lr": 0.1, "noise.groups": 4, "num_epochs": 2})
    assert (config.optimizer.lr, config.noise.groups, config.num_epochs) == (0.1, 4, 2)
    assert config.get("optimizer.lr") == 0.1 and config.get("num_epochs") == 2
    assert config.optimizer == OptimizerConfig(lr=0.1), "the rest of the section stays"
    assert Config(noise=NoiseConfig(count=3)).replace(**{"noise.sharing": "per_batch"}).noise == (
        NoiseConfig(count=3, sharing="per_batch")
    )
    assert len(Config.paths()) == len(set(Config.paths())) == 31
    assert {path.partition(".")[0] for path in Config.paths() if "." in path} == set(SECTIONS)
    # A whole section, and a path inside it, in one call: the path lands on the new section.
    whole = Config().replace(
        **{"optimizer": OptimizerConfig(name="lazy_adam"), "optimizer.lr": 0.3}
    )
    assert whole.optimizer == OptimizerConfig(name="lazy_adam", lr=0.3)


def test_a_setting_that_moved_into_a_section_says_where():
    with pytest.raises(ValueError, match=r"Config.lr is Config.optimizer.lr now"):
        Config().replace(lr=0.1)
    with pytest.raises(ValueError, match=r"Config.noise_sharing is Config.noise.sharing now"):
        preset("book", noise_sharing="per_batch")


def test_a_config_saved_flat_by_an_earlier_version_is_read_at_its_paths():
    saved = {
        **{name: value for name, value in Config().to_dict().items() if name not in SECTIONS},
        "num_noise": 3,
        "noise_sharing": "per_batch",
        "shared_noise": 16,
        "noise_groups": 2,
        "optimizer": "lazy_adam",
        "lr": 0.02,
        "lr_schedule": "linear",
        "lr_warmup_steps": 10,
        "adam_b1": 0.8,
        "adam_b2": 0.99,
        "layout": "padded",
        "steps_per_dispatch": 4,
        "checkpoint_every": 7,
        "max_to_keep": 2,
        "mesh": "data=1",
        "deterministic": True,
        "draw": "host",  # removed before
    }
    assert Config.from_dict(saved) == Config(
        noise=NoiseConfig(count=3, sharing="per_batch", shared=16, groups=2),
        optimizer=OptimizerConfig("lazy_adam", 0.02, "linear", 10, 0.8, 0.99),
        execution=ExecutionConfig("padded", 4, 7, 2, "data=1", True),
    )
    assert set(MOVED) == {
        name for name in saved if name not in Config().paths() and name != "draw"
    }, "every flat name of the earlier Config is read"


def test_presets():
    fast = preset("fast", batch_size=1024)
    assert fast.noise.sharing == "per_batch" and fast.batch_size == 1024
    assert fast.row_layout.max_len == 10 and fast.row_layout.noise_each == 0
    assert preset("book") == Config()
    best = preset("best")
    assert (best.optimizer.lr, best.num_epochs, best.resample_each_epoch) == (0.002, 10, True)
    assert best.batch_size == Config().batch_size
    with pytest.raises(ValueError, match="unknown preset 'quick'"):
        preset("quick")


def test_field_roles_replace_the_hand_kept_lists():
    assert set(Config.paths_of(EXECUTION)) == {
        "num_epochs",
        *(f"execution.{f.name}" for f in dataclasses.fields(ExecutionConfig)),
    }
    assert set(Config.paths_of(PER_RUN)) == {"optimizer.lr", "optimizer.b1", "optimizer.b2"}
    assert {"min_freq", "noise.count", "noise.sharing"} <= set(Config.paths_of(DATA))
    assert "optimizer.lr" not in Config.paths_of(DATA)
    config = Config()
    assert not set(config.math_paths()) & set(Config.paths_of(EXECUTION))
    assert config.data_key() == config.replace(embed_size=8, **{"optimizer.lr": 0.5}).data_key()
    assert config.data_key() != config.replace(min_freq=3).data_key()
    assert (
        config.vectorisation_key()
        == config.replace(**{"optimizer.lr": 0.5, "execution.layout": "padded"}).vectorisation_key()
    )
    assert config.vectorisation_key() != config.replace(num_epochs=3).vectorisation_key()


def test_the_public_api_is_the_modules_own_names_and_loads_no_jax_for_the_data_stage():
    """``from w2v_jax import train`` is ``w2v_jax.run.train``; importing the package, or its
    numpy data stage (which the encoding workers import), loads no JAX."""
    import importlib
    import pkgutil
    import subprocess
    import sys
    import warnings

    import w2v_jax
    from w2v_jax import config, corpus_config, presets, run, sections
    from w2v_jax.evaluation import evaluate, report

    # Every module loaded first: a subpackage named as a public name would shadow it.
    with warnings.catch_warnings():  # the old home of a moved name warns when imported
        warnings.simplefilter("ignore", DeprecationWarning)
        for module in pkgutil.walk_packages(w2v_jax.__path__, "w2v_jax."):
            importlib.import_module(module.name)

    assert w2v_jax.train is run.train and w2v_jax.prepare is run.prepare
    assert w2v_jax.Run is run.Run and w2v_jax.Embeddings is evaluate.Embeddings
    assert w2v_jax.Config is config.Config and w2v_jax.CorpusConfig is corpus_config.CorpusConfig
    for section in (sections.NoiseConfig, sections.OptimizerConfig, sections.ExecutionConfig):
        assert getattr(w2v_jax, section.__name__) is section
    assert w2v_jax.preset is presets.preset and w2v_jax.Evaluation is report.Evaluation
    assert set(w2v_jax.__all__) <= set(dir(w2v_jax))
    probe = "import sys, w2v_jax, w2v_jax.data.encoding; print('jax' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr
