"""w2v_jax against gensim on PTB, side by side in one run, and where w2v_jax's time goes.

    python -m benchmarks.benchmark [--seeds 3] [--repeats 5] [--epochs 3] [--out runs/benchmark]

``--out results/benchmark`` refreshes the committed tables (docs/refreshing.md).

Each system of ``benchmarks.side_by_side.SYSTEMS`` (gensim with 5 and 15 epochs, w2v_jax's book
configuration, each math-changing option alone, the presets, the quality-race system) trains
once per seed, each run in fresh processes (a w2v_jax run is the main job with the system's
flags); timings are medians over the seeds, quality is the mean and spread.
The data stage also runs in fresh processes, as a researcher's run does (a warm process reuses
memory and would flatter it). Writes ``benchmark.json`` and ``README.md`` (the tables and this
command) into ``--out``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import harness
from benchmarks.side_by_side import QUALITY_RACE_SYSTEM, QUERY_WORDS, SYSTEMS, run_system
from w2v_jax import data, feed, objectives, run
from w2v_jax.config import Config
from w2v_jax.corpus_config import CorpusConfig
from w2v_jax.evaluation import measures
from w2v_jax.evaluation.benchmark_files import benchmark_path
from w2v_jax.evaluation.evaluate import Embeddings
from w2v_jax.feed import batches, shards
from w2v_jax.objectives.skipgram import sgns_loss
from w2v_jax.tables import lookup
from w2v_jax.training import loop


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = harness.command_line(__doc__)
    parser.add_argument("--seeds", type=int, default=3, help="training runs per system")
    parser.add_argument("--repeats", type=int, default=5, help="fresh-process data-stage runs")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs to time")
    parser.add_argument("--out", type=Path, default=harness.RUNS / "benchmark")
    parser.add_argument("--data-dir", default=None)
    return parser.parse_args(argv)


def time_data_stage(config: Config, data_dir: str | None) -> dict[str, float]:
    """Seconds of each part of the data stage, once, in this process: PTB encoded into a fresh
    cache (a first run), then read from it (every later run)."""
    seconds = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        data.corpus.encode(CorpusConfig(), config.min_freq, cache, data_dir=data_dir)
        seconds["encode"] = time.perf_counter() - start
        mark = time.perf_counter()
        encoded = data.corpus.encode(CorpusConfig(), config.min_freq, cache, data_dir=data_dir)
        vocab, corpus = encoded.vocab, encoded.corpus
        seconds["read_cache"] = time.perf_counter() - mark
        mark = time.perf_counter()
        dataset = data.blocks.build_dataset(
            vocab, corpus, config.subsample_t, config.seed, config.subsample, config.block_tokens
        )
        seconds["subsampling"] = time.perf_counter() - mark
        mark = time.perf_counter()
        examples = feed.first_examples(config, dataset)
        seconds["contexts_noise_padding"] = time.perf_counter() - mark
        mark = time.perf_counter()
        data.examples.batch_order(
            len(examples),
            config.batch_size,
            data.examples.stream_rng(config.seed, data.examples.SHUFFLE_STREAM, 0),
        )
        seconds["batch_order"] = time.perf_counter() - mark
        seconds["total"] = time.perf_counter() - start - seconds["encode"]
    return seconds


def data_stage_once(data_dir: str | None) -> dict[str, float]:
    """The book configuration's data stage (``time_data_stage``), in the calling process."""
    return time_data_stage(Config(), data_dir)


def data_stage_in_fresh_processes(repeats: int, data_dir: str | None) -> dict[str, float]:
    runs = [harness.in_fresh_process(data_stage_once, data_dir)[0] for _ in range(repeats)]
    medians = {part: statistics.median(run[part] for run in runs) for part in runs[0]}
    medians["total_min"] = min(run["total"] for run in runs)
    medians["total_max"] = max(run["total"] for run in runs)
    return medians


