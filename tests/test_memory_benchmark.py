"""The memory benchmark: a job on a synthetic corpus of about the asked vocabulary, its peak RSS
beside the state its tables and optimiser take."""

import json

from benchmarks import memory


def test_the_memory_benchmark_measures_a_job_beside_its_state(tmp_path):
    out = tmp_path / "out"
    argv = ["--vocab", "400", "--tokens-per-word", "40", "--corpus-dir", str(tmp_path)]
    results = memory.main([*argv, "--out", str(out)])
    [run] = results["runs"]
    assert 300 <= run["vocab_size"] <= 400 + 81  # background words, 40 partners, 40 topic words
    # Two tables of [vocab, 100] float32 and row-wise Adagrad's [vocab] per table.
    assert run["tables_mib"] * 2**20 == 2 * run["vocab_size"] * 100 * 4
    assert run["optimiser_mib"] * 2**20 == 2 * run["vocab_size"] * 4
    assert 150 < run["peak_rss_mib"] < 4096  # JAX alone is more than 150 MiB
    saved = json.loads((out / "memory.json").read_text())
    assert saved["runs"] == results["runs"]
    assert f"| {run['vocab_size']:,} |" in (out / "README.md").read_text()
