"""MovieLens-100K loader: a tiny folder in the exact ml-100k layout, never the real data."""
from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

from ctxrec.datasets import MovieLens, MovieLensWarning, load_movielens
from ctxrec.datasets.movielens import age_band, zip_to_place
from ctxrec.graph.readers import InputError
from tests.ml100k_fixture import N_MOVIES, PLOTS, T0, ratings, write_ml100k


@pytest.fixture(scope="module")
def ml100k(tmp_path_factory) -> Path:
    """A folder in the exact ml-100k layout, with a few malformed lines."""
    return write_ml100k(tmp_path_factory.mktemp("ml-100k"))


@pytest.fixture(scope="module")
def loaded(ml100k) -> MovieLens:
    return load_movielens(ml100k)


def test_counts_and_ids(loaded):
    n_good = len(ratings())
    assert len(loaded.interactions) == n_good
    assert len(loaded.items) == N_MOVIES and len(loaded.users) == 6  # user 6 (bad age) is kept
    assert loaded.interactions.columns.tolist() == ["user_id", "action", "item_id", "time", "value", "location"]
    assert set(loaded.interactions["action"]) == {"rating"}
    assert loaded.items["item_id"].tolist() == [f"m{m}" for m in range(1, N_MOVIES + 1)]
    assert loaded.users["user_id"].tolist() == [f"u{u}" for u in range(1, 7)]
    first = loaded.interactions.iloc[0]
    # the burst of two ratings in one second keeps the (time, item) order
    assert loaded.interactions["item_id"].head(2).tolist() == ["m1", "m2"]
    assert first["time"] == pd.Timestamp("1997-11-01T20:00:00") and first["value"] == 4
    assert first["location"] == "Minnesota"


def test_items_title_genres_description_posters(loaded, ml100k):
    items = loaded.items.set_index("item_id")
    assert items.loc["m2", "name"] == "Misérables, Les (1995)"  # latin-1 decoded
    assert items.loc["m5", "name"] == "Wait\x85 What (1990)"
    assert items.loc["m1", "genres"] == ["Animation", "Children's", "Comedy"]
    assert items.loc["m1", "category"] == "Animation" and items.loc["m4", "category"] == "unknown"
    assert items.loc["m4", "genres"] == []
    assert PLOTS[2] in items.loc["m2", "description"] and "Misérables" in items.loc["m2", "description"]
    assert items.loc["m3", "description"] == "Nobody's Poster (1996). Genres: Drama."  # no plot
    assert pd.isna(items.loc["m3", "plot"])
    assert items.loc["m1", "image_path"] == str((ml100k / "posters" / "1.jpg").resolve())
    assert pd.isna(items.loc["m3", "image_path"])
    assert items.loc["m1", "year"] == 1995 and items.loc["m3", "year"] == 1996 and pd.isna(items.loc["m4", "year"])


def test_users_places_and_bands(loaded):
    users = loaded.users.set_index("user_id")
    assert users.loc["u1", "location"] == "Minnesota"
    assert users.loc["u2", "location"] == "Alberta"  # Canadian postal code T8H1N
    assert users.loc["u3", "location"] == "unknown"
    assert users.loc["u4", "location"] == "New York" and users.loc["u5", "location"] == "California"
    assert users.loc["u1", "age_band"] == "25-34" and pd.isna(users.loc["u6", "age"])
    assert users.loc["u6", "age_band"] == ""


@pytest.mark.parametrize("zip_code,place", [
    ("55414", "Minnesota"), ("02138", "Massachusetts"), ("00501", "New York"), ("20001", "District of Columbia"),
    ("73301", "Texas"), ("99709", "Alaska"), ("96819", "Hawaii"), ("09645", "Armed Forces Europe"),
    ("T8H1N", "Alberta"), ("M4J2K", "Ontario"), ("X0A1H", "zip X0A"), ("00000", "unknown"), ("", "unknown"),
    ("21300", "zip 213"),
])
def test_zip_to_place(zip_code, place):
    assert zip_to_place(zip_code) == place


def test_age_band():
    assert [age_band(a) for a in (7, 18, 24, 25, 49, 55, 56, 73)] == [
        "under 18", "18-24", "18-24", "25-34", "45-49", "50-55", "56+", "56+"]


def test_malformed_rows_are_reported(loaded, ml100k):
    got = {(Path(r.file).name, r.row, r.column) for r in loaded.rejects}
    n = len(ratings())
    assert got == {
        ("u.data", n + 1, "*"), ("u.data", n + 2, "user"), ("u.data", n + 3, "item"), ("u.data", n + 4, "rating"),
        ("u.item", N_MOVIES + 1, "*"), ("u.item", N_MOVIES + 2, "movie_id"),
        ("u.user", 6, "age"), ("u.user", 7, "*"),
        ("items_details.csv", 4, "item_id"),
    }
    bad_rating = next(r for r in loaded.rejects if r.column == "rating")
    assert bad_rating.value == "9" and "1..5" in bad_rating.reason and str(ml100k) in bad_rating.file