def side_by_side(seeds: int, data_dir: str | None) -> list[dict]:
    """Every system once per seed, each in a fresh process."""
    runs = []
    for system in SYSTEMS:
        for seed in range(seeds):
            runs.append(harness.in_fresh_process(run_system, system, seed, data_dir)[0])
            print(
                f"{system}, seed {seed}: {runs[-1]['centers_per_second']:,.0f} centers/s, "
                f"WordSim353 {runs[-1]['wordsim353_spearman']:.3f}",
                flush=True,
            )
    return runs


_TIMED = (
    "process_seconds",
    "data_seconds",
    "compile_seconds",
    "train_seconds",
    "evaluation_seconds",
    "centers_per_second",
    "pairs_per_second",
    "peak_rss_mib",
)


def summarise(runs: list[dict]) -> dict[str, dict]:
    """Per system: medians of the timings, mean / standard deviation / range of the quality."""
    summary = {}
    for system in SYSTEMS:
        mine = [run for run in runs if run["system"] == system]
        entry = harness.over_seeds(mine, _TIMED, measures.QUALITY)
        entry["neighbours_seed_0"] = mine[0]["neighbours"]
        if "flags" in mine[0]:  # the main job's flags that reproduce it (with --seed S)
            entry["flags"] = mine[0]["flags"]
        summary[system] = entry
    gensim = summary["gensim, 5 epochs"]
    for system, entry in summary.items():
        if system.startswith("w2v_jax"):
            entry["speed_vs_gensim"] = entry["centers_per_second"] / gensim["centers_per_second"]
            entry["process_time_vs_gensim"] = gensim["process_seconds"] / entry["process_seconds"]
    return summary


def quality_race(systems: dict) -> dict:
    """QUALITY_RACE_SYSTEM against gensim: its whole main-job process no slower than a gensim
    process training 5 epochs, and its mean quality at least gensim's after 15 epochs."""
    ours = systems[QUALITY_RACE_SYSTEM]
    five, fifteen = systems["gensim, 5 epochs"], systems["gensim, 15 epochs"]
    race = {
        "system": QUALITY_RACE_SYSTEM,
        "flags": ours["flags"],
        "process_seconds": ours["process_seconds"],
        "gensim_5_epochs_process_seconds": five["process_seconds"],
        "time_reached": ours["process_seconds"] <= five["process_seconds"],
    }
    for name in ("wordsim353_spearman", "simlex999_spearman", "analogy_accuracy"):
        race[name] = {
            "ours": ours[name]["mean"],
            "gensim_15_epochs": fifteen[name]["mean"],
            "reached": ours[name]["mean"] >= fifteen[name]["mean"],
        }
    race["reached"] = race["time_reached"] and all(
        race[name]["reached"]
        for name in ("wordsim353_spearman", "simlex999_spearman", "analogy_accuracy")
    )
    return race


def training_throughput(
    config: Config, data_dir: str | None, epochs: int, workdir: Path | None = None
) -> dict:
    """Epochs of the book's configuration; with ``workdir``, checkpointed at every epoch end."""
    prepared = run.prepare(config, data_dir=data_dir)
    start = time.perf_counter()
    trained = run.train(
        config.replace(num_epochs=epochs),
        data=prepared,
        progress=False,
        workdir=workdir,
        restart=True,
        evaluation=None,
    )
    rates = [stats.centers_per_second for stats in trained.history]
    return {
        "compile_seconds": trained.compile_seconds,
        "wall_seconds": time.perf_counter() - start,
        "epoch_seconds": [stats.seconds for stats in trained.history],
        "median_epoch_seconds": statistics.median(s.seconds for s in trained.history),
        "checkpoint_blocking_seconds": trained.checkpoint_seconds,
        "centers_per_second": statistics.median(rates),
        "pairs_per_second": statistics.median(s.pairs_per_second for s in trained.history),
        "loss": [stats.loss for stats in trained.history],
    }


