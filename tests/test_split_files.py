"""Split files (``SplitConfig(protocol="files")``): round trips, Parquet, errors, conflicts,
pairs in no file, and the refit on train+val."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from ctxrec.data import SplitConfig, read_split_dir, write_split_dir
from ctxrec.graph.export import to_rec_graph
from ctxrec.training.evaluation import evaluate
from ctxrec.training.models import EASE
from tests.test_export import board_tables, check_no_future_edges

FIELDS = ("user", "item", "time", "place", "session")
ROLES = ("train", "val", "test")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return board_tables(tmp_path_factory, "files")


@pytest.fixture(scope="module")
def temporal(built):
    return to_rec_graph(built)


def files_graph(tables, folder, **kwargs):
    return to_rec_graph(tables, split=SplitConfig(protocol="files", split_dir=str(folder), **kwargs))


def id_pairs(graph, events) -> set:
    return set(zip(graph.ids["user"][events.user.numpy()], graph.ids["item"][events.item.numpy()]))


def edge_pairs(graph) -> set:
    ei = graph.data["user", "interacted", "item"].edge_index
    return set(zip(graph.ids["user"][ei[0].numpy()], graph.ids["item"][ei[1].numpy()]))


def assert_same_events(a, b) -> None:
    for part in ROLES:
        for name in FIELDS:
            x, y = getattr(getattr(a, part), name), getattr(getattr(b, part), name)
            same = torch.equal(x, y)
            assert same, f"{part}.{name} differs: {len(x)} vs {len(y)} rows"


# --- round trip ---------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["temporal", "cold_items"])
def test_written_files_read_back_and_write_the_same_bytes(built, tmp_path, protocol):
    g = to_rec_graph(built, split=SplitConfig(protocol=protocol))
    write_split_dir(g, tmp_path / "a")
    again = files_graph(built, tmp_path / "a")
    write_split_dir(again, tmp_path / "b")
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert {"train.csv", "val.csv", "test.csv"} <= set(names)
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert again.split_info["pairs"] == g.split_info["pairs"]
    assert again.split_info["files"]["conflicts"] == 0 and again.split_info["files"]["unused"] == 0
    # the files hold one sorted row per distinct pair of each role
    frames = read_split_dir(tmp_path / "a")
    for role in ROLES:
        assert set(zip(frames[role]["user"], frames[role]["item"])) == id_pairs(g, getattr(g, role))
        assert list(frames[role].itertuples(index=False)) == sorted(frames[role].itertuples(index=False))


@pytest.mark.parametrize("protocol", ["temporal", "cold_items"])
def test_a_split_read_back_gives_the_same_events(built, tmp_path, protocol):
    """Train events included: under ``temporal`` that means no repeat event after the user's cut."""
    g = to_rec_graph(built, split=SplitConfig(protocol=protocol))
    write_split_dir(g, tmp_path)
    again = files_graph(built, tmp_path)
    assert_same_events(g, again)
    assert again.split_info["sessions"] == g.split_info["sessions"]
    check_no_future_edges(again, built, temporal=protocol == "temporal")


@pytest.mark.parametrize("protocol", ["temporal", "cold_items"])
def test_a_split_read_back_gives_the_same_metrics(built, tmp_path, protocol):
    """Candidates included: a cold-item split ranks only the held-out items."""
    g = to_rec_graph(built, split=SplitConfig(protocol=protocol))
    write_split_dir(g, tmp_path)
    again = files_graph(built, tmp_path)
    assert again.candidates.keys() == g.candidates.keys()
    for key in g.candidates:
        assert torch.equal(again.candidates[key], g.candidates[key])
    first, second = EASE(l2=50.0).fit(g.without_test()), EASE(l2=50.0).fit(again.without_test())
    for eval_protocol in ("per_user", "per_context"):
        expected = evaluate(first, g, "test", protocol=eval_protocol)
        assert expected["ndcg@20"] > 0
        assert evaluate(second, again, "test", protocol=eval_protocol) == expected


def test_parquet_reads_like_csv(built, temporal, tmp_path):
    write_split_dir(temporal, tmp_path / "csv")
    written = write_split_dir(temporal, tmp_path / "pq", fmt="parquet")
    assert [written[role].name for role in ROLES] == ["train.parquet", "val.parquet", "test.parquet"]
    csv, pq = read_split_dir(tmp_path / "csv"), read_split_dir(tmp_path / "pq")
    for role in ROLES:
        pd.testing.assert_frame_equal(csv[role], pq[role])
    assert_same_events(files_graph(built, tmp_path / "csv"), files_graph(built, tmp_path / "pq"))
    # one file per role: writing CSV over a Parquet folder replaces the files
    write_split_dir(temporal, tmp_path / "pq", fmt="csv")
    assert sorted(p.name for p in (tmp_path / "pq").iterdir() if p.stem in ROLES) == ["test.csv", "train.csv",
                                                                                        "val.csv"]


