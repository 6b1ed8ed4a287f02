"""Context extraction: time slots (daypart x weekday), normalised places, sessions.

These are the conventions every part of ctxrec shares: the synthetic world
generates with them and :mod:`ctxrec.graph.build` derives context nodes with them.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Tuple

import numpy as np
import pandas as pd

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: daypart -> [start hour, end hour); night wraps around midnight.
DAYPARTS = {"morning": (5, 12), "afternoon": (12, 17), "evening": (17, 22), "night": (22, 5)}

#: every time slot id, e.g. ``"sat-evening"``, in a fixed order
TIME_SLOTS = tuple(f"{w}-{d}" for w in WEEKDAYS for d in DAYPARTS)


def daypart_of(hour: int) -> str:
    """The daypart of an hour 0..23: morning 5-11, afternoon 12-16, evening 17-21, night 22-4."""
    if not 0 <= int(hour) <= 23:
        raise ValueError(f"hour must be in 0..23, got {hour!r}")
    for name, (lo, hi) in DAYPARTS.items():
        if lo < hi and lo <= hour < hi:
            return name
    return "night"


def time_slot(ts: pd.Timestamp) -> str:
    """Time slot id ``"<weekday>-<daypart>"`` of a timestamp, e.g. ``"sat-evening"``."""
    return f"{WEEKDAYS[ts.weekday()]}-{daypart_of(ts.hour)}"


def time_slots(times: pd.Series) -> pd.Series:
    """Vectorised :func:`time_slot` over a datetime64 Series."""
    hours = times.dt.hour.to_numpy()
    parts = np.array(list(DAYPARTS))
    part_idx = np.select(
        [(hours >= 5) & (hours < 12), (hours >= 12) & (hours < 17), (hours >= 17) & (hours < 22)], [0, 1, 2], 3
    )
    days = np.array(WEEKDAYS)[times.dt.day_of_week.to_numpy()]
    return pd.Series(np.char.add(np.char.add(days.astype(str), "-"), parts[part_idx].astype(str)), index=times.index)


def describe_time_slot(slot: str) -> str:
    """Human text for a slot, for the text encoder: ``"sat-evening"`` -> ``"Saturday evening"``."""
    weekday, daypart = parse_time_slot(slot)
    return f"{WEEKDAY_NAMES[WEEKDAYS.index(weekday)]} {daypart}"


def parse_time_slot(slot: str) -> Tuple[str, str]:
    """Split and check a slot id: ``"sat-evening"`` -> ``("sat", "evening")``."""
    parts = str(slot).split("-")
    if len(parts) != 2 or parts[0] not in WEEKDAYS or parts[1] not in DAYPARTS:
        raise ValueError(
            f"time slot {slot!r} is not '<weekday>-<daypart>' with weekday in {WEEKDAYS} and daypart in {tuple(DAYPARTS)}"
        )
    return parts[0], parts[1]


_WEEKDAY_WORDS = {w: i for i, w in enumerate(WEEKDAYS)}
_WEEKDAY_WORDS.update({n.lower(): i for i, n in enumerate(WEEKDAY_NAMES)})


def parse_when(text: str) -> str:
    """Parse a user's "when" into a time slot.

    Accepts a slot id (``"sat-evening"``), a weekday with a clock time (``"sat 20:00"``,
    ``"Saturday 8:30"``) or an ISO timestamp (``"2024-03-02T20:00"``).
    """
    s = str(text).strip().lower()
    if s in TIME_SLOTS:
        return s
    m = re.fullmatch(r"([a-z]+)\s+(\d{1,2})(?::(\d{2}))?", s)
    if m and m.group(1) in _WEEKDAY_WORDS:
        hour = int(m.group(2))
        return f"{WEEKDAYS[_WEEKDAY_WORDS[m.group(1)]]}-{daypart_of(hour)}"
    try:
        return time_slot(pd.Timestamp(text))
    except (ValueError, TypeError):
        raise ValueError(
            f"cannot read time {text!r}: use a slot like 'sat-evening', a weekday and hour like 'sat 20:00', "
            "or an ISO timestamp like '2024-03-02T20:00'"
        ) from None


def normalize_place(text: object) -> str:
    """Normalise a free-text location to a place id: NFKC, lower case, punctuation
    dropped, whitespace collapsed (``"  New-York, "`` -> ``"new york"``). Empty -> ``""``."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return ""
    s = unicodedata.normalize("NFKC", str(text)).lower()
    s = re.sub(r"[^\w\s]", " ", s)
    return re.sub(r"\s+", " ", s).strip()


def display_place(place_id: str) -> str:
    """Title-case display name of a normalised place id (``"new york"`` -> ``"New York"``)."""
    return " ".join(w.capitalize() for w in place_id.split())


def sessionize(users: pd.Series, times: pd.Series, gap_minutes: float = 30.0,
               explicit: pd.Series | None = None) -> pd.Series:
    """Assign session ids to events.

    Events of one user belong to one session while consecutive events are at most
    ``gap_minutes`` apart. Where ``explicit`` holds a session id it wins (prefixed with
    the user id so ids never collide across users). Ids are stable across runs:
    ``"<user>@<unix seconds of the session's first event>"``.

    Args:
        users: user id per event.
        times: event time (datetime64) per event.
        gap_minutes: inactivity gap that starts a new session (default: 30).
        explicit: optional given session id per event (NaN where absent).
    """
    if gap_minutes <= 0:
        raise ValueError(f"gap_minutes must be > 0, got {gap_minutes}")
    frame = pd.DataFrame({"u": users.astype(str).to_numpy(), "t": times.to_numpy()}, index=users.index)
    order = frame.sort_values(["u", "t"], kind="stable")
    new_user = order["u"].ne(order["u"].shift())
    gap = order["t"].diff() > pd.Timedelta(minutes=gap_minutes)
    starts = new_user | gap
    group = starts.cumsum()
    first_t = order.groupby(group)["t"].transform("min")
    ids = order["u"] + "@" + unix_seconds(first_t).astype(str)
    out = ids.reindex(frame.index)
    if explicit is not None:
        given = explicit.notna() & explicit.astype(str).str.len().gt(0)
        out = out.where(~given, users.astype(str) + "#" + explicit.astype(str))
    return out


def unix_seconds(times: pd.Series) -> pd.Series:
    """Integer unix seconds of a datetime64 Series, whatever its resolution (ns, us, s)."""
    return times.astype("datetime64[s]").astype("int64")
