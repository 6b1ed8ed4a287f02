"""A tiny third-party modality: an item's price as features (log price and price bands).

It knows nothing of ctxrec's internals; it only implements the Encoder contract and is
found through the ``ctxrec.encoders`` entry point declared in its pyproject.toml.
"""
import hashlib
import json
import math

import torch

from ctxrec.modalities.base import Encoder, is_missing

BANDS = (5.0, 10.0, 20.0, 50.0)


class PriceEncoder(Encoder):
    """``price`` -> [log1p(price), one-hot price band] (5 + 1 dims)."""

    name = "tabular"
    modality = "tabular"
    input_column = "price"
    space = "price-bands"

    def __init__(self, batch_size: int = 256) -> None:
        self.batch_size = batch_size

    @property
    def output_dim(self) -> int:
        return len(BANDS) + 2

    def config(self) -> dict:
        return {"bands": list(BANDS), "batch_size": self.batch_size}

    def weights_id(self) -> str:
        return "price-bands:" + hashlib.sha256(json.dumps(list(BANDS)).encode()).hexdigest()[:12]

    def encode(self, batch):
        out = torch.zeros(len(batch), self.output_dim)
        mask = torch.zeros(len(batch), dtype=torch.bool)
        for i, value in enumerate(batch):
            try:
                price = float(value)
            except (TypeError, ValueError):
                continue
            if is_missing(value) or not math.isfinite(price) or price < 0:
                continue
            out[i, 0] = math.log1p(price)
            out[i, 1 + sum(price >= b for b in BANDS)] = 1.0
            mask[i] = True
        return out, mask
