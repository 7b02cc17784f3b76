"""Is a difference between two sets of repeats real? A verdict that survives noise.

``compare_samples(old, new)`` answers for one measured quantity where lower is
better (ns per op, RSS). Two conditions make a verdict, and both must hold:

- the two-sided Mann-Whitney U test rejects "same distribution" at the
  confidence level (p < 1 - confidence), and
- the whole bootstrap interval of the ratio of medians, median(new) /
  median(old), lies outside the noise band [1 / (1 + floor), 1 + floor]:
  like criterion, a change smaller than the noise floor is called noise even
  when the test is sure of it.

Anything else is "no significant change". When the samples are so small that
even a complete separation could not reach the confidence level (3 vs 3 at
95%: the smallest exact p is 2/20 = 0.1), the label is "too few repeats".

Written in pure Python (no scipy): the module is small, is shared by every
command that compares runs, and must work with only the core install. The
U test is exact (the permutation distribution of the rank sum, ties given
their mid-ranks) up to ``EXACT_LIMIT`` values in all, and the normal
approximation with tie and continuity corrections beyond, as scipy does.

Invariants: the result depends only on the values and ``seed`` (never on
the order of the samples or on global random state); old and new swapped
gives the reciprocal ratio and the opposite label.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

FASTER = "faster"
SLOWER = "slower"
NO_CHANGE = "no significant change"
TOO_FEW = "too few repeats"

# Run-to-run drift of a whole run on a quiet machine is a few percent; a 5%
# change is the smallest this harness claims to see (criterion uses 1-2% on
# dedicated machines).
DEFAULT_NOISE_FLOOR = 0.05
BOOTSTRAP_RESAMPLES = 2000
EXACT_LIMIT = 30  # exact U distribution up to this many values in all (at most ~20 ms, then cached)


@dataclass(frozen=True)
class Verdict:
    """How ``new`` compares with ``old`` for a quantity where lower is better."""

    ratio: float  # median(new) / median(old); < 1 means new is lower (faster / smaller)
    low: float  # bounds of the bootstrap confidence interval of ratio
    high: float
    p_value: float  # two-sided Mann-Whitney U
    confidence: float  # e.g. 0.95
    label: str  # FASTER, SLOWER, NO_CHANGE or TOO_FEW

    @property
    def significant(self) -> bool:
        return self.label in (FASTER, SLOWER)

    def describe(self) -> str:
        """One line, e.g. "1.23x faster [1.15-1.31], p=0.008"."""
        if self.label == FASTER:
            low, high = _inverse(self.high), _inverse(self.low)  # the speedup's interval
            return f"{_factor(_inverse(self.ratio))} faster [{_num(low)}-{_num(high)}], {_p(self)}"
        if self.label == SLOWER:
            return f"{_factor(self.ratio)} slower [{_num(self.low)}-{_num(self.high)}], {_p(self)}"
        return f"{self.label} ({_factor(self.ratio)} [{_num(self.low)}-{_num(self.high)}], {_p(self)})"


def _inverse(x: float) -> float:
    """1 / x, where new at zero cost is infinitely faster rather than a ZeroDivisionError."""
    return math.inf if x == 0 else 1 / x


def _num(x: float) -> str:
    return f"{x:.2f}" if math.isfinite(x) else "inf"


def _factor(x: float) -> str:
    return _num(x) + "x"


def _p(v: Verdict) -> str:
    return f"p={v.p_value:.3f}" if v.p_value >= 0.001 else "p<0.001"


def spread(samples: Sequence[float]) -> float:
    """(max - min) / median: 0 for identical repeats, 0.5 when they span half the median."""
    values = _checked(samples, "samples")
    median = statistics.median(values)
    width = max(values) - min(values)
    if median == 0:
        return 0.0 if width == 0 else math.inf
    return width / median


def compare_samples(
    old: Sequence[float],
    new: Sequence[float],
    *,
    confidence: float = 0.95,
    noise_floor: float = DEFAULT_NOISE_FLOOR,
    seed: int = 0,
) -> Verdict:
    """The verdict on new versus old (see the module docstring for the rule)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (got {confidence})")
    if not noise_floor >= 0:
        raise ValueError(f"noise_floor must not be negative (got {noise_floor})")
    a = _checked(old, "old")
    b = _checked(new, "new")
    alpha = 1 - confidence
    ratio = _ratio(statistics.median(a), statistics.median(b))
    low, high = _bootstrap_interval(a, b, confidence, seed)
    p_value = mann_whitney_p(a, b)
    if smallest_p(len(a), len(b)) >= alpha:
        label = TOO_FEW
    elif p_value < alpha and high < 1 / (1 + noise_floor):
        label = FASTER
    elif p_value < alpha and low > 1 + noise_floor:
        label = SLOWER
    else:
        label = NO_CHANGE
    return Verdict(ratio, low, high, p_value, confidence, label)