def test_missing_file_is_a_clear_error(tmp_path, ml100k):
    with pytest.raises(InputError, match=r"u\.user: file not found.*MovieLens-100K"):
        load_movielens(tmp_path)
    with pytest.raises(ValueError, match="min_rating"):
        load_movielens(ml100k, min_rating=7)


def test_optional_parts_missing_warns(tmp_path, ml100k):
    for name in ("u.data", "u.item", "u.user"):
        (tmp_path / name).write_bytes((ml100k / name).read_bytes())
    with pytest.warns(MovieLensWarning) as record:
        ml = load_movielens(tmp_path)
    assert len(record) == 2 and ml.items["image_path"].isna().all() and ml.items["plot"].isna().all()


def test_min_rating(ml100k):
    with warnings.catch_warnings():
        warnings.simplefilter("error", MovieLensWarning)
        ml = load_movielens(ml100k, min_rating=4)
    assert (ml.interactions["value"] >= 4).all()
    assert len(ml.interactions) == sum(r[2] >= 4 for r in ratings())


@pytest.fixture(scope="module")
def ingested(loaded, tmp_path_factory):
    pytest.importorskip("ladybug", reason="the embedded store needs 'ladybug': pip install ladybug")
    from ctxrec.graph.ingest import ingest
    from ctxrec.graph.stores import open_store

    tmp = tmp_path_factory.mktemp("ml-seed")
    paths = loaded.write(tmp / "seed")
    store = open_store("embedded", tmp / "g.db")
    res = ingest(store, paths["interactions"], paths["items"], paths["context"])
    yield store, res, paths
    store.close()


def test_write_and_ingest(ingested, loaded):
    store, res, paths = ingested
    assert set(paths) == {"interactions", "items", "context", "users", "rejects"}
    assert sorted(p.name for p in paths["items"].parent.iterdir()) == sorted(p.name for p in paths.values())  # no temp left
    assert len(pd.read_csv(paths["rejects"])) == len(loaded.rejects)
    assert res.summary["rows_rejected"] == 0  # what the loader writes, the build accepts
    counts = store.counts()
    assert counts["Item"] == N_MOVIES and counts["User"] == 6 and counts["INTERACTED"] == len(loaded.interactions)
    assert counts["Category"] == len(set(loaded.items["category"]))
    assert "minnesota" in set(store.read_nodes("Place")["id"]) and "alberta" in set(store.read_nodes("Place")["id"])
    sessions = store.read_nodes("Session").set_index("id")
    u1 = sessions[sessions["user_id"] == "u1"].sort_values("start_ts")
    # 30-minute gap: the burst and the rating 10 minutes later share a session; 2 hours later is a new one
    assert u1.index.tolist() == [f"u1@{T0}", f"u1@{T0 + 7200}"]
    assert u1["time_slot"].tolist() == ["sat-evening", "sat-night"] and set(u1["place"]) == {"minnesota"}
    assert len(sessions) == 2 + 4 * N_MOVIES  # users 2-5 rate one movie an hour
    items = store.read_nodes("Item").set_index("id")
    assert items.loc["m2", "name"] == "Misérables, Les (1995)" and Path(items.loc["m1", "image_path"]).is_file()


def test_end_to_end_mostpop(ingested):
    from ctxrec.graph.export import export_pyg
    from ctxrec.training.models import make_model

    store, _, _ = ingested
    graph = export_pyg(store)
    assert graph.num_users == 6 and len(graph.test) > 0  # u6 has no ratings but is a user node (context.csv)
    res = make_model("mostpop").fit(graph).evaluate("test")
    assert "ndcg@20" in res and all(0.0 <= v <= 1.0 for v in res.values())


@pytest.mark.slow
def test_real_ml100k():
    folder = os.environ.get("CTXREC_ML100K")
    if not folder or not Path(folder).is_dir():
        pytest.skip("set CTXREC_ML100K to a local ml-100k folder to run this test")
    start = time.perf_counter()
    ml = load_movielens(folder)
    assert time.perf_counter() - start < 30
    assert len(ml.interactions) == 100_000 and not ml.rejects
    assert ml.interactions["user_id"].nunique() == 943 and len(ml.users) == 943
    assert ml.interactions["item_id"].nunique() == 1682 and len(ml.items) == 1682
    assert ml.items["name"].str.contains("é").any()
