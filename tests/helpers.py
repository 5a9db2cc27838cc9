"""Helpers the tests share: small corpora and configs, batches laid out by hand, training to
planted partners, and a run interrupted then resumed."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from w2v_jax.config import Config
from w2v_jax.corpus_config import CorpusConfig
from w2v_jax.data.vocab import BlockEncoder, Corpus, Vocab, VocabularyCounter, sentence_lengths
from w2v_jax.feed import batches
from w2v_jax.rows import ROW_FIELDS, Rows
from w2v_jax.run import Data, prepare, train
from w2v_jax.training import optim, step

REPO = Path(__file__).resolve().parents[1]


def smoke_config(**overrides) -> Config:
    """A tiny config for tests: small model, one epoch, small batches."""
    values = dict(
        batch_size=64,
        embed_size=16,
        num_epochs=1,
        min_freq=1,
        **{"execution.steps_per_dispatch": 8},
    )
    return Config().replace(**{**values, **overrides})


def topic_corpus(
    num_topics: int = 6, fillers_per_topic: int = 5, sentences: int = 3000, seed: int = 0
) -> tuple[str, list[tuple[str, str]]]:
    """Sentences about topics: each holds one of its topic's two partner words (a_i or b_i)
    among three of the topic's filler words. Partners never meet but share every context,
    which is what skip-gram turns into similar vectors; fillers co-occur with their partners."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(sentences):
        topic = rng.integers(num_topics)
        partner = f"{'ab'[rng.integers(2)]}{topic}"
        fillers = [f"f{topic}x{j}" for j in rng.choice(fillers_per_topic, 3, replace=False)]
        words = [partner, *fillers]
        rng.shuffle(words)
        lines.append(" " + " ".join(words) + " ")
    return "\n".join(lines) + "\n", [(f"a{t}", f"b{t}") for t in range(num_topics)]


def text_corpus(text: str):
    """A corpus of ``text`` (one sentence a line) as run.train reads any corpus: a file,
    written once under the temporary directory, named by the text's digest."""
    directory = Path(tempfile.gettempdir()) / "w2v_jax_test_corpora"
    path = directory / f"{hashlib.sha1(text.encode()).hexdigest()}.txt"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return CorpusConfig((str(path),))


def prepare_text(config, text: str):
    """The data stage of ``config`` on ``text``."""
    return prepare(config, text_corpus(text))


def random_batch(rng, vocab_size, batch=8, length=12):
    num_contexts = rng.integers(1, 3, size=batch)
    num_live = np.minimum(num_contexts * 4, length)
    num_live[-1] = num_contexts[-1] = 0  # a padding row
    slot = np.arange(length)
    return {
        "centers": rng.integers(1, vocab_size, (batch, 1)).astype(np.int32),
        "contexts_negatives": rng.integers(1, vocab_size, (batch, length)).astype(np.int32),
        "mask": slot < num_live[:, None],
        "labels": slot < num_contexts[:, None],
    }


def rows_of(**given) -> Rows:
    """Rows of the ``given`` fields (numpy or JAX arrays, one row each), every other field of
    ``rows.Rows`` 0s: fixtures follow the declaration, so a new field changes none of them."""
    count = len(next(iter(given.values())))
    length = given["contexts_negatives"].shape[1] if "contexts_negatives" in given else 1

    return Rows(
        **{
            name: given.get(name, np.zeros((count, *field.shape(length)), field.dtype))
            for name, field in ROW_FIELDS.items()
        }
    )


def random_rows(rng, num_contexts, num_live, length: int, vocab_size: int) -> Rows:
    """Rows of random words laid out as the data stage lays them out: ``num_live`` words a
    row, 0s after them, a random number of the contexts left of the center."""
    words = rng.integers(1, vocab_size, (len(num_contexts), length)).astype(np.int32)
    words[np.arange(length) >= num_live[:, None]] = 0
    return rows_of(
        centers=rng.integers(1, vocab_size, (len(num_contexts), 1)).astype(np.int32),
        contexts_negatives=words,
        num_contexts=num_contexts.astype(np.int32),
        num_left=rng.integers(0, num_contexts + 1).astype(np.int32),
        num_live=num_live.astype(np.int32),
    )


