"""Run a hyperparameter sweep on any corpus: each point in its own workdir, resumable, then a
summary.

    python -m experiments.sweep NAME [--list] [--corpus PATH ...] [--metric wordsim353_spearman]
        [--vectorise auto|on|off]

NAME is a module of experiments/sweeps/; the corpus is PTB unless ``--corpus`` names text files,
directories or globs (read as ``experiments.train`` reads them). Every point is checked to be a
valid Config before anything runs. A point's workdir is ``runs/sweeps/NAME/<point-id>/`` on PTB
(``--out results/sweeps`` refreshes the committed summaries), ``runs/sweeps/NAME/<corpus>-<key>/
<point-id>/`` on another corpus: it is the point's run's workdir, holding what the main job
writes (checkpoints, ``metrics.json`` with the evaluation, ``loss.png``: ``python -m
experiments.vectors <point>`` and ``Embeddings.from_checkpoint`` open it) and ``config.json``,
written before it trains. Points whose metrics.json holds their evaluation are skipped and a
point killed midway resumes from its newest checkpoint, so a killed sweep resumes where it
stopped. Points that differ only in learning rate or Adam's betas can train together in one
program (``--vectorise on``; by default, ``auto``, only off the CPU, where it is slower: see
results/sweeps/README.md), their checkpoints in ``groups/<key>/``, each point's tables,
metrics.json and loss.png written into its own workdir at the end. The summary is
``summary.csv`` (every benchmark's score, the final loss, centers/s), ``README.md`` (sorted by
the metric, any of those, also printed at the end) and
``<metric>.png`` (the metric against each swept parameter) in the sweep's directory. ``--list``
prints the points and their count and trains nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import jax
import tyro
from tqdm.auto import tqdm

from experiments import common, flags, sweep_summary, sweeps
from w2v_jax import presets, run
from w2v_jax.config import Config
from w2v_jax.corpus_config import PTB, CorpusConfig
from w2v_jax.evaluation import report
from w2v_jax.evaluation.report import Evaluation
from w2v_jax.training import checkpoint, curves, records

DEFAULT_OUT = common.RUNS / "sweeps"


@dataclasses.dataclass(frozen=True)
class Point:
    """One point of a sweep: its overrides, its full config and where its results go."""

    overrides: dict[str, Any]
    config: Config
    workdir: Path

    @property
    def finished(self) -> bool:
        """Whether its run's metrics.json holds its evaluation, or its divergence (a run
        killed while evaluated is trained on: it resumes at its end and evaluates)."""
        try:
            metrics = json.loads((self.workdir / "metrics.json").read_text())
        except (OSError, ValueError):
            return False
        return "evaluation" in metrics or sweep_summary.status(metrics) == "diverged"


def point_id(overrides: dict[str, Any]) -> str:
    """A directory name that says what the point changes, e.g.
    ``optimizer.lr=0.01,optimizer.name=adam``."""
    return ",".join(f"{name}={value}" for name, value in sorted(overrides.items())) or "base"


def expand(name: str, directory: Path) -> tuple[list[Point], str]:
    """The sweep's points, each in ``directory / <point id>``, and its metric; an invalid
    point raises ValueError naming it."""
    module = sweeps.load(name)
    base = getattr(module, "BASE", {})
    points = []
    for index, overrides in enumerate(module.points()):
        try:
            config = Config().replace(**{**base, **overrides})
        except (TypeError, ValueError) as err:
            raise ValueError(f"sweep {name!r}, point {index} {overrides}: {err}") from err
        points.append(Point(overrides, config, directory / point_id(overrides)))
    ids = [p.workdir for p in points]
    if len(set(ids)) != len(ids):
        raise ValueError(f"sweep {name!r} lists a point twice")
    return points, getattr(module, "METRIC", sweep_summary.DEFAULT_METRIC)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SweepFlags(common.CorpusFlags):
    name: Annotated[
        str,
        flags.Positional,
        tyro.conf.arg(
            metavar="NAME", help=f"A sweep of experiments/sweeps/: {', '.join(sweeps.available())}."
        ),
    ]
    list: bool = False
    """Print the sweep's points, their count and which are finished; train nothing."""
    out: Path = DEFAULT_OUT
    """Where the sweep's directory goes (results/sweeps refreshes the committed summaries)."""
    metric: str | None = None
    """The summary's sort key (None: the sweep's, else wordsim353_spearman): a benchmark's
    score (wordsim353_spearman, men_spearman, google_analogies_accuracy, ...), the final loss
    or centers/s."""
    vectorise: Literal["auto", "on", "off"] = "auto"
    """Train points differing only in lr / Adam betas together ("auto": on a GPU or TPU, not
    on the CPU, where it is slower)."""
    corpus: Annotated[tuple[str, ...], tyro.conf.arg(metavar="PATH")] = (PTB,)
    """Text files, directories or globs (.gz, .bz2, .xz read as such); ptb: PTB."""
    data_dir: str | None = None
    """Directory of ptb.zip (None: $W2V_JAX_DATA, else the user cache)."""
    cache_dir: Path | None = None
    """Where encoded corpora are kept (None: $W2V_JAX_CACHE, else the user cache)."""