def test_val_file_is_optional(built, temporal, tmp_path):
    write_split_dir(temporal, tmp_path)
    (tmp_path / "val.csv").unlink()
    g = files_graph(built, tmp_path, val=0.0)  # no val file and no share to carve: no validation
    assert len(g.val) == 0 and g.split_info["pairs"]["val"] == 0
    assert g.split_info["pairs"]["unused"] == g.split_info["files"]["unused"] == temporal.split_info["pairs"]["val"]
    assert id_pairs(g, g.test) == id_pairs(temporal, temporal.test)


def test_without_a_val_file_validation_is_carved_from_train_and_the_refit_gives_it_back(built, temporal, tmp_path):
    write_split_dir(temporal, tmp_path)
    (tmp_path / "val.csv").unlink()
    train_file = set(map(tuple, pd.read_csv(tmp_path / "train.csv", dtype=str).to_numpy()))
    g = files_graph(built, tmp_path)  # SplitConfig.val = 0.1: each user's latest tenth of the train pairs
    carved = id_pairs(g, g.val)
    assert carved and carved <= train_file and not carved & id_pairs(g, g.train)
    assert g.split_info["files"]["val_from_train"] == len(carved)
    # the temporal rule: within a user, every carved pair is at least as late as every train pair
    first_ts = built.edges["INTERACTED"].set_index(["src", "dst"])["first_ts"]
    for user in {u for u, _ in carved}:
        latest_train = max(first_ts[(u, i)] for u, i in id_pairs(g, g.train) if u == user)
        assert all(first_ts[(u, i)] >= latest_train for u, i in carved if u == user)
    refit = files_graph(built, tmp_path, refit=True)
    assert len(refit.val) == 0 and id_pairs(refit, refit.train) == train_file


@pytest.mark.parametrize("protocol, rule", [("temporal", "temporal"), ("random", "random")])
def test_validation_is_carved_the_way_the_test_pairs_were_made(built, tmp_path, protocol, rule):
    """A random test split gets random validation: a temporal one would reward following the
    users' latest items, which a random test does not."""
    made = to_rec_graph(built, None, SplitConfig(protocol=protocol, test=0.2, val=0.1, seed=0))
    write_split_dir(made, tmp_path)
    (tmp_path / "val.csv").unlink()
    g = files_graph(built, tmp_path)
    assert g.split_info["files"]["val_rule"] == rule and g.split_info["files"]["val_from_train"] == len(g.val) > 0


# --- errors ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shuffled(built):
    """A random split: its files can be edited freely, no temporal rule ties the roles to time."""
    return to_rec_graph(built, split=SplitConfig(protocol="random"))


@pytest.fixture
def folder(shuffled, tmp_path):
    write_split_dir(shuffled, tmp_path)
    return tmp_path


def _append(path, rows) -> None:
    frame = pd.read_csv(path, dtype=str)
    pd.concat([frame, pd.DataFrame(rows, columns=list(frame.columns))]).to_csv(path, index=False)


def test_ids_not_in_the_store_are_counted_per_file(built, shuffled, folder):
    user, item = shuffled.ids["user"][0], shuffled.ids["item"][0]
    _append(folder / "train.csv", [["nobody", item], ["ghost", item], [user, "no-such-item"]])
    n = len(pd.read_csv(folder / "train.csv"))
    with pytest.raises(ValueError, match=rf"train\.csv: of its {n} pairs, 2 name a user not in the store "
                                         r"\(e\.g\. \['nobody', 'ghost'\]\); 1 name an item not in the store "
                                         r"\(e\.g\. \['no-such-item'\]\)"):
        files_graph(built, folder)


def test_pairs_the_store_never_saw_are_counted(built, shuffled, folder):
    seen = id_pairs(shuffled, shuffled.train) | id_pairs(shuffled, shuffled.val) | id_pairs(shuffled, shuffled.test)
    user = shuffled.ids["user"][0]
    never = next(i for i in shuffled.ids["item"] if (user, i) not in seen)
    _append(folder / "test.csv", [[user, never]])
    with pytest.raises(ValueError, match=rf"test\.csv: .* 1 are user-item pairs the store has no interaction for "
                                         rf"\(e\.g\. \[\('{user}', '{never}'\)\]\)"):
        files_graph(built, folder)


