"""A tiny folder in the exact MovieLens-100K layout (never the real data), with a few
malformed lines; shared by the loader tests and the notebook tests."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ctxrec.datasets.movielens import GENRES

# 1997-11-01 is a Saturday; 20:00 UTC is in the evening slot
T0 = int(pd.Timestamp("1997-11-01T20:00:00", tz="UTC").timestamp())
N_MOVIES = 24  # evaluate() ranks top-20 by default, so more than 20 items
# 5: latin-1 byte 0x85 is U+0085, a line break to str.splitlines but not in u.item
TITLES = {1: "Toy Story (1995)", 2: "Misérables, Les (1995)", 3: "Nobody's Poster (1996)", 4: "unknown",
          5: "Wait\x85 What (1990)"}
FLAGS = {1: ["Animation", "Children's", "Comedy"], 2: ["Drama", "Musical"], 3: ["Drama"], 4: ["unknown"]}
ZIPS = {1: "55414", 2: "T8H1N", 3: "00000", 4: "10003", 5: "94043"}
PLOTS = {1: "A cowboy doll is jealous of a new spaceman figure.",
         2: 'Jean Valjean, "the convict", meets a man whose life echoes his.'}
BAD_DATA = ["1\t2\t3", "abc\t1\t3\t881250949", "2\t999\t4\t881250949", "2\t1\t9\t881250949"]


def item_line(m: int) -> str:
    """Line of ``u.item`` for movie ``m``."""
    title = TITLES.get(m, f"Movie {m} (1990)")
    genres = FLAGS.get(m, ["Action"] if m % 2 else ["Thriller", "War"])
    flags = ["1" if g in genres else "0" for g in GENRES]
    date = "" if m == 4 else "01-Jan-1995"
    return "|".join([str(m), title, date, "", f"http://us.imdb.com/M/title-exact?{m}"] + flags)


def ratings():
    """The good ratings ``(user, movie, rating, unix time)``.

    User 1: a burst of two ratings in one second, one 10 minutes later (one session),
    then two hours later a second session. Users 2-5 rate every movie, one an hour.
    """
    rows = [(1, 2, 5, T0), (1, 1, 4, T0), (1, 3, 3, T0 + 600), (1, 5, 2, T0 + 7200), (1, 6, 1, T0 + 7260)]
    for u in range(2, 6):
        rows += [(u, m, 1 + (m + u) % 5, T0 + 86400 * u + 3600 * m) for m in range(1, N_MOVIES + 1)]
    return rows


def write_ml100k(d: Path) -> Path:
    """Write ``u.data``, ``u.item``, ``u.user``, ``items_details.csv`` and two posters into ``d``."""
    from PIL import Image

    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    data = ["\t".join(map(str, r)) for r in ratings()] + BAD_DATA
    (d / "u.data").write_text("\n".join(data) + "\n", encoding="ascii")
    items = [item_line(m) for m in range(1, N_MOVIES + 1)] + ["9|Too few fields|01-Jan-1995", "x|" + item_line(1)[2:]]
    (d / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    users = [f"{u}|{20 + 7 * u}|{'MF'[u % 2]}|{'student' if u % 2 else 'writer'}|{ZIPS[u]}" for u in ZIPS]
    users += ["6|abc|M|other|12345", "7|30|M|other"]
    (d / "u.user").write_text("\n".join(users) + "\n", encoding="ascii")
    details = pd.DataFrame({
        "item_id": [1, 2, 3, 77], "description": [PLOTS[1], PLOTS[2], None, "A movie that is not in u.item."],
        "director": ["John Lasseter", "Claude Lelouch", None, None],
        "cast": ["Tom Hanks|Tim Allen", "Jean-Paul Belmondo", None, None],
        "year": [1995, 1995, None, None], "age_rating": ["G", "R", None, None], "runtime": [81, 175, None, None],
        "imdb_id": ["tt0114709", "tt0113828", None, None], "verification": ["imdb_id", "imdb_id", "none", "none"],
    })
    details.to_csv(d / "items_details.csv", index=False)
    (d / "posters").mkdir(exist_ok=True)
    for m, colour in ((1, "red"), (2, "blue")):
        Image.new("RGB", (32, 48), colour).save(d / "posters" / f"{m}.jpg", format="JPEG", quality=85)
    return d
