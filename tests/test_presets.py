"""Every preset trains on four corpora without its loss diverging: PTB, PTB repeated 16 times,
a corpus with a small vocabulary and a synthetic Zipf corpus (both generated here); on PTB,
with every optimiser and either noise sharing, its loss falls well below ln 2 in a short run.

"Holds" means every epoch's loss is finite and the last is below the first dispatch's. Each
preset trains with its own settings for at most 2 epochs (on PTB repeated, 1): the presets'
rates are constant or decay, so the first epochs are where their steps are largest.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import typing

import numpy as np
import pytest

from tests.helpers import prepare_text, text_corpus, topic_corpus
from w2v_jax.config import Config
from w2v_jax.presets import OWN_TEXT, PRESETS, default_config, preset
from w2v_jax.run import Data, prepare, train
from w2v_jax.sections import NoiseSharing, Optimizer

OPTIMIZERS = typing.get_args(Optimizer)


def small_vocabulary_corpus(tokens: int = 600_000, vocab: int = 3_500, seed: int = 0) -> str:
    """Sentences of 8 to 30 words from 3,500 word types (all above the min count): half of each
    sentence from its topic's 70 words, half from a Zipf law over the whole vocabulary, so that
    frequent words are far more frequent than in PTB's 10k-word vocabulary."""
    rng = np.random.default_rng(seed)
    zipf = 1.0 / np.arange(1, vocab + 1)
    zipf /= zipf.sum()
    topics = rng.permutation(vocab).reshape(50, 70)
    lengths = rng.integers(8, 31, tokens // 19)
    topic_of = rng.integers(50, size=len(lengths))
    from_topic = rng.random(lengths.sum()) < 0.5
    words = np.where(
        from_topic,
        topics[np.repeat(topic_of, lengths), rng.integers(70, size=len(from_topic))],
        rng.choice(vocab, size=len(from_topic), p=zipf),
    )
    return _sentences(words, lengths)


def zipf_corpus(
    tokens: int = 1_000_000, vocab: int = 50_000, exponent: float = 1.1, seed: int = 1
) -> str:
    """Words drawn independently from a Zipf law over 50,000 types (a long tail below the min
    count), in sentences of 5 to 40 words: no structure to learn, only frequencies."""
    rng = np.random.default_rng(seed)
    zipf = np.arange(1, vocab + 1) ** -exponent
    words = rng.choice(vocab, size=tokens, p=zipf / zipf.sum())
    lengths = rng.integers(5, 41, tokens // 22)
    return _sentences(words[: lengths.sum()], lengths)


def _sentences(words: np.ndarray, lengths: np.ndarray) -> str:
    tokens = np.char.add("w", words.astype(str))
    ends = np.cumsum(lengths)[:-1]
    return "\n".join(" ".join(sentence) for sentence in np.split(tokens, ends)) + "\n"


def assert_holds(config, prepared):
    run = train(config, data=prepared, evaluation=None, progress=False)
    losses = [stats.loss for stats in run.history]
    assert np.all(np.isfinite(losses)), losses
    assert losses[-1] < run.curve[0][1], (losses, run.curve[0])
    return run


@pytest.fixture(scope="module")
def generated():
    return {"small_vocabulary": small_vocabulary_corpus(), "zipf": zipf_corpus()}


@pytest.mark.parametrize("corpus", ["small_vocabulary", "zipf"])
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_hold_on_generated_corpora(generated, corpus, name):
    config = preset(name)
    config = config.replace(num_epochs=min(config.num_epochs, 2))
    assert_holds(config, prepare_text(config, generated[corpus]))


def test_the_generated_corpora_have_the_shapes_they_stand_for(generated):
    small = prepare_text(preset("book"), generated["small_vocabulary"])
    zipf = prepare_text(preset("book"), generated["zipf"])
    assert len(small.vocab) == 3_500 + 1  # and <unk>
    # a long tail falls below the min count: some 6k words are kept, the rest become <unk>
    assert 5_000 < len(zipf.vocab) < 10_000 and zipf.vocab.counts[0] > 0.05 * 1_000_000


def grid() -> dict[str, dict]:
    """Every preset x optimiser x noise sharing, each at its own rate (the preset's for its
    own optimiser, else the optimiser's default), once per distinct run: best differs from
    book only in Adam's rate (and its epochs)."""
    cases, seen = {}, set()
    for name, optimizer, sharing in itertools.product(
        sorted(PRESETS), OPTIMIZERS, typing.get_args(NoiseSharing)
    ):
        config = preset(name, **{"optimizer.name": optimizer, "noise.sharing": sharing})
        config = config.replace(num_epochs=2 if config.batch_size > 4096 else 1)
        key = config.replace(resample_each_epoch=False)
        if key not in seen:
            seen.add(key)
            cases[f"{name}, {optimizer}, {sharing}"] = config
    return cases


@pytest.fixture(scope="module")
def ptb_data(ptb_dir):
    """PTB's data stage, once for each data key."""
    cache = {}
    return lambda config: cache.setdefault(config.data_key(), prepare(config, data_dir=ptb_dir))


@pytest.mark.parametrize("config", grid().values(), ids=grid().keys())
def test_every_preset_optimiser_and_noise_sharing_learns_on_ptb(ptb_data, config):
    """A short run (one PTB epoch; two, 50 steps, for the gpu preset's batches of 16,384)
    ends with its loss well below the ln 2 of untrained vectors: the rates suit the batch
    sizes, the noise sharing and the optimiser they are used with. The presets' own
    optimisers hold at their first steps, where the steps are largest (``assert_holds``)."""
    run = assert_holds(config, ptb_data(config))
    assert run.history[-1].loss < 0.9 * math.log(2), [stats.loss for stats in run.history]


@pytest.mark.slow
def test_presets_hold_on_ptb_repeated_16_times(ptb_text):
    """Each preset on 14M tokens. fast and gpu, whose rates were chosen for this (row-wise
    Adagrad adapts each row's step), train a whole epoch, streamed in 14 blocks, and share
    their data stage. book and best (dense Adam: a step is at most about its rate, whatever the
    corpus) train together on the corpus's first block (their first epochs differ only in the
    rate), as long as a PTB epoch is: a whole epoch of both on this CPU would take minutes."""
    text = "\n".join([ptb_text] * 16)
    fast = preset("fast", num_epochs=1)
    prepared = prepare_text(fast, text)
    assert len(prepared.dataset.blocks) - 1 == 14 and prepared.examples is None
    for name in ("fast", "gpu"):
        assert preset(name).data_key() == fast.data_key()
        assert_holds(preset(name, num_epochs=1), prepared)
    book, best = (
        preset("book", num_epochs=1),
        preset("best", num_epochs=1, resample_each_epoch=False, subsample_each_epoch=False),
    )
    whole = prepare_text(book, text)
    first_block = dataclasses.replace(
        whole.dataset,
        blocks=whole.dataset.blocks[:2],
        _centers={},  # counted anew for the one block
    )
    prepared = Data(whole.corpus, whole.encoded, first_block, None, 0.0)
    for run in train([book, best], data=prepared, progress=False, evaluation=None):
        assert np.isfinite(run.history[0].loss) and run.diverged is None
        assert run.history[0].loss < run.curve[0][1]
    assert set(PRESETS) == {"book", "best", "fast", "gpu"}, "a new preset needs its check here"


def test_a_presets_rate_belongs_to_its_optimiser():
    """Another optimiser without a rate trains at its own default rate, said in one line; a
    rate given, or the preset's own optimiser, keeps the preset's."""
    from w2v_jax.presets import preset_rate_note

    assert (
        preset("fast", **{"optimizer.name": "sparse_sgd"}).optimizer.lr is None
    )  # sparse_sgd's own: 1250
    assert (
        preset("fast", **{"optimizer.name": "sparse_sgd", "optimizer.lr": 3.0}).optimizer.lr == 3.0
    )
    assert preset("fast", **{"optimizer.name": "rowwise_adagrad"}).optimizer.lr == 0.2
    assert (
        preset("best", **{"optimizer.name": "lazy_adam"}).optimizer.lr is None
        and preset("best").optimizer.lr == 0.002
    )
    assert (
        preset("book", **{"optimizer.name": "sparse_sgd"}).optimizer.lr is None
    )  # book has no rate of its own
    assert preset_rate_note("fast", {"optimizer.name": "sparse_sgd"}) == (
        "optimizer.name=sparse_sgd trains at its own default rate 1250, not the fast preset's "
        "optimizer.lr=0.2, which is rowwise_adagrad's (choose a rate with optimizer.lr=RATE)"
    )
    assert preset_rate_note("fast", {"optimizer.name": "sparse_sgd", "optimizer.lr": 3.0}) is None
    assert preset_rate_note("book", {"optimizer.name": "sparse_sgd"}) is None


def test_a_run_that_does_not_learn_says_so_in_one_line(caplog):
    """An epoch 1 of enough steps still at ln 2 (a rate far too small) is said in one line."""
    from tests.helpers import topic_corpus
    from w2v_jax.training.hooks import NOT_LEARNING_STEPS

    config = preset(
        "book",
        min_freq=1,
        subsample_t=1.0,
        batch_size=64,
        num_epochs=1,
        embed_size=8,
        **{"optimizer.lr": 1e-9},
    )
    prepared = prepare_text(config, topic_corpus(sentences=2000)[0])
    caplog.set_level("INFO", logger="w2v_jax")
    run = train(config, data=prepared, evaluation=None, progress=False)
    assert run.history[0].step >= NOT_LEARNING_STEPS
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert said == [
        f"the loss has not fallen in epoch 1 ({run.history[0].loss:.3f}; untrained vectors "
        f"score ln 2 = 0.693): optimizer.lr=1e-09 does not suit optimizer.name=adam here; try "
        f"another rate, or leave optimizer.lr out for the optimiser's own"
    ]
    caplog.clear()
    train(config.replace(**{"optimizer.lr": 0.01}), data=prepared, evaluation=None, progress=False)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_a_run_without_a_config_trains_the_book_on_ptb_and_the_own_text_preset_elsewhere(caplog):
    """``run.train(None, corpus)``: the book's configuration on PTB, the fast preset (every
    draw anew) on any other text, said in one line."""
    assert default_config(is_ptb=True) == Config()
    own = default_config(is_ptb=False)
    assert own == preset(OWN_TEXT) == preset("fast")
    assert own.resample_each_epoch and own.subsample_each_epoch
    text, _ = topic_corpus(sentences=2000)
    with caplog.at_level("INFO", logger="w2v_jax"):
        run = train(None, text_corpus(text), evaluation=None, progress=False)
    assert run.config == own
    assert any(
        "the fast preset, the default for one's own text" in r.message for r in caplog.records
    )
