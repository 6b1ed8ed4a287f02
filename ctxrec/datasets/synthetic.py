"""A synthetic multimodal world whose right answers are known.

Users with a home place, a taste over categories and favourite times of day
consume media items (text, cover image, sound) in sessions. What they pick
depends strongly on the context of the session, so a context-aware recommender
has something to learn that popularity cannot:

.. math::

    U(u, i, c) = \\mathrm{taste}_{u, \\mathrm{cat}_i}
        + \\mathrm{DAYPART\\_MOOD}[\\mathrm{daypart}_c, \\mathrm{mood}_i]
        + \\mathrm{PLACE\\_CAT}[\\mathrm{place}_c, \\mathrm{cat}_i]
        + \\mathrm{WEEKEND\\_TEMPO}[\\mathrm{weekend}_c, \\mathrm{tempo}_i]
        + 0.3\\,\\mathrm{quality}_i

Within a session the items are drawn without replacement from
:math:`\\mathrm{softmax}(U / T)` in the session's context (Gumbel top-k), and
:meth:`World.preference` returns exactly that :math:`U`, the ground truth an
oracle recommender is scored with.

Example:
    >>> world = generate_world("tiny")
    >>> world.preference(["u0001"], "sat-evening", "london").shape  # doctest: +SKIP
    (1, 40)
    >>> paths = world.write("data/tiny")  # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import pandas as pd

from ctxrec.datasets.synthetic_media import CATEGORIES, MOODS, TEMPOS, render_audio, render_image, sample_items
from ctxrec.graph.context import DAYPARTS, WEEKDAYS, daypart_of, display_place, normalize_place, parse_time_slot
from ctxrec.optional import require

__all__ = [
    "WorldConfig",
    "SIZES",
    "World",
    "generate_world",
    "PLACE_NAMES",
    "ACTIONS",
    "DAYPART_MOOD",
    "WEEKEND_TEMPO",
    "PLACE_BOOST",
    "QUALITY_WEIGHT",
]

#: place ids a world draws its places from, in order
PLACE_NAMES = (
    "new york", "london", "paris", "berlin", "tokyo", "são paulo", "sydney", "rio de janeiro",
    "cape town", "mexico city", "los angeles", "madrid", "rome", "seoul", "toronto", "mumbai",
)
ACTIONS = ("view", "click", "cart", "purchase")
_ACTION_SHARES = np.array([0.60, 0.25, 0.10, 0.05])
#: daypart -> mood -> utility term: mornings favour upbeat, evenings and nights calm
DAYPART_MOOD: Dict[str, Dict[str, float]] = {
    "morning": {"calm": -0.75, "upbeat": 0.75},
    "afternoon": {"calm": -0.25, "upbeat": 0.25},
    "evening": {"calm": 1.0, "upbeat": -1.0},
    "night": {"calm": 1.25, "upbeat": -1.25},
}
#: is_weekend -> tempo -> utility term: weekends favour fast, weekdays slow
WEEKEND_TEMPO: Dict[bool, Dict[str, float]] = {
    False: {"slow": 0.4, "medium": 0.0, "fast": -0.4},
    True: {"slow": -0.6, "medium": 0.0, "fast": 0.6},
}
#: each place adds +PLACE_BOOST to two categories and -PLACE_BOOST to one
PLACE_BOOST = 1.5
QUALITY_WEIGHT = 0.3
_SESSION_GAP_S = 2 * 3600  # sessions of one user are at least this far apart
_DAYPART_HOURS = {d: [h % 24 for h in range(lo, hi if hi > lo else hi + 24)] for d, (lo, hi) in DAYPARTS.items()}
_HOURS_TABLE = np.array([h + [h[0]] * (24 - len(h)) for h in _DAYPART_HOURS.values()])  # [daypart, k] -> hour
_HOUR_TO_DAYPART = np.array([list(DAYPARTS).index(daypart_of(h)) for h in range(24)])


@dataclass
class WorldConfig:
    """Size and shape of a synthetic world.

    Args:
        n_users: number of users (default: 200).
        n_items: number of items (default: 300).
        n_places: number of places, at most ``len(PLACE_NAMES)`` (default: 6).
        sessions_per_user: mean sessions per user, at least 1 each (default: 12).
        items_per_session: mean events per session, at least 1 each (default: 5).
        images: render a cover PNG per item on :meth:`World.write` (default: True).
        image_size: cover width and height in pixels (default: 64).
        audio: render a WAV per item on :meth:`World.write` (default: True).
        audio_seconds: clip length (default: 0.5).
        sample_rate: WAV sample rate in Hz (default: 16000).
        start: first day sessions may fall on, ISO date (default: "2024-01-01").
        days: sessions fall in ``[start, start + days)`` (default: 120).
        explicit_sessions: add a ``session_id`` column to the interactions (default: False).
        seed: everything is a function of it (default: 0).
        temperature: softmax temperature of item choice; lower is more deterministic (default: 0.7).
        p_home: probability that a session happens at the user's home place (default: 0.65).
        session_intent: utility added to one category drawn at random per session (what
            that session is about), so a session's first items hint at its later ones; 0
            leaves sessions without intent and the world exactly as before (default: 0.0).
    """

    n_users: int = 200
    n_items: int = 300
    n_places: int = 6
    sessions_per_user: int = 12
    items_per_session: int = 5
    images: bool = True
    image_size: int = 64
    audio: bool = True
    audio_seconds: float = 0.5
    sample_rate: int = 16000
    start: str = "2024-01-01"
    days: int = 120
    explicit_sessions: bool = False
    seed: int = 0
    temperature: float = 0.7
    p_home: float = 0.65
    session_intent: float = 0.0

    def __post_init__(self) -> None:
        checks = [
            ("n_users", self.n_users >= 1, ">= 1"),
            ("n_items", self.n_items >= 1, ">= 1"),
            ("n_places", 1 <= self.n_places <= len(PLACE_NAMES), f"in 1..{len(PLACE_NAMES)}"),
            ("sessions_per_user", self.sessions_per_user >= 1, ">= 1"),
            ("items_per_session", self.items_per_session >= 1, ">= 1"),
            ("image_size", self.image_size >= 8, ">= 8"),
            ("audio_seconds", self.audio_seconds > 0, "> 0"),
            ("sample_rate", self.sample_rate >= 1000, ">= 1000"),
            ("days", self.days >= 1, ">= 1"),
            ("temperature", self.temperature > 0, "> 0"),
            ("p_home", 0.0 <= self.p_home <= 1.0, "in [0, 1]"),
            ("session_intent", self.session_intent >= 0, ">= 0"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"WorldConfig.{name} must be {expected}, got {getattr(self, name)!r}")
        try:
            pd.Timestamp(self.start)
        except (ValueError, TypeError) as e:
            raise ValueError(f"WorldConfig.start must be an ISO date like '2024-01-01', got {self.start!r}") from e

    @property
    def expected_interactions(self) -> int:
        """Expected number of interactions: ``n_users * sessions_per_user * items_per_session``."""
        return int(self.n_users * self.sessions_per_user * self.items_per_session)


#: named sizes; ``tiny`` is for tests, ``small`` the default demo, ``large`` has >= 100k interactions,
#: ``context`` is the context benchmark's world, ``session`` the session benchmark's
SIZES: Dict[str, WorldConfig] = {
    "tiny": WorldConfig(n_users=30, n_items=40, n_places=3, sessions_per_user=8, items_per_session=4,
                        image_size=32, audio_seconds=0.25, days=60),
    "small": WorldConfig(),
    "medium": WorldConfig(n_users=1000, n_items=1000, n_places=8, sessions_per_user=15, days=180),
    "large": WorldConfig(n_users=3000, n_items=2000, n_places=12, sessions_per_user=16, days=365),
    # the context benchmark's world: enough sessions per user that taste can be learned, so
    # what separates models is whether they use the context
    "context": WorldConfig(n_users=300, n_items=300, sessions_per_user=60, days=180),
    # the session benchmark's world: each session is about one category, so the session so
    # far tells what comes next
    "session": WorldConfig(n_users=200, n_items=200, n_places=4, sessions_per_user=20, items_per_session=6,
                           days=90, session_intent=3.0),
}


class _Utility:
    """The utility function, vectorised over rows that each carry one (user, context)."""

    def __init__(self, items: pd.DataFrame, taste: np.ndarray, place_category: np.ndarray,
                 session_intent: float = 0.0) -> None:
        self.taste, self.place_category, self.session_intent = taste, place_category, session_intent
        self.cat = items["category"].map(CATEGORIES.index).to_numpy()
        self.mood = items["mood"].map(MOODS.index).to_numpy()
        self.tempo = items["tempo"].map(TEMPOS.index).to_numpy()
        self.quality = items["quality"].to_numpy(dtype=float)
        daypart_mood = np.array([[DAYPART_MOOD[d][m] for m in MOODS] for d in DAYPARTS])
        weekend_tempo = np.array([[WEEKEND_TEMPO[w][t] for t in TEMPOS] for w in (False, True)])
        # the item terms that depend only on (daypart, weekend): [daypart * 2 + weekend, item]
        self.item_terms = (daypart_mood[:, None, self.mood] + weekend_tempo[None, :, self.tempo]
                           + QUALITY_WEIGHT * self.quality).reshape(2 * len(DAYPARTS), -1)

    def __call__(self, users: np.ndarray, dayparts: np.ndarray, weekend: np.ndarray,
                 places: np.ndarray, intents: Optional[np.ndarray] = None) -> np.ndarray:
        """Index arrays of length R (weekend boolean) -> utilities ``[R, n_items]``; ``intents``
        (a category per row) adds ``session_intent`` to that category."""
        cat_scores = self.taste[users] + self.place_category[places]  # [R, n_categories]
        if intents is not None:
            cat_scores = cat_scores.copy()
            cat_scores[np.arange(len(intents)), intents] += self.session_intent
        return np.take(cat_scores, self.cat, axis=1) + self.item_terms[2 * dayparts + np.asarray(weekend, dtype=int)]


@dataclass(eq=False)  # frames have no single truth value; compare worlds by their tables
class World:
    """A generated world: its tables, its hidden parameters, and its ground truth.

    Build one with :func:`generate_world`.

    Attributes:
        config: the configuration it was generated from.
        items: one row per item: ``item_id, name, description, category, colour, shape,
            mood, tempo, quality, price``.
        users: one row per user: ``user_id, home`` (place id), ``favourite_categories,
            active_dayparts`` (``;``-joined), ``time_in_site`` (minutes), ``shopping_cart``.
        places: place ids, normalised (``"new york"``).
        item_ids: item ids in the column order of :meth:`preference`.
        interactions: ``user_id, action, item_id, time, location[, session_id]``, sorted by
            time; ``location`` is the noisy text that is written to the csv.
        sessions: one row per generated session: ``session_id, user_id, start, end,
            time_slot, place, n_events[, intent]`` (``time_slot`` and ``place`` of its start;
            ``intent`` the category the session is about, with ``session_intent > 0``).
        event_session: generated session id of each row of ``interactions``.
        taste: ``[n_users, len(CATEGORIES)]`` taste term of the utility.
        place_category: places x categories frame, the ``PLACE_CAT`` term.
    """

    config: WorldConfig
    items: pd.DataFrame
    users: pd.DataFrame
    places: List[str]
    item_ids: np.ndarray
    interactions: pd.DataFrame
    sessions: pd.DataFrame
    event_session: np.ndarray = field(repr=False)
    taste: np.ndarray = field(repr=False)
    place_category: pd.DataFrame = field(repr=False)

    def __post_init__(self) -> None:
        self._user_pos = {u: k for k, u in enumerate(self.users["user_id"])}
        self._item_pos = {i: k for k, i in enumerate(self.item_ids)}
        self._utility = _Utility(self.items, self.taste, self.place_category.to_numpy())

    def preference(self, user_ids: Union[str, Sequence[str]], time_slot: str, place: str) -> np.ndarray:
        """True utility of every item for some users in one context.

        Args:
            user_ids: user id or ids, e.g. ``["u0001", "u0002"]``.
            time_slot: slot id like ``"sat-evening"``.
            place: a place of this world, as id or free text (``"New York"`` works).

        Returns:
            np.ndarray: ``[len(user_ids), n_items]`` float64, columns in :attr:`item_ids` order.
        """
        ids = [user_ids] if isinstance(user_ids, str) else list(user_ids)
        missing = [u for u in ids if u not in self._user_pos]
        if missing:
            raise ValueError(f"user_ids: unknown user(s) {missing[:5]}; ids run {self.users['user_id'].iloc[0]}.."
                             f"{self.users['user_id'].iloc[-1]}")
        weekday, daypart = parse_time_slot(time_slot)
        pid = normalize_place(place)
        if pid not in self.places:
            raise ValueError(f"place {place!r} is not in this world; choose one of {self.places}")
        n = len(ids)
        return self._utility(np.array([self._user_pos[u] for u in ids], dtype=int),
                             np.full(n, list(DAYPARTS).index(daypart)),
                             np.full(n, WEEKDAYS.index(weekday) >= 5), np.full(n, self.places.index(pid)))

    def _item_rng(self, item_id: str, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, stream, self._item_pos[item_id]])

    def render_image(self, item_id: str):
        """The cover image of an item (``PIL.Image``, ``image_size`` square)."""
        row = self.items.iloc[self._item_pos[item_id]]
        return render_image(self._item_rng(item_id, 1), row["colour"], row["shape"], self.config.image_size)

    def render_audio(self, item_id: str) -> np.ndarray:
        """The sound of an item: int16 mono samples at ``sample_rate``."""
        row = self.items.iloc[self._item_pos[item_id]]
        c = self.config
        return render_audio(self._item_rng(item_id, 2), row["category"], row["mood"], row["tempo"],
                            c.audio_seconds, c.sample_rate)

    def write(self, out_dir: Union[str, Path]) -> Dict[str, Path]:
        """Write the seed files into ``out_dir`` (created if needed).

        Writes ``interactions.csv``, ``items.csv``, ``context.csv`` and, when enabled,
        ``images/<item>.png`` and ``audio/<item>.wav`` (paths in ``items.csv`` are
        relative to its folder). Same world, same bytes.

        Returns:
            dict: ``"interactions"``, ``"items"``, ``"context"`` -> file, and
            ``"images_dir"`` / ``"audio_dir"`` -> folder when those media are enabled.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"interactions": out / "interactions.csv", "items": out / "items.csv", "context": out / "context.csv"}
        inter = self.interactions.copy()
        inter["time"] = inter["time"].dt.strftime("%Y-%m-%dT%H:%M:%S")
        inter.to_csv(paths["interactions"], index=False, lineterminator="\n")

        items = self.items[["item_id", "name", "description", "category", "price"]].copy()
        if self.config.images:
            paths["images_dir"] = out / "images"
            paths["images_dir"].mkdir(exist_ok=True)
            items["image_path"] = "images/" + items["item_id"] + ".png"
            for item_id in self.item_ids:
                self.render_image(item_id).save(paths["images_dir"] / f"{item_id}.png", format="PNG")
        if self.config.audio:
            sf = require("soundfile", "World.write with audio=True")
            paths["audio_dir"] = out / "audio"
            paths["audio_dir"].mkdir(exist_ok=True)
            items["audio_path"] = "audio/" + items["item_id"] + ".wav"
            for item_id in self.item_ids:
                sf.write(paths["audio_dir"] / f"{item_id}.wav", self.render_audio(item_id), self.config.sample_rate,
                         subtype="PCM_16", format="WAV")
        items.to_csv(paths["items"], index=False, lineterminator="\n")

        context = pd.DataFrame({
            "user_id": self.users["user_id"],
            "location": self.users["home"].map(display_place),
            "time_in_site": self.users["time_in_site"],
            "shopping_cart": self.users["shopping_cart"],
        })
        context.to_csv(paths["context"], index=False, lineterminator="\n")
        return paths