def evaluation_speed(workdir: Path, repeats: int = 3) -> dict:
    """Seconds to load a PTB checkpoint's vectors and score the three benchmarks, ours against
    gensim's evaluation of the same vectors (loaded from the word2vec text format)."""
    from gensim.models import KeyedVectors

    def ours():
        Embeddings.from_checkpoint(workdir).evaluate_benchmarks()

    vectors_file = workdir / "vectors.txt"
    Embeddings.from_checkpoint(workdir).save_word2vec_format(vectors_file)

    def theirs():
        kv = KeyedVectors.load_word2vec_format(vectors_file)
        kv.evaluate_word_pairs(benchmark_path("wordsim353"))
        kv.evaluate_word_pairs(benchmark_path("simlex999"))
        kv.evaluate_word_analogies(benchmark_path("google_analogies"))

    timings = {}
    for name, call in (("w2v_jax", ours), ("gensim", theirs)):
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            seconds.append(time.perf_counter() - start)
        timings[name] = {"first_seconds": seconds[0], "median_seconds": statistics.median(seconds)}
    return timings


def step_profile(config: Config, data_dir: str | None, steps: int = 64) -> dict[str, float]:
    """Milliseconds per step of growing parts of the train step, each run ``steps`` times in
    one compiled loop over real PTB batches; differences between rows are the parts' costs."""
    prepared = run.prepare(config, data_dir=data_dir)
    examples = shards.to_device(prepared.examples)
    order = jnp.asarray(
        data.examples.batch_order(
            len(prepared.examples), config.batch_size, np.random.default_rng(0)
        )[:steps]
    )
    program = loop.Program(
        config, prepared.vocab, data.blocks.RunPlan(config, prepared.dataset).total_steps
    )
    train_step, state = program.step_fn, program.init_state()

    def loss_of(params, rows):
        pairs = batches.gather_padded(examples, rows)
        return objectives.table_loss(objectives.bind(config, params), pairs)[0]

    def row_grads(params, rows):  # gradients with respect to the gathered rows only
        pairs = batches.gather_padded(examples, rows)
        v = lookup(params["center"], pairs.centers)
        u = lookup(params["context"], pairs.words)
        grad_v, grad_u = jax.grad(lambda v, u: sgns_loss(v, u, pairs)[0], argnums=(0, 1))(v, u)
        return grad_v.sum() + grad_u.sum()

    parts = {
        "batch gather + forward + loss": loss_of,
        "+ gradient w.r.t. gathered rows": row_grads,
        "+ scatter-add into both tables": lambda p, rows: sum(
            jnp.sum(g) for g in jax.tree.leaves(jax.grad(loss_of)(p, rows))
        ),
    }
    timings = {name: _ms_per_step(fn, state.params, order) for name, fn in parts.items()}
    timings["+ dense Adam update (the whole step)"] = _ms_per_full_step(
        train_step, state, examples, order
    )
    return timings


def _ms_per_step(fn, params, order) -> float:
    loop = jax.jit(
        lambda p, o: jax.lax.fori_loop(
            0, len(o), lambda i, acc: acc + fn(p, o[i]), jnp.float32(0.0)
        )
    )
    return _median_ms(lambda: loop(params, order), len(order))


def _ms_per_full_step(train_step, state, examples, order) -> float:
    runner = loop.make_chunk_runner(train_step)
    steps = np.int32(len(order))
    holder = {"state": state}

    def once():
        holder["state"], losses, _ = runner(holder["state"], examples, order, steps)
        return losses

    return _median_ms(once, len(order))


def _median_ms(call, steps: int, repeats: int = 5) -> float:
    """Milliseconds per step of ``call``, which runs ``steps`` steps."""
    return harness.median_ms(lambda: jax.block_until_ready(call()), repeats) / steps


def write_report(results: dict, out: Path) -> None:
    lines = [
        f"`{results['command']}` on {results['device']}, {results['machine']}; "
        f"every system trained "
        f"on PTB once per seed ({results['seeds']} seeds), each run in a fresh process.",
        "",
    ]
    lines += [
        *_systems_table(results["systems"]),
        "",
        *_race_table(results["quality_race"]),
        "",
        *_neighbours_table(results["systems"]),
    ]
    lines += ["", *_w2v_jax_table(results)]
    harness.write_results(out, "benchmark", results, "# Benchmark\n\n" + "\n".join(lines) + "\n")