def parse_args(argv: list[str] | None = None) -> SweepFlags:
    return flags.cli(
        SweepFlags,
        argv,
        description=flags.summary(__doc__),
        hidden=common.READ_ELSEWHERE,
        renamed=common.RENAMED,
        in_flags=common.in_flags,
        prog="python -m experiments.sweep",
    )


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    try:
        corpus = args.corpus_config
        directory = sweep_directory(args.out, args.name, corpus)
        points, metric = expand(args.name, directory)
        metric = args.metric or metric
        if metric not in sweep_summary.METRICS:
            raise ValueError(f"unknown metric {metric!r}; metrics: {sweep_summary.METRICS}")
        if args.list:
            print_points(args.name, points)
            return []
        vectorise = args.vectorise == "on" or (
            args.vectorise == "auto" and jax.default_backend() != "cpu"
        )
        run_points(points, Source(corpus, args.data_dir, args.cache_dir), vectorise)
    except KeyboardInterrupt:
        print(
            "interrupted; run the same command to train the points that have no metrics.json",
            file=sys.stderr,
        )
        raise SystemExit(130) from None
    except common.USER_ERRORS as err:  # the corpus, a point's workdir: said in flags
        raise SystemExit(f"error: {common.in_flags(str(err))}") from None
    except ValueError as err:  # of a sweep module's points: said in Python
        raise SystemExit(f"error: {err}") from None
    command = " ".join(["python -m experiments.sweep", *(sys.argv[1:] if argv is None else argv)])
    rows = sweep_summary.write(points, directory, metric, args.name, command)
    print((directory / "README.md").read_text(), end="")
    print(f"wrote the summary of {len(rows)} points to {directory}")
    return rows


def sweep_directory(out: Path, name: str, corpus: CorpusConfig) -> Path:
    """Where a sweep's points go: ``out/NAME`` on PTB, ``out/NAME/<corpus>-<key>`` on another
    corpus (the key a hash of how it is read), so that points trained on one corpus are never
    taken for another's."""
    if corpus.is_ptb and corpus == CorpusConfig():
        return out / name
    key = hashlib.sha1(json.dumps(corpus.to_dict(), sort_keys=True).encode()).hexdigest()[:8]
    return out / name / f"{corpus.name}-{key}"


def print_points(name: str, points: list[Point]) -> None:
    """The sweep's points, one a line (its workdir's name, finished or not), the count, and
    what every point trains: the book's configuration with the sweep's base and its own
    settings, whatever the corpus (not the own-text default, ``presets.OWN_TEXT``)."""
    for point in points:
        print(f"{point.workdir.name}{'  (finished)' if point.finished else ''}")
    done = sum(point.finished for point in points)
    print(f"sweep {name}: {len(points)} points, {done} finished, in {points[0].workdir.parent}")
    base = getattr(sweeps.load(name), "BASE", {})
    under = f" under the sweep's base ({point_id(base)})" if base else ""
    print(
        f"each point trains the book's configuration{under} with the settings of its name, "
        f"not the {presets.OWN_TEXT} preset that experiments.train gives a corpus of one's own"
    )