def to_pairs(batch):
    """A padded batch (the book's arrays, its mask and labels a prefix of each row) as the
    pairs the loss reads: its rows gathered by batches.gather_padded, their contexts all right
    of their centers."""
    mask, labels = np.asarray(batch["mask"]), np.asarray(batch["labels"])
    rows = rows_of(
        centers=np.asarray(batch["centers"], np.int32),
        contexts_negatives=np.asarray(batch["contexts_negatives"], np.int32),
        num_contexts=labels.sum(1, dtype=np.int32),
        num_live=mask.sum(1, dtype=np.int32),
    )
    pairs = batches.gather_padded(rows, jnp.arange(len(mask), dtype=jnp.int32))
    np.testing.assert_array_equal(pairs.mask, mask.ravel())  # a prefix of each row
    return pairs


def fresh_state(config, vocab_size, seed=0, total_steps=100):
    """A new train state of ``config`` and its optimiser (for a run of ``total_steps``)."""
    optimizer = optim.make(config, total_steps=total_steps)
    return step.state_initializer(config, vocab_size, jax.random.key(seed), optimizer)(), optimizer


def assert_finds_partners(config, text, partners) -> Data:
    """Train ``config`` on the topic corpus: the loss falls by a fifth and each a_i's nearest
    neighbour is its partner b_i. Returns the prepared data."""
    prepared = prepare_text(config, text)
    run = train(config, data=prepared, evaluation=None, progress=False)
    losses = [stats.loss for stats in run.history]
    assert losses[-1] < 0.8 * losses[0]
    vocab, vectors = run.vocab, run.embeddings().vectors  # the objective's word vectors
    for a, b in partners:
        assert vocab.to_token(nearest_neighbours(vectors, vocab[a], 1)[0][0]) == b
    return prepared


def topic_config(**overrides):
    # deterministic: the resume tests compare bitwise, which a GPU gives only with it.
    values = dict(
        min_freq=1,
        subsample_t=1.0,
        max_window=2,
        batch_size=64,
        num_epochs=3,
        **{
            "noise.count": 3,
            "execution.steps_per_dispatch": 8,
            "optimizer.lr": 0.02,
            "execution.deterministic": True,
        },
    )
    values.update(overrides)
    return smoke_config(**values)


def leaves_equal(a, b):
    return all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def encode_text(text: str, min_freq: int) -> tuple:
    """Build the vocabulary of ``text`` (one sentence a line, tokens split on whitespace) and
    encode it, in memory: the encode of ``data.corpus`` with one block.

    Ties in frequency keep the order of first occurrence, as the book's Vocab does.
    """
    counter = VocabularyCounter()
    block = BlockEncoder().encode(text)
    provisional, _ = counter.add(0, block)
    tokens, remap = counter.vocabulary(min_freq, np.bincount(provisional))
    ids = remap[provisional]
    lengths = sentence_lengths(block.line_lengths, max(len(ids), 1))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    counts = np.bincount(ids, minlength=len(tokens)).astype(np.int64)
    return Vocab(tokens, counts), Corpus(ids, offsets)


# The book's get_similar_tokens, the reference the tests hold runs' neighbours to.
def cosine_similarities(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Cosine of ``query`` [d] with every row of ``vectors`` [V, d] -> [V].

    The book's formula: W x / sqrt(|W|^2 |x|^2 + 1e-9), so a zero row gives 0, not NaN.
    """
    dots = vectors @ query
    norms = np.sum(vectors * vectors, axis=1) * np.sum(query * query)
    return dots / np.sqrt(norms + 1e-9)


def nearest_neighbours(vectors: np.ndarray, query_index: int, k: int) -> list[tuple[int, float]]:
    """The ``k`` rows most cosine-similar to row ``query_index``, itself excluded, best first;
    ``vectors`` may be any array (numpy, JAX)."""
    vectors = np.asarray(vectors, np.float32)
    cosines = cosine_similarities(vectors, vectors[query_index])
    cosines[query_index] = -np.inf
    best = np.argsort(-cosines, kind="stable")[:k]
    return [(int(i), float(cosines[i])) for i in best]


def docs_python(page: str, containing: str) -> dict:
    """The namespace of the Python block of docs/``page`` that holds ``containing``, run: a
    worked example of the docs, tested as it is written."""
    text = (REPO / "docs" / page).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    (block,) = [block for block in blocks if containing in block]
    namespace: dict = {"__name__": f"docs.{page}"}
    exec(compile(block, page, "exec"), namespace)
    return namespace