def _quality(entry: dict, name: str) -> str:
    q = entry[name]
    return f"{q['mean']:.3f} ± {q['sd']:.3f}"


def _systems_table(systems: dict) -> list[str]:
    lines = [
        "| system | process s | data s | compile s | train s | centers/s | vs gensim | "
        "peak RSS MiB | WordSim353 | SimLex-999 | analogies |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    gensim = systems["gensim, 5 epochs"]
    for system, e in systems.items():
        ratio = f"{e['centers_per_second'] / gensim['centers_per_second']:.2f}x"
        lines.append(
            f"| {system} | {e['process_seconds']:.2f} | {e['data_seconds']:.2f} | "
            f"{e['compile_seconds']:.2f} | {e['train_seconds']:.2f} | "
            f"{e['centers_per_second']:,.0f} | {ratio} | {e['peak_rss_mib']:,.0f} | "
            f"{_quality(e, 'wordsim353_spearman')} | {_quality(e, 'simlex999_spearman')} | "
            f"{_quality(e, 'analogy_accuracy')} |"
        )
    first = next(iter(systems.values()))
    lines += [
        "",
        "Timings are medians over the seeds; quality is the mean ± standard deviation "
        "over the seeds (Spearman for the word pairs, accuracy for the analogies). "
        f"Coverage: WordSim353 {first['wordsim353_coverage']['mean']:.0%} of pairs, "
        f"SimLex-999 {first['simlex999_coverage']['mean']:.0%}, Google analogies "
        f"{first['analogy_coverage']['mean']:.0%} of questions. Process seconds: the "
        "whole process as a user runs it, from start to exit (for w2v_jax the main job: "
        "imports, data, compile, training, checkpoints, evaluation; for gensim: imports, "
        "reading, vocabulary and training, its evaluation left out). gensim's centers are "
        "its effective words (after subsampling). Data seconds: reading PTB and building "
        "the vocabulary (and, for w2v_jax, subsampling, windows, noise words and "
        "padding). The main job's flags of each w2v_jax system:",
        "",
    ]
    lines += [
        f"- {system}: `python -m experiments.ptb_skipgram {' '.join(e['flags'])}`"
        for system, e in systems.items()
        if "flags" in e
    ]
    return lines


def _race_table(race: dict) -> list[str]:
    names = {
        "wordsim353_spearman": "WordSim353",
        "simlex999_spearman": "SimLex-999",
        "analogy_accuracy": "Google analogies",
    }
    lines = [
        f"Quality race: `{race['system']}` (`python -m experiments.ptb_skipgram "
        f"{' '.join(race['flags'])}`) against gensim.",
        "",
        "| measure | w2v_jax | gensim | reached |",
        "| --- | --- | --- | --- |",
        f"| whole process s (gensim: 5 epochs) | {race['process_seconds']:.2f} | "
        f"{race['gensim_5_epochs_process_seconds']:.2f} | "
        f"{'yes' if race['time_reached'] else 'no'} |",
    ]
    lines += [
        f"| {label}, mean of the seeds (gensim: 15 epochs) | {race[name]['ours']:.3f} | "
        f"{race[name]['gensim_15_epochs']:.3f} | "
        f"{'yes' if race[name]['reached'] else 'no'} |"
        for name, label in names.items()
    ]
    return lines


def _neighbours_table(systems: dict) -> list[str]:
    lines = [
        "| system | " + " | ".join(QUERY_WORDS) + " |",
        "| --- |" + " --- |" * len(QUERY_WORDS),
    ]
    for system, e in systems.items():
        cells = [", ".join(e["neighbours_seed_0"].get(w, [])) for w in QUERY_WORDS]
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    return ["Top 5 neighbours, seed 0:", "", *lines]


_PARTS = {"encode": "encode into the cache (a first run only; not in the total)"}


def _w2v_jax_table(results: dict) -> list[str]:
    stage, training = results["data_stage_seconds"], results["training"]
    overhead, evaluation = results["checkpoint_overhead"], results["evaluation"]
    e2e = {
        s: e["process_time_vs_gensim"]
        for s, e in results["systems"].items()
        if "process_time_vs_gensim" in e
    }
    lines = [
        "| w2v_jax measure | value |",
        "| --- | --- |",
        f"| data stage, PTB read from its cache (median of {results['repeats']} fresh processes) | "
        f"{stage['total']:.2f} s (range {stage['total_min']:.2f}-{stage['total_max']:.2f}) |",
    ]
    lines += [
        f"| &nbsp;&nbsp;{_PARTS.get(part, part)} | {seconds:.3f} s |"
        for part, seconds in stage.items()
        if part not in ("total", "total_min", "total_max")
    ]
    lines += [
        f"| whole process: gensim's (5 epochs) over ours, {system} | {ratio:.2f}x |"
        for system, ratio in e2e.items()
    ]
    lines += [
        f"| compile (once per run), book | {training['compile_seconds']:.2f} s |",
        f"| checkpoint at each epoch's end: training blocked | "
        f"{overhead['blocking_share_of_epoch']:.1%} of an epoch |",
        f"| checkpoint at each epoch's end: whole run's wall time (async write included) | "
        f"{overhead['wall_time_change']:+.1%} |",
        f"| evaluate a PTB checkpoint (WordSim353, SimLex-999, Google analogies) | "
        f"{evaluation['w2v_jax']['median_seconds']:.2f} s "
        f"(first call {evaluation['w2v_jax']['first_seconds']:.2f} s) |",
        f"| the same with gensim (load word2vec text + its three evaluations) | "
        f"{evaluation['gensim']['median_seconds']:.2f} s |",
        "",
        "Where a book train step's time goes in the padded layout (batch 512, L = 60, "
        "d = 100, V = 6,719; ms per step, each row includes the rows above):",
        "",
        "| part of the step | ms/step |",
        "| --- | --- |",
    ]
    lines += [f"| {name} | {ms:.2f} |" for name, ms in results["step_profile_ms"].items()]
    return lines


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    config = Config()
    results = {
        **harness.header("benchmarks.benchmark", argv),
        "config": config.to_dict(),
        "repeats": args.repeats,
        "seeds": args.seeds,
    }
    results["data_stage_seconds"] = data_stage_in_fresh_processes(args.repeats, args.data_dir)
    print(f"data stage: {results['data_stage_seconds']['total']:.2f} s", flush=True)
    results["runs"] = side_by_side(args.seeds, args.data_dir)
    results["systems"] = summarise(results["runs"])
    results["quality_race_system"] = QUALITY_RACE_SYSTEM
    results["quality_race"] = quality_race(results["systems"])
    results["speed_vs_gensim"] = {
        system: entry["speed_vs_gensim"]
        for system, entry in results["systems"].items()
        if "speed_vs_gensim" in entry
    }
    results["training"] = training_throughput(config, args.data_dir, args.epochs)
    with tempfile.TemporaryDirectory() as workdir:
        results["training_with_checkpoints"] = training_throughput(
            config, args.data_dir, args.epochs, Path(workdir)
        )
        results["evaluation"] = evaluation_speed(Path(workdir))
    plain, saved = results["training"], results["training_with_checkpoints"]
    results["checkpoint_overhead"] = {
        "blocking_share_of_epoch": saved["checkpoint_blocking_seconds"]
        / args.epochs
        / saved["median_epoch_seconds"],
        "wall_time_change": saved["wall_seconds"] / plain["wall_seconds"] - 1,
    }
    results["step_profile_ms"] = step_profile(config, args.data_dir)
    write_report(results, args.out)
    print((args.out / "README.md").read_text())
    return results


if __name__ == "__main__":
    main()
