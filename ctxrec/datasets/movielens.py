"""MovieLens-100K: a local ``ml-100k`` folder -> ctxrec's seed tables.

Reads ``u.data`` (ratings), ``u.item`` (latin-1 titles, release dates, 19 genre flags)
and ``u.user`` (age, gender, occupation, zip) and, when present, ``items_details.csv``
(IMDb plot per movie) and ``posters/<movie id>.jpg``. Ratings become ``rating`` events
(weight ``ACTION_WEIGHTS["rating"]``; the 1-5 score is kept in ``value``); each event's
``location`` is the user's place, the US state of the zip code (Canadian postal codes
give the province). Sessions, time slots and places are left to
:func:`ctxrec.graph.build.build_graph`, as for any seed files.

Bad rows are skipped and reported as :class:`~ctxrec.graph.readers.Reject` (file, row =
line number, column, value, reason); a missing required file raises
:class:`~ctxrec.graph.readers.InputError`.

Example:
    >>> ml = load_movielens("data/ml-100k")  # doctest: +SKIP
    >>> len(ml.interactions), len(ml.users), len(ml.items)  # doctest: +SKIP
    (100000, 943, 1682)
    >>> paths = ml.write("data/ml100k-seed")  # then: ctxrec ingest ...  # doctest: +SKIP
"""
from __future__ import annotations

import bisect
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Union

import pandas as pd

from ctxrec.graph.context import display_place
from ctxrec.graph.readers import InputError, Reject, RejectLog, read_table, reject_rows

__all__ = ["MovieLens", "MovieLensWarning", "load_movielens", "zip_to_place", "age_band", "GENRES"]

#: genre flag order of ``u.item`` (as in ``u.genre``)
GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
          "War", "Western")
