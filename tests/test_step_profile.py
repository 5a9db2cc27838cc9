"""The step profile's grouping: every operation of the compiled step lands in a part, and the
parts that do work have time."""

import pytest

from benchmarks import step_profile


@pytest.mark.parametrize("objective", ["skipgram", "cbow"])
def test_the_profile_gives_each_part_of_the_fast_step_its_time(objective):
    run = step_profile.profile("fast", objective, vocab_size=300, steps=2, repeats=1)
    shares = run["shares"]
    assert set(shares) == set(step_profile.PARTS)
    assert sum(shares.values()) == pytest.approx(1.0)
    for part in ("draws", "pairs", "rows", "loss", "gradients", "sum_duplicates", "row_updates"):
        assert shares[part] > 0, (part, shares)
    assert shares["loop and other"] < 0.5, shares
    # 2,048 centers, 4.5 contexts each on average, 512 shared noise words: each touched row
    # and its accumulator read and written once.
    touched = 2048 + run["pairs_per_step"] + 16 * 32
    assert run["least_bytes_per_center"] == pytest.approx(touched * 2 * 404 / 2048)
    assert 4.0 < run["pairs_per_step"] / 2048 < 5.0
    assert run["least_bytes_per_center"] < run["bytes_per_center_without_tables"]
    assert run["bytes_per_center_without_tables"] < run["bytes_per_center"]
