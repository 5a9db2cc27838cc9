"""Helpers for exploring vectors: probe words (the default query words of a run) and an analogy
question from a run's own vocabulary when the usual ones are absent, and a 2-D PCA map whose
labels do not overprint one another."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from w2v_jax.evaluation.benchmark_files import benchmark_path, read_analogies
from w2v_jax.evaluation.evaluate import Embeddings
from w2v_jax.training import checkpoint

STOP_WORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just may me might more most must my myself no nor not now of off on
    once only or other our ours ourselves out over own same shall she should so some such than
    that the their theirs them themselves then there these they this those through to too
    under until up upon very was we were what when where which while who whom whose why will
    with would yet you your yours yourself yourselves
    ain aren couldn didn doesn don hadn hasn haven isn mightn mustn needn shan shouldn wasn
    weren won wouldn""".split()
)
"""English function words (NLTK's list with the modal verbs): never chosen as probe words.
The last lines are what a tokenizer that splits on apostrophes leaves of the negative
contractions (don't -> don), which NLTK's list holds too."""


def probe_words(words: Sequence[str], count: int = 3) -> list[str]:
    """The ``count`` most frequent content words of a vocabulary listed most frequent first
    (a run's, a checkpoint's): words of letters only, at least three long, not in
    ``STOP_WORDS``; when there are too few, the most frequent other words with a letter in
    them (``w0``, ``2nd``) that are not stop words either."""

    def content(word: str) -> bool:
        return word.isalpha() and len(word) >= 3 and word.lower() not in STOP_WORDS

    def other(word: str) -> bool:
        return (
            not content(word)
            and word != "<unk>"
            and any(c.isalpha() for c in word)
            and word.lower() not in STOP_WORDS
        )

    chosen = list(itertools.islice(filter(content, words), count))
    return chosen + list(itertools.islice(filter(other, words), count - len(chosen)))


FUNCTION_WORD_RANKS = 200
"""How many of a vocabulary's most frequent words are taken for its function words when they
are not English ones (``query_words``): in any language the commonest words are mostly
articles, pronouns, prepositions and auxiliaries (German's first hundred are nearly all)."""


def looks_english(words: Sequence[str], top: int = 50) -> bool:
    """Whether at least a third of the ``top`` most frequent words of a vocabulary (listed
    most frequent first) are English function words (``STOP_WORDS``)."""
    first = [word for word in itertools.islice(words, top + 1) if word != "<unk>"][:top]
    return 3 * sum(word.lower() in STOP_WORDS for word in first) >= len(first)


def query_words(words: Sequence[str], count: int = 3) -> tuple[list[str], str]:
    """A run's words to show, and what they are in words: in an English vocabulary, its
    ``count`` most frequent content words (``probe_words``); in any other of ten times
    ``FUNCTION_WORD_RANKS`` words or more, the most frequent content words after its
    ``FUNCTION_WORD_RANKS`` most frequent, which the English list cannot tell from its
    function words (German's die, der, und)."""
    if len(words) < 10 * FUNCTION_WORD_RANKS or looks_english(words):
        # A vocabulary of a few hundred words is no language's (a test's, a made corpus's).
        return probe_words(words, count), "the most frequent content words"
    # The 1 is the <unk> a run's vocabulary starts with.
    return probe_words(words[FUNCTION_WORD_RANKS + 1 :], count), (
        f"the most frequent words after the {FUNCTION_WORD_RANKS} most frequent (which are "
        f"not English function words: taken for this corpus's own)"
    )


def trained_on_ptb(workdir: str | os.PathLike) -> bool:
    """Whether the run's metrics.json says it trained on PTB (no metrics.json: not known, so
    not taken to be)."""
    path = checkpoint.checkpoint_dir(workdir).parent / "metrics.json"
    try:
        return json.loads(path.read_text())["corpus"]["paths"] == ["ptb"]
    except (OSError, ValueError, KeyError, TypeError):
        return False