_ITEM_COLUMNS = ("movie_id", "title", "release_date", "video_release_date", "imdb_url") + GENRES
#: the MovieLens-1M age groups: (first age of the next band, band)
_AGE_BANDS = ((18, "under 18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (50, "45-49"), (56, "50-55"))
#: USPS 3-digit ZIP prefixes as ranges: (last prefix of the range, state); None = unassigned
_ZIP3 = [
    (4, None), (5, "New York"), (7, "Puerto Rico"), (8, "Virgin Islands"), (9, "Puerto Rico"),
    (27, "Massachusetts"), (29, "Rhode Island"), (38, "New Hampshire"), (49, "Maine"), (54, "Vermont"),
    (55, "Massachusetts"), (59, "Vermont"), (69, "Connecticut"), (89, "New Jersey"), (99, "Armed Forces Europe"),
    (149, "New York"), (196, "Pennsylvania"), (199, "Delaware"), (200, "District of Columbia"), (201, "Virginia"),
    (205, "District of Columbia"), (212, "Maryland"), (213, None), (219, "Maryland"), (246, "Virginia"),
    (268, "West Virginia"), (269, None), (289, "North Carolina"), (299, "South Carolina"), (319, "Georgia"),
    (339, "Florida"), (340, "Armed Forces Americas"), (349, "Florida"), (369, "Alabama"), (385, "Tennessee"),
    (397, "Mississippi"), (399, "Georgia"), (427, "Kentucky"), (429, None), (459, "Ohio"), (479, "Indiana"),
    (499, "Michigan"), (528, "Iowa"), (529, None), (549, "Wisconsin"), (567, "Minnesota"), (568, None),
    (569, "District of Columbia"), (577, "South Dakota"), (579, None), (588, "North Dakota"), (589, None),
    (599, "Montana"), (629, "Illinois"), (658, "Missouri"), (659, None), (679, "Kansas"), (693, "Nebraska"),
    (699, None), (714, "Louisiana"), (715, None), (729, "Arkansas"), (732, "Oklahoma"), (733, "Texas"),
    (749, "Oklahoma"), (799, "Texas"), (816, "Colorado"), (819, None), (831, "Wyoming"), (838, "Idaho"),
    (839, None), (847, "Utah"), (849, None), (865, "Arizona"), (869, None), (884, "New Mexico"), (885, "Texas"),
    (888, None), (898, "Nevada"), (899, None), (961, "California"), (966, "Armed Forces Pacific"),
    (968, "Hawaii"), (969, "Guam"), (979, "Oregon"), (994, "Washington"), (999, "Alaska"),
]
_ZIP3_ENDS = [end for end, _ in _ZIP3]
#: first letter of a Canadian postal code -> province (X spans two territories: left out)
_CA_PROVINCE = dict(zip("ABCEGHJKLMNPRSTVY", (
    "Newfoundland and Labrador", "Nova Scotia", "Prince Edward Island", "New Brunswick", "Quebec", "Quebec",
    "Quebec", "Ontario", "Ontario", "Ontario", "Ontario", "Ontario", "Manitoba", "Saskatchewan", "Alberta",
    "British Columbia", "Yukon")))


class MovieLensWarning(UserWarning):
    """An optional part of the MovieLens folder (plots, posters) is missing."""


def zip_to_place(zip_code: object) -> str:
    """Place name of a zip code: the US state from its 3-digit prefix, the province of a
    Canadian postal code, else ``"zip <first 3 chars>"``; empty or all-zero -> ``"unknown"``.

    Example:
        >>> zip_to_place("55414"), zip_to_place("T8H1N"), zip_to_place("00000")
        ('Minnesota', 'Alberta', 'unknown')
    """
    z = str(zip_code or "").strip().upper()
    if not z or set(z) <= {"0", "-"}:
        return "unknown"
    if re.fullmatch(r"\d{3}.*", z):
        state = _ZIP3[bisect.bisect_left(_ZIP3_ENDS, int(z[:3]))][1]
        if state:
            return state
    elif re.fullmatch(r"[A-Z]\d[A-Z].*", z) and z[0] in _CA_PROVINCE:
        return _CA_PROVINCE[z[0]]
    return f"zip {z[:3]}"


def age_band(age: object) -> str:
    """MovieLens-1M age group of an age (``"under 18"``, ``"18-24"``, ..., ``"56+"``); ``""`` if unknown."""
    if age is None or pd.isna(age):
        return ""
    return next((band for end, band in _AGE_BANDS if age < end), "56+")


@dataclass(eq=False)  # frames have no single truth value
class MovieLens:
    """A loaded MovieLens folder, as seed tables.

    Attributes:
        interactions: ``user_id, action, item_id, time, value, location``: one ``rating``
            per row, ``value`` the 1-5 score (int), ``time`` naive UTC; sorted by (time, user, item)
            so bursts of ratings with one timestamp keep a stable order.
        items: ``item_id, name, description, category, price, image_path, genres, year,
            plot``; ``genres`` is a list, ``category`` its first entry (or ``"unknown"``),
            ``image_path`` absolute (missing without a poster), ``price`` empty.
        users: ``user_id, age, age_band, gender, occupation, zip, location``.
        rejects: rows that were skipped or repaired, with file, row, column, value, reason.
    """

    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    rejects: List[Reject] = field(default_factory=list)

    def write(self, out_dir: Union[str, Path]) -> Dict[str, Path]:
        """Write the seed files into ``out_dir`` (created if needed).

        Writes ``interactions.csv``, ``items.csv`` (with extra ``genres`` (``|``-joined) and
        ``year`` columns that ingest ignores), ``context.csv`` (each user's place; no
        ``time_in_site`` or ``shopping_cart``), ``users.csv`` (demographics, for group
        metrics) and, when there are any, ``load_rejects.csv``. Posters stay where they
        are: ``image_path`` is absolute. Each file is written to a temporary name and renamed
        into place, so a process reading the folder while another writes it (two benchmarks
        started at once) never reads half a file.

        Returns:
            dict: ``"interactions"``, ``"items"``, ``"context"``, ``"users"`` (and
            ``"rejects"``) -> file.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        names = ("interactions", "items", "context", "users")
        paths = {n: out / f"{n}.csv" for n in names}
        inter = self.interactions.assign(time=self.interactions["time"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
        items = self.items.drop(columns=["plot"]).assign(genres=self.items["genres"].map("|".join))
        context = pd.DataFrame({"user_id": self.users["user_id"], "location": self.users["location"],
                                "time_in_site": None, "shopping_cart": None})
        for name, frame in zip(names, (inter, items, context, self.users)):
            tmp = paths[name].with_name(f".{paths[name].name}.{os.getpid()}.tmp")
            frame.to_csv(tmp, index=False, lineterminator="\n")
            os.replace(tmp, paths[name])
        if self.rejects:
            log = RejectLog()
            log.items = list(self.rejects)
            paths["rejects"] = log.write(out / "load_rejects.csv")
        return paths


def load_movielens(folder: Union[str, Path], min_rating: Optional[float] = None) -> MovieLens:
    """Load a MovieLens-100K folder into seed tables.

    Args:
        folder: the ``ml-100k`` folder: ``u.data``, ``u.item``, ``u.user`` are required;
            ``items_details.csv`` (columns ``item_id, description, ...``) and ``posters/``
            are optional (a :class:`MovieLensWarning` says when they are missing).
        min_rating: keep only ratings >= this, e.g. 4 for "liked" (default: None, keep all).

    Returns:
        A :class:`MovieLens`; ``ids`` are ``"u<user id>"`` and ``"m<movie id>"``.

    Raises:
        InputError: a required file is missing.
        ValueError: ``min_rating`` is outside 1..5.
    """
    folder = Path(folder)
    if min_rating is not None and not 1 <= float(min_rating) <= 5:
        raise ValueError(f"min_rating must be in 1..5 (ratings are 1-5) or None, got {min_rating!r}")
    log = RejectLog()
    users = _users(folder / "u.user", log)
    items = _items(folder, log)
    inter = _ratings(folder / "u.data", set(items["item_id"]), log)
    if min_rating is not None:
        inter = inter[inter["value"] >= float(min_rating)]
    inter = inter.sort_values(["ts", "_u", "_i"], kind="stable")
    location = inter["user_id"].map(users.set_index("user_id")["location"])
    interactions = pd.DataFrame({
        "user_id": inter["user_id"], "action": "rating", "item_id": inter["item_id"],
        "time": pd.to_datetime(inter["ts"], unit="s").astype("datetime64[s]"), "value": inter["value"],
        "location": location,
    }).reset_index(drop=True)
    return MovieLens(interactions, items, users, list(log.items))


def _read_lines(path: Path, names, sep: Optional[str], encoding: str, log: RejectLog) -> pd.DataFrame:
    """Split a header-less file into string columns; a line with the wrong number of
    fields is rejected (row = line number). ``sep=None`` splits on any whitespace."""
    if not path.is_file():
        raise InputError(f"{path}: file not found; pass the folder of an unpacked MovieLens-100K download "
                         "(ml-100k.zip from grouplens.org), which holds u.data, u.item and u.user")
    rows, numbers = [], []
    # split on "\n" only: str.splitlines would also break at U+0085, which is latin-1 byte 0x85
    for i, line in enumerate(path.read_bytes().decode(encoding, errors="replace").split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split(sep)
        if len(fields) != len(names):
            log.add(str(path), [i], "*", [line], f"expected {len(names)} fields separated by "
                    f"{'whitespace' if sep is None else repr(sep)}, found {len(fields)}; fix or delete the line")
            continue
        rows.append([f.strip() for f in fields])
        numbers.append(i)
    frame = pd.DataFrame(rows, columns=list(names), dtype=object)
    frame["_row"] = numbers
    return frame


def _numbers(frame, column, log, file, lo, hi, what="an integer"):
    """Reject rows whose ``column`` is not a whole number in [lo, hi]; convert the rest."""
    num = pd.to_numeric(frame[column], errors="coerce")
    bad = num.isna() | (num < lo) | (num > hi) | (num % 1 != 0)
    frame = reject_rows(frame, bad, log, file, column, f"{column} must be {what} in {lo}..{hi}; fix the value")
    return frame.assign(**{column: num[~bad].astype("int64")})


def _users(path: Path, log: RejectLog) -> pd.DataFrame:
    frame = _read_lines(path, ("user", "age", "gender", "occupation", "zip"), "|", "latin-1", log)
    f = str(path)
    frame = _numbers(frame, "user", log, f, 1, 10**9)
    frame = reject_rows(frame, frame["user"].duplicated(), log, f, "user", "duplicate user id; keep one line per user")
    age = pd.to_numeric(frame["age"], errors="coerce")
    bad = age.isna() | (age < 0) | (age > 120)
    log.add(f, frame.loc[bad, "_row"], "age", frame.loc[bad, "age"], "age is not a number in 0..120; kept the user "
            "with an unknown age")
    age = age.where(~bad).astype("Int64")
    return pd.DataFrame({
        "user_id": "u" + frame["user"].astype(str), "age": age, "age_band": age.map(age_band),
        "gender": frame["gender"], "occupation": frame["occupation"], "zip": frame["zip"],
        "location": frame["zip"].map(zip_to_place),
    }).reset_index(drop=True)


def _items(folder: Path, log: RejectLog) -> pd.DataFrame:
    path = folder / "u.item"
    frame = _read_lines(path, _ITEM_COLUMNS, "|", "latin-1", log)
    f = str(path)
    frame = _numbers(frame, "movie_id", log, f, 1, 10**9)
    frame = reject_rows(frame, frame["movie_id"].duplicated(), log, f, "movie_id",
                        "duplicate movie id; keep one line per movie")
    flags = frame[list(GENRES)]
    bad = ~flags.isin(["0", "1"])
    for genre in GENRES:
        log.add(f, frame.loc[bad[genre], "_row"], genre, frame.loc[bad[genre], genre],
                "genre flag must be 0 or 1; read as 0")
    on = flags.eq("1").to_numpy()
    genres = [[g for g, v in zip(GENRES[1:], row[1:]) if v] for row in on]
    ids = "m" + frame["movie_id"].astype(str)
    titles = frame["title"].fillna("").str.strip()
    # The year in the title is the film's; release_date is sometimes a re-release (Contempt (1963): 1997).
    year = pd.to_numeric(titles.str.extract(r"\((\d{4})\)\s*$")[0], errors="coerce")
    year = year.fillna(pd.to_datetime(frame["release_date"], format="%d-%b-%Y", errors="coerce").dt.year)
    year = year.astype("Int64")
    plots = _plots(folder / "items_details.csv", dict(zip(ids, frame["_row"])), log)
    plot = ids.map(plots)
    posters = folder / "posters"
    if not posters.is_dir():
        warnings.warn(f"{posters}: no posters folder; items get no image_path (their image is masked)",
                      MovieLensWarning, stacklevel=3)
    image = [str((posters / f"{i[1:]}.jpg").resolve()) if (posters / f"{i[1:]}.jpg").is_file() else None
             for i in ids]

    def describe(title, gs, text):
        parts = [title] + ([f"Genres: {', '.join(gs)}"] if gs else []) + ([text] if isinstance(text, str) else [])
        return ". ".join(p.rstrip(".") for p in parts) + "."

    return pd.DataFrame({
        "item_id": ids, "name": titles, "description": [describe(*a) for a in zip(titles, genres, plot)],
        "category": [g[0] if g else "unknown" for g in genres], "price": float("nan"), "image_path": image,
        "genres": genres, "year": year, "plot": plot,
    }).reset_index(drop=True)


def _plots(path: Path, known: Dict[str, int], log: RejectLog) -> Dict[str, str]:
    """``item id -> plot`` from ``items_details.csv`` (UTF-8; empty plots are skipped)."""
    if not path.is_file():
        warnings.warn(f"{path}: not found; item descriptions are title and genres only",
                      MovieLensWarning, stacklevel=4)
        return {}
    frame = read_table(path, ("item_id", "description"), log=log)
    f = str(path)
    frame = _numbers(frame, "item_id", log, f, 1, 10**9)
    frame = frame.assign(item_id="m" + frame["item_id"].astype(str))
    frame = reject_rows(frame, ~frame["item_id"].isin(known), log, f, "item_id",
                        "unknown movie id: not in u.item (or its line there was rejected); fix the id or drop the row")
    frame = reject_rows(frame, frame["item_id"].duplicated(), log, f, "item_id", "duplicate item_id; keep one row")
    frame = reject_rows(frame, frame["description"].fillna("").str.contains("\ufffd", regex=False), log, f,
                        "description", "not valid UTF-8; re-save the file as UTF-8")
    frame = frame[frame["description"].notna()]
    return dict(zip(frame["item_id"], frame["description"]))


def _ratings(path: Path, known_items: set, log: RejectLog) -> pd.DataFrame:
    # Split on any whitespace: some copies of u.data have spaces instead of tabs on a line.
    frame = _read_lines(path, ("user", "item", "rating", "timestamp"), None, "latin-1", log)
    f = str(path)
    frame = _numbers(frame, "user", log, f, 1, 10**9)
    frame = _numbers(frame, "item", log, f, 1, 10**9)
    frame = _numbers(frame, "rating", log, f, 1, 5, what="an integer rating")
    frame = _numbers(frame, "timestamp", log, f, 0, 2.5e11, what="unix seconds (an integer)")
    item_ids = "m" + frame["item"].astype(str)
    frame = reject_rows(frame.assign(item_id=item_ids), ~item_ids.isin(known_items), log, f, "item",
                        "unknown movie id: not in u.item (or its line there was rejected); fix the id or add the movie")
    return pd.DataFrame({"user_id": "u" + frame["user"].astype(str), "item_id": frame["item_id"],
                         "value": frame["rating"], "ts": frame["timestamp"], "_u": frame["user"],
                         "_i": frame["item"]})
