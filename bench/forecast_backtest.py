"""Back-test of the demand forecast (docs/domain.md §6.6) on simulated years of referrals.

    .venv/bin/python -m bench.forecast_backtest [--seeds 10] [--days 365] [--write-results]

Draws the daily referral counts of the simulator's demand model
(``app.flows.simulate.referral_mean``: winter peak, weekly rhythm, growth; Poisson per day) for
``--days`` days and each seed, trains ``app.kpi.forecast`` on the first three quarters (9 of 12
months) and forecasts the last quarter in one go, against the seasonal-naive forecast (the last
training week repeated), by mean absolute error per day. The region total and one care type
(the simulator's ELV-high share, thinned binomially) are reported. A full ``juisteplek
simulate`` writes every step through the services (3-8 s per simulated day on this shared
machine), so the year figure is taken from the demand model the simulator draws from; the
forecast endpoint's own back-test on a shorter ``juisteplek simulate`` run is in
bench/results.md next to it.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from datetime import date, timedelta
from typing import Any

from app.flows.simulate import CARE_MIX, _poisson, referral_mean
from app.kpi import forecast as fc
from bench.runner import ROOT, log, write_json

START = date(2025, 1, 1)


def simulated_counts(seed: int, days: int) -> tuple[list[int], list[int]]:
    """(all referrals, ELV-high referrals) per day of one simulated stretch."""
    rng = random.Random(seed)
    share = dict(CARE_MIX)["elv_high"] / sum(w for _, w in CARE_MIX)
    total, elv = [], []
    for i in range(days):
        n = _poisson(rng, referral_mean(START + timedelta(days=i), START))
        total.append(n)
        elv.append(sum(rng.random() < share for _ in range(n)))
    return total, elv


def run(seeds: int, days: int) -> dict[str, Any]:
    out: dict[str, Any] = {"days": days, "seeds": seeds, "series": {}}
    for name, index in (("all referrals", 0), ("elv_high", 1)):
        ours, naive, wins = [], [], 0
        for seed in range(1, seeds + 1):
            y = simulated_counts(seed, days)[index]
            bt = fc.backtest(y)
            assert bt.mae is not None
            assert bt.mae_seasonal_naive is not None
            ours.append(bt.mae)
            naive.append(bt.mae_seasonal_naive)
            wins += bt.mae < bt.mae_seasonal_naive
        out["series"][name] = {
            "train_days": bt.train_days,
            "test_days": bt.test_days,
            "mae": round(statistics.mean(ours), 3),
            "mae_seasonal_naive": round(statistics.mean(naive), 3),
            "wins": wins,
        }
        log(f"{name}: MAE {statistics.mean(ours):.2f} vs naive {statistics.mean(naive):.2f}")
    return out


def markdown(summary: dict[str, Any], sim_line: str | None) -> str:
    lines = [
        "## Demand forecast back-test",
        "",
        f"`python -m bench.forecast_backtest --write-results`: {summary['seeds']} simulated "
        f"years of {summary['days']} days from the simulator's demand model "
        "(`app.flows.simulate.referral_mean`, Poisson per day); train on the first 9 months, "
        "forecast the last 3 in one go; mean absolute error per day (mean over the seeds).",
        "",
        "| series | train / test days | Holt-Winters (damped) MAE | seasonal naive MAE "
        "| seeds where it wins |",
        "|---|---|---|---|---|",
    ]
    for name, r in summary["series"].items():
        lines.append(
            f"| {name} | {r['train_days']} / {r['test_days']} | {r['mae']:.2f} | "
            f"{r['mae_seasonal_naive']:.2f} | {r['wins']} of {summary['seeds']} |"
        )
    if sim_line:
        lines += ["", sim_line]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    path = ROOT / "bench" / "results.md"
    current = path.read_text() if path.exists() else "# Benchmark results\n"
    start = current.find("## Demand forecast back-test\n")
    if start == -1:
        path.write_text(current.rstrip("\n") + "\n\n" + text)
        return
    end = current.find("\n## ", start + 1)
    rest = "" if end == -1 else current[end + 1 :]
    path.write_text(current[:start] + text + ("\n" + rest if rest else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--simulate-line", default=None, help="A sentence on a simulate run")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    summary = run(args.seeds, args.days)
    path = write_json("forecast_backtest", summary)
    text = markdown(summary, args.simulate_line)
    sys.stdout.write(text)
    if args.write_results:
        write_section(text)
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
