"""The HTTP API end to end: the real FastAPI app (TestClient), a real store (LadybugDB always,
Neo4j under the ``neo4j`` marker) and a real ContextGNN (gated text + audio fusion, session
encoder) trained for two epochs on the tiny synthetic world.

Answers are checked against the library calls they wrap or against independent pandas
computations over the store's tables; every bad request must get a 4xx with the one error body.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from types import SimpleNamespace
from urllib.parse import quote

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi", reason="the HTTP API needs fastapi: pip install 'ctxrec[serve]'")
pytest.importorskip("python_multipart", reason="uploads need python-multipart: pip install 'ctxrec[serve]'")
pytest.importorskip("soundfile", reason="the audio encoder needs soundfile")

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ctxrec.datasets.synthetic import generate_world  # noqa: E402
from ctxrec.graph import queries  # noqa: E402
from ctxrec.graph.context import display_place  # noqa: E402
from ctxrec.data import SplitConfig  # noqa: E402
from ctxrec.graph.export import export_pyg  # noqa: E402
from ctxrec.graph.ingest import ingest  # noqa: E402
from ctxrec.graph.stores import open_store  # noqa: E402
from ctxrec.modalities.features import TEXT_OF, encode_store  # noqa: E402
from ctxrec.serve.app import create_app  # noqa: E402
from ctxrec.serve.explain import modality_weights  # noqa: E402
from ctxrec.serve.service import RecService  # noqa: E402
from ctxrec.training.models import ContextGNN, MostPop  # noqa: E402

KEY = "test-key-123"
ENDPOINTS = {"/recommend", "/items/{item_id}/related", "/search", "/explain", "/interactions", "/health"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    return root, generate_world("tiny").write(root / "world")


def _open(kind, folder, request):
    if kind == "neo4j":
        from ctxrec.graph.stores.neo4j import Neo4jStore

        store = Neo4jStore(**request.getfixturevalue("neo4j_server"))
        store.clear()
        return store
    return open_store("embedded", folder / "graph.db")


@pytest.fixture(scope="module", params=["embedded", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def served(request, world):
    root, files = world
    folder = root / request.param
    folder.mkdir()
    store = _open(request.param, folder, request)
    ingest(store, files["interactions"], files["items"], files["context"])
    feats = folder / "features"
    for encoder in ("text", "audio"):
        encode_store(store, encoder, cache_dir=root / "cache", out_dir=feats)
    graph = export_pyg(store, SplitConfig(session_len=4))
    model = ContextGNN(hidden=16, features=("text", "audio"), fusion="gated", session_len=4,
                       train={"epochs": 2, "seed": 0}).fit(graph)
    service = RecService(store, model, features=feats)
    client = TestClient(create_app(service, api_key=KEY))
    places = [display_place(p) for p in graph.ids["place"]]
    yield SimpleNamespace(kind=request.param, store=store, graph=graph, model=model, service=service, client=client,
                          files=files, feats=feats, places=places, users=[str(u) for u in graph.ids["user"]])
    store.close()


def error(res, status, field=None, *contains):
    """The error body, after checking its shape, status, field and message."""
    assert res.status_code == status, res.text
    body = res.json()
    assert list(body) == ["error"] and set(body["error"]) == {"status", "code", "message", "field"}, body
    assert body["error"]["status"] == status and body["error"]["code"] and body["error"]["message"]
    if field is not None:
        assert body["error"]["field"] == field, body
    for text in contains:
        assert text in body["error"]["message"], body
    return body["error"]


def get(served, path, **params):
    res = served.client.get(path, params=params)
    assert res.status_code == 200, res.text
    return res.json()


def post_events(served, events, key=KEY):
    return served.client.post("/interactions", json={"events": events}, headers={"X-API-Key": key} if key else {})


# ----------------------------------------------------------------------- status
def test_health_and_openapi(served):
    health = get(served, "/health")
    assert health["status"] == "ok" and health["model"] == "ContextGNN"
    assert health["users"] == served.graph.num_users and health["items"] == served.graph.num_items
    assert {"text", "audio"} <= set(health["item_vectors"]) and health["search"] and health["writes"]
    spec = get(served, "/openapi.json")
    assert ENDPOINTS <= set(spec["paths"])
    assert "X-API-Key" in str(spec["components"]["securitySchemes"])
    assert served.client.get("/docs").status_code == 200


def test_unknown_routes_and_methods_get_the_error_body(served):
    error(served.client.get("/nope"), 404, None, "/nope")
    error(served.client.delete("/recommend"), 405, None, "DELETE")
    error(served.client.get("/interactions"), 405)


# -------------------------------------------------------------- recommendations
def test_recommend_matches_the_library(served):
    user, place = served.users[0], served.places[0]
    got = get(served, "/recommend", user=user, time="sat 20:00", place=place.upper(), k=5, reasons="false")
    want = served.model.recommend_ids(user, 5, time="sat 20:00", place=place)
    assert [i["id"] for i in got["items"]] == [i for i, _ in want]
    assert np.allclose([i["score"] for i in got["items"]], [s for _, s in want], atol=1e-5)
    assert [i["rank"] for i in got["items"]] == [1, 2, 3, 4, 5] and "reason" not in got["items"][0]
    assert got["context"]["time_slot"] == "sat-evening" and got["context"]["place"] == place.lower()
    seen = set(served.graph.train.item[served.graph.train.user == served.graph.index["user"][user]].tolist())
    assert not {served.graph.index["item"][i["id"]] for i in got["items"]} & seen
    # each reason is the sentence /explain gives for that pair
    got = get(served, "/recommend", user=user, k=3)
    for item in got["items"]:
        assert item["reason"] == get(served, "/explain", user=user, item=item["id"])["sentence"]
        assert item["reason_source"] == "template"


def test_a_batch_answers_like_single_requests(served):
    """recommend_many (what concurrent API requests share) = one recommend per request, and a
    bad request in the batch gets its own error without spoiling the others."""
    from ctxrec.serve.service import RecRequest, ServiceError

    items = [str(i) for i in served.graph.ids["item"]]
    requests = [RecRequest(served.users[0], 5, "sat 20:00", served.places[0], reasons=False),
                RecRequest(served.users[1], 3, None, None, session_items=(items[0], items[1]), reasons=False),
                RecRequest("no-such-user", 5),
                RecRequest(served.users[2], 7, "mon 08:00", None, filter_seen=False, reasons=False),
                RecRequest(served.users[0], 4, "mon 08:00", served.places[-1], session_items=(items[2],))]
    answers = served.service.recommend_many(requests)
    assert isinstance(answers[2], ServiceError) and answers[2].field == "user"
    for r, got in zip(requests, answers):
        if r.user == "no-such-user":
            continue
        want = served.service.recommend(r.user, r.k, r.time, r.place, None, r.session_items, r.filter_seen, r.reasons)
        assert [i["id"] for i in got["items"]] == [i["id"] for i in want["items"]] and len(got["items"]) == r.k
        assert np.allclose([i["score"] for i in got["items"]], [i["score"] for i in want["items"]], atol=1e-5)
        assert got["context"] == want["context"] and not set(r.session_items) & {i["id"] for i in got["items"]}
    assert "reason" in answers[4]["items"][0] and "reason" not in answers[0]["items"][0]


def test_concurrent_api_requests_are_batched(served):
    """The API's batcher answers requests that arrive together in one model call."""
    import asyncio

    import httpx2 as httpx

    app = served.client.app
    before = (app.state.batcher.batches, app.state.batcher.requests)
    params = [{"user": u, "k": 5, "reasons": "false"} for u in served.users[:8]] + [{"user": "nobody", "k": 5}]

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await asyncio.gather(*(client.get("/recommend", params=p) for p in params))

    answers = asyncio.run(go())
    batches = app.state.batcher.batches - before[0]
    assert app.state.batcher.requests - before[1] == len(params) and batches < len(params)
    for p, res in zip(params, answers):
        if p["user"] == "nobody":
            error(res, 404, "user")
            continue
        want = served.service.recommend(p["user"], 5, reasons=False)
        assert [i["id"] for i in res.json()["items"]] == [i["id"] for i in want["items"]]


