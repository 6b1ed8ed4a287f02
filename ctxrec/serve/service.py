"""``RecService``: what the HTTP API serves, as plain Python (the API is a thin layer).

It holds the graph store, the exported graph, a trained model, the cross-modal search
and, optionally, a language model for reason sentences, and answers the API's questions:
recommendations in a context (time, place, the session so far), related items, search
by text, image or sound, explanations, and new interaction events. Every bad input
raises a :class:`ServiceError` that names the field and the value and says what to do;
the API turns it into a 4xx response.

Example:
    >>> service = RecService.open(".ctxrec/model", kind="embedded", db=".ctxrec/graph.db",
    ...                           features=".ctxrec/features")                      # doctest: +SKIP
    >>> service.recommend("u0001", k=5, time="sat 20:00", place="London")["items"][0]  # doctest: +SKIP
    {'id': 'i0031', 'name': '...', 'score': 3.2, 'rank': 1, 'reason': 'Because you ...'}
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pandas as pd
import torch

from ctxrec.graph import context as ctx
from ctxrec.graph import queries
from ctxrec.graph.append import EVENT_COLUMNS, append_events, query_frame
from ctxrec.graph.build import BuildConfig
from ctxrec.serve.errors import Conflict, Invalid, NotFound, ServiceError
from ctxrec.serve.explain import explanation_paths, modality_weights
from ctxrec.serve.scoring import InProcess
from ctxrec.serve.text import reason_sentence

__all__ = ["MAX_EVENTS", "MAX_K", "MAX_SESSION_ITEMS", "RELATED_VIA", "RecRequest", "RecService", "ServiceError"]

#: longest list any endpoint returns
MAX_K = 100
#: most items a request may name as its session so far
MAX_SESSION_ITEMS = 50
#: most events one POST may carry
MAX_EVENTS = 1000
#: ``via`` choices of :meth:`RecService.related`
RELATED_VIA = ("co_interaction", "session", "context", "embedding")

# items chosen in the (time slot, place) contexts where the item was chosen
RELATED_CONTEXT = """
MATCH (i:Item)<-[:`CONTAINS`]-(s:Session)-[:AT_TIME]->(t:Time), (s)-[:AT_PLACE]->(p:Place)
WHERE i.id = $id
WITH DISTINCT t, p
MATCH (t)<-[:AT_TIME]-(s2:Session)-[:AT_PLACE]->(p), (s2)-[:`CONTAINS`]->(j:Item)
WHERE j.id <> $id
RETURN j.id AS id, count(DISTINCT s2) AS score
ORDER BY score DESC, id ASC
LIMIT $k
"""
_SESSION = ("MATCH (s:Session) WHERE s.id IN $ids "
            "RETURN s.id AS id, s.user_id AS user_id, s.time_slot AS time_slot, s.place AS place")
_SESSION_ITEMS = ("MATCH (s:Session)-[c:`CONTAINS`]->(i:Item) WHERE s.id = $id "
                  "RETURN i.id AS id, c.pos AS pos ORDER BY pos ASC, id ASC")
_ACTIONS = ("MATCH (u:User)-[r:INTERACTED]->(j:Item) WHERE u.id = $user AND j.id IN $items "
            "RETURN j.id AS id, r.action AS action ORDER BY id ASC, action ASC")


@dataclass(frozen=True)
class RecRequest:
    """One recommendation request (the arguments of :meth:`RecService.recommend`)."""

    user: str
    k: int = 10
    time: Optional[str] = None
    place: Optional[str] = None
    session: Optional[str] = None
    session_items: Tuple[str, ...] = ()
    filter_seen: bool = True
    reasons: bool = True


class RecService:
    """Serves a trained model over a graph store.

    Args:
        store: an open :class:`~ctxrec.graph.stores.GraphStore` (writable for
            :meth:`add_interactions`).
        model: a fitted :class:`~ctxrec.training.recommender.Recommender`; ``model.graph``
            is the export it was trained on.
        features (str | Path, optional): the folder ``ctxrec encode --out`` wrote (its
            manifest names the encoders search needs) (default: None, no search).
        writer (LMWriter, optional): rewrites reason sentences (default: None, templates).
        build (BuildConfig, optional): how new events become sessions (default: ``BuildConfig()``);
            with ``pseudonymize`` set, requests carry raw user ids and the service maps them.
    """

    def __init__(self, store, model, features: str | Path | None = None, writer=None,
                 build: Optional[BuildConfig] = None) -> None:
        if getattr(model, "graph", None) is None:
            raise ValueError(f"model {type(model).__name__} is not fitted; fit it or load it with Recommender.load")
        self.store, self.model, self.graph = store, model, model.graph
        self.features = Path(features) if features is not None else None
        self.writer, self.build = writer, build or BuildConfig()
        self._lock = threading.RLock()  # one store conversation at a time
        self._search_lock = threading.Lock()  # encoders hold state; one query at a time
        self._search = None
        self.scorer = InProcess(model)  # what ranks recommend_many's batches (see rank_in_process)
        items = store.read_nodes("Item")
        self._names = dict(zip(items["id"], items["name"].where(items["name"].notna(), items["id"])))

    @classmethod
    def open(cls, model_dir: str | Path, kind: str = "embedded", db: str | Path | None = None,
             features: str | Path | None = None, lm: str | Path | None = None, split=None,
             build: Optional[BuildConfig] = None, **store_kw) -> "RecService":
        """Open a store, export its graph and load a saved model onto it.

        Args:
            model_dir (str | Path): folder of ``model.save`` / ``ctxrec train --out``.
            kind (str): ``"embedded"`` or ``"neo4j"`` (default: ``"embedded"``).
            db (str | Path, optional): the embedded store's folder.
            features (str | Path, optional): see the class (default: None).
            lm (str | Path, optional): folder of a causal LM for reason sentences (default: None).
            split (SplitConfig, optional): the split the model was trained with (default: the default split).
            build (BuildConfig, optional): see the class.
            **store_kw: passed to :func:`~ctxrec.graph.stores.open_store` (``uri=...`` for Neo4j).
        """
        from ctxrec.graph.export import export_pyg
        from ctxrec.graph.stores import open_store
        from ctxrec.serve.text import LMWriter
        from ctxrec.training.recommender import Recommender

        model_dir = Path(model_dir)
        if not (model_dir / "manifest.json").is_file():
            raise FileNotFoundError(f"{model_dir}: no saved model here; run `ctxrec train --out {model_dir}` first")
        store = open_store(kind, db, **store_kw) if kind != "neo4j" else open_store(kind, **store_kw)
        try:
            graph = export_pyg(store, split)
            try:
                model = Recommender.load(model_dir, graph)
            except RuntimeError as e:
                raise ValueError(f"{model_dir}: the saved model does not fit the graph now in the store ({e}); the "
                                 "store changed since training (new users or items); retrain with `ctxrec train`") from e
            return cls(store, model, features, LMWriter(lm) if lm else None, build)
        except BaseException:
            store.close()
            raise

    def rank_in_process(self, threads: int = 1) -> None:
        """Rank recommendation batches in a scoring process of their own (CPU models; see
        :mod:`ctxrec.serve.scoring`): under concurrent load the serving process's event loop
        and the ranking then stop taking the GIL from each other. ``ctxrec serve`` does this.

        Args:
            threads (int): torch and BLAS threads in the scoring process (default: 1).
        """
        from ctxrec.serve.scoring import ScoringProcess

        old, self.scorer = self.scorer, ScoringProcess(self.model, threads)
        old.close()

    def close(self) -> None:
        """Stop the scoring process, if any, and close the store."""
        try:
            self.scorer.close()
        finally:
            self.store.close()

    # ------------------------------------------------------------------- status
    def health(self) -> Dict[str, Any]:
        """What is served: store, model, sizes, item vectors, whether search is set up."""
        with self._lock:
            vectors = self.store.vector_names("Item")
        return {"status": "ok", "store": type(self.store).__name__, "model": self.model.name,
                "users": self.graph.num_users, "items": self.graph.num_items, "item_vectors": vectors,
                "search": self.features is not None, "reasons": "lm" if self.writer is not None else "template",
                "ranking": self.scorer.stats()}

    # ---------------------------------------------------------- recommendations
    def recommend(self, user: str, k: int = 10, time: Optional[str] = None, place: Optional[str] = None,
                  session: Optional[str] = None, session_items: Sequence[str] = (), filter_seen: bool = True,
                  reasons: bool = True) -> Dict[str, Any]:
        """Top-``k`` items for ``user`` in a context.

        Args:
            user (str): a user id of the trained graph.
            k (int): list length, 1..:data:`MAX_K` (default: 10).
            time (str, optional): ``"sat 20:00"``, ``"sat-evening"`` or an ISO time (default:
                the session's time slot, else unknown).
            place (str, optional): free text such as ``"London"`` (default: the session's place).
            session (str, optional): a session id (``"u0001#web-1"`` or, for this user,
                ``"web-1"``): its items are excluded and read as the session so far.
            session_items (Sequence[str]): more items of the session so far, oldest first.
            filter_seen (bool): leave out the user's training items (default: True).
            reasons (bool): add a reason sentence per item (default: True).

        Returns:
            dict: ``user``, ``context`` (what was used) and ``items`` (``id, name, score,
            rank`` and ``reason``, ``reason_source`` when asked).
        """
        answer = self.recommend_many([RecRequest(user, k, time, place, session, tuple(session_items), filter_seen,
                                                 reasons)])[0]
        if isinstance(answer, ServiceError):
            raise answer
        return answer

    def recommend_many(self, requests: Sequence["RecRequest"]) -> List[Dict[str, Any] | ServiceError]:
        """Answer several requests with one batched model call (what the API's batcher calls).

        Scoring a large catalogue is one pass over the item matrix whether it serves one
        request or many, so concurrent requests answered together cost little more than one.

        Returns:
            list: per request its answer (as :meth:`recommend`) or the :class:`ServiceError`
            its input raised; any other error propagates.
        """
        answers: List[Any] = [None] * len(requests)
        plans = []
        for n, r in enumerate(requests):
            try:
                _check_k(r.k)
                user = self._stored(r.user)
                u = self._user_index(user)
                context, used = self._context(user, r.time, r.place, r.session, r.session_items)
            except ServiceError as e:
                answers[n] = e
                continue
            plans.append((n, u, context, used))
        for filter_seen in (True, False):
            group = [p for p in plans if bool(requests[p[0]].filter_seen) == filter_seen]
            if not group:
                continue
            depth = max(requests[n].k + len(used["session_items"]) for n, _, _, used in group)
            items, scores = self.scorer.rank([u for _, u, _, _ in group], [c for _, _, c, _ in group], depth,
                                             filter_seen)
            for row, (n, _, _, used) in enumerate(group):
                answers[n] = self._answer(requests[n], used, items[row], scores[row])
        return answers

    def _stored(self, user: str) -> str:
        """The id ``user`` has in the store: its pseudonym when the service holds the key
        (``BuildConfig.pseudonymize``), so callers may send raw ids to a pseudonymised store."""
        pseudo = self.build.pseudonymize
        return pseudo.user(user) if pseudo is not None else user

    def _answer(self, r: "RecRequest", used: Dict[str, Any], items: List[int], scores: List[float]) -> Dict[str, Any]:
        exclude = set(used["session_items"])
        ids = self.graph.ids["item"]
        ranked = [(str(ids[i]), s) for i, s in zip(items, scores)
                  if s != float("-inf") and str(ids[i]) not in exclude][:r.k]
        out, user = [], self._stored(r.user)
        reasons = self._reasons(user, [item for item, _ in ranked]) if r.reasons else {}
        for rank, (item, score) in enumerate(ranked, 1):
            row = {"id": item, "name": self._names.get(item), "score": score, "rank": rank}
            if r.reasons:
                row["reason"], row["reason_source"] = reasons[item]
            out.append(row)
        return {"user": r.user, "context": used, "items": out}

    def _user_index(self, user: str) -> int:
        u = self.graph.index["user"].get(str(user))
        if u is None:
            if self._exists("User", user):
                raise NotFound(f"user {user!r} is in the store but not in the trained model: it was added after "
                               "training; retrain (`ctxrec train`) to recommend for it", "user", code="not_trained")
            raise NotFound(f"unknown user {user!r}: no such user id in the store", "user", code="unknown_user")
        return u

    def _context(self, user: str, time: Optional[str], place: Optional[str], session: Optional[str],
                 session_items: Sequence[str]):
        items: List[str] = []
        sid = None
        if session:
            node = self._session(user, session)
            sid = node["id"]
            items = self._query(_SESSION_ITEMS, {"id": sid}, ["id", "pos"])["id"].astype(str).tolist()
            time = time or node["time_slot"] or None
            if not place and node["place"] and node["place"] in self.graph.index["place"]:
                place = node["place"]
        for item in session_items:
            if item not in items:
                items.append(str(item))
        if len(items) > MAX_SESSION_ITEMS:
            raise Invalid(f"the session has {len(items)} items; at most {MAX_SESSION_ITEMS} are read, pass fewer "
                          "session_items or start a new session", "session_items")
        unknown = [i for i in session_items if i not in self.graph.index["item"] and not self._exists("Item", i)]
        if unknown:
            raise NotFound(f"session_items {unknown} are not item ids of the store", "session_items",
                           code="unknown_item")
        slot = None
        if time:
            try:
                slot = ctx.parse_when(time)
            except ValueError as e:
                raise Invalid(str(e), "time") from None
        p = -1
        if place:
            key = ctx.normalize_place(place)
            if key not in self.graph.index["place"]:
                known = ", ".join(ctx.display_place(k) for k in list(self.graph.ids["place"])[:20])
                raise NotFound(f"unknown place {place!r} (normalised {key!r}); known places: {known}", "place",
                               code="unknown_place")
            p, place = self.graph.index["place"][key], key
        known_items = [self.graph.index["item"][i] for i in items if i in self.graph.index["item"]]
        context = (self.graph.lookup("time", slot) if slot else -1, p, known_items)  # plain ints (scoring.PlainContext)
        used = {"time_slot": slot, "place": place or None, "session": sid, "session_items": items,
                "untrained_items": [i for i in items if i not in self.graph.index["item"]]}
        return context, used

    def _session(self, user: str, session: str) -> Dict[str, Any]:
        """The stored session ``session`` (or ``<user>#<session>``) of ``user``."""
        rows = self._query(_SESSION, {"ids": [str(session), f"{user}#{session}"]},
                           ["id", "user_id", "time_slot", "place"])
        if rows.empty:
            raise NotFound(f"unknown session {session!r} (also looked for {user + '#' + session!r}); POST its "
                           "events to /interactions first, or leave session out", "session", code="unknown_session")
        # the user's own session first, then the id exactly as given
        rows = rows.assign(_rank=(rows["user_id"].astype(str) != str(user)) * 2 + (rows["id"] != session))
        row = rows.sort_values("_rank", kind="stable").drop(columns="_rank").iloc[0]
        if str(row["user_id"]) != str(user):
            raise Invalid(f"session {row['id']!r} belongs to user {row['user_id']!r}, not {user!r}", "session")
        return {k: (None if pd.isna(v) else v) for k, v in row.items()}

    # ------------------------------------------------------------------ related
    def related(self, item: str, k: int = 10, via: str = "co_interaction") -> Dict[str, Any]:
        """Items related to ``item``.

        Args:
            item (str): an item id.
            k (int): how many, 1..:data:`MAX_K` (default: 10).
            via (str): ``co_interaction`` (users who interacted with both), ``session``
                (sessions containing both), ``context`` (sessions in the time slot and
                place pairs where the item was chosen) or ``embedding`` (cosine of the
                model's item vectors, else the store's) (default: ``"co_interaction"``).
        """
        _check_k(k)
        if via not in RELATED_VIA:
            raise Invalid(f"via {via!r} is not one of {list(RELATED_VIA)}", "via")
        if item not in self.graph.index["item"] and not self._exists("Item", item):
            raise NotFound(f"unknown item {item!r}: no such item id in the store", "item", code="unknown_item")
        source = "store"
        if via == "embedding":
            rows, source = self._similar(item, k)
        elif via == "context":
            frame = self._query(RELATED_CONTEXT, {"id": item, "k": int(k)}, ["id", "score"])
            rows = [(str(r.id), float(r.score)) for r in frame.itertuples()]
        else:
            with self._lock:
                rows = self.store.related(item, k=k, via=via)
        return {"item": item, "via": via, "source": source,
                "items": [{"id": i, "name": self._names.get(i), "score": s} for i, s in rows]}

    def _similar(self, item: str, k: int):
        idx = self.graph.index["item"].get(item)
        if idx is not None and self.model.item_embeddings() is not None:
            top, sims = self.model.similar_items(torch.tensor([idx]), k)
            ids = self.graph.ids["item"]
            return [(str(ids[i]), float(s)) for i, s in zip(top[0].tolist(), sims[0].tolist())], "model"
        with self._lock:
            names = self.store.vector_names("Item")
            if "emb" not in names and "text" not in names:
                why = (f"item {item!r} is not in the trained model" if idx is None
                       else f"model {self.model.name} has no item embeddings")
                raise Conflict(f"via='embedding' needs item vectors: {why} and the store has no 'emb' or 'text' item "
                               "vectors; run `ctxrec encode` (text vectors) or use another via", "via",
                               code="no_vectors")
            return self.store.related(item, k=k, via="embedding"), "store"

    # ------------------------------------------------------------------- search
    def search(self, text: Optional[str] = None, path: str | Path | None = None, modality: Optional[str] = None,
               target: Optional[str] = None, k: int = 10) -> Dict[str, Any]:
        """Items nearest to a text or to a media file (image, audio), across modalities.

        Args:
            text (str, optional): a text query.
            path (str | Path, optional): an image or audio file (exactly one of text, path).
            modality (str, optional): the query's modality (default: from the file's suffix).
            target (str, optional): search only these item vectors, e.g. ``"image"``.
            k (int): how many, 1..:data:`MAX_K` (default: 10).
        """
        from ctxrec.serve.search import guess_modality

        _check_k(k)
        if (text is None) == (path is None):
            raise Invalid("give exactly one query: a text, or an image or audio file", "text")
        field = "text" if text is not None else "file"
        if text is not None and not text.strip():
            raise Invalid("the text query is empty", "text")
        query = text if text is not None else str(path)
        modality = modality or ("text" if text is not None else guess_modality(query))
        engine = self._engine()
        if target is not None and target not in engine.vectors:
            raise Invalid(f"target {target!r} is not an item vector of the store; it has {sorted(engine.vectors)}",
                          "target")
        if not engine.routes(modality, target):
            raise Conflict(f"a {modality} query cannot reach the item vectors {[target] if target else sorted(engine.vectors)}: "
                           f"none was made by an encoder with a {modality} tower and no alignment links them; run "
                           f"`ctxrec encode --encoder ...` for a matching modality (see `ctxrec encoders list`) or "
                           "`ctxrec align`", field, code="no_route")
        try:
            with self._search_lock:
                found = engine.search(query, modality=modality, target=target, k=k)
        except ValueError as e:
            raise Invalid(str(e), field) from None
        return {"modality": modality, "target": target,
                "items": [{"id": r.id, "name": self._names.get(r.id), "score": float(r.score), "via": r.via}
                          for r in found.itertuples()]}

    def _engine(self):
        """The :class:`~ctxrec.serve.search.ItemSearch` over the store's item vectors, built once."""
        if self._search is not None:
            return self._search
        from ctxrec.modalities.vector_files import load_encoder, read_manifest
        from ctxrec.serve.search import ItemSearch

        if self.features is None:
            raise Conflict("search is not set up: start the server with --features FOLDER, the folder "
                           "`ctxrec encode --out FOLDER` wrote (its manifest names the encoders)", code="no_search")
        try:
            manifest = read_manifest(self.features)["vectors"]
        except FileNotFoundError as e:
            raise Conflict(str(e), code="no_search") from None
        with self._lock:
            have = self.store.vector_names("Item")
            names = [n for n in manifest if n in have]
            if not names:
                raise Conflict(f"the store has no item vectors of {sorted(manifest)} (it has {have}); run "
                               "`ctxrec encode` against this store", code="no_vectors")
            alignment = None
            if (self.features / "alignment.json").exists():
                from ctxrec.fusion.align import Alignment

                alignment = Alignment.load(self.features / "alignment")
            self._search = ItemSearch.from_store(self.store, {n: load_encoder(self.features, n) for n in names},
                                                 alignment)
        return self._search

    # ------------------------------------------------------------------ explain
    def explain(self, user: str, item: str) -> Dict[str, Any]:
        """Why ``item`` suits ``user``: graph paths, modality weights and a sentence.

        Returns:
            dict: ``user``, ``item``, ``name``, ``paths`` (``kind, node, description,
            strength, detail, path``), ``modalities`` (``method``, ``weights``, ``present``;
            None for a model without modality fusion), ``sentence``, ``sentence_source``.
        """
        user = self._stored(user)
        if not self._exists("User", user):
            raise NotFound(f"unknown user {user!r}: no such user id in the store", "user", code="unknown_user")
        if not self._exists("Item", item):
            raise NotFound(f"unknown item {item!r}: no such item id in the store", "item", code="unknown_item")
        rows = self._evidence(user, [item])[item]
        paths = explanation_paths(rows, user, item)
        sentence, source = self._reasons(user, [item], {item: rows})[item]
        idx = self.graph.index["item"].get(item)
        return {"user": user, "item": item, "name": self._names.get(item), "paths": paths,
                "modalities": None if idx is None else modality_weights(self.model, idx),
                "sentence": sentence, "sentence_source": source}

    def _evidence(self, user: str, items: List[str]) -> Dict[str, pd.DataFrame]:
        with self._lock:
            return queries.explain_many(self.store, user, items)

    def _reasons(self, user: str, items: List[str], evidence: Optional[Dict[str, pd.DataFrame]] = None):
        """``(sentence, source)`` per item: four store queries for all of them (the evidence
        of :func:`~ctxrec.graph.queries.explain_many` and the user's actions on the items it names)."""
        evidence = self._evidence(user, items) if evidence is None else evidence
        shared = sorted({n for rows in evidence.values() for n in rows.loc[rows["kind"] == "item", "node"]})
        actions = {}
        if shared:
            frame = self._query(_ACTIONS, {"user": user, "items": shared}, ["id", "action"])
            actions = dict(zip(frame["id"], frame["action"]))
        out = {}
        for item in items:
            facts = reason_sentence(evidence[item], actions)
            out[item] = self.writer.write(facts) if self.writer is not None else (facts, "template")
        return out

    def _exists(self, label: str, node_id: str) -> bool:
        return not self._query(f"MATCH (n:{label}) WHERE n.id = $id RETURN n.id AS id", {"id": str(node_id)},
                               ["id"]).empty

    def _query(self, cypher: str, params: dict, columns: List[str]) -> pd.DataFrame:
        with self._lock:
            return query_frame(self.store, cypher, params, columns)

    # ------------------------------------------------------------------- writes
    def add_interactions(self, events: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
        """Append interaction events to the store (see :func:`~ctxrec.graph.append.append_events`).

        Args:
            events: dicts with ``user_id``, ``item_id`` and optionally ``action`` (default
                ``"view"``), ``time`` (default: now, UTC), ``location``, ``session_id``, ``value``.

        Returns:
            dict: ``events``, ``sessions`` (their ids, for ``/recommend?session=``),
            ``new_users`` and ``written`` (rows per type).

        Raises:
            Invalid: a rejected event (nothing is written): the message lists every reject.
        """
        if not events:
            raise Invalid("no events given; send at least one", "events")
        if len(events) > MAX_EVENTS:
            raise Invalid(f"{len(events)} events in one request; send at most {MAX_EVENTS} per request", "events")
        now = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds")
        frame = pd.DataFrame([{**{"action": "view", "time": now}, **{k: v for k, v in e.items() if v is not None}}
                              for e in events])
        frame = frame.reindex(columns=[c for c in EVENT_COLUMNS if c in frame.columns])
        with self._lock:
            try:
                result = append_events(self.store, frame, self.build)
            except ValueError as e:  # the store refused a value the event checks let through
                raise Invalid(f"the store refused the events: {e}; fix that value and send them again",
                              "events") from None
        if result.rejects:
            first = result.rejects[0]
            listed = "; ".join(f"event {r.row - 1}: {r.column} {r.value!r}: {r.reason}" for r in result.rejects[:10])
            raise Invalid(f"{len(result.rejects)} event(s) rejected, nothing written: {listed}",
                          f"events[{first.row - 1}].{first.column}")
        return {"events": result.events, "sessions": result.sessions, "new_users": result.new_users,
                "written": result.written}


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise Invalid(f"k must be an integer in 1..{MAX_K}, got {k!r}", "k")
