"""The statistics behind every verdict: synthetic samples whose outcome is known."""

from __future__ import annotations

import math
import random

import pytest

from allocffi.harness.core.significance import (
    FASTER,
    NO_CHANGE,
    SLOWER,
    TOO_FEW,
    Verdict,
    _doubled_midranks,
    _normal_p,
    compare_samples,
    mann_whitney_p,
    smallest_p,
    spread,
)


def noisy(rng: random.Random, center: float, n: int, sigma: float = 0.05) -> list[float]:
    """n timings around center with multiplicative (log-normal) noise, like a busy machine's."""
    return [center * math.exp(rng.gauss(0.0, sigma)) for _ in range(n)]


def test_equal_samples_give_no_verdict() -> None:
    v = compare_samples([10.0] * 5, [10.0] * 5)
    assert v.label == NO_CHANGE
    assert not v.significant
    assert (v.ratio, v.low, v.high, v.p_value) == (1.0, 1.0, 1.0, 1.0)


@pytest.mark.parametrize(("factor", "label"), [(0.5, FASTER), (2.0, SLOWER)])
def test_clearly_shifted_samples_give_the_verdict_in_the_right_direction(factor: float, label: str) -> None:
    rng = random.Random(1)
    old = noisy(rng, 10.0, 5)
    new = noisy(rng, 10.0 * factor, 5)
    v = compare_samples(old, new)
    assert v.label == label
    assert v.significant
    assert v.low <= v.ratio <= v.high
    assert (v.high < 1) if label == FASTER else (v.low > 1)
    assert v.p_value == pytest.approx(2 / 252)  # complete separation of 5 vs 5


def test_swapping_old_and_new_flips_the_verdict_and_inverts_the_ratio() -> None:
    rng = random.Random(2)
    old, new = noisy(rng, 10.0, 6), noisy(rng, 7.0, 6)
    forward, backward = compare_samples(old, new), compare_samples(new, old)
    assert (forward.label, backward.label) == (FASTER, SLOWER)
    assert forward.ratio == pytest.approx(1 / backward.ratio)
    assert forward.p_value == pytest.approx(backward.p_value)


def test_the_order_of_the_samples_does_not_matter() -> None:
    rng = random.Random(3)
    old, new = noisy(rng, 10.0, 7), noisy(rng, 9.0, 7)
    assert compare_samples(old, new) == compare_samples(old[::-1], sorted(new))


def test_a_shift_inside_the_noise_floor_is_no_change_even_when_the_test_is_sure() -> None:
    old = [100.0, 100.1, 100.2, 100.3, 100.4, 100.5]
    new = [x * 0.97 for x in old]  # 3% faster, perfectly separated
    assert compare_samples(old, new, noise_floor=0.05).label == NO_CHANGE
    sure = compare_samples(old, new, noise_floor=0.0)
    assert sure.label == FASTER
    assert sure.p_value < 0.05


def test_overlapping_samples_are_no_change() -> None:
    v = compare_samples([10, 12, 14, 16, 18], [11, 13, 15, 17, 19])
    assert v.label == NO_CHANGE
    assert v.p_value > 0.5


@pytest.mark.parametrize(("n_old", "n_new"), [(1, 1), (2, 2), (3, 3), (3, 4), (2, 6)])
def test_too_few_repeats_to_ever_be_significant(n_old: int, n_new: int) -> None:
    v = compare_samples([10.0] * n_old, [1.0] * n_new)  # 10x faster, yet unprovable
    assert v.label == TOO_FEW
    assert not v.significant
    assert v.ratio == pytest.approx(0.1)


@pytest.mark.parametrize(("n_old", "n_new"), [(4, 4), (3, 5), (5, 5)])
def test_just_enough_repeats_reach_a_verdict(n_old: int, n_new: int) -> None:
    assert smallest_p(n_old, n_new) < 0.05
    assert (
        compare_samples([10.0 + i for i in range(n_old)], [1.0 + i / 10 for i in range(n_new)]).label
        == FASTER
    )


def test_identical_distributions_give_a_false_verdict_at_most_five_percent_of_the_time() -> None:
    rng = random.Random(4)
    # The U test alone: at 5 vs 5 it rejects on U <= 2, a size of 0.032 whatever the distribution.
    rejected = sum(
        mann_whitney_p(noisy(rng, 10.0, 5, 0.2), noisy(rng, 10.0, 5, 0.2)) < 0.05 for _ in range(1000)
    )
    assert rejected / 1000 <= 0.05
    # The whole verdict (test, interval and noise floor) can only be stricter.
    trials = 200
    false_verdicts = sum(
        compare_samples(noisy(rng, 10.0, 5, 0.2), noisy(rng, 10.0, 5, 0.2), seed=t).significant
        for t in range(trials)
    )
    assert false_verdicts / trials <= 0.05