def test_the_fast_lane_answers_as_the_route_does(served):
    """Plain /recommend requests are answered before FastAPI's router, with the bytes the route
    gives; anything else (a value FastAPI would coerce or refuse, an unknown or repeated name)
    passes to the app, so its answers and error bodies are the app's."""
    plain_app = TestClient(create_app(served.service, api_key=KEY, fast_lane=False))
    lane = served.client.app.state.fast_lane
    user, place = served.users[1], served.places[0]
    items = [str(i) for i in served.graph.ids["item"]]
    plain = [f"user={user}", f"user={user}&k=3&reasons=false",
             f"user={quote(user)}&time=sat%2020%3A00&place={quote(place)}",
             f"user={user}&session_items={items[0]},{items[1]}&filter_seen=false&k=7",
             "user=nobody", f"user={user}&time=someday", f"user={user}&place=Atlantis", f"user={user}&time="]
    passed = [f"user={user}&k=05", f"user={user}&k=0", f"user={user}&k=abc", f"user={user}&filter_seen=1",
              f"user={user}&user={user}", f"user={user}&extra=1", "", "user=", f"user={user}&reasons=True",
              f"user={user}&place={'x' * 201}"]
    for queries_, counter in ((plain, "answered"), (passed, "passed_on")):
        for q in queries_:
            before = lane.stats()[counter]
            fast, slow = served.client.get(f"/recommend?{q}"), plain_app.get(f"/recommend?{q}")
            assert (fast.status_code, fast.content) == (slow.status_code, slow.content), q
            assert fast.headers["content-type"] == slow.headers["content-type"]
            assert lane.stats()[counter] == before + 1, q
    health = get(served, "/health")
    assert health["fast_lane"]["answered"] >= len(plain) and health["fast_lane"]["passed_on"] >= len(passed)
    assert get(served, "/openapi.json")["paths"]["/recommend"]["get"]["parameters"]  # still the documented route


