"""Tests for the synthetic multimodal world (ctxrec.datasets.synthetic)."""
from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctxrec.datasets import (
    ACTIONS, CATEGORIES, COLOURS, DAYPART_MOOD, MOODS, QUALITY_WEIGHT, SIZES, TEMPOS, WEEKEND_TEMPO, World, WorldConfig,
    generate_world,
)
from ctxrec.graph.context import daypart_of, normalize_place, parse_time_slot, sessionize


def _digest(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def tiny() -> World:
    return generate_world("tiny")


@pytest.fixture(scope="session")
def tiny_files(tiny, tmp_path_factory) -> dict:
    return tiny.write(tmp_path_factory.mktemp("tiny"))


def test_same_seed_same_bytes_other_seed_differs(tiny_files, tmp_path):
    again = generate_world("tiny").write(tmp_path / "again")
    first = _digest(tiny_files["items"].parent)
    assert _digest(again["items"].parent) == first
    assert any(k.startswith("images/") for k in first) and any(k.startswith("audio/") for k in first)
    other = generate_world(replace(SIZES["tiny"], seed=1)).write(tmp_path / "other")
    second = _digest(other["items"].parent)
    for name in ("interactions.csv", "items.csv", "context.csv"):
        assert second[name] != first[name]


def test_written_columns_and_references(tiny, tiny_files):
    inter = pd.read_csv(tiny_files["interactions"], keep_default_na=False)
    items = pd.read_csv(tiny_files["items"], keep_default_na=False)
    context = pd.read_csv(tiny_files["context"], keep_default_na=False, dtype={"shopping_cart": str})
    assert list(inter.columns) == ["user_id", "action", "item_id", "time", "location"]
    assert list(items.columns) == ["item_id", "name", "description", "category", "price", "image_path", "audio_path"]
    assert list(context.columns) == ["user_id", "location", "time_in_site", "shopping_cart"]
    assert set(inter["item_id"]) <= set(items["item_id"]) == set(tiny.item_ids)
    assert set(inter["user_id"]) <= set(context["user_id"]) == set(tiny.users["user_id"])
    carts = {i for c in context["shopping_cart"] for i in c.split(";") if i}
    assert carts <= set(items["item_id"])
    assert set(inter["action"]) <= set(ACTIONS)
    assert inter["time"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d").all()
    times = pd.to_datetime(inter["time"])
    assert times.is_monotonic_increasing
    # the location text is noisy, but always normalises to a place of the world
    assert set(inter["location"].map(normalize_place)) <= set(tiny.places)
    assert inter["location"].nunique() > len(tiny.places)
    assert set(context["location"].map(normalize_place)) <= set(tiny.places)
    assert items["category"].isin(CATEGORIES).all()
    assert tiny.item_ids[0] == "i0001" and tiny.users["user_id"].iloc[0] == "u0001"


def test_media_files_open(tiny, tiny_files):
    from PIL import Image
    import soundfile as sf

    items = pd.read_csv(tiny_files["items"])
    root = tiny_files["items"].parent
    size, rate = tiny.config.image_size, tiny.config.sample_rate
    for rel in items["image_path"]:
        with Image.open(root / rel) as img:
            assert img.size == (size, size)
    for rel in items["audio_path"].head(10):
        data, sr = sf.read(root / rel)
        assert sr == rate and data.ndim == 1 and len(data) == round(tiny.config.audio_seconds * rate)
        assert sf.info(root / rel).subtype == "PCM_16"


def test_media_off_drops_columns(tmp_path):
    world = generate_world(replace(SIZES["tiny"], images=False, audio=False, explicit_sessions=True))
    paths = world.write(tmp_path)
    assert "images_dir" not in paths and "audio_dir" not in paths
    assert list(pd.read_csv(paths["items"]).columns) == ["item_id", "name", "description", "category", "price"]
    inter = pd.read_csv(paths["interactions"])
    assert list(inter.columns) == ["user_id", "action", "item_id", "time", "location", "session_id"]
    assert (inter["session_id"].to_numpy() == world.event_session).all()


def test_media_follow_attributes(tiny):
    row = tiny.items.iloc[0]
    img = np.asarray(tiny.render_image(row["item_id"]), dtype=float)
    centre = img[img.shape[0] // 2 - 1: img.shape[0] // 2 + 2, img.shape[1] // 2 - 1: img.shape[1] // 2 + 2]
    assert np.abs(centre.mean(axis=(0, 1)) - np.array(COLOURS[row["colour"]])).max() < 40
    for item in tiny.items.itertuples():
        text = item.description.lower()
        assert item.colour in text and item.shape in text, text


def test_preference_is_the_utility_and_depends_on_context(tiny):
    users = list(tiny.users["user_id"][:5])
    place = tiny.places[0]
    evening = tiny.preference(users, "sat-evening", place)
    morning = tiny.preference(users, "mon-morning", place)
    assert evening.shape == (5, len(tiny.item_ids))
    assert not np.allclose(evening, morning)
    # recompute U(u, i, ctx) from the published terms
    items = tiny.items
    for slot in ("sat-evening", "mon-morning", "wed-night"):
        weekday, daypart = parse_time_slot(slot)
        for p in tiny.places:
            cat = items["category"].to_numpy()
            expect = (tiny.taste[:5][:, [CATEGORIES.index(c) for c in cat]]
                      + tiny.place_category.loc[p, cat].to_numpy()
                      + items["mood"].map(DAYPART_MOOD[daypart]).to_numpy()
                      + items["tempo"].map(WEEKEND_TEMPO[weekday in ("sat", "sun")]).to_numpy()
                      + QUALITY_WEIGHT * items["quality"].to_numpy())
            np.testing.assert_allclose(tiny.preference(users, slot, p.upper() + " ,"), expect)
    with pytest.raises(ValueError, match="place"):
        tiny.preference(users, "sat-evening", "atlantis")
    with pytest.raises(ValueError, match="time slot"):
        tiny.preference(users, "someday", place)
    with pytest.raises(ValueError, match="user"):
        tiny.preference(["nobody"], "sat-evening", place)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_calm_items_dominate_evenings(seed):
    world = generate_world(replace(SIZES["tiny"], seed=seed, images=False, audio=False))
    inter = world.interactions.merge(world.items[["item_id", "mood"]], on="item_id")
    daypart = inter["time"].dt.hour.map(daypart_of)
    calm = inter["mood"].eq("calm")
    late = calm[daypart.isin(["evening", "night"])].mean()
    early = calm[daypart.eq("morning")].mean()
    assert late > early + 0.3, (late, early)


def test_actions_roughly_follow_shares(tiny):
    share = tiny.interactions["action"].value_counts(normalize=True)
    for action, expected in zip(ACTIONS, (0.60, 0.25, 0.10, 0.05)):
        assert abs(share.get(action, 0.0) - expected) < 0.08, (action, share.get(action))


def test_sessions_are_recoverable_by_gap(tiny):
    inter = tiny.interactions.assign(truth=tiny.event_session)
    inter = inter.sort_values(["user_id", "time"], kind="stable")
    same_user = inter["user_id"].eq(inter["user_id"].shift())
    gap = inter["time"].diff()
    close = same_user & (gap <= pd.Timedelta(minutes=30))
    new_session = same_user & inter["truth"].ne(inter["truth"].shift())
    assert (inter["truth"][close] == inter["truth"].shift()[close]).all()
    assert (gap[new_session] >= pd.Timedelta(hours=2)).all()
    within = gap[same_user & ~new_session]
    assert within.between(pd.Timedelta(minutes=1), pd.Timedelta(minutes=6)).all()
    # the shared 30-minute sessioniser finds exactly the generated sessions
    found = sessionize(inter["user_id"], inter["time"])
    pairs = pd.DataFrame({"found": found, "truth": inter["truth"]}).drop_duplicates()
    assert pairs["found"].is_unique and pairs["truth"].is_unique
    assert len(pairs) == len(tiny.sessions)
    assert tiny.sessions["time_slot"].map(lambda s: parse_time_slot(s)[1]).tolist() == [
        daypart_of(h) for h in tiny.sessions["start"].dt.hour]


def test_sizes_and_config_errors():
    assert set(SIZES) >= {"tiny", "small", "medium", "large"}
    large = SIZES["large"]
    assert large.n_users * large.sessions_per_user * large.items_per_session >= 100_000
    assert large.expected_interactions >= 100_000
    assert SIZES["tiny"].images and SIZES["tiny"].audio
    with pytest.raises(ValueError, match="n_places"):
        WorldConfig(n_places=99)
    with pytest.raises(ValueError, match="unknown world size"):
        generate_world("huge")
    with pytest.raises(ValueError, match="days"):
        generate_world(WorldConfig(n_users=2, n_items=5, sessions_per_user=40, days=1, images=False, audio=False))


def test_count_close_to_expected(tiny):
    assert abs(len(tiny.interactions) - SIZES["tiny"].expected_interactions) < 0.2 * SIZES["tiny"].expected_interactions
    assert set(tiny.items["mood"]) <= set(MOODS) and set(tiny.items["tempo"]) <= set(TEMPOS)
