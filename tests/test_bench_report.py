"""Benchmark provenance: the data hashes, the split facts and the report's ``_meta``."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from ctxrec.bench.report import hash_files, hash_frames, hash_tables, split_facts, write_report
from ctxrec.graph.build import build_graph
from tests.conftest import write_board

# what hash_tables(build_graph(<board>).tables) is, printed by a fresh interpreter
HASH_IN_CHILD = """
import sys
from ctxrec.bench.report import hash_tables
from ctxrec.graph.build import build_graph
print(hash_tables(build_graph(sys.argv[1], sys.argv[2], sys.argv[3]).tables))
"""


def test_hash_frames_is_the_documented_bytes():
    # rows sorted by all columns, columns by name, CSV without index or header, after a name/columns/rows line
    frame = pd.DataFrame({"y": ["b", "a", "a"], "x": [2.5, 1.0, 3.0]})
    expected = hashlib.sha256(b"t\0x,y\x003\n" + b"1.0,a\n2.5,b\n3.0,a\n").hexdigest()
    assert hash_frames({"t": frame}) == expected
    # the same content in another row and column order, and as another string dtype, is the same data
    shuffled = frame.iloc[[2, 0, 1]][["x", "y"]].astype({"y": object}).set_axis([7, 8, 9])
    assert hash_frames({"t": shuffled}) == expected
    # tables are taken by name, so the order of the mapping does not matter, but the name does
    other = pd.DataFrame({"z": [1]})
    assert hash_frames({"t": frame, "u": other}) == hash_frames({"u": other, "t": frame})
    assert hash_frames({"T": frame}) != expected
    assert hash_frames({"t": frame.rename(columns={"x": "w"})}) != expected


def test_hash_frames_orders_values_that_cannot_be_compared():
    mixed = pd.DataFrame({"v": [3, "a", None, [1, 2]]})  # ints, text, null, a list: no total order
    assert hash_frames({"m": mixed}) == hash_frames({"m": mixed.iloc[::-1]})
    assert hash_frames({"m": mixed}) != hash_frames({"m": mixed.replace({3: 4})})


def test_hash_tables_same_in_another_process_and_changes_with_one_value(tmp_path):
    paths = write_board(tmp_path / "w", context_board=True, n_users=8, n_items=10)
    files = [str(paths[k]) for k in ("interactions", "items", "context")]
    tables = build_graph(*files).tables
    here = hash_tables(tables)
    # another interpreter with another str-hash seed and the edge rows in another order
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    child = subprocess.run([sys.executable, "-c", HASH_IN_CHILD, *files], env=env, capture_output=True,
                           text=True, check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert child.stdout.strip().splitlines()[-1] == here
    assert len(here) == 64 and int(here, 16) >= 0
    tables.edges["CONTAINS"] = tables.edges["CONTAINS"].sample(frac=1.0, random_state=0)
    assert hash_tables(tables) == here
    # one weight of one relationship changed
    changed = build_graph(*files).tables
    changed.edges["INTERACTED"].loc[0, "weight"] += 1.0
    assert hash_tables(changed) != here
    # one item's name changed in the input file
    items = pd.read_csv(files[1])
    items.loc[3, "name"] = items.loc[3, "name"] + "!"
    items.to_csv(files[1], index=False)
    assert hash_tables(build_graph(*files).tables) != here


def test_hash_files_by_relative_name_and_bytes(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder / "sub").mkdir(parents=True)
        (tmp_path / folder / "x.csv").write_bytes(b"1,2\n")
        (tmp_path / folder / "sub" / "y.bin").write_bytes(b"\x00\x01")
    expected = hashlib.sha256(b"sub/y.bin\x002\x00\x00\x01" + b"x.csv\x004\x001,2\n").hexdigest()
    a = hash_files([tmp_path / "a" / "x.csv", tmp_path / "a" / "sub" / "y.bin"])
    assert a == expected
    # the same files elsewhere, listed in another order or as their folder: the same hash
    assert hash_files([tmp_path / "b" / "sub" / "y.bin", tmp_path / "b" / "x.csv"]) == expected
    assert hash_files([tmp_path / "b"]) == expected
    (tmp_path / "b" / "x.csv").write_bytes(b"1,3\n")
    assert hash_files([tmp_path / "b"]) != expected
    (tmp_path / "b" / "x.csv").rename(tmp_path / "b" / "z.csv")
    (tmp_path / "b" / "z.csv").write_bytes(b"1,2\n")
    assert hash_files([tmp_path / "b"]) != expected  # same bytes, another name
    with pytest.raises(FileNotFoundError, match="neither a file nor a folder"):
        hash_files([tmp_path / "missing.csv"])
    with pytest.raises(ValueError, match="not under root="):
        hash_files([tmp_path / "a" / "x.csv"], root=tmp_path / "b")


def test_split_facts_are_small_and_json(context_board):
    facts = split_facts(context_board)
    assert facts["events"] == {"train": len(context_board.train), "val": len(context_board.val),
                               "test": len(context_board.test)}
    assert facts["protocol"] == "temporal" and facts["config"]["test"] == 0.2
    assert facts["pairs"] == context_board.split_info["pairs"]
    json.dumps(facts)

    class Held:  # the shape of a cold-items split: long id lists beside small facts
        train, val, test = [0] * 5, [0] * 2, [0] * 3
        split_info = {"protocol": "cold_items", "test_items": [f"i{j}" for j in range(50)], "few": ("a", "b"),
                      "ids": torch.arange(30), "split_dir": Path("runs/split")}

    facts = split_facts(Held())
    assert facts["events"] == {"train": 5, "val": 2, "test": 3}
    assert facts["test_items"] == {"count": 50} and facts["ids"] == {"count": 30}
    assert facts["few"] == ["a", "b"] and facts["split_dir"] == "runs/split"


def test_write_report_records_command_data_and_split(tmp_path):
    # the positional form that existing callers use still works, with null provenance
    path = write_report("old", {"a": 1.0}, tmp_path)
    meta = json.loads(path.read_text())["_meta"]
    assert meta["command"] == "" and meta["data"] is None and meta["split"] is None
    path = write_report("new", {"a": 1.0}, tmp_path, command="ctxrec bench x --n 1",
                        data={"hash": "ab" * 32, "source": "synthetic"}, split={"protocol": "temporal"})
    saved = json.loads(path.read_text())
    assert saved["a"] == 1.0 and path == tmp_path / "new.json"
    assert saved["_meta"]["command"] == "ctxrec bench x --n 1"
    assert saved["_meta"]["data"] == {"hash": "ab" * 32, "source": "synthetic"}
    assert saved["_meta"]["split"] == {"protocol": "temporal"}