def test_ranking_in_a_scoring_process(served):
    """The scoring process ranks as the serving thread does; when it dies, /recommend answers a
    clear 503 and the rest of the API keeps working."""
    import signal

    from ctxrec.serve.service import RecRequest

    items = [str(i) for i in served.graph.ids["item"]]
    requests = [RecRequest(served.users[0], 5, "sat 20:00", served.places[0], reasons=False),
                RecRequest(served.users[1], 3, None, None, session_items=(items[0], items[1]), reasons=False),
                RecRequest(served.users[2], 7, "mon 08:00", None, filter_seen=False, reasons=False)]
    want = served.service.recommend_many(requests)
    served.service.rank_in_process()
    try:
        ranking = get(served, "/health")["ranking"]
        assert ranking["where"] == "process" and ranking["alive"] and ranking["pid"] != os.getpid()
        got = served.service.recommend_many(requests)
        for a, b in zip(got, want):
            assert [i["id"] for i in a["items"]] == [i["id"] for i in b["items"]]
            assert np.allclose([i["score"] for i in a["items"]], [i["score"] for i in b["items"]], atol=1e-6)
        assert get(served, "/recommend", user=served.users[0], k=5, reasons="false")["items"]
        os.kill(ranking["pid"], signal.SIGKILL)
        error(served.client.get("/recommend", params={"user": served.users[0]}), 503, None,
              "scoring process is gone", "restart")
        assert get(served, "/items/" + items[0] + "/related", k=3)["items"] is not None
        assert not get(served, "/health")["ranking"]["alive"]
    finally:
        from ctxrec.serve.scoring import InProcess

        served.service.scorer.close()
        served.service.scorer = InProcess(served.model)