def smallest_p(n_old: int, n_new: int) -> float:
    """The smallest two-sided p the exact U test can give: both orders of a complete separation."""
    return min(1.0, 2 / math.comb(n_old + n_new, n_old))


def _checked(samples: Sequence[float], what: str) -> list[float]:
    values = [float(x) for x in samples]
    if not values:
        raise ValueError(f"{what} is empty: a comparison needs at least one sample on each side")
    bad = [x for x in values if not math.isfinite(x) or x < 0]
    if bad:
        raise ValueError(f"{what} holds {bad[0]!r}: samples must be finite and not negative")
    return values


def _ratio(old_median: float, new_median: float) -> float:
    if old_median == 0:
        return 1.0 if new_median == 0 else math.inf
    return new_median / old_median


def _bootstrap_interval(a: list[float], b: list[float], confidence: float, seed: int) -> tuple[float, float]:
    """Percentile interval of median(new*) / median(old*) over resamples of both sides."""
    rng = random.Random(seed)  # own generator: deterministic, leaves global state alone
    a_sorted, b_sorted = sorted(a), sorted(b)  # resampling from sorted input: order cannot matter
    ratios = sorted(
        _ratio(_resampled_median(a_sorted, rng), _resampled_median(b_sorted, rng))
        for _ in range(BOOTSTRAP_RESAMPLES)
    )
    tail = (1 - confidence) / 2
    low_index = math.floor(tail * BOOTSTRAP_RESAMPLES)
    high_index = max(low_index, math.ceil((1 - tail) * BOOTSTRAP_RESAMPLES) - 1)
    return ratios[low_index], ratios[high_index]


def _resampled_median(values: list[float], rng: random.Random) -> float:
    """The median of len(values) draws with replacement (the hot loop: no statistics.median)."""
    n = len(values)
    draw = sorted(rng.choices(values, k=n))
    mid = n // 2
    return draw[mid] if n % 2 else (draw[mid - 1] + draw[mid]) / 2


def _doubled_midranks(values: Sequence[float]) -> list[int]:
    """Twice the mid-rank of each value (1-based ranks; ties share their mean): integers."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        doubled = (start + 1) + (end + 1)  # 2 * mean of ranks start+1 .. end+1
        for k in range(start, end + 1):
            ranks[order[k]] = doubled
        start = end + 1
    return ranks


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p of the Mann-Whitney U test (equivalently, the Wilcoxon rank-sum test)."""
    values = list(a) + list(b)
    ranks = _doubled_midranks(values)
    n_a, total = len(a), len(values)
    if len(set(ranks)) == 1:
        return 1.0  # every value equal: nothing tells the samples apart
    observed = sum(ranks[:n_a])
    expected = n_a * (total + 1)  # doubled mean of the rank sum
    if total <= EXACT_LIMIT:
        return _exact_p(tuple(sorted(ranks)), n_a, abs(observed - expected))
    return _normal_p(ranks, n_a, len(b), observed)


@lru_cache(maxsize=256)
def _exact_p(ranks: tuple[int, ...], n_a: int, deviation: int) -> float:
    """P(|S - E| >= deviation) over all ways to pick n_a of the ranks, S their sum."""
    counts = _rank_sum_counts(ranks, n_a)
    expected = n_a * (len(ranks) + 1)
    extreme = sum(c for s, c in counts.items() if abs(s - expected) >= deviation)
    return min(1.0, extreme / math.comb(len(ranks), n_a))


@lru_cache(maxsize=64)
def _rank_sum_counts(ranks: tuple[int, ...], n_a: int) -> dict[int, int]:
    """How many n_a-subsets of ranks have each sum: dynamic programming over the values."""
    by_size: list[dict[int, int]] = [{0: 1}] + [{} for _ in range(n_a)]
    for rank in ranks:
        for size in range(min(n_a, len(ranks)), 0, -1):
            smaller = by_size[size - 1]
            if not smaller:
                continue
            row = by_size[size]
            for s, c in smaller.items():
                row[s + rank] = row.get(s + rank, 0) + c
    return by_size[n_a]


def _normal_p(ranks: list[int], n_a: int, n_b: int, observed: int) -> float:
    """Normal approximation with the tie correction and a continuity correction."""
    total = n_a + n_b
    u = observed / 2 - n_a * (n_a + 1) / 2
    mean = n_a * n_b / 2
    ties: dict[int, int] = {}
    for r in ranks:
        ties[r] = ties.get(r, 0) + 1
    tie_term = sum(t**3 - t for t in ties.values()) / (total * (total - 1))
    sigma = math.sqrt(n_a * n_b / 12 * ((total + 1) - tie_term))
    if sigma == 0:
        return 1.0
    z = max(0.0, abs(u - mean) - 0.5) / sigma
    return min(1.0, math.erfc(z / math.sqrt(2)))
