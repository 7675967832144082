"""What the board and placement pages share: local time, durations and their Jinja filters.

Times are stored in UTC and shown in the region's time (Europe/Amsterdam).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from app.web.templating import env

TZ = ZoneInfo("Europe/Amsterdam")


def local(value: datetime | None, fmt: str = "%d-%m %H:%M") -> str:
    return "–" if value is None else value.astimezone(TZ).strftime(fmt)


def duration(minutes: int | None) -> str:
    """``2 d 3 h``, ``3 h 05 m``, ``12 m``: language-neutral units."""
    if minutes is None:
        return "–"
    days, rest = divmod(max(0, minutes), 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins:02d} m"
    return f"{mins} m"


def countdown(seconds: int | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(max(0, seconds), 60)
    return f"{minutes}:{secs:02d}"


env.globals["tz"] = TZ
env.filters["local"] = local
env.filters["duration"] = duration
env.filters["countdown"] = countdown