def test_recommend_bad_requests(served):
    c, user = served.client, served.users[0]
    for k in ("0", "101", "abc", "2.5"):
        error(c.get("/recommend", params={"user": user, "k": k}), 422, "k", k)
    error(c.get("/recommend"), 422, "user")
    error(c.get("/recommend", params={"user": "nobody"}), 404, "user", "'nobody'")
    error(c.get("/recommend", params={"user": user, "time": "someday"}), 422, "time", "'someday'", "sat 20:00")
    error(c.get("/recommend", params={"user": user, "place": "Atlantis"}), 404, "place", "'Atlantis'",
          served.places[0])
    error(c.get("/recommend", params={"user": user, "session": "nope"}), 404, "session", "'nope'")
    many = ",".join(f"i{n:04d}" for n in range(51))  # counted before they are looked up
    error(c.get("/recommend", params={"user": user, "session_items": many}), 422, "session_items", "51")
    error(c.get("/recommend", params={"user": user, "session_items": "zzz9"}), 404, "session_items", "zzz9")
    other = served.store.query("MATCH (s:Session) WHERE s.user_id = $u RETURN s.id AS id LIMIT 1",
                               {"u": served.users[1]})["id"][0]
    error(c.get("/recommend", params={"user": user, "session": other}), 422, "session", served.users[1])


def test_session_items_are_excluded_and_read_by_the_model(served):
    user, place = served.users[2], served.places[1]
    ask = dict(user=user, time="sat-evening", place=place, k=10, reasons="false")
    base = get(served, "/recommend", **ask)["items"]
    first = [i["id"] for i in base[:2]]
    after = get(served, "/recommend", **ask, session_items=",".join(first))
    assert after["context"]["session_items"] == first
    assert not set(first) & {i["id"] for i in after["items"]} and len(after["items"]) == 10
    before = {i["id"]: i["score"] for i in base}
    shared = [i for i in after["items"] if i["id"] in before]
    assert shared and max(abs(i["score"] - before[i["id"]]) for i in shared) > 1e-4  # the session encoder read them


def test_posted_events_land_in_the_store_and_in_the_next_recommendation(served):
    user, place = served.users[-1], served.places[0]
    ask = dict(user=user, time="fri 19:00", place=place, k=5, reasons="false")
    picks = [i["id"] for i in get(served, "/recommend", **ask)["items"][:2]]
    pair = "MATCH (u:User)-[r:INTERACTED]->(i:Item) WHERE u.id = $u AND i.id = $i RETURN r.count AS n"
    before = served.store.query(pair, {"u": user, "i": picks[0]})
    n_before = int(before["n"][0]) if len(before) else 0
    sid = f"live-{served.kind}"
    res = post_events(served, [
        {"user_id": user, "item_id": picks[0], "action": "click", "time": "2024-06-07T19:00:00", "location": place,
         "session_id": sid},
        {"user_id": user, "item_id": picks[1], "time": "2024-06-07T19:02:00", "location": place, "session_id": sid}])
    assert res.status_code == 201, res.text
    body = res.json()
    assert body["events"] == 2 and body["sessions"] == [f"{user}#{sid}"] and body["new_users"] == []
    after = get(served, "/recommend", **{k: v for k, v in ask.items() if k != "time"}, session=sid)
    assert after["context"]["session"] == f"{user}#{sid}" and after["context"]["session_items"] == picks
    assert after["context"]["time_slot"] == "fri-evening"  # the session's slot when no time is given
    assert not set(picks) & {i["id"] for i in after["items"]}
    same = get(served, "/recommend", **ask, session_items=",".join(picks))
    assert [i["id"] for i in same["items"]] == [i["id"] for i in after["items"]]
    assert int(served.store.query(pair, {"u": user, "i": picks[0]})["n"][0]) == n_before + 1
    # more events in the same session: a new item goes last, a repeated one keeps its place
    third = next(i for i in served.graph.ids["item"] if i not in picks)
    res = post_events(served, [
        {"user_id": user, "item_id": third, "time": "2024-06-07T19:05:00", "session_id": sid},
        {"user_id": user, "item_id": picks[0], "action": "purchase", "time": "2024-06-07T19:06:00",
         "session_id": sid}])
    assert res.status_code == 201, res.text
    rows = served.store.query("MATCH (s:Session)-[c:`CONTAINS`]->(i:Item) WHERE s.id = $s "
                              "RETURN i.id AS item, c.pos AS pos, c.action AS action ORDER BY pos",
                              {"s": f"{user}#{sid}"})
    assert rows["item"].tolist() == picks + [third] and rows["pos"].tolist() == [0, 1, 2]
    assert rows["action"].tolist()[0] == "purchase"
    assert get(served, "/recommend", user=user, session=sid)["context"]["session_items"] == picks + [third]