def generate_world(config: Union[WorldConfig, str] = "small") -> World:
    """Generate a world; the same config (seed included) always gives the same world.

    Args:
        config: a :class:`WorldConfig` or a name in :data:`SIZES` (default: "small").

    Example:
        >>> w = generate_world("tiny")
        >>> len(w.item_ids), w.interactions.columns.tolist()  # doctest: +SKIP
        (40, ['user_id', 'action', 'item_id', 'time', 'location'])
    """
    if isinstance(config, str):
        if config not in SIZES:
            raise ValueError(f"unknown world size {config!r}; choose one of {list(SIZES)} or pass a WorldConfig")
        config = replace(SIZES[config])
    elif not isinstance(config, WorldConfig):
        raise TypeError(f"config must be a WorldConfig or a size name in {list(SIZES)}, got {type(config).__name__}")
    return _sample_world(config)


def _sample_world(cfg: WorldConfig) -> World:
    # independent streams, so e.g. more items never changes who lives where
    r_items, r_users, r_places, r_sessions, r_choice, r_noise, r_intent = (
        np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(7))
    items = sample_items(r_items, cfg.n_items)
    item_ids = items["item_id"].to_numpy()
    user_ids = np.array([f"u{k + 1:0{max(4, len(str(cfg.n_users)))}d}" for k in range(cfg.n_users)])
    places = list(PLACE_NAMES[: cfg.n_places])

    home, taste, favourites, active = _sample_users(r_users, cfg)
    place_cat = np.zeros((cfg.n_places, len(CATEGORIES)))
    for p in range(cfg.n_places):
        up1, up2, down = r_places.choice(len(CATEGORIES), size=3, replace=False)
        place_cat[p, [up1, up2]], place_cat[p, down] = PLACE_BOOST, -PLACE_BOOST

    s_user, s_start, s_gaps = _sample_sessions(r_sessions, cfg, active)
    order = np.lexsort((s_user, s_start))
    s_user, s_start, s_gaps = s_user[order], s_start[order], [s_gaps[k] for k in order]
    n_sess = len(s_user)
    s_size = np.array([len(g) + 1 for g in s_gaps])
    away = (home[s_user] + 1 + r_sessions.integers(max(cfg.n_places - 1, 1), size=n_sess)) % cfg.n_places
    s_place = np.where(r_sessions.random(n_sess) < cfg.p_home, home[s_user], away)
    start_ts = pd.to_datetime(s_start, unit="s").astype("datetime64[ns]")
    s_daypart = _HOUR_TO_DAYPART[start_ts.hour.to_numpy()]
    s_weekend = start_ts.day_of_week.to_numpy() >= 5

    utility = _Utility(items, taste, place_cat, cfg.session_intent)
    context = [s_user, s_daypart, s_weekend, s_place]
    if cfg.session_intent > 0:
        s_intent = r_intent.integers(len(CATEGORIES), size=n_sess)
        context.append(s_intent)
    ev_item, ev_action = _sample_choices(r_choice, cfg.temperature, utility, s_size, *context)

    ev_sess = np.repeat(np.arange(n_sess), s_size)
    offsets = np.concatenate([np.concatenate([[0], np.cumsum(g)]) for g in s_gaps]).astype(np.int64)
    ev_secs = s_start[ev_sess] + offsets
    variants = [_location_variants(r_noise, p) for p in places]
    pick = np.where(r_noise.random(len(ev_sess)) < 0.4, 0, r_noise.integers(1, len(variants[0]), size=len(ev_sess)))
    ev_location = np.array([variants[p][k] for p, k in zip(s_place[ev_sess], pick)], dtype=object)

    width = max(4, len(str(n_sess)))
    session_ids = np.array([f"s{k + 1:0{width}d}" for k in range(n_sess)])
    ev_order = np.lexsort((s_user[ev_sess], ev_secs))
    ev_sess, ev_secs, ev_item, ev_action, ev_location = (
        a[ev_order] for a in (ev_sess, ev_secs, ev_item, ev_action, ev_location))
    interactions = pd.DataFrame({
        "user_id": user_ids[s_user[ev_sess]],
        "action": np.array(ACTIONS)[ev_action],
        "item_id": item_ids[ev_item],
        "time": pd.to_datetime(ev_secs, unit="s").astype("datetime64[ns]"),
        "location": ev_location.astype(str),
    })
    if cfg.explicit_sessions:
        interactions["session_id"] = session_ids[ev_sess]
    end_ts = pd.to_datetime(s_start + offsets[np.cumsum(s_size) - 1], unit="s").astype("datetime64[ns]")
    sessions = pd.DataFrame({
        "session_id": session_ids, "user_id": user_ids[s_user], "start": start_ts, "end": end_ts,
        "time_slot": [f"{WEEKDAYS[w]}-{list(DAYPARTS)[d]}" for w, d in zip(start_ts.day_of_week, s_daypart)],
        "place": np.array(places)[s_place], "n_events": s_size,
    })
    if cfg.session_intent > 0:
        sessions["intent"] = np.array(CATEGORIES)[s_intent]

    # time in site: session spans plus time on each session's last item; cart: last session's unbought carts
    dwell = (end_ts - start_ts).total_seconds().to_numpy() + r_sessions.uniform(60, 360, size=n_sess)
    time_in_site = np.round(np.bincount(s_user, weights=dwell, minlength=cfg.n_users) / 60.0, 2)
    last = np.full(cfg.n_users, -1)
    last[s_user] = np.arange(n_sess)  # sessions are sorted by start, so the last write wins
    # an item occurs at most once per session, so what was carted there was not bought there
    in_last = interactions[(ev_sess == last[s_user[ev_sess]]) & (interactions["action"] == "cart").to_numpy()]
    carts = in_last.groupby("user_id", sort=False)["item_id"].agg(";".join)
    dayparts = list(DAYPARTS)
    users = pd.DataFrame({
        "user_id": user_ids,
        "home": np.array(places)[home],
        "favourite_categories": [";".join(CATEGORIES[c] for c in f) for f in favourites],
        "active_dayparts": [";".join(dayparts[d] for d in a) for a in active],
        "time_in_site": time_in_site,
        "shopping_cart": carts.reindex(user_ids).fillna("").to_numpy(),
    })
    return World(config=cfg, items=items, users=users, places=places, item_ids=item_ids,
                 interactions=interactions, sessions=sessions, event_session=session_ids[ev_sess], taste=taste,
                 place_category=pd.DataFrame(place_cat, index=places, columns=list(CATEGORIES)))