def words_to_show(
    embeddings: Embeddings, ptb_words: Sequence[str], count: int, on_ptb: bool
) -> tuple[list[str], str]:
    """The words a notebook shows of a run, and what they are in words: on a PTB run, the
    book's ``ptb_words`` its vocabulary holds; on any other, ``count`` of its own
    (``query_words``)."""
    if on_ptb:
        return [word for word in ptb_words if word in embeddings], "PTB words"
    words, what = query_words(embeddings.vocab, count)
    return words, f"this run's words: {what}"


def analogy_question(
    embeddings: Embeddings, wanted: tuple[str, str, str]
) -> tuple[str, str, str] | None:
    """``wanted`` (a, b, c of "a is to b as c is to ?") when the vocabulary holds its words,
    else the first Google analogy question all four of whose words it holds (None: none)."""
    if all(word in embeddings for word in wanted):
        return wanted
    lower = {word.lower(): word for word in reversed(embeddings.vocab)}
    for _, *words in read_analogies(benchmark_path("google_analogies"))[1]:
        if all(word.lower() in lower for word in words):
            return tuple(lower[word.lower()] for word in words[:3])
    return None


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """Rows projected on their first two principal components, [n, 2]."""
    centred = np.asarray(vectors, np.float64) - np.mean(vectors, axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return centred @ components[:2].T


if TYPE_CHECKING:
    from matplotlib.figure import Figure


def word_map(embeddings: Embeddings, words: Sequence[str], size=(8, 7)) -> Figure:
    """A scatter of ``words`` on the first two principal components of their vectors, each
    labelled where its label overlaps no other (``place_labels``)."""
    xy = pca_2d(np.stack([embeddings[word] for word in words]))
    # Imported here: a run imports this module for its probe words, and matplotlib costs a
    # third of a second to import.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size)
    FigureCanvasAgg(figure)  # measures the labels; no window, no pyplot state
    ax = figure.add_subplot()
    ax.scatter(xy[:, 0], xy[:, 1], s=12)
    ax.set_title(f"PCA of {len(words)} word vectors")
    place_labels(ax, xy, words)
    return figure


# Where a label may go, in points from its marker: nearest first, then farther out.
_DIRECTIONS = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1)]
_RADII = (4, 10, 18, 28, 40, 55, 75)


def place_labels(ax, xy: np.ndarray, words: Sequence[str], fontsize: int = 9) -> list:
    """Label each point with its word at the nearest offset where the label's box overlaps no
    label placed before and no marker; a label moved away from its point gets a thin leader
    line. Returns the labels (matplotlib Annotations)."""
    renderer = ax.figure.canvas.get_renderer()
    ax.figure.canvas.draw()  # the axes' limits as they will be drawn
    markers = [_box_around(ax.transData.transform(point), 3) for point in xy]
    placed, labels = [], []
    for index, (word, point) in enumerate(zip(words, xy)):
        label, box = None, None
        for radius, (dx, dy) in itertools.product(_RADII, _DIRECTIONS):
            if label is not None:
                label.remove()
            label = _annotate(ax, word, point, (dx * radius, dy * radius), fontsize)
            box = label.get_window_extent(renderer)
            others = [*placed, *(m for j, m in enumerate(markers) if j != index)]
            if not any(box.overlaps(other) for other in others):
                break
        if max(abs(v) for v in label.xyann) > _RADII[1]:  # far from its point: a leader
            ax.annotate(
                "",
                point,
                xytext=label.xyann,
                textcoords="offset points",
                arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.6"},
            )
        placed.append(box)
        labels.append(label)
    return labels


def _annotate(ax, word: str, point, offset, fontsize: int):
    dx, dy = offset
    return ax.annotate(
        word,
        point,
        xytext=(dx, dy),
        textcoords="offset points",
        fontsize=fontsize,
        ha="left" if dx > 0 else "right" if dx < 0 else "center",
        va="bottom" if dy > 0 else "top" if dy < 0 else "center",
    )


def _box_around(center, half: float):
    from matplotlib.transforms import Bbox

    x, y = center
    return Bbox([[x - half, y - half], [x + half, y + half]])