def test_missing_test_file(built, folder):
    (folder / "test.csv").unlink()
    with pytest.raises(ValueError, match=r"has no test\.csv or test\.parquet; every split needs train and test"):
        files_graph(built, folder)


def test_missing_user_column(built, folder):
    pd.read_csv(folder / "val.csv").rename(columns={"user": "customer"}).to_csv(folder / "val.csv", index=False)
    with pytest.raises(ValueError, match=r"val\.csv: no column 'user' \(found \['customer', 'item'\]\)"):
        files_graph(built, folder)


def test_a_bad_time_names_its_row(built, folder):
    frame = pd.read_csv(folder / "test.csv", dtype=str).head(3)
    frame["time"] = ["1704096000", "2024-01-02T10:00:00", "yesterday"]
    frame.to_csv(folder / "test.csv", index=False)
    # CSV rows are numbered as lines: the header is line 1, the third pair line 4
    with pytest.raises(ValueError, match=r"test\.csv: row 4, column 'time', value 'yesterday' is neither a number "
                                         r"nor a date-time"):
        files_graph(built, folder)
    frame["time"] = ["1704096000", "2024-01-02T10:00:00", ""]  # blank times are allowed
    frame.to_csv(folder / "test.csv", index=False)
    assert len(files_graph(built, folder).test) == 3


def test_a_role_in_two_formats_is_refused(built, shuffled, folder):
    write_split_dir(shuffled, folder / "pq", fmt="parquet")
    (folder / "pq" / "train.parquet").rename(folder / "train.parquet")
    with pytest.raises(ValueError, match=r"both train\.csv and train\.parquet hold the train pairs; keep one"):
        files_graph(built, folder)


# --- conflicts and pairs in no file -------------------------------------------------------------

def test_a_pair_in_two_files_keeps_the_earlier_role(built, shuffled, folder):
    test = pd.read_csv(folder / "test.csv", dtype=str)
    user, item = test.iloc[0]
    _append(folder / "train.csv", [[user, item]])
    g = files_graph(built, folder)
    assert g.split_info["files"]["conflicts"] == 1
    pairs = shuffled.split_info["pairs"]
    assert g.split_info["pairs"] == {"train": pairs["train"] + 1, "val": pairs["val"], "test": pairs["test"] - 1}
    assert (user, item) in id_pairs(g, g.train) and (user, item) in edge_pairs(g)
    assert (user, item) not in id_pairs(g, g.test)


def test_pairs_in_no_file_are_left_out_of_everything(built, shuffled, folder):
    train = pd.read_csv(folder / "train.csv", dtype=str)
    dropped = set(zip(train["user"][:5], train["item"][:5]))
    train.iloc[5:].to_csv(folder / "train.csv", index=False)
    g = files_graph(built, folder)
    assert g.split_info["pairs"]["unused"] == g.split_info["files"]["unused"] == 5
    assert g.split_info["pairs"]["train"] == shuffled.split_info["pairs"]["train"] - 5
    for part in (g.train, g.val, g.test):
        assert not dropped & id_pairs(g, part)
    assert not dropped & edge_pairs(g)
    check_no_future_edges(g, built, temporal=False, excluded=dropped)  # CONTAINS and sessions too


# --- refit -------------------------------------------------------------------------------------------

def test_refit_moves_the_val_pairs_into_training(built, temporal):
    g = to_rec_graph(built, split=SplitConfig(refit=True))
    val = id_pairs(temporal, temporal.val)
    assert val and len(g.val) == 0 and g.split_info["pairs"]["val"] == 0
    assert g.split_info["refit"] == {"val_pairs_in_train": len(val)}
    assert id_pairs(g, g.train) == id_pairs(temporal, temporal.train) | val
    assert edge_pairs(g) == edge_pairs(temporal) | val
    for name in FIELDS:
        assert torch.equal(getattr(g.test, name), getattr(temporal.test, name))
    check_no_future_edges(g, built, temporal=True)  # the cut is now the first test event


def test_refit_of_cold_items_ranks_only_the_test_items(built):
    g = to_rec_graph(built, split=SplitConfig(protocol="cold_items", refit=True))
    assert list(g.candidates) == ["test"] and len(g.val) == 0
    assert set(g.candidates["test"].tolist()) == set(g.test.item.tolist())
