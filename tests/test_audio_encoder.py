"""Tests of ctxrec.modalities.audio (AudioEncoder, log-mel statistics) and .clap (ClapEncoder, ClapTextEncoder).

Offline and fast: audio files are sines written with soundfile into temporary folders;
the CLAP tests use a tiny random-weight ClapModel (two small Swin stages, one text
layer) saved with a feature extractor and a byte-level BPE RoBERTa tokenizer whose
vocabulary (the 256 byte symbols plus a few merges) is written here, so nothing is
downloaded.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

sf = pytest.importorskip("soundfile", reason="the audio encoders read files with soundfile")
pytest.importorskip("torchaudio", reason="the audio encoders compute spectrograms with torchaudio")

from ctxrec.modalities import FeatureCache  # noqa: E402
from ctxrec.modalities.audio import AudioEncoder  # noqa: E402
from ctxrec.modalities.audio_io import AudioEncoderWarning  # noqa: E402
from ctxrec.modalities.clap import ClapEncoder, ClapTextEncoder  # noqa: E402
from ctxrec.modalities.registry import get_encoder  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
for _k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_k, "1")


def tone(freq: float, sr: int, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, str]:
    """Named audio files: one tone at several rates and formats, other pitches, stereo, broken files."""
    d = tmp_path_factory.mktemp("audio")
    files: dict[str, str] = {}

    def write(name, data, sr, **kw):
        path = d / name
        sf.write(str(path), data, sr, **kw)
        files[name.rsplit(".", 1)[0]] = str(path)

    for sr in (8000, 16000, 22050, 44100):
        write(f"a440_{sr}.wav", tone(440, sr), sr)
    write("a440_48000.flac", tone(440, 48000), 48000)
    write("c262_16000.wav", tone(261.63, 16000), 16000)
    write("e1500_16000.wav", tone(1500, 16000), 16000)
    # the same signal in both channels, and its mono twin (float samples: no rounding)
    mono = tone(660, 22050) + tone(990, 22050, amp=0.2)
    write("mono_22050.wav", mono, 22050, subtype="FLOAT")
    write("stereo_same_22050.wav", np.stack([mono, mono], axis=1), 22050, subtype="FLOAT")
    # left only: the mono mix is half of it
    write("stereo_left_22050.wav", np.stack([mono, np.zeros_like(mono)], axis=1), 22050, subtype="FLOAT")
    write("mono_half_22050.wav", 0.5 * mono, 22050, subtype="FLOAT")
    # 1 s of 440 Hz then 2 s of 1500 Hz: cropped to 1 s it is a440
    write("a440_then_e1500.wav", np.concatenate([tone(440, 16000), tone(1500, 16000, 2.0)]), 16000)
    write("e1500_then_a440.wav", np.concatenate([tone(1500, 16000), tone(440, 16000), tone(1500, 16000)]), 16000)
    write("tiny_16000.wav", tone(440, 16000, seconds=0.01), 16000)  # 160 samples < n_fft
    write("silent.wav", np.zeros(16000, dtype=np.float32), 16000)
    write("no_frames.wav", np.zeros(0, dtype=np.float32), 16000)
    (d / "zero_bytes.wav").write_bytes(b"")
    files["zero_bytes"] = str(d / "zero_bytes.wav")
    (d / "garbage.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot really audio" + bytes(range(200)))
    files["garbage"] = str(d / "garbage.wav")
    files["nowhere"] = str(d / "does-not-exist.wav")
    return files


@pytest.fixture(scope="module")
def enc() -> AudioEncoder:
    return AudioEncoder()


def _audio_warnings(record) -> list:
    return [w for w in record if issubclass(w.category, AudioEncoderWarning)]


# -- AudioEncoder: the contract ------------------------------------------------------
def test_declares_what_it_reads_and_writes(enc):
    assert (enc.name, enc.modality, enc.input_column, enc.space) == ("audio", "audio", "audio_path", "logmel")
    assert enc.reads_files
    assert enc.output_dim == 128
    assert AudioEncoder(n_mels=32).output_dim == 64
    assert AudioEncoder(n_mels=32, deltas=True).output_dim == 128
    assert enc.weights_id().startswith("logmel:")
    # settings that change the output change the weights id; batch size does not
    assert AudioEncoder(n_mels=32).weights_id() != enc.weights_id()
    assert AudioEncoder(batch_size=3).weights_id() == enc.weights_id()


def test_shapes_dtype_and_normalisation(enc, clips):
    names = ["a440_16000", "e1500_16000", "a440_48000", "mono_22050"]
    x, mask = enc.encode([clips[n] for n in names])
    assert x.shape == (4, 128) and x.dtype == torch.float32 and mask.dtype == torch.bool
    assert mask.all()
    torch.testing.assert_close(x.norm(dim=1), torch.ones(4))
    raw, _ = AudioEncoder(normalize=False).encode([clips[n] for n in names])
    assert not torch.allclose(raw.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(torch.nn.functional.normalize(raw, dim=1), x)
    xd, _ = AudioEncoder(deltas=True).encode([clips["a440_16000"]])
    assert xd.shape == (1, 256)


def test_stereo_is_mixed_to_mono(enc, clips):
    x, mask = enc.encode([clips["mono_22050"], clips["stereo_same_22050"],
                          clips["stereo_left_22050"], clips["mono_half_22050"]])
    assert mask.all()
    torch.testing.assert_close(x[1], x[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(x[2], x[3], atol=1e-5, rtol=0)


def test_same_tone_at_any_rate_gives_near_identical_vectors(enc, clips):
    names = ["a440_8000", "a440_16000", "a440_22050", "a440_44100", "a440_48000"]
    x, mask = enc.encode([clips[n] for n in names])
    assert mask.all()
    same = min(cos(x[i], x[j]) for i in range(len(names)) for j in range(i + 1, len(names)))
    assert same > 0.99, same
    other, _ = enc.encode([clips["c262_16000"], clips["e1500_16000"]])
    different = max(cos(x[1], other[0]), cos(x[1], other[1]), cos(other[0], other[1]))
    assert different < same, (different, same)


def test_crop_keeps_the_start_or_the_centre(clips):
    short = AudioEncoder(max_seconds=1.0)
    x, _ = short.encode([clips["a440_then_e1500"], clips["a440_16000"], clips["e1500_16000"]])
    assert cos(x[0], x[1]) > 0.999 > cos(x[0], x[2])
    centre = AudioEncoder(max_seconds=1.0, crop="center")
    x, _ = centre.encode([clips["e1500_then_a440"], clips["a440_16000"]])
    assert cos(x[0], x[1]) > 0.99
    whole, _ = AudioEncoder(max_seconds=None).encode([clips["a440_then_e1500"], clips["a440_16000"]])
    assert cos(whole[0], whole[1]) < 0.99


def test_clip_shorter_than_one_fft_window_is_encoded(enc, clips):
    x, mask = enc.encode([clips["tiny_16000"]])
    assert mask.tolist() == [True] and torch.isfinite(x).all() and x.abs().sum() > 0


def test_bad_files_give_masked_rows_a_report_and_one_warning(enc, clips):
    batch = [clips["a440_16000"], None, clips["nowhere"], clips["zero_bytes"], float("nan"),
             clips["garbage"], clips["no_frames"], clips["silent"], clips["e1500_16000"]]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        x, mask = enc.encode(batch)
    assert mask.tolist() == [True, False, False, False, False, False, False, False, True]
    assert (x[~mask] == 0).all()
    assert enc.last_report == {
        "missing": [clips["nowhere"]],
        "corrupt": [clips["zero_bytes"], clips["garbage"], clips["no_frames"]],
        "silent": [clips["silent"]],
    }
    good, _ = enc.encode([clips["a440_16000"], clips["e1500_16000"]])
    torch.testing.assert_close(x[mask], good)
    found = _audio_warnings(record)
    assert len(found) == 1
    message = str(found[0].message)
    assert "5 audio file(s)" in message and "does-not-exist.wav" in message and "garbage.wav" in message
    assert found[0].filename == __file__  # stacklevel points at the caller

    # encode_all over several batches: still one warning, one report for the whole call
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        x2, mask2 = enc.encode_all(batch, batch_size=2)
    assert len(_audio_warnings(record)) == 1
    torch.testing.assert_close(x2, x)
    assert mask2.tolist() == mask.tolist()
    assert sum(len(v) for v in enc.last_report.values()) == 5

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean batch warns nothing and clears the report
        enc.encode([clips["a440_16000"], None])
    assert enc.last_report == {"missing": [], "corrupt": [], "silent": []}


def test_all_missing_and_empty_batches(enc):
    x, mask = enc.encode([None, ""])
    assert x.shape == (2, 128) and not mask.any() and (x == 0).all()
    x, mask = enc.encode([])
    assert x.shape == (0, 128) and mask.shape == (0,)


def test_batch_equals_one_by_one(enc, clips):
    paths = [clips[n] for n in ("a440_8000", "a440_44100", "a440_48000", "e1500_16000", "stereo_left_22050")]
    batch, _ = enc.encode(paths)
    single = torch.cat([enc.encode([p])[0] for p in paths])
    torch.testing.assert_close(batch, single, atol=1e-6, rtol=0)
    x, _ = enc.encode_all(paths, batch_size=2)
    torch.testing.assert_close(x, batch, atol=1e-6, rtol=0)


def test_config_round_trip(clips):
    enc = AudioEncoder(n_mels=32, deltas=True, max_seconds=0.5, crop="center", normalize=False, top_db=60)
    config = json.loads(json.dumps(enc.config()))
    again = AudioEncoder.from_config(config)
    assert again == enc and hash(again) == hash(enc)
    assert again.weights_id() == enc.weights_id()
    assert again != AudioEncoder()
    torch.testing.assert_close(again.encode([clips["a440_22050"]])[0], enc.encode([clips["a440_22050"]])[0])


@pytest.mark.parametrize("kwargs, words", [
    ({"crop": "middle"}, ["`crop`", "'start'", "'center'"]),
    ({"n_mels": 0}, ["`n_mels`", "positive"]),
    ({"max_seconds": -1}, ["`max_seconds`"]),
    ({"f_max": 9000}, ["`f_max`", "8000"]),
])
def test_bad_arguments_are_clear_errors(kwargs, words):
    with pytest.raises(ValueError) as info:
        AudioEncoder(**kwargs)
    for word in words:
        assert word in str(info.value)


def test_non_path_input_is_a_clear_error(enc):
    with pytest.raises(TypeError, match="input 1 is a int"):
        enc.encode([None, 3])


def test_works_through_the_feature_cache(enc, clips, tmp_path):
    paths = [clips["a440_16000"], None, clips["e1500_16000"], clips["a440_44100"], clips["nowhere"]]
    cache = FeatureCache(tmp_path / "cache")
    x1, m1 = cache.encode(enc, paths)
    assert cache.misses == 3
    x2, m2 = cache.encode(enc, paths)
    assert cache.misses == 3 and cache.hits == 3  # second call: 0 new misses
    torch.testing.assert_close(x1, x2)
    assert m1.tolist() == m2.tolist() == [True, False, True, True, False]
    with pytest.warns(AudioEncoderWarning, match="1 missing"):  # the cache masks missing files itself
        direct, _ = enc.encode(paths)
    torch.testing.assert_close(x1, direct)


def test_importing_the_modules_stays_light():
    code = ("import sys, ctxrec.modalities.audio, ctxrec.modalities.clap; "
            "heavy = [m for m in ('torchaudio', 'soundfile', 'transformers') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, timeout=120)


# -- ClapEncoder, on a tiny random-weight CLAP ----------------------------------------
@pytest.fixture(scope="module")
def tiny_clap_dir(tmp_path_factory) -> Path:
    """A random-weight ClapModel (projection 24) saved with a 48 kHz, 1-s feature extractor and a tokenizer."""
    transformers = pytest.importorskip("transformers", reason="ClapEncoder runs CLAP through transformers")
    pre_tokenizers = pytest.importorskip("tokenizers.pre_tokenizers", reason="the tiny tokenizer needs tokenizers")
    folder = tmp_path_factory.mktemp("tiny-clap")
    # byte-level BPE: RoBERTa's special tokens, the 256 byte symbols, a few merges
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[symbol] = len(vocab)
    merges = [("Ġ", "d"), ("o", "g"), ("Ġd", "og"), ("Ġ", "r"), ("a", "in"), ("i", "n"), ("Ġr", "ain")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab["<mask>"] = len(vocab)
    tokenizer = transformers.RobertaTokenizer(vocab=vocab, merges=merges, model_max_length=32)
    config = transformers.ClapConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 40},
        # spec_size / num_mel_bins = 4 (the freq ratio); 1 s at hop 480 = 101 frames <= 64 * 4;
        # grid 64 / patch 4 = 16, then 8 after one merge: both divisible by the window (4);
        # hidden_size = patch_embeds_hidden_size * 2 ** (stages - 1)
        audio_config={"spec_size": 64, "num_mel_bins": 16, "window_size": 4, "patch_size": 4,
                      "patch_stride": [4, 4], "depths": [1, 1], "num_attention_heads": [2, 2],
                      "patch_embeds_hidden_size": 16, "hidden_size": 32, "enable_fusion": False},
        projection_dim=24,
    )
    torch.manual_seed(0)
    transformers.ClapModel(config).save_pretrained(folder)
    transformers.ClapFeatureExtractor(feature_size=16, sampling_rate=48000, max_length_s=1,
                                      truncation="rand_trunc", padding="repeatpad").save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def clap(tiny_clap_dir) -> ClapEncoder:
    return ClapEncoder(str(tiny_clap_dir), device="cpu", batch_size=2)


def test_clap_declares_what_it_reads_and_writes(clap, tiny_clap_dir):
    resolved = str(tiny_clap_dir.resolve())
    assert (clap.name, clap.modality, clap.input_column) == ("clap", "audio", "audio_path")
    assert clap.space == f"clap:{resolved}"
    assert clap.output_dim == 24
    assert clap.weights_id().startswith(f"clap:{resolved}@sha256:")
    assert ClapEncoder(f"local-dir:{tiny_clap_dir}").space == clap.space
    again = ClapEncoder.from_config(json.loads(json.dumps(clap.config())))
    assert again == clap and again.weights_id() == clap.weights_id()
    assert "device" not in clap.cache_config() and "batch_size" not in clap.cache_config()


def test_clap_audio_shapes_masking_and_determinism(clap, clips):
    batch = [clips["a440_16000"], None, clips["nowhere"], clips["e1500_16000"], clips["a440_44100"],
             clips["stereo_same_22050"], clips["a440_then_e1500"]]  # the last is longer than max_length_s
    with pytest.warns(AudioEncoderWarning, match="1 missing"):
        x, mask = clap.encode(batch)
    assert x.shape == (7, 24) and x.dtype == torch.float32
    assert mask.tolist() == [True, False, False, True, True, True, True]
    assert (x[~mask] == 0).all()
    torch.testing.assert_close(x[mask].norm(dim=1), torch.ones(5))
    assert clap.reader.sample_rate == 48000
    with pytest.warns(AudioEncoderWarning):
        again, _ = clap.encode(batch)
    torch.testing.assert_close(again, x)  # no random crops


def test_clap_batch_equals_one_by_one(clap, clips):
    paths = [clips[n] for n in ("a440_16000", "e1500_16000", "a440_48000", "a440_then_e1500", "c262_16000")]
    batch, _ = clap.encode(paths)  # batch_size=2: three forward passes
    single = torch.cat([clap.encode([p])[0] for p in paths])
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=0)


def test_clap_text_lands_in_the_same_space(clap, clips):
    texts = ["a dog", None, "rain on a roof, recorded at night", "dog rain"]
    q, mask = clap.encode_text(texts)
    assert q.shape == (4, clap.output_dim) and mask.tolist() == [True, False, True, True]
    torch.testing.assert_close(q[mask].norm(dim=1), torch.ones(3))
    single = torch.cat([clap.encode_text([t])[0] for t in texts if t is not None])
    torch.testing.assert_close(q[mask], single, atol=1e-5, rtol=0)
    a, _ = clap.encode([clips["a440_16000"]])
    scores = q[mask] @ a.T  # text-to-audio cosine similarities
    assert scores.shape == (3, 1) and (scores.abs() <= 1 + 1e-5).all()


def test_clap_text_tower_shares_the_space(clap, tiny_clap_dir, clips):
    texts = ["a dog", None, "rain on a roof, recorded at night", ""]
    expected, expected_mask = clap.encode_text(texts)
    tower = clap.text_tower()
    assert isinstance(tower, ClapTextEncoder) and tower.clap_encoder is clap  # shares the loaded model
    assert clap.text_tower() is tower and clap.towers() == {"audio": clap, "text": tower}
    assert tower.towers()["audio"] is clap and tower.towers()["text"] is tower
    assert (tower.name, tower.modality, tower.input_column) == ("clap-text", "text", "description")
    assert tower.space == clap.space and tower.output_dim == clap.output_dim == 24 and not tower.reads_files
    assert tower.weights_id() == clap.weights_id() + "#text"
    t, mask = tower.encode(texts)
    assert t.shape == (4, 24) and t.dtype == torch.float32
    assert torch.equal(t, expected) and torch.equal(mask, expected_mask)
    assert mask.tolist() == [True, False, True, False] and (t[~mask] == 0).all()
    torch.testing.assert_close(t[mask].norm(dim=1), torch.ones(2))
    a, _ = clap.encode([clips["a440_16000"]])
    assert (t[mask] @ a.T).shape == (2, 1)  # text-to-audio scores
    # built from ClapEncoder's arguments, or by registry name: its own model, the same vectors
    for standalone in (ClapTextEncoder(**clap.config()),
                       get_encoder("clap-text", model=str(tiny_clap_dir), device="cpu", batch_size=2)):
        assert type(standalone) is ClapTextEncoder and standalone.name == "clap-text"
        assert standalone.space == clap.space and standalone.weights_id() == tower.weights_id()
        assert standalone.clap_encoder.text_tower() is standalone
        assert standalone.config() == clap.config() and standalone == tower
        torch.testing.assert_close(standalone.encode(texts)[0], expected)


def test_clap_missing_weights_fail_fast_with_a_fix(tmp_path):
    enc = ClapEncoder("nobody/no-such-clap-model", device="cpu")
    assert enc.space == "clap:nobody/no-such-clap-model"
    start = time.perf_counter()
    with pytest.raises(OSError, match="never downloads") as info:
        enc.encode([None])
    assert time.perf_counter() - start < 10
    assert "hf download nobody/no-such-clap-model --local-dir" in str(info.value)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        ClapEncoder(str(tmp_path / "no-such-folder"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OSError, match="lacks its feature extractor"):
        ClapEncoder(str(empty)).encode([None])