def test_interactions_need_the_key_and_valid_events(served):
    user, item = served.users[3], str(served.graph.ids["item"][0])
    good = {"user_id": user, "item_id": item, "time": "2024-05-01T10:00:00"}
    counts = served.store.counts()
    error(post_events(served, [good], key=None), 401, "X-API-Key", "X-API-Key")
    error(post_events(served, [good], key="wrong"), 403, "X-API-Key")
    closed = TestClient(create_app(served.service))
    err = error(closed.post("/interactions", json={"events": [good]}, headers={"X-API-Key": KEY}), 403, "X-API-Key",
                "--api-key", "CTXREC_API_KEY")
    assert err["code"] == "writes_disabled"
    error(post_events(served, [good, {**good, "item_id": "i9999"}]), 422, "events[1].item_id", "'i9999'")
    error(post_events(served, [{**good, "time": "2999-01-01T00:00:00"}]), 422, "events[0].time", "future")
    error(post_events(served, [{**good, "time": "yesterday"}]), 422, "events[0].time", "'yesterday'")
    error(post_events(served, []), 422, "events")
    error(post_events(served, [good] * 1001), 422, "events")
    error(post_events(served, [{**good, "colour": "red"}]), 422, "events.0.colour")
    error(post_events(served, [{"item_id": item}]), 422, "events.0.user_id")
    error(served.client.post("/interactions", content=b"{not json", headers={"X-API-Key": KEY,
                                                                            "content-type": "application/json"}), 422)
    assert served.store.counts() == counts  # nothing above wrote anything


def test_body_limits_answer_413(served):
    big = {"events": [{"user_id": "u", "item_id": "i", "location": "x" * 200}] * 6000}  # > 1 MB of JSON
    error(served.client.post("/interactions", json=big, headers={"X-API-Key": KEY}), 413, "body", "limit")

    def chunks():  # no Content-Length: counted while reading
        for _ in range(40):
            yield b" " * 32_768

    res = served.client.post("/search", content=chunks(), headers={"content-type": "application/json"})
    error(res, 413, None, "limit")
    res = served.client.post("/search", files={"file": ("big.wav", b"\0" * ((10 << 20) + 1), "audio/wav")})
    error(res, 413, "body", "upload")


