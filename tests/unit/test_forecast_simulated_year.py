"""The acceptance of the demand forecast on the simulator's own demand model (docs/domain.md
§6.6): a simulated year of daily referrals (winter peak, weekly rhythm, growth; Poisson per
day), trained on the first 9 months and forecast for the last 3 in one go, has a smaller mean
absolute error than the seasonal-naive forecast (bench/forecast_backtest.py reports it)."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from app.flows.simulate import referral_mean
from app.kpi import forecast as fc
from tests.unit.test_forecast import poisson

START = date(2025, 1, 1)


def simulated_year(seed: int) -> list[int]:
    rng = random.Random(seed)
    return [poisson(rng, referral_mean(START + timedelta(days=i), START)) for i in range(365)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_backtest_of_a_simulated_year_beats_seasonal_naive(seed: int) -> None:
    bt = fc.backtest(simulated_year(seed))
    assert (bt.train_days, bt.test_days) == (273, 92)  # 9 months, 3 months
    assert bt.mae is not None
    assert bt.mae_seasonal_naive is not None
    assert bt.mae < bt.mae_seasonal_naive
