"""Demand forecast (docs/domain.md §6.6): expected referrals per day from a daily count series.

Pure Python over plain data; no I/O, no clock. The method is an additive Holt-Winters model
(level, trend, weekly season) with a damped trend:

* state after day t: level ``l``, trend ``b`` and seven seasonal terms ``s[d]``;
* update with the count ``y`` of day t (weekday d): ``l' = α(y − s[d]) + (1 − α)(l + φb)``,
  ``b' = β(l' − l) + (1 − β)φb``, ``s[d] = γ(y − l') + (1 − γ)s[d]``;
* forecast h days ahead: ``l + (φ + φ² + … + φ^h) b + s[weekday]``, never below 0.

The smoothing constants are chosen per series from a small grid by the mean absolute error of
the 1..14-day-ahead forecasts over the training days (the first three quarters of the history).
The 80 % interval adds the 10th and 90th percentiles of the back-test residuals (actual −
forecast, 1..14 days ahead, over the held-out last quarter, the state updated with each day's
actual count, the constants fixed) to the point forecast; it always contains the point forecast
and is clipped at 0. The back-test error reported is
the mean absolute error of forecasting the whole held-out quarter from the end of the training
part in one go, next to that of the seasonal-naive forecast (each day = the same weekday of the
last training week).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product

SEASON = 7
HORIZON = 14
MIN_HISTORY = 4 * SEASON  # below this: no model, the mean of the history
TRAIN_SHARE = 0.75  # 9 of 12 months
ALPHAS = (0.05, 0.15, 0.3)
BETAS = (0.0, 0.05)
GAMMAS = (0.05, 0.2)
PHI = 0.98  # trend damping: a trend learnt over months fades over weeks
LOWER_Q = 0.10
UPPER_Q = 0.90


@dataclass(frozen=True, slots=True)
class Params:
    alpha: float
    beta: float
    gamma: float
    phi: float = PHI


@dataclass(slots=True)
class State:
    level: float
    trend: float
    season: list[float]  # by position in the week of the series' first day
    t: int  # days seen


@dataclass(frozen=True, slots=True)
class BackTest:
    """The back-test of one series: train on the first part, forecast the rest."""

    train_days: int
    test_days: int
    mae: float | None  # this method, the whole test part from the end of training
    mae_seasonal_naive: float | None
    residual_q10: float  # 1..14-day-ahead residuals over the test part (actual - forecast)
    residual_q90: float


@dataclass(frozen=True, slots=True)
class DayForecast:
    day_index: int  # days after the last day of the history (0 = the day after it)
    expected: float
    lower: float
    upper: float


@dataclass(frozen=True, slots=True)
class SeriesForecast:
    method: str
    params: Params | None
    days: tuple[DayForecast, ...]
    backtest: BackTest


def initial_state(y: Sequence[float]) -> State:
    """Level and trend from the first two weeks, season from the deviations of the first weeks."""
    weeks = max(2, min(len(y) // SEASON, 4))
    means = [sum(y[w * SEASON : (w + 1) * SEASON]) / SEASON for w in range(weeks)]
    trend = (means[-1] - means[0]) / ((weeks - 1) * SEASON)
    season = [
        sum(y[w * SEASON + d] - means[w] for w in range(weeks)) / weeks for d in range(SEASON)
    ]
    level = means[0] + trend * (SEASON - 1) / 2  # week one's mean is its middle day's level
    return State(level=level, trend=trend, season=season, t=SEASON)


def _damped(phi: float, h: int) -> float:
    """φ + φ² + … + φ^h."""
    return phi * (1 - phi**h) / (1 - phi) if phi != 1 else float(h)


def predict(state: State, params: Params, h: int) -> float:
    """The forecast ``h`` ≥ 1 days after the state's last day (not clipped)."""
    return (
        state.level
        + _damped(params.phi, h) * state.trend
        + state.season[(state.t + h - 1) % SEASON]
    )


def update(state: State, params: Params, y: float) -> None:
    d = state.t % SEASON
    level = params.alpha * (y - state.season[d]) + (1 - params.alpha) * (
        state.level + params.phi * state.trend
    )
    state.trend = params.beta * (level - state.level) + (1 - params.beta) * params.phi * state.trend
    state.season[d] = params.gamma * (y - level) + (1 - params.gamma) * state.season[d]
    state.level = level
    state.t += 1


def _fit(y: Sequence[float], params: Params) -> State:
    """The state after every day of ``y`` (the first week only initialises)."""
    state = initial_state(y)
    for value in y[SEASON:]:
        update(state, params, value)
    return state


