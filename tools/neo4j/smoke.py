"""Smoke check of the local Neo4j server started by scripts/neo4j.sh.

    python tools/neo4j/smoke.py            # connectivity, constraint, vector index
    python tools/neo4j/smoke.py write      # also write a marker node (persistence check, part 1)
    python tools/neo4j/smoke.py read       # the marker node must be there (part 2, after a restart)

Reads NEO4J_URI / NEO4J_USER / NEO4J_PASSWORD (defaults match scripts/neo4j.sh). Uses only the
label prefix ``CtxrecSmoke`` and cleans up its own schema objects, so it is safe on a dev store.
Exits non-zero on any failure; the last line reads "N passed, N failed".
"""

from __future__ import annotations

import os
import sys
import time

from neo4j import GraphDatabase

URI = os.environ.get("NEO4J_URI", "bolt://127.0.0.1:" + os.environ.get("NEO4J_PORT", "7687"))
USER = os.environ.get("NEO4J_USER", "neo4j")
PASSWORD = os.environ.get("NEO4J_PASSWORD", "ctxrec-test-password")

VEC_INDEX = "ctxrec_smoke_vec"
CONSTRAINT = "ctxrec_smoke_id_unique"


def check_return_1(driver) -> str:
    records, _, _ = driver.execute_query("RETURN 1 AS x")
    assert records[0]["x"] == 1
    comp, _, _ = driver.execute_query("CALL dbms.components() YIELD versions, edition RETURN versions[0] AS v, edition")
    return f"Neo4j {comp[0]['v']} {comp[0]['edition']}"


def check_bad_password_rejected() -> str:
    from neo4j.exceptions import AuthError

    try:
        with GraphDatabase.driver(URI, auth=(USER, PASSWORD + "-wrong")) as bad:
            bad.verify_connectivity()
    except AuthError:
        return "wrong password -> AuthError"
    raise AssertionError("a wrong password was accepted: auth is not enabled")


def check_unique_constraint(driver) -> str:
    from neo4j.exceptions import ConstraintError

    driver.execute_query(f"DROP CONSTRAINT {CONSTRAINT} IF EXISTS")
    driver.execute_query("MATCH (n:CtxrecSmokeItem) DETACH DELETE n")
    driver.execute_query(
        f"CREATE CONSTRAINT {CONSTRAINT} IF NOT EXISTS FOR (n:CtxrecSmokeItem) REQUIRE n.id IS UNIQUE"
    )
    try:
        driver.execute_query("CREATE (:CtxrecSmokeItem {id: 'a'})")
        try:
            driver.execute_query("CREATE (:CtxrecSmokeItem {id: 'a'})")
        except ConstraintError:
            pass
        else:
            raise AssertionError("duplicate id was accepted")
        rows, _, _ = driver.execute_query(
            "SHOW CONSTRAINTS YIELD name, type WHERE name = $n RETURN type", n=CONSTRAINT
        )
        return f"constraint type {rows[0]['type']}, duplicate rejected"
    finally:
        driver.execute_query("MATCH (n:CtxrecSmokeItem) DETACH DELETE n")
        driver.execute_query(f"DROP CONSTRAINT {CONSTRAINT} IF EXISTS")


def check_vector_index(driver) -> str:
    driver.execute_query(f"DROP INDEX {VEC_INDEX} IF EXISTS")
    driver.execute_query("MATCH (n:CtxrecSmokeVec) DETACH DELETE n")
    try:
        driver.execute_query(
            f"CREATE VECTOR INDEX {VEC_INDEX} IF NOT EXISTS FOR (n:CtxrecSmokeVec) ON (n.embedding) "
            "OPTIONS {indexConfig: {`vector.dimensions`: 4, `vector.similarity_function`: 'cosine'}}"
        )
        driver.execute_query(
            "UNWIND $rows AS r CREATE (:CtxrecSmokeVec {id: r.id, embedding: r.v})",
            rows=[
                {"id": "x", "v": [1.0, 0.0, 0.0, 0.0]},
                {"id": "y", "v": [0.0, 1.0, 0.0, 0.0]},
                {"id": "xy", "v": [0.7, 0.7, 0.0, 0.0]},
                {"id": "z", "v": [0.0, 0.0, 1.0, 0.0]},
            ],
        )
        driver.execute_query("CALL db.awaitIndexes(60)")
        deadline = time.monotonic() + 30
        while True:  # vector index updates become searchable asynchronously
            rows, _, _ = driver.execute_query(
                f"CALL db.index.vector.queryNodes('{VEC_INDEX}', 3, $q) YIELD node, score "
                "RETURN node.id AS id, score",
                q=[0.9, 0.1, 0.0, 0.0],
            )
            if len(rows) == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        ids = [r["id"] for r in rows]
        assert ids[:2] == ["x", "xy"], ids
        assert rows[0]["score"] > rows[1]["score"] > rows[2]["score"], rows
        return "top-3 " + ", ".join(f"{r['id']}={r['score']:.3f}" for r in rows)
    finally:
        driver.execute_query("MATCH (n:CtxrecSmokeVec) DETACH DELETE n")
        driver.execute_query(f"DROP INDEX {VEC_INDEX} IF EXISTS")


def write_marker(driver) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    driver.execute_query("MERGE (m:CtxrecSmokeMarker {id: 'persist'}) SET m.written = $s", s=stamp)
    return f"marker written at {stamp}"


def read_marker(driver) -> str:
    rows, _, _ = driver.execute_query("MATCH (m:CtxrecSmokeMarker {id: 'persist'}) RETURN m.written AS w")
    assert rows, "marker node not found: data did not survive the restart"
    driver.execute_query("MATCH (m:CtxrecSmokeMarker) DELETE m")
    return f"marker from {rows[0]['w']} read back (and removed)"


def main(argv: list[str]) -> int:
    mode = argv[1] if len(argv) > 1 else "all"
    checks = [("connect", check_return_1), ("auth", lambda d: check_bad_password_rejected()),
              ("unique constraint", check_unique_constraint), ("vector index", check_vector_index)]
    if mode == "write":
        checks.append(("write marker", write_marker))
    elif mode == "read":
        checks = [("read marker", read_marker)]
    elif mode != "all":
        print(__doc__)
        return 2
    passed = failed = 0
    with GraphDatabase.driver(URI, auth=(USER, PASSWORD)) as driver:
        for name, fn in checks:
            t0 = time.monotonic()
            try:
                info = fn(driver)
            except Exception as e:  # noqa: BLE001 - report every failure
                failed += 1
                print(f"FAIL {name}: {type(e).__name__}: {e}")
            else:
                passed += 1
                print(f"ok   {name} ({time.monotonic() - t0:.2f} s): {info}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