def test_a_real_ten_percent_change_is_usually_found_with_ten_repeats() -> None:
    rng = random.Random(5)
    found = sum(
        compare_samples(noisy(rng, 10.0, 10, 0.02), noisy(rng, 11.0, 10, 0.02), seed=t).label == SLOWER
        for t in range(40)
    )
    assert found >= 36


def test_exact_p_values_match_the_textbook_distribution() -> None:
    # 4 vs 4, U = 1: P(U <= 1) = 2/70 on each side.
    assert mann_whitney_p([1, 2, 3, 5], [4, 6, 7, 8]) == pytest.approx(4 / 70)
    assert mann_whitney_p([1, 2, 3], [4, 5, 6]) == pytest.approx(2 / 20)
    # Ties get mid-ranks; the permutation distribution is then checked by enumerating every split.
    assert mann_whitney_p([0, 0], [0, 1]) == pytest.approx(brute_force_p([0, 0], [0, 1]))


def brute_force_p(a: list[float], b: list[float]) -> float:
    """The permutation p of the rank-sum statistic, by enumerating every split."""
    from itertools import combinations

    values = a + b
    order = sorted(values)
    rank = {v: (order.index(v) + 1 + len(order) - order[::-1].index(v)) / 2 for v in values}
    ranks = [rank[v] for v in values]
    expected = len(a) * (len(values) + 1) / 2
    observed = abs(sum(ranks[: len(a)]) - expected)
    splits = list(combinations(range(len(values)), len(a)))
    return sum(abs(sum(ranks[i] for i in s) - expected) >= observed - 1e-9 for s in splits) / len(splits)


@pytest.mark.parametrize("seed", range(6))
def test_exact_p_with_ties_matches_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    a = [rng.choice([1, 2, 3, 4]) for _ in range(rng.randint(2, 6))]
    b = [rng.choice([2, 3, 4, 5]) for _ in range(rng.randint(2, 6))]
    assert mann_whitney_p(a, b) == pytest.approx(brute_force_p(a, b))


@pytest.mark.parametrize("shift", [1.0, 1.02, 1.05])
def test_the_normal_approximation_agrees_with_the_exact_test(shift: float) -> None:
    rng = random.Random(6)
    a, b = noisy(rng, 10.0, 15), noisy(rng, 10.0 * shift, 15)
    exact = mann_whitney_p(a, b)  # 30 values: still exact
    ranks = _doubled_midranks(a + b)
    approx = _normal_p(ranks, len(a), len(b), sum(ranks[: len(a)]))
    assert approx == pytest.approx(exact, abs=0.01)
    assert 0 < mann_whitney_p(a * 2, b * 2) <= 1  # 60 values: the approximation, ties included


def test_the_interval_is_deterministic_for_a_seed() -> None:
    rng = random.Random(7)
    old, new = noisy(rng, 10.0, 5), noisy(rng, 10.0, 5)
    assert compare_samples(old, new, seed=3) == compare_samples(old, new, seed=3)
    state = random.getstate()
    compare_samples(old, new)
    assert random.getstate() == state  # the global generator is left alone


def test_describe_gives_factor_interval_and_p() -> None:
    faster = Verdict(0.8, 0.75, 0.85, 0.008, 0.95, FASTER)
    assert faster.describe() == "1.25x faster [1.18-1.33], p=0.008"
    slower = Verdict(1.5, 1.4, 1.6, 0.0001, 0.95, SLOWER)
    assert slower.describe() == "1.50x slower [1.40-1.60], p<0.001"
    same = Verdict(0.98, 0.91, 1.06, 0.4, 0.95, NO_CHANGE)
    assert same.describe() == "no significant change (0.98x [0.91-1.06], p=0.400)"


def test_a_side_at_zero_is_described_not_divided_by() -> None:
    v = compare_samples([10.0, 11.0, 12.0, 13.0, 14.0], [0.0] * 5)
    assert v.label == FASTER and v.ratio == 0.0
    assert v.describe() == "infx faster [inf-inf], p=0.008"
    assert compare_samples([0.0] * 5, [1.0] * 5).label == SLOWER  # from nothing to something


def test_spread_is_range_over_median() -> None:
    assert spread([10.0, 10.0, 10.0]) == 0.0
    assert spread([9.0, 10.0, 14.0]) == pytest.approx(0.5)
    assert spread([0.0, 0.0]) == 0.0


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [([], [1.0], "old is empty"), ([1.0], [float("nan")], "finite"), ([-1.0], [1.0], "not negative")],
)
def test_bad_samples_are_refused_with_a_reason(old: list[float], new: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compare_samples(old, new)


def test_bad_confidence_and_floor_are_refused() -> None:
    with pytest.raises(ValueError, match="confidence"):
        compare_samples([1.0], [1.0], confidence=1.5)
    with pytest.raises(ValueError, match="noise_floor"):
        compare_samples([1.0], [1.0], noise_floor=-0.1)
