"""The demand forecast's pure model (docs/domain.md §6.6): it learns weekly seasonality and trend,
beats the seasonal-naive forecast in the back-test, and its 80 % interval covers about 80 %."""

from __future__ import annotations

import math
import random

import pytest

from app.kpi import forecast as fc


def poisson(rng: random.Random, mu: float) -> int:
    limit, k, p = math.exp(-mu), 0, 1.0
    while True:
        p *= rng.random()
        if p < limit:
            return k
        k += 1


WEEK = (0.0, 1.5, 2.0, 1.0, 0.5, -2.5, -2.5)  # busy Tuesday, quiet weekend


def series(seed: int, n: int = 365, base: float = 8.0, slope: float = 0.02) -> list[int]:
    rng = random.Random(seed)
    return [poisson(rng, max(0.1, base + slope * t + WEEK[t % 7])) for t in range(n)]


@pytest.mark.parametrize("seed", range(8))
def test_backtest_beats_seasonal_naive_on_a_series_with_weekly_season_and_trend(
    seed: int,
) -> None:
    y = series(seed)
    bt = fc.backtest(y)
    assert (bt.train_days, bt.test_days) == (273, 92)  # 9 months, then 3
    assert bt.mae is not None
    assert bt.mae_seasonal_naive is not None
    assert bt.mae < bt.mae_seasonal_naive
    # the naive forecast is the last training week, repeated
    assert fc.seasonal_naive(y[:273], 8) == [*y[266:273], y[266]]


def test_it_learns_the_weekly_shape_and_the_trend_without_noise() -> None:
    y = [10 + 0.05 * t + WEEK[t % 7] for t in range(280)]
    result = fc.forecast(y)
    assert result.method == "holt_winters_damped"
    for d in result.days:
        t = 280 + d.day_index
        exact = 10 + 0.05 * t + WEEK[t % 7]
        assert abs(d.expected - exact) < 0.5, (d, exact)
        assert d.lower <= d.expected <= d.upper


def test_the_80_percent_interval_covers_about_80_percent() -> None:
    covered = total = 0
    for seed in range(6):
        y = series(100 + seed, n=379)
        history, future = y[:365], y[365:]
        result = fc.forecast(history)
        for d, actual in zip(result.days, future, strict=True):
            total += 1
            covered += d.lower <= actual <= d.upper
    assert 0.65 <= covered / total <= 0.95, covered / total


def test_short_or_empty_histories_fall_back_to_the_mean() -> None:
    result = fc.forecast([1, 3, 2, 2])
    assert result.method == "mean"
    assert [d.expected for d in result.days] == [2.0] * fc.HORIZON
    assert result.backtest.mae is None
    empty = fc.forecast([])
    assert {(d.expected, d.lower, d.upper) for d in empty.days} == {(0.0, 0.0, 0.0)}
    zeros = fc.forecast([0] * 60)
    assert {(d.expected, d.lower, d.upper) for d in zeros.days} == {(0.0, 0.0, 0.0)}


def test_quantile_interpolates_like_numpy() -> None:
    assert fc.quantile([1.0, 2.0, 3.0, 4.0], 0.1) == pytest.approx(1.3)
    assert fc.quantile([5.0], 0.9) == 5.0
    assert fc.quantile([], 0.5) == 0.0
