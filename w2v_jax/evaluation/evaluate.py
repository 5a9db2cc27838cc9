"""Trained vectors for scripts and notebooks: neighbours, analogies, standard benchmarks, export.

``Embeddings`` mirrors gensim's ``KeyedVectors`` where they overlap (``most_similar``,
``similarity``, ``evaluate_word_pairs``, ``evaluate_word_analogies``, the word2vec formats), so
results can be compared number for number; it also writes the TensorBoard Embedding
Projector's files. It comes from a checkpoint (``from_checkpoint``) or from the run
``run.train`` returns (``Run.embeddings``). Benchmarks compare words case-insensitively, as
gensim does by default.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from w2v_jax import objectives
from w2v_jax.data.vocab import UNK
from w2v_jax.evaluation.benchmark_files import (
    ANALOGY_SETS,
    BenchmarkError,
    benchmark_path,
    benchmark_paths,
    read_analogies,
    read_lines,
)
from w2v_jax.objectives import Objective, table_names, vectors_of
from w2v_jax.training import checkpoint, records

COVERAGE_FLOOR = 0.10
"""A benchmark is scored only when the vocabulary covers at least this share of its pairs or
questions: PTB's 61% (WordSim353), 42% (SimLex-999) and 15% (analogies) are; a corpus of
licence texts' 2% (7 pairs) is not."""


# Evaluation is numpy (BLAS) rather than jitted: its matrices are small, and a compile per
# shape would cost more than the arithmetic (measured in results/benchmark/README.md).


_SCORES_BYTES = 32 << 20
"""The analogies' scores held at once: a run's peak memory is its training's, not this."""


def load_model(
    path: str | os.PathLike, step: int | None = None
) -> tuple[Objective, tuple[str, ...]]:
    """The trained objective of a checkpoint, a Flax NNX module whose ``nnx.Param``s are its
    tables (the vocabulary's rows, without a mesh's padding), and the vocabulary's words, row
    by row: ``model, words = load_model(workdir)``, ``model.center[...][words.index("chip")]``.
    ``path`` and ``step`` as ``Embeddings.from_checkpoint``'s."""
    from w2v_jax.config import Config

    params, tokens, saved = _restored(path, step)
    config = Config.from_dict({key: value for key, value in saved.items() if key != "corpus"})
    tables = {name: jnp.asarray(table[: len(tokens)]) for name, table in params.items()}
    return objectives.bind(config, tables), tokens