# ---------------------------------------------------------------------- related
def _context_related(store, item, k):
    """Items chosen in sessions of the (time slot, place) pairs where ``item`` was chosen."""
    contains = store.read_edges("CONTAINS")
    ctx = store.read_edges("AT_TIME").merge(store.read_edges("AT_PLACE"), on="src", suffixes=("_t", "_p"))
    pairs = set(map(tuple, ctx.loc[ctx["src"].isin(contains.loc[contains["dst"] == item, "src"]),
                                   ["dst_t", "dst_p"]].values))
    sessions = ctx.loc[[p in pairs for p in map(tuple, ctx[["dst_t", "dst_p"]].values)], "src"]
    hits = contains[contains["src"].isin(sessions) & (contains["dst"] != item)]
    counts = hits.groupby("dst")["src"].nunique().reset_index()
    counts = counts.sort_values(["src", "dst"], ascending=[False, True]).head(k)
    return list(zip(counts["dst"], counts["src"].astype(float)))


def test_related_items_every_way(served):
    item = str(served.graph.ids["item"][5])
    path = f"/items/{item}/related"
    for via in ("co_interaction", "session"):
        got = get(served, path, via=via, k=5)
        assert [(i["id"], i["score"]) for i in got["items"]] == served.store.related(item, 5, via)
        assert got["source"] == "store" and got["items"]
    got = get(served, path, via="context", k=6)
    assert [(i["id"], i["score"]) for i in got["items"]] == _context_related(served.store, item, 6)
    got = get(served, path, via="embedding", k=4)
    top, sims = served.model.similar_items(torch.tensor([5]), 4)
    assert [i["id"] for i in got["items"]] == [str(served.graph.ids["item"][j]) for j in top[0].tolist()]
    assert got["source"] == "model" and np.allclose([i["score"] for i in got["items"]], sims[0].numpy(), atol=1e-5)
    error(served.client.get(path, params={"via": "magic"}), 422, "via", "'magic'", "context")
    error(served.client.get(path, params={"k": 0}), 422, "k")
    error(served.client.get("/items/i9999/related"), 404, "item", "'i9999'")


def test_a_model_without_embeddings_or_fusion(served):
    """MostPop: related-by-embedding falls back to the store's text vectors; explain has no modality weights."""
    plain = TestClient(create_app(RecService(served.store, MostPop().fit(served.graph), features=served.feats)))
    item = str(served.graph.ids["item"][1])
    got = plain.get(f"/items/{item}/related", params={"via": "embedding", "k": 3}).json()
    assert got["source"] == "store"
    assert [(i["id"], pytest.approx(i["score"], abs=1e-5)) for i in got["items"]] == \
        [(i, s) for i, s in served.store.related(item, 3, "embedding")]
    assert plain.get("/explain", params={"user": served.users[0], "item": item}).json()["modalities"] is None


# ----------------------------------------------------------------------- search
def test_search_by_text_and_by_uploaded_sound(served):
    items = served.store.read_nodes("Item")
    text = TEXT_OF["Item"](items)
    got = served.client.post("/search", json={"text": text.iloc[7], "target": "text", "k": 3}).json()
    top = got["items"][0]
    assert got["modality"] == "text" and top["score"] > 0.999
    assert text[items["id"] == top["id"]].iloc[0] == text.iloc[7]  # that item, or one with the very same text
    wav = served.files["audio_dir"] / f"{items['id'].iloc[4]}.wav"
    got = served.client.post("/search", files={"file": ("clip.wav", wav.read_bytes(), "audio/wav")},
                             data={"k": "3"}).json()
    assert got["modality"] == "audio" and got["items"][0]["id"] == items["id"].iloc[4]
    assert got["items"][0]["score"] > 0.999 and len(got["items"]) == 3


