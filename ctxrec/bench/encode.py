"""``ctxrec bench encode``: items/s of each built-in encoder on this machine against the
raw library call on the same inputs in the same run, and the process's peak memory.

Raw calls, which read and preprocess the same inputs the same way:

- text: ``SentenceTransformer.encode(texts, batch_size, normalize_embeddings=True)``;
- image: PIL open + open_clip's eval transform + ``model.encode_image`` per batch;
- imagenet (EfficientNet-Lite0, ImageNet weights from the installed package): PIL open +
  torchvision's ``Resize``/``CenterCrop``/``ToTensor``/``Normalize`` + the network's
  ``extract_features`` averaged over space, per batch;
- audio: ``soundfile.read`` + torchaudio ``MelSpectrogram`` + ``AmplitudeToDB`` + mean/std.

Each side runs ``repeats`` times, alternating, after one warm-up; medians are reported and
``overhead = raw_items_per_s / items_per_s`` (1.0 = no overhead).
"""
from __future__ import annotations

import resource
import tempfile
import time
from dataclasses import replace
from typing import Callable, Dict, List

import torch

from ctxrec.bench.report import hash_files, median, table, write_report


def _rate(fn: Callable[[], object], n: int) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _raw_text(enc, texts, batch_size):
    return lambda: enc.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                    convert_to_tensor=True, show_progress_bar=False)


def _raw_image(enc, paths, batch_size):
    from PIL import Image

    def run():
        with torch.inference_mode():
            for lo in range(0, len(paths), batch_size):
                batch = torch.stack([enc.preprocess(Image.open(p).convert("RGB")) for p in paths[lo:lo + batch_size]])
                torch.nn.functional.normalize(enc.model.encode_image(batch), dim=-1)
    return run


def _raw_imagenet(enc, paths, batch_size):
    """What an EfficientNet-Lite user writes: torchvision's eval transform, ``extract_features``, mean-pool."""
    from PIL import Image
    from torchvision import transforms

    interpolation = transforms.InterpolationMode[enc.image_interpolation.upper()]
    # crop="whole" on the benchmark's square images is a plain resize to image_size; "center" is
    # the ImageNet evaluation crop
    resize, side = (enc.image_size, enc.image_size) if enc.crop == "whole" else (enc.resize_size, enc.image_size)
    transform = transforms.Compose([transforms.Resize(resize, interpolation=interpolation),
                                    transforms.CenterCrop(side), transforms.ToTensor(),
                                    transforms.Normalize(enc.image_mean, enc.image_std)])
    net = enc.model.net  # the library's module, without ctxrec's wrapper

    def run():
        with torch.inference_mode():
            for lo in range(0, len(paths), batch_size):
                batch = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths[lo:lo + batch_size]])
                torch.nn.functional.normalize(net.extract_features(batch.to(enc.device)).mean((2, 3)), dim=-1)
    return run


def _raw_audio(enc, paths):
    import soundfile as sf
    import torchaudio

    mel = torchaudio.transforms.MelSpectrogram(sample_rate=enc.sample_rate, n_fft=enc.n_fft,
                                               hop_length=enc.hop_length, n_mels=enc.n_mels)
    to_db = torchaudio.transforms.AmplitudeToDB(top_db=enc.top_db)

    def run():
        for p in paths:
            wave, _ = sf.read(p, dtype="float32", always_2d=True)
            spec = to_db(mel(torch.from_numpy(wave.mean(1))))
            torch.cat([spec.mean(-1), spec.std(-1)])
    return run


def run(size: str = "small", repeats: int = 3, images: int = 64, out_dir: str = "benchmarks") -> Dict[str, object]:
    """Benchmark text, image (ViT-B-32, random weights), imagenet (EfficientNet-Lite0, ImageNet
    weights) and audio encoders; write encode.json."""
    from ctxrec.datasets.synthetic import SIZES, generate_world
    from ctxrec.modalities.registry import get_encoder

    figures: Dict[str, Dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        world = generate_world(replace(SIZES[size], image_size=224))
        files = world.write(tmp)
        import pandas as pd

        items = pd.read_csv(files["items"])
        texts = (items["name"] + ": " + items["description"]).tolist()
        img_paths = [f"{tmp}/{p}" for p in items["image_path"].head(images)]
        wav_paths = [f"{tmp}/{p}" for p in items["audio_path"]]
        data = {"hash": hash_files([files["items"], *img_paths, *wav_paths], root=tmp),
                "source": f"synthetic world {size!r} (ctxrec.datasets.SIZES) at 224 px: items.csv, "
                          f"the first {images} images, every audio file"}
        cases = {
            "text": (get_encoder("text"), texts, lambda e: _raw_text(e, texts, 64)),
            "image": (get_encoder("image", weights="random"), img_paths, lambda e: _raw_image(e, img_paths, 32)),
            "imagenet": (get_encoder("imagenet"), img_paths, lambda e: _raw_imagenet(e, img_paths, 32)),
            "audio": (get_encoder("audio"), wav_paths, lambda e: _raw_audio(e, wav_paths)),
        }
        rows: List[Dict[str, object]] = []
        for name, (enc, inputs, make_raw) in cases.items():
            bs = 64 if name == "text" else 32
            ours = lambda enc=enc, inputs=inputs, bs=bs: enc.encode_all(inputs, batch_size=bs)  # noqa: E731
            raw = make_raw(enc)
            ours()  # warm-up: model load, caches
            raw()
            mine, theirs = [], []
            for _ in range(repeats):
                mine.append(_rate(ours, len(inputs)))
                theirs.append(_rate(raw, len(inputs)))
            f = {"items": len(inputs), "items_per_s": median(mine), "raw_items_per_s": median(theirs),
                 "peak_rss_mb": _peak_rss_mb()}
            f["overhead"] = f["raw_items_per_s"] / f["items_per_s"]
            figures[name] = f
            rows.append({"encoder": name, **f})
    print(table(rows, ["encoder", "items", "items_per_s", "raw_items_per_s", "overhead", "peak_rss_mb"]))
    figures["_setup"] = {"size": size, "repeats": repeats, "images": images, "threads": torch.get_num_threads(),
                         "note": "image: ViT-B-32 with random weights at 224 px; imagenet: EfficientNet-Lite0 with "
                                 "its ImageNet weights, whole image (crop='whole': these square images resized to 224 px), on the same images; peak_rss_mb is the "
                                 "process's peak so far (cumulative over encoders, in this order)"}
    path = write_report("encode", figures, out_dir,
                        command=f"ctxrec bench encode --size {size} --repeats {repeats} --images {images}",
                        data=data)
    print(f"\nwritten to {path}")
    return figures