def _restored(path: str | os.PathLike, step: int | None) -> tuple[dict, tuple[str, ...], dict]:
    """A checkpoint's tables, vocabulary and config (a dict), and nothing else of it; a run's own
    (the checkpoints of runs trained together are refused, naming where each run's are)."""
    directory = checkpoint.checkpoint_dir(path)
    if not directory.is_dir():
        raise checkpoint.CheckpointError(f"no checkpoint directory at {directory}")
    manager = checkpoint.open_manager(directory, read_only=True)
    targets = {"params": None, "vocab": None, "config": None}
    _, restored = checkpoint.restore_latest(manager, targets, step)
    if "runs" in restored["config"]:
        raise checkpoint.CheckpointError(
            f"{directory} holds the checkpoints of {len(restored['config']['runs'])} runs "
            f"trained together: open a run's own workdir (a sweep writes each point's)"
        )
    return restored["params"], tuple(restored["vocab"]["tokens"]), restored["config"]


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _analogy_scores(unit: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """3CosAdd: cos(x, b) - cos(x, a) + cos(x, c) for every word x, query words at -inf."""
    scores = (unit[b] - unit[a] + unit[c]) @ unit.T
    rows = np.arange(scores.shape[0])
    for excluded in (a, b, c):
        scores[rows, excluded] = -np.inf
    return scores


@dataclasses.dataclass(frozen=True, eq=False)
class Embeddings:
    """Words and their vectors: ``vocab[i]`` is the word of row i of ``vectors`` [V, d]."""

    vocab: tuple[str, ...]
    vectors: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_to_index", {w: i for i, w in enumerate(self.vocab)})
        object.__setattr__(self, "_unit", _unit_rows(np.asarray(self.vectors, np.float32)))

    # ----------------------------------------------------------------------- loading

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, step: int | None = None, table: str = "words"
    ) -> Embeddings:
        """The vectors of a checkpoint: ``path`` is a workdir or its ``checkpoints`` directory;
        ``step`` defaults to the newest readable one. Only parameters, vocabulary and config
        are read. ``table``: see ``table_names``."""
        table_names(table, "skipgram")  # a wrong name is refused before anything is read
        params, tokens, config = _restored(path, step)
        return cls(
            tokens, vectors_of(params, table, config.get("objective", "skipgram"), len(tokens))
        )

    # ----------------------------------------------------------------------- queries

    def index(self, word: str) -> int:
        try:
            return self.key_to_index[word]
        except KeyError:
            raise KeyError(f"word {word!r} is not in the vocabulary") from None

    def __getitem__(self, word: str) -> np.ndarray:
        return self.vectors[self.index(word)]

    def __contains__(self, word: str) -> bool:
        return word in self.key_to_index

    def __len__(self) -> int:
        return len(self.vocab)

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two words."""
        return float(self._unit[self.index(a)] @ self._unit[self.index(b)])

    def most_similar(self, word: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` words of highest cosine with ``word`` (itself excluded), as gensim lists."""
        scores = self._unit @ self._unit[self.index(word)]
        scores[self.index(word)] = -np.inf
        return self._top(scores, k)

    def analogy(self, a: str, b: str, c: str, k: int = 1) -> list[tuple[str, float]]:
        """a is to b as c is to ?: the ``k`` best words by 3CosAdd, the query words excluded."""
        indices = [np.array([self.index(w)]) for w in (a, b, c)]
        return self._top(_analogy_scores(self._unit, *indices)[0], k)

    def _top(self, scores: np.ndarray, k: int) -> list[tuple[str, float]]:
        best = np.argsort(-scores, kind="stable")[:k]
        return [(self.vocab[i], float(scores[i])) for i in best]

    # ----------------------------------------------------------------------- benchmarks

    def _upper_index(self) -> dict[str, int]:
        # gensim's case-insensitive lookup: upper-cased words, the most frequent spelling wins.
        return {w.upper(): i for i, w in reversed(list(enumerate(self.vocab)))}

    def evaluate_word_pairs(
        self, path: str | os.PathLike | None = None, delimiter: str = "\t"
    ) -> dict[str, float]:
        """Pearson and Spearman correlation of cosines with human scores, and coverage (the
        share of pairs whose two words are known; unknown pairs are left out)."""
        path = Path(path) if path is not None else benchmark_path("wordsim353")
        gold, pairs, unknown = self._known_pairs(path, delimiter)
        if not pairs:
            raise BenchmarkError(f"no pair of {path} has both words in the vocabulary")
        return self._correlations(gold, pairs, unknown)

    def _correlations(self, gold: list[float], pairs: list, unknown: int) -> dict[str, float]:
        import scipy.stats  # 0.6 s to import, paid only when a benchmark is scored

        left, right = (self._unit[np.array(side)] for side in zip(*pairs))
        model = np.sum(left * right, axis=1, dtype=np.float64)
        return {
            "pearson": float(scipy.stats.pearsonr(gold, model).statistic),
            "spearman": float(scipy.stats.spearmanr(gold, model).statistic),
            "coverage": len(gold) / (len(gold) + unknown),
            "pairs": len(gold),
        }

    def _known_pairs(self, path: Path, delimiter: str | None) -> tuple[list[float], list, int]:
        """The human scores and word indices of the pairs whose words are known, and how
        many pairs are not."""
        index, gold, pairs, unknown = self._upper_index(), [], [], 0
        for line in read_lines(path):
            if not line or line.startswith("#"):
                continue
            try:
                a, b, score = (part.upper() for part in line.split(delimiter))
                score = float(score)
            except ValueError:
                continue  # a header or malformed line, skipped as gensim does
            if a not in index or b not in index:
                unknown += 1
                continue
            gold.append(score)
            pairs.append((index[a], index[b]))
        return gold, pairs, unknown

    def evaluate_analogies(self, path: str | os.PathLike | None = None) -> dict:
        """Accuracy of 3CosAdd on analogy questions (``: section`` headers, then ``a b c d``
        lines), per section and in total, over the questions whose four words are known;
        ``coverage`` is their share of all questions."""
        path = Path(path) if path is not None else benchmark_path("google_analogies")
        sections, questions = read_analogies(path)
        index = self._upper_index()
        known = [q for q in questions if all(w in index for w in q[1:])]
        result = {
            "coverage": len(known) / max(len(questions), 1),
            "questions": len(known),
            "sections": {},
        }
        if not known:
            return {**result, "accuracy": 0.0}
        ids = np.array([[index[w] for w in q[1:]] for q in known], np.int32)
        correct = np.zeros(len(known), bool)
        # Bounded memory: [questions, V] float32 scores of at most _SCORES_BYTES at a time.
        rows = max(1, _SCORES_BYTES // (4 * len(self._unit)))
        for start in range(0, len(known), rows):
            block = ids[start : start + rows]
            scores = _analogy_scores(self._unit, *(block[:, j] for j in range(3)))
            correct[start : start + rows] = np.argmax(scores, axis=1) == block[:, 3]
        section_of = np.array([q[0] for q in known])
        for number, name in enumerate(sections):
            mine = section_of == number
            if mine.any():
                result["sections"][name] = float(correct[mine].mean())
        return {**result, "accuracy": float(correct.mean())}

    def evaluate_benchmarks(
        self,
        directory: str | os.PathLike | None = None,
        floor: float = COVERAGE_FLOOR,
        names: tuple[str, ...] | None = None,
    ) -> dict:
        """Every benchmark of ``BENCHMARK_FILES`` (or those of ``names``), from ``directory``
        or the copies shipped with w2v_jax: the word pairs' Spearman, Pearson and coverage,
        the analogies' accuracy and coverage; each says ``scored``. One whose vocabulary covers
        less than ``floor`` of it is not scored (a correlation over a handful of pairs means
        nothing): its entry holds its coverage and count only."""
        return {
            name: self._scored_analogies(path, floor)
            if name in ANALOGY_SETS
            else self._scored_pairs(path, floor)
            for name, path in benchmark_paths(directory, names).items()
        }

    def _scored_pairs(self, path: Path, floor: float) -> dict:
        # Fields split at any whitespace: MEN's are spaces, the others' tabs.
        gold, pairs, unknown = self._known_pairs(path, None)
        coverage = len(gold) / max(len(gold) + unknown, 1)
        if coverage >= floor and gold:
            return {**self._correlations(gold, pairs, unknown), "scored": True}
        return {"coverage": coverage, "pairs": len(gold), "scored": False}

    def _scored_analogies(self, path: Path, floor: float) -> dict:
        analogies = self.evaluate_analogies(path)
        if analogies["coverage"] >= floor and analogies["questions"]:
            return {**analogies, "scored": True}
        keep = ("coverage", "questions")
        return {**{key: analogies[key] for key in keep}, "scored": False}

    # ----------------------------------------------------------------------- word2vec format

    def without_unk(self) -> Embeddings:
        """These vectors without the ``<unk>`` row a run's vocabulary starts with (the rare
        words' stand-in, which training never updates: its vector is its random start), or
        these vectors when they hold none."""
        if UNK not in self.key_to_index:
            return self
        row = self.key_to_index[UNK]
        vocab = self.vocab[:row] + self.vocab[row + 1 :]
        return Embeddings(vocab, np.delete(np.asarray(self.vectors), row, axis=0))

    def save_word2vec_format(
        self, path: str | os.PathLike, binary: bool = False, keep_unk: bool = False
    ) -> None:
        """The original C tool's format: a ``V d`` header line, then each word and its values
        (text: shortest round-trip decimals; binary: little-endian float32 after the space).
        The untrained ``<unk>`` row is left out, as gensim's files have none, unless
        ``keep_unk``."""
        exported = self if keep_unk else self.without_unk()
        vectors = np.asarray(exported.vectors, np.float32)
        with records.replacing(Path(path)) as tmp, open(tmp, "wb") as out:
            out.write(f"{len(exported.vocab)} {vectors.shape[1]}\n".encode())
            for word, row in zip(exported.vocab, vectors):
                if binary:
                    out.write(word.encode("utf8") + b" " + row.astype("<f4").tobytes() + b"\n")
                else:
                    values = " ".join(map(str, row))  # float32's shortest round-trip form
                    out.write(f"{word} {values}\n".encode())

    # ----------------------------------------------------------------------- the projector

    def save_projector(
        self, directory: str | os.PathLike, keep_unk: bool = False
    ) -> tuple[Path, Path]:
        """The TensorBoard Embedding Projector's files (projector.tensorflow.org, "Load"):
        ``vectors.tsv`` (a row of tab-separated values per word) and ``metadata.tsv`` (the
        words, one a line, in the same order). Each is written whole or not at all. The
        untrained ``<unk>`` row is left out unless ``keep_unk``."""
        exported = self if keep_unk else self.without_unk()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        vectors, metadata = directory / "vectors.tsv", directory / "metadata.tsv"
        rows = np.asarray(exported.vectors, np.float32)
        records.write_text(vectors, "".join("\t".join(map(str, row)) + "\n" for row in rows))
        records.write_text(metadata, "".join(f"{word}\n" for word in exported.vocab))
        return vectors, metadata

    @classmethod
    def load_projector(cls, directory: str | os.PathLike) -> Embeddings:
        """Read the files ``save_projector`` writes."""
        directory = Path(directory)
        words = (directory / "metadata.tsv").read_text(encoding="utf8").split("\n")[:-1]
        rows = np.loadtxt(directory / "vectors.tsv", np.float32, delimiter="\t", ndmin=2)
        return cls(tuple(words), rows)

    @classmethod
    def load_word2vec_format(cls, path: str | os.PathLike, binary: bool = False) -> Embeddings:
        """Read the format ``save_word2vec_format`` writes (and gensim and the C tool write)."""
        with open(path, "rb") as f:
            count, dim = (int(x) for x in f.readline().split())
            words, rows = [], np.empty((count, dim), np.float32)
            for i in range(count):
                if binary:
                    word = _read_word(f)
                    rows[i] = np.frombuffer(f.read(4 * dim), "<f4")
                else:
                    word, *values = f.readline().decode("utf8").rstrip("\n").split(" ")
                    rows[i] = np.array(values[:dim], np.float32)
                words.append(word)
        return cls(tuple(words), rows)


def _read_word(f) -> str:
    """The next word of a binary word2vec file: bytes up to a space, skipping a line break."""
    chars = bytearray()
    while (ch := f.read(1)) != b" ":
        if not ch:
            raise ValueError("the binary word2vec file ends in the middle of a word")
        if ch != b"\n":
            chars += ch
    return chars.decode("utf8")