def _rolling_errors(
    y: Sequence[float], params: Params, start: int, horizon: int = HORIZON, step: int = 1
) -> list[float]:
    """Residuals (actual − forecast) of the 1..horizon-day-ahead forecasts made at the end of
    every ``step``-th day from ``start`` − 1 on, the state updated with each actual count."""
    state = initial_state(y)
    out: list[float] = []
    for t in range(SEASON, len(y)):
        if t >= start and (t - start) % step == 0:
            for h in range(1, horizon + 1):
                if t - 1 + h < len(y):
                    out.append(y[t - 1 + h] - max(0.0, predict(state, params, h)))
        update(state, params, y[t])
    return out


def choose_params(y: Sequence[float]) -> Params:
    """The grid point with the least 1..14-day-ahead mean absolute error over ``y``, forecasts
    made once a week (ties: the first in grid order)."""
    best: tuple[float, Params] | None = None
    for alpha, beta, gamma in product(ALPHAS, BETAS, GAMMAS):
        params = Params(alpha, beta, gamma)
        errors = _rolling_errors(y, params, 2 * SEASON, step=SEASON)
        mae = sum(abs(e) for e in errors) / len(errors) if errors else 0.0
        if best is None or mae < best[0]:
            best = (mae, params)
    assert best is not None
    return best[1]


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def seasonal_naive(train: Sequence[float], h: int) -> list[float]:
    """Each day = the same weekday of the last week of ``train``."""
    last = list(train[-SEASON:])
    return [last[i % SEASON] for i in range(h)]


def mae(actual: Sequence[float], predicted: Sequence[float]) -> float | None:
    if not actual:
        return None
    return sum(abs(a - p) for a, p in zip(actual, predicted, strict=True)) / len(actual)


def holt_winters_block(train: Sequence[float], h: int, params: Params) -> list[float]:
    state = _fit(train, params)
    return [max(0.0, predict(state, params, k)) for k in range(1, h + 1)]


def backtest(y: Sequence[float], params: Params | None = None) -> BackTest:
    """Train on the first ``TRAIN_SHARE`` of ``y`` and forecast the rest, against the
    seasonal-naive forecast; residual quantiles from the rolling 1..14-day-ahead forecasts over
    the held-out part."""
    n = len(y)
    train_days = int(n * TRAIN_SHARE)
    if train_days < MIN_HISTORY or n - train_days < 1:
        return BackTest(train_days, n - train_days, None, None, 0.0, 0.0)
    train, test = list(y[:train_days]), list(y[train_days:])
    params = params or choose_params(train)
    ours = holt_winters_block(train, len(test), params)
    naive = seasonal_naive(train, len(test))
    residuals = _rolling_errors(y, params, train_days)
    return BackTest(
        train_days=train_days,
        test_days=len(test),
        mae=mae(test, ours),
        mae_seasonal_naive=mae(test, naive),
        residual_q10=quantile(residuals, LOWER_Q),
        residual_q90=quantile(residuals, UPPER_Q),
    )


def forecast(y: Sequence[float], horizon: int = HORIZON) -> SeriesForecast:
    """Expected counts for the ``horizon`` days after the history ``y`` (oldest first, one value
    per day, no gaps) with an 80 % interval. Under four weeks of history the forecast is the
    history's mean and the interval its 10th-90th percentiles."""
    y = [float(v) for v in y]
    if len(y) < MIN_HISTORY:
        mean = sum(y) / len(y) if y else 0.0
        lo, hi = quantile(y, LOWER_Q), quantile(y, UPPER_Q)
        return SeriesForecast(
            method="mean",
            params=None,
            days=tuple(DayForecast(i, mean, lo, hi) for i in range(horizon)),
            backtest=BackTest(0, 0, None, None, lo - mean, hi - mean),
        )
    train = y[: int(len(y) * TRAIN_SHARE)]
    params = choose_params(train if len(train) >= MIN_HISTORY else y)
    test = backtest(y, params)
    state = _fit(y, params)
    days = []
    for i in range(horizon):
        expected = max(0.0, predict(state, params, i + 1))
        days.append(
            DayForecast(
                day_index=i,
                expected=expected,
                lower=max(0.0, expected + min(0.0, test.residual_q10)),
                upper=max(0.0, expected + max(0.0, test.residual_q90)),
            )
        )
    return SeriesForecast(
        method="holt_winters_damped", params=params, days=tuple(days), backtest=test
    )