def test_search_bad_requests(served):
    c = served.client
    png = (served.files["images_dir"] / "i0001.png") if (served.files.get("images_dir")) else None
    if png is not None and png.exists():  # the store has no image vectors: a clear 409 that says what to run
        err = error(c.post("/search", files={"file": ("cover.png", png.read_bytes(), "image/png")}), 409, "file",
                    "ctxrec encode")
        assert err["code"] == "no_route"
    error(c.post("/search", files={"file": ("notes.txt", b"hello", "text/plain")}), 422, "file", "notes.txt")
    error(c.post("/search", files={"file": ("clip.wav", b"", "audio/wav")}), 422, "file", "empty")
    error(c.post("/search", files={"file": ("clip.wav", b"RIFF not really a wav", "audio/wav")}), 422, "file")
    error(c.post("/search", data={"k": "3"}, files={"other": ("x.wav", b"1", "audio/wav")}), 422, "file")
    error(c.post("/search", files={"file": ("clip.wav", b"1", "audio/wav")}, data={"k": "many"}), 422, "k")
    error(c.post("/search", json={}), 422, "text")
    error(c.post("/search", json={"text": ""}), 422, "text")
    error(c.post("/search", json={"text": "  "}), 422, "text", "empty")
    error(c.post("/search", json={"text": "a song", "k": 0}), 422, "k")
    error(c.post("/search", json={"text": "a song", "target": "smell"}), 422, "target", "'smell'")
    error(c.post("/search", content=b"a song", headers={"content-type": "text/plain"}), 415, "body", "text/plain")


def test_search_needs_features(served):
    bare = TestClient(create_app(RecService(served.store, served.model)))
    err = error(bare.post("/search", json={"text": "a song"}), 409, None, "--features", "ctxrec encode --out")
    assert err["code"] == "no_search"


# ---------------------------------------------------------------------- explain
def test_explain_paths_weights_and_sentence(served):
    user = served.users[0]
    item = get(served, "/recommend", user=user, k=1, reasons="false")["items"][0]["id"]
    got = get(served, "/explain", user=user, item=item)
    want = queries.explain(served.store, user, item)
    assert [(p["kind"], p["node"]) for p in got["paths"]] == list(zip(want["kind"], want["node"].astype(str)))
    assert got["paths"], "the tiny world links every user to a top item through some context"
    for p in got["paths"]:
        assert f"'{user}'" in p["path"] and f"'{item}'" in p["path"] and f"'{p['node']}'" in p["path"]
    mods = got["modalities"]
    assert mods["method"] == "GatedFusion weights" and set(mods["weights"]) == {"text", "audio"}
    assert abs(sum(mods["weights"].values()) - 1) < 1e-5 and all(mods["present"].values())
    strongest = got["paths"][0]
    assert strongest["description"] in got["sentence"] or strongest["description"] + "s" in got["sentence"]
    error(served.client.get("/explain", params={"user": "nobody", "item": item}), 404, "user", "'nobody'")
    error(served.client.get("/explain", params={"user": user, "item": "i9999"}), 404, "item", "'i9999'")
    error(served.client.get("/explain", params={"user": user}), 422, "item")


def test_modality_weights_by_leave_one_out(served):
    """Mean fusion has no weights of its own: an item without audio owes everything to its text."""
    import copy

    graph = copy.copy(served.graph)
    graph.data = served.graph.data.clone()
    graph.data["item"]["mask_audio"][0] = False
    model = ContextGNN(hidden=8, features=("text", "audio"), fusion="mean")
    model.prepare(graph)
    model.eval()
    alone = modality_weights(model, 0)
    assert alone["method"] == "MeanFusion leave-one-out" and alone["present"] == {"text": True, "audio": False}
    assert alone["weights"] == {"text": 1.0, "audio": 0.0}
    both = modality_weights(model, 1)
    assert all(w > 0 for w in both["weights"].values()) and abs(sum(both["weights"].values()) - 1) < 1e-6
    assert modality_weights(MostPop().fit(served.graph), 0) is None


# ------------------------------------------------------------- never a 5xx for bad input
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(user=st.sampled_from(["u0001", "u0002"]) | st.text(max_size=12), time=st.text(max_size=12),
       place=st.text(max_size=12), session=st.text(max_size=8), items=st.sampled_from(["i0001", "i0001,i0002"])
       | st.text(max_size=20), k=st.text(max_size=4), via=st.sampled_from(["context", "embedding"]) | st.text(max_size=8))