@dataclasses.dataclass(frozen=True)
class Source:
    """The sweep's corpus and where its files are kept."""

    corpus: CorpusConfig = dataclasses.field(default_factory=CorpusConfig)
    data_dir: str | None = None
    cache_dir: str | None = None


def run_points(points: list[Point], source: Source, vectorise: bool) -> None:
    """Train and evaluate every unfinished point; each writes its metrics.json when done."""
    todo = [p for p in points if not p.finished]
    print(f"{len(points) - len(todo)} of {len(points)} points already finished", file=sys.stderr)
    for point in todo:
        common.write_json(point.workdir / "config.json", point.config.to_dict())
    groups = (
        run.groups_trainable_together([p.config for p in todo])
        if vectorise
        else [[i] for i in range(len(todo))]
    )
    cache: dict[tuple, run.Data] = {}
    with tqdm(total=len(points), initial=len(points) - len(todo), unit="point") as bar:
        for group in groups:
            members = [todo[i] for i in group]
            train_points(members, _prepared(members[0].config, source, cache), vectorise)
            bar.update(len(members))


def train_points(points: list[Point], prepared: run.Data, vectorise: bool) -> None:
    """Points trained together in one program, or one run after another."""
    if vectorise:
        train_together(points, prepared)
    else:
        for point in points:
            train_alone(point, prepared)


def group_workdir(points: list[Point]) -> Path:
    """Where points trained together keep their one program's checkpoints."""
    key = hashlib.sha1("\n".join(p.workdir.name for p in points).encode()).hexdigest()[:12]
    return points[0].workdir.parent / "groups" / key


def train_alone(point: Point, prepared: run.Data) -> None:
    """One point as the main job trains a run, in its workdir (resumed from its newest
    checkpoint); one whose loss turns non-finite records that in its metrics.json."""
    try:
        run.train(
            point.config,
            data=prepared,
            progress=False,
            workdir=point.workdir,
            evaluation=EVALUATION,
        )
    except FloatingPointError as err:
        config = point.config.to_dict()
        diverged = {"config": config, **records.where_it_ran(), "diverged": str(err)}
        common.write_json(point.workdir / "metrics.json", diverged)


def train_together(points: list[Point], prepared: run.Data) -> None:
    """Points trained in one program, its checkpoints in ``group_workdir``; each point's
    curves written into its own workdir as it trains, its tables, metrics.json and loss.png
    at the end, as a run trained alone writes them."""
    runs = run.train(
        [p.config for p in points],
        data=prepared,
        progress=False,
        workdir=group_workdir(points),
        evaluation=EVALUATION,
        tensorboard=[point.workdir / curves.DIRECTORY for point in points],
    )
    for point, trained in zip(points, runs):
        if trained.diverged is None:
            save_alone(trained, point.workdir)
        report.write_alone(trained, point.workdir)


EVALUATION = Evaluation()
"""What each point's run evaluates: what the main job does (the benchmarks, neighbours)."""


def save_alone(trained: run.Run, directory: Path) -> None:
    """A run trained with others, saved as a checkpoint of its own (its tables, config and
    vocabulary: what opening it needs), so that it opens as a run trained alone would."""
    manager = checkpoint.open_manager(directory / "checkpoints", max_to_keep=1)
    step = int(trained.state.step)
    vocab = json.loads(trained.vocab.to_json())
    config = {**trained.config.to_dict(), "corpus": trained.data.corpus.to_dict()}
    checkpoint.save(manager, step, trained.params, (), {"step": step}, config, vocab)
    manager.wait_until_finished()
    manager.close()


def _prepared(config: Config, source: Source, cache: dict[tuple, run.Data]) -> run.Data:
    """The data stage of ``config``, shared by the points whose data draws are the same."""
    key = config.data_key()
    if key not in cache:
        cache[key] = run.prepare(config, source.corpus, source.data_dir, source.cache_dir)
    return cache[key]


if __name__ == "__main__":
    main()