def _sample_users(rng: np.random.Generator, cfg: WorldConfig):
    """Home place, taste over categories (2-3 strong favourites) and two favourite dayparts per user."""
    home = rng.integers(cfg.n_places, size=cfg.n_users)
    taste = rng.normal(0.0, 0.3, size=(cfg.n_users, len(CATEGORIES)))
    active = rng.random((cfg.n_users, len(DAYPARTS))).argsort(axis=1)[:, :2]
    favourites = []
    for u in range(cfg.n_users):
        k = int(rng.integers(2, 4))
        fav = rng.choice(len(CATEGORIES), size=k, replace=False)
        taste[u, fav] += np.sort(rng.uniform(1.5, 2.5, size=k))[::-1]
        favourites.append(fav)
    return home, taste, favourites, active


def _sample_choices(rng: np.random.Generator, temperature: float, utility: _Utility, sizes: np.ndarray,
                    *context: np.ndarray):
    """Items and actions of each session's events, flattened session by session.

    Gumbel top-k on ``U / T`` draws ``sizes[s]`` items without replacement from
    softmax(U / T), in draw order. Items the user likes more than usual in that
    context get deeper actions (cart, purchase).
    """
    k_max, items, zs = int(sizes.max()), [], []
    for lo in range(0, len(sizes), 4096):  # chunks bound memory at 4096 x n_items
        sl = slice(lo, lo + 4096)
        u = utility(*(c[sl] for c in context))
        g = u / temperature + rng.gumbel(size=u.shape)  # float64 and numpy's own sampler: same draws everywhere
        top = np.argpartition(-g, k_max - 1, axis=1)[:, :k_max]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(g, top, 1), axis=1, kind="stable"), 1)
        z = (u - u.mean(1, keepdims=True)) / np.maximum(u.std(1, keepdims=True), 1e-9)
        keep = np.arange(k_max)[None, :] < sizes[sl, None]
        items.append(top[keep])
        zs.append(np.take_along_axis(z, top, 1)[keep])
    items, z = np.concatenate(items), np.concatenate(zs)
    # centring z keeps the action shares near 60/25/10/5
    logits = np.log(_ACTION_SHARES)[None, :] + 0.5 * np.arange(len(ACTIONS))[None, :] * (z - z.mean())[:, None]
    prob = np.exp(logits - logits.max(1, keepdims=True))
    cum = np.cumsum(prob / prob.sum(1, keepdims=True), axis=1)
    actions = np.minimum((rng.random(len(items))[:, None] > cum).sum(1), len(ACTIONS) - 1)
    return items, actions