def test_bad_input_never_gives_a_5xx(served, user, time, place, session, items, k, via):
    c = served.client
    params = {"user": user or "x", "time": time, "place": place, "session": session, "session_items": items, "k": k}
    for res in (c.get("/recommend", params={n: v for n, v in params.items() if v}),
                c.get(f"/items/{quote(user or 'x', safe='')}/related", params={"via": via or "x", "k": k or "1"}),
                c.get("/explain", params={"user": user or "x", "item": items or "y"})):
        assert res.status_code < 500, res.text
        if res.status_code >= 400:
            error(res, res.status_code)


# --------------------------------------------------------------------- open + CLI
def test_service_opens_a_saved_model_and_refuses_a_changed_store(world, tmp_path):
    _, files = world
    with open_store("embedded", tmp_path / "g.db") as store:
        ingest(store, files["interactions"], files["items"], files["context"])
        model = ContextGNN(hidden=8, features=(), train={"epochs": 1}).fit(export_pyg(store))
    model.save(tmp_path / "model")
    service = RecService.open(tmp_path / "model", db=tmp_path / "g.db")
    try:
        user = str(model.graph.ids["user"][0])
        got = service.recommend(user, k=4, reasons=False)["items"]
        assert [i["id"] for i in got] == [i for i, _ in model.recommend_ids(user, 4)]
        service.add_interactions([{"user_id": "newcomer", "item_id": got[0]["id"], "time": "2024-01-01T10:00:00"}])
        with pytest.raises(Exception) as info:
            service.recommend("newcomer")
        assert "retrain" in str(info.value) and getattr(info.value, "status", None) == 404
    finally:
        service.close()
    with pytest.raises(ValueError, match="retrain"):
        RecService.open(tmp_path / "model", db=tmp_path / "g.db")
    with pytest.raises(FileNotFoundError, match="ctxrec train --out"):
        RecService.open(tmp_path / "none", db=tmp_path / "g.db")


def test_serve_command_errors(tmp_path):
    from typer.testing import CliRunner

    from ctxrec.cli import app

    res = CliRunner().invoke(app, ["serve", "--model", str(tmp_path / "none"), "--db", str(tmp_path / "g.db")])
    assert res.exit_code == 2 and "no saved model here" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["serve", "--store", "sqlite"])
    assert res.exit_code == 2 and "sqlite" in res.output


@pytest.mark.slow
def test_serve_command_answers_over_http(world, tmp_path):
    """`ctxrec serve` in a subprocess: real uvicorn, real socket."""
    import socket

    import httpx2 as httpx

    _, files = world
    with open_store("embedded", tmp_path / "g.db") as store:
        ingest(store, files["interactions"], files["items"], files["context"])
        graph = export_pyg(store)
        MostPop().fit(graph).save(tmp_path / "model")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "CTXREC_API_KEY": "k1"}
    proc = subprocess.Popen([sys.executable, "-m", "ctxrec.cli", "serve", "--db", str(tmp_path / "g.db"), "--model",
                             str(tmp_path / "model"), "--port", str(port), "--features", str(tmp_path / "none")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, health = time.monotonic() + 120, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert health is not None, proc.stdout.read() if proc.poll() is not None else "no answer in 120 s"
        assert health["model"] == "MostPop" and health["writes"] and not health["search"]
        assert health["ranking"]["where"] == "process" and health["ranking"]["alive"]  # ctxrec serve's default
        res = httpx.get(f"http://127.0.0.1:{port}/recommend", params={"user": str(graph.ids["user"][0]), "k": 3})
        assert res.status_code == 200 and len(res.json()["items"]) == 3, res.text
        res = httpx.post(f"http://127.0.0.1:{port}/interactions", json={"events": []}, headers={"X-API-Key": "no"})
        assert res.status_code == 403 and res.json()["error"]["code"] == "wrong_api_key"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
