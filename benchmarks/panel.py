"""gensim and w2v_jax side by side on a panel of real corpora of different kinds, and what each
lever of ours does there.

    python -m benchmarks.panel build [--corpora NAME ...] [--data-dir DIR] [--out runs/panel]
    python -m benchmarks.panel run [--corpora NAME ...] [--systems NAME ...] [--seeds 3]
        [--out runs/panel]

``build`` writes each corpus (``benchmarks.panel_corpora``: dictionaries, the kernel's
documentation, 19th-century commentaries, software manuals, and PTB) as lines of words, so
that every system reads the same tokens on whitespace. ``run`` trains each system of
``--systems`` on each corpus for each seed, each run a process of its own with min count 5 and
the book's window (5), noise words (5), t (1e-4) and d (100): gensim in its ``corpus_file``
mode with 2 workers (every core here) at 5 and 15 epochs, and ``python -m experiments.train``
with its default (the preset for one's own text) and with one lever changed at a time; and
CBOW beside skip-gram, gensim's (``sg=0, cbow_mean=1``, 5 epochs) against ours
(``--objective cbow``). Ours
encodes the corpus anew every run (a fresh cache), as a first run does; every run is timed as
a whole process less its evaluation (to trained vectors) and scored by the same evaluator.
A run's results join those already in ``--out`` (a run of the same corpus, system and seed
replaces its old one), so that the panel can be run a part at a time.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import harness, panel_corpora
from w2v_jax.evaluation import measures

RUNS = harness.RUNS / "panel"
MIN_COUNT = 5
QUERY_WORDS = ("king", "water", "music", "file", "god")
# Seed-to-seed agreement: the top PROBE_NEIGHBOURS neighbours of PROBES common words of each
# corpus, compared between every two seeds of a system.
PROBES, PROBE_NEIGHBOURS = 8, 10
DEFAULT = "w2v_jax, default"
PEER = "gensim, 5 epochs"
CBOW = "w2v_jax CBOW, default"
CBOW_PEER = "gensim CBOW, 5 epochs"

# A system's "peer" is the one its scores and time are compared with (default PEER).
SYSTEMS: dict[str, dict] = {
    PEER: {"gensim": 5},
    CBOW_PEER: {"gensim": 5, "sg": 0, "peer": CBOW_PEER},
    CBOW: {"flags": ["--objective", "cbow"], "peer": CBOW_PEER},
    "gensim, 15 epochs": {"gensim": 15},
    DEFAULT: {"flags": []},
    # Levers: the default with one option changed.
    "the first epoch's draws every epoch (before)": {
        "flags": ["--no-resample-each-epoch", "--no-subsample-each-epoch"]
    },
    "the subsampling drawn once": {"flags": ["--no-subsample-each-epoch"]},
    "loss per slot (word2vec's weighting)": {"flags": ["--loss-weighting", "per_slot"]},
    "noise words shared by 4x fewer centers": {"flags": ["--noise.groups", "64"]},
    "rate decaying linearly (word2vec's)": {"flags": ["--optimizer.schedule", "linear"]},
    "half the rate (0.1)": {"flags": ["--optimizer.lr", "0.1"]},
    "row-sparse SGD, decaying (word2vec's optimiser)": {
        "flags": ["--optimizer.name", "sparse_sgd"]
    },
    "3 epochs": {"flags": ["--num-epochs", "3"]},
    "noise words per context (the book's estimator)": {"flags": ["--noise.sharing", "per_context"]},
    "the batch order drawn on the device": {"flags": ["--shuffle", "device"]},
}
TIMED = ("process_seconds", "train_seconds", "peak_rss_mib")
MEASURED = ("wordsim353_spearman", "simlex999_spearman", "analogy_accuracy")


def run_gensim(path: str, epochs: int, seed: int, sg: int = 1, probes: list[str] = ()) -> dict:
    """gensim's skip-gram (``sg`` 1) or CBOW (0, the mean of the contexts) on ``path``
    (corpus_file, every core); evaluation timed apart."""
    from gensim.models import Word2Vec

    start = time.perf_counter()
    model = Word2Vec(
        corpus_file=path,
        sg=sg,
        cbow_mean=1,
        vector_size=100,
        window=5,
        negative=5,
        sample=1e-4,
        min_count=MIN_COUNT,
        workers=os.cpu_count(),
        seed=seed,
        epochs=epochs,
    )
    train_seconds = time.perf_counter() - start
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    from w2v_jax.evaluation.evaluate import Embeddings

    vectors = Embeddings(tuple(model.wv.index_to_key), model.wv.vectors)
    return {
        "train_seconds": train_seconds,
        "peak_rss_mib": peak_rss_mib,
        "vocab_size": len(model.wv),
        **measures.quality(vectors.evaluate_benchmarks()),
        "neighbours": {
            w: [n for n, _ in vectors.most_similar(w, PROBE_NEIGHBOURS)]
            for w in (*QUERY_WORDS, *probes)
            if w in vectors
        },
        "evaluation_seconds": time.perf_counter() - start,
    }


def run_w2v_jax(job_flags: list[str], path: str, seed: int, probes: list[str] = ()) -> dict:
    """``python -m experiments.train`` on ``path`` with ``job_flags``, timed from outside."""
    with tempfile.TemporaryDirectory() as workdir:
        command = [
            sys.executable,
            "-m",
            "experiments.train",
            "--corpus",
            path,
            *job_flags,
            *("--min-freq", str(MIN_COUNT), "--seed", str(seed)),
            *("--workdir", workdir, "--cache-dir", f"{workdir}/cache", "--no-progress"),
            *("--query", *QUERY_WORDS, *probes, "--neighbours", str(PROBE_NEIGHBOURS)),
        ]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stderr[-2000:]}")
        metrics = json.loads((Path(workdir) / "metrics.json").read_text())
    scoring = sum(epoch.get("scoring_seconds", 0.0) for epoch in metrics["epochs"])
    return {
        # To trained vectors, as gensim's: the process less its evaluation (at the end and, on
        # by default for one's own text, at each epoch's end).
        "process_seconds": seconds - metrics["evaluation_seconds"] - scoring,
        "scoring_seconds": scoring,
        "evaluation_seconds": metrics["evaluation_seconds"],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "train_seconds": sum(e["seconds"] for e in metrics["epochs"]),
        "vocab_size": metrics["vocab_size"],
        "final_loss": metrics["final_loss"],
        **measures.quality(metrics["evaluation"]),
        "neighbours": {w: [n for n, _ in p] for w, p in metrics["neighbours"].items()},
    }


def run_system(system: str, corpus: Path, seed: int, probes: list[str]) -> dict:
    """One seed of ``system`` on ``corpus``, in a process of its own, with the neighbours of
    ``probes``."""
    spec = SYSTEMS[system]
    if "gensim" in spec:
        # Its peak RSS is its own (measured inside: the harness's is the most of any child).
        result, wall, _ = harness.in_fresh_process(
            run_gensim, str(corpus), spec["gensim"], seed, spec.get("sg", 1), probes
        )
        result["process_seconds"] = wall - result["evaluation_seconds"]
    else:
        job = (spec["flags"], str(corpus), seed, probes)
        result = harness.in_fresh_process(run_w2v_jax, *job)[0]
    return {"corpus": corpus.stem, "system": system, "seed": seed, **result}


def probe_words(path: Path) -> list[str]:
    """``PROBES`` common words of the corpus at ``path`` for the seeds' agreement: its most
    frequent content words as a run picks its query words (``explore.probe_words``: letters
    only, three or more, not English function words), the same for every system."""
    from w2v_jax.evaluation import explore

    counts: collections.Counter = collections.Counter()
    with open(path) as text:
        for line in text:
            counts.update(line.split())
    return explore.probe_words([word for word, _ in counts.most_common()], PROBES)


def agreement(runs: list[dict], probes: list[str]) -> dict | None:
    """How alike the seeds of one system are: for every two of ``runs``, the number of
    ``probes``' top ``PROBE_NEIGHBOURS`` neighbours the two share (of probes x neighbours);
    the mean, least and most over the pairs. None without two runs that hold the probes."""
    held = [r for r in runs if probes and all(w in r.get("neighbours", {}) for w in probes)]
    shared = [
        sum(len(_top(a, word) & _top(b, word)) for word in probes)
        for a, b in itertools.combinations(held, 2)
    ]
    if not shared:
        return None
    return {
        "mean": statistics.fmean(shared),
        "min": min(shared),
        "max": max(shared),
        "of": len(probes) * PROBE_NEIGHBOURS,
        "pairs": len(shared),
    }


def _top(run: dict, word: str) -> set[str]:
    return set(run["neighbours"][word][:PROBE_NEIGHBOURS])


# ----------------------------------------------------------------------- the report


def summarise(runs: list[dict], probes: dict[str, list[str]]) -> dict[str, dict[str, dict]]:
    """corpus -> system -> the figures over its seeds (``probes``: each corpus's probe words)."""
    corpora: dict[str, dict[str, dict]] = {}
    for corpus in panel_corpora.CORPORA:
        for system in SYSTEMS:
            mine = [r for r in runs if r["corpus"] == corpus and r["system"] == system]
            if mine:
                entry = harness.over_seeds(mine, TIMED, MEASURED)
                entry["agreement"] = agreement(mine, probes.get(corpus, []))
                corpora.setdefault(corpus, {})[system] = {**entry, "seeds": len(mine)}
    return corpora


def _score(entry: dict, name: str, base: dict | None = None) -> str:
    value = entry[name]
    if value is None:
        return "not scored"
    delta = ""
    if base is not None and base is not entry and base[name] is not None:
        delta = f" ({value['mean'] - base[name]['mean']:+.3f})"
    return f"{value['mean']:.3f} ± {value['sd']:.3f}{delta}"


def corpus_table(systems: dict[str, dict]) -> list[str]:
    rows = []
    for system, entry in systems.items():
        peer = systems.get(SYSTEMS[system].get("peer", PEER))
        ratio = f"{entry['process_seconds'] / peer['process_seconds']:.2f}x" if peer else ""
        rows.append(
            [
                system,
                entry["seeds"],
                f"{entry['process_seconds']:.1f} s",
                ratio,
                f"{entry['peak_rss_mib']:,.0f} MiB",
                *(_score(entry, name, peer) for name in MEASURED),
                _agreement(entry.get("agreement")),
            ]
        )
    columns = ["system", "seeds", "whole process", "against its gensim 5", "peak RSS"]
    measures_ = ["WordSim353", "SimLex-999", "analogies", "seeds agree"]
    return harness.table([*columns, *measures_], rows)


def _agreement(value: dict | None) -> str:
    if value is None:
        return "not measured"
    return f"{value['mean']:.1f} of {value['of']}"


def standing(corpora: dict[str, dict[str, dict]], system: str = DEFAULT) -> list[str]:
    """``system`` against its gensim peer's 5 epochs on every corpus: the figures of the
    issues."""
    rows = []
    for corpus, ours, peer in _beside_peer(corpora, system):
        cells = [_scored(ours, peer, name, _gap) for name in MEASURED]
        ratio = ours["process_seconds"] / peer["process_seconds"]
        rows.append([corpus, *cells, f"{ratio:.2f}x ({'reached' if ratio <= 0.6 else 'not'})"])
    columns = ["corpus", "WordSim353", "SimLex-999", "analogies", "time (target 0.6x)"]
    return harness.table(columns, rows)


def _beside_peer(corpora: dict[str, dict[str, dict]], system: str):
    """(corpus, system's entry, its gensim peer's entry) for each corpus that holds both."""
    for corpus, systems in corpora.items():
        ours, peer = systems.get(system), systems.get(SYSTEMS[system].get("peer", PEER))
        if ours and peer:
            yield corpus, ours, peer


def _scored(ours: dict, peer: dict, name: str, cell: Callable[[dict, dict], str]) -> str:
    """``cell`` of the measure ``name``'s figures (ours, the peer's), where both scored it."""
    if ours[name] is None or peer[name] is None:
        return "not scored"
    return cell(ours[name], peer[name])


def _gap(ours: dict, peer: dict) -> str:
    value = ours["mean"] - peer["mean"]
    return f"{value:+.3f} ({'reached' if value >= 0 else 'not reached'})"


def _spread(ours: dict, peer: dict) -> str:
    steady = ours["sd"] <= max(SPREAD_FACTOR * peer["sd"], SPREAD_FLOOR)
    return f"{ours['sd']:.3f} / {peer['sd']:.3f} ({'reached' if steady else 'not reached'})"


SPREAD_FACTOR, SPREAD_FLOOR = 1.5, 0.01
"""A system's seed spread is as steady as its peer's when each measure's SD is at most
SPREAD_FACTOR times the peer's, or at most SPREAD_FLOOR."""


def steadiness(corpora: dict[str, dict[str, dict]], system: str = DEFAULT) -> list[str]:
    """``system``'s spread over the seeds against its gensim peer's on every corpus: each
    measure's SD beside the peer's, and how many probe neighbours two seeds share."""
    rows = []
    for corpus, ours, peer in _beside_peer(corpora, system):
        if min(ours["seeds"], peer["seeds"]) < 2:
            continue
        cells = [_scored(ours, peer, name, _spread) for name in MEASURED]
        mine, theirs = ours.get("agreement"), peer.get("agreement")
        if mine is None or theirs is None:
            cells.append("not measured")
        else:
            reached = "reached" if mine["mean"] >= theirs["mean"] else "not reached"
            cells.append(f"{_agreement(mine)} / {theirs['mean']:.1f} ({reached})")
        rows.append([corpus, *cells])
    if not rows:
        return []
    columns = ["corpus", "WordSim353 sd", "SimLex-999 sd", "analogies sd", "seeds agree"]
    return harness.table(columns, rows)


def paired(runs: list[dict], corpus: str, system: str, base: str = DEFAULT) -> dict | None:
    """``system`` against ``base`` on ``corpus``, seed by seed: for each measure, the mean and
    standard deviation of the differences over the seeds both ran (a lever's effect with the
    seed's own luck taken out), and those seeds; None when they share no seed."""
    by_seed = {
        name: {r["seed"]: r for r in runs if r["corpus"] == corpus and r["system"] == name}
        for name in (system, base)
    }
    seeds = sorted(set(by_seed[system]) & set(by_seed[base]))
    if not seeds:
        return None
    entry: dict = {"seeds": seeds}
    for name in MEASURED:
        differences = [
            by_seed[system][seed][name] - by_seed[base][seed][name]
            for seed in seeds
            if by_seed[system][seed].get(name) is not None
            and by_seed[base][seed].get(name) is not None
        ]
        entry[name] = (
            {"mean": statistics.fmean(differences), "sd": _sd(differences)} if differences else None
        )
    return entry


def _sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def levers_table(runs: list[dict], corpus: str, systems: dict[str, dict]) -> list[str]:
    """Every w2v_jax system of ``corpus`` against its default of the same objective, paired
    by seed."""
    rows = []
    for system in systems:
        spec = SYSTEMS.get(system, {})
        base = CBOW if spec.get("peer") == CBOW_PEER else DEFAULT
        if system == base or "gensim" in spec:
            continue
        entry = paired(runs, corpus, system, base)
        if entry is None:
            continue
        cells = [
            "not scored" if entry[name] is None else
            f"{entry[name]['mean']:+.3f} ± {entry[name]['sd']:.3f}"
            for name in MEASURED
        ]  # fmt: skip
        rows.append([system, base, len(entry["seeds"]), *cells])
    if not rows:
        return []
    columns = ["lever", "against", "seeds paired", "WordSim353", "SimLex-999", "analogies"]
    return [
        "The levers against the default, seed by seed (mean ± sd of the differences):",
        "",
        *harness.table(columns, rows),
        "",
    ]


def report(results: dict) -> str:
    corpora = results["corpora"]
    lines = [
        "# The panel of real corpora",
        "",
        f"{' then '.join(f'`{command}`' for command in results['commands'])} on "
        f"{results['machine']} ({results['device']}). Corpora built by "
        f"`python -m benchmarks.panel build` (`benchmarks/panel_corpora.py` names their "
        f"packages and licences). Whole process to trained vectors (medians), peak RSS, and "
        f"mean ± sd of the scores over the seeds; in brackets, the difference from gensim's "
        f"5 epochs of the same objective.",
        "",
        "## The default against gensim's 5 epochs (the difference of the means; the time ratio)",
        "",
        *standing(corpora),
        "",
        "Over the seeds, against gensim's 5 epochs: each measure's SD (ours / gensim's; reached "
        f"at most {SPREAD_FACTOR}x gensim's or {SPREAD_FLOOR}) and the top {PROBE_NEIGHBOURS} "
        f"neighbours of {PROBES} common words (`panel.probe_words`) that two seeds share, the "
        "mean over every two seeds (ours / gensim's):",
        "",
        *steadiness(corpora),
        "",
        "## CBOW against gensim's CBOW, 5 epochs (the difference of the means; the time ratio)",
        "",
        *standing(corpora, CBOW),
        "",
        *steadiness(corpora, CBOW),
        "",
    ]
    for corpus, systems in corpora.items():
        info = results["sizes"].get(corpus, {})
        size = f" ({info['tokens']:,} tokens, {info['lines']:,} lines)" if info else ""
        lines += [f"## {corpus}{size}", "", *corpus_table(systems), ""]
        lines += levers_table(results["runs"], corpus, systems)
    return "\n".join(lines)


def corpus_size(path: Path) -> dict:
    lines = tokens = 0
    with open(path) as text:
        for line in text:
            lines += 1
            tokens += len(line.split())
    return {"lines": lines, "tokens": tokens}


def parse_args(argv: list[str] | None = None):
    parser = harness.command_line(__doc__)
    parser.add_argument("what", choices=["build", "run"])
    parser.add_argument(
        "--corpora", nargs="+", default=list(panel_corpora.CORPORA), choices=panel_corpora.CORPORA
    )
    parser.add_argument("--systems", nargs="+", default=[PEER, DEFAULT], choices=list(SYSTEMS))
    parser.add_argument("--seeds", type=harness.at_least_one, default=3)
    parser.add_argument("--data-dir", type=Path, default=None, help="directory of ptb.zip")
    parser.add_argument("--corpus-dir", type=Path, default=RUNS, help="where build wrote them")
    parser.add_argument("--out", type=Path, default=RUNS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict | None:
    args = parse_args(argv)
    if args.what == "build":
        for name in args.corpora:
            path = panel_corpora.build(name, args.corpus_dir, args.data_dir)
            print(f"wrote {path}: {corpus_size(path)}", flush=True)
        return None
    paths = {name: args.corpus_dir / f"{name}.txt" for name in args.corpora}
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        raise SystemExit(
            f"error: no corpus at {', '.join(missing)}: run python -m benchmarks.panel build"
        )
    earlier = args.out / "panel.json"
    results = json.loads(earlier.read_text()) if earlier.is_file() else {"runs": [], "sizes": {}}
    probes = results.setdefault("probes", {})
    for name, path in paths.items():
        probes[name] = probe_words(path)
    for seed in range(args.seeds):
        for name, path in paths.items():
            results["sizes"][name] = corpus_size(path)
            for system in args.systems:
                run = run_system(system, path, seed, probes[name])
                print(f"{name}, {system}, seed {seed}: {run['process_seconds']:.1f} s", flush=True)
                key = (name, system, seed)
                kept = [r for r in results["runs"] if (r["corpus"], r["system"], r["seed"]) != key]
                header = harness.header("benchmarks.panel", argv)
                commands = [c for c in results.get("commands", []) if c != header["command"]]
                results = {**results, **header, "commands": [*commands, header["command"]]}
                results["runs"] = [*kept, run]
                results["corpora"] = summarise(results["runs"], probes)
                harness.write_results(args.out, "panel", results, report(results))
    print(report(results))
    return results


if __name__ == "__main__":
    main()