def _sample_sessions(rng: np.random.Generator, cfg: WorldConfig, active: np.ndarray):
    """Session owners, start times (unix seconds) and gaps between their events.

    Starts fall on a random day with an hour from the user's habits (one of two
    favourite dayparts with p=0.8); a candidate that comes within 2 h of another
    session of the same user is rejected and redrawn.
    """
    t0 = int(pd.Timestamp(cfg.start).normalize().value // 10**9)
    counts = 1 + rng.poisson(cfg.sessions_per_user - 1, size=cfg.n_users)
    users, starts, gaps = [], [], []
    for u in range(cfg.n_users):
        n = int(counts[u])
        sizes = np.minimum(1 + rng.poisson(cfg.items_per_session - 1, size=n), cfg.n_items)
        user_gaps = [rng.integers(60, 361, size=k - 1) for k in sizes]
        spans = [int(g.sum()) for g in user_gaps]
        taken: list = []  # (start, end) of accepted sessions
        for _ in range(50):
            for s in _draw_starts(rng, cfg, active[u], 2 * n, t0):
                e = s + spans[len(taken)]
                if all(s >= b + _SESSION_GAP_S or e + _SESSION_GAP_S <= a for a, b in taken):
                    taken.append((s, e))
                    if len(taken) == n:
                        break
            if len(taken) == n:
                break
        else:
            raise ValueError(f"cannot fit {n} sessions 2 h apart into days={cfg.days}; "
                             "raise WorldConfig.days or lower sessions_per_user")
        users += [u] * n
        starts += [a for a, _ in taken]
        gaps += user_gaps
    return np.array(users, dtype=np.int64), np.array(starts, dtype=np.int64), gaps


def _draw_starts(rng: np.random.Generator, cfg: WorldConfig, active: np.ndarray, m: int, t0: int) -> np.ndarray:
    day = rng.integers(cfg.days, size=m)
    daypart = np.where(rng.random(m) < 0.8, active[rng.integers(2, size=m)], rng.integers(len(DAYPARTS), size=m))
    n_hours = np.array([len(h) for h in _DAYPART_HOURS.values()])
    hour = _HOURS_TABLE[daypart, (rng.random(m) * n_hours[daypart]).astype(int)]
    return t0 + day * 86400 + hour * 3600 + rng.integers(3600, size=m)


def _location_variants(rng: np.random.Generator, place: str) -> List[str]:
    """Ways a place's name gets typed: the display name first, then harmless noise."""
    name = display_place(place)

    def any_case() -> str:
        return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in name)

    return [name, name.lower(), name.upper(), name + ",", " " + name, name.replace(" ", "  ") + " ",
            any_case(), any_case() + " ,", name.lower() + ",", "  " + name.upper()]
