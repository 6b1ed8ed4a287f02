"""What every fusion strategy shares: per-modality standardisation and the call contract.

A fusion module maps ``{modality: [N, d_m] features}`` plus ``{modality: [N] bool presence}``
to ``{"fused": [N, out_dim]}``. Items that lack a modality still get a representation from
the ones they have; an item with none gets zeros. Strategies are looked up by name through
:func:`get_fusion`, so a model's config can say ``fusion="gated"``.
"""
from __future__ import annotations

from typing import Dict, Mapping, Type

import torch
from torch import Tensor, nn


class Standardize(nn.Module):
    """Per-dimension z-scoring of each modality, fitted over the rows present.

    Encoders such as log-mel statistics give vectors whose cosines all sit near 1;
    centring and scaling them over the catalogue lets a projection see what differs.
    Until :meth:`fit` is called it is the identity. The statistics are buffers, so they
    travel with ``state_dict``.
    """

    def __init__(self, dims: Mapping[str, int]) -> None:
        super().__init__()
        self.dims = dict(dims)
        for m, d in self.dims.items():
            self.register_buffer(f"mean_{m}", torch.zeros(d))
            self.register_buffer(f"std_{m}", torch.ones(d))

    @torch.no_grad()
    def fit(self, features: Mapping[str, Tensor], mask: Mapping[str, Tensor]) -> "Standardize":
        for m in self.dims:
            rows = features[m][mask[m].bool()]
            if rows.size(0) > 1:
                getattr(self, f"mean_{m}").copy_(rows.mean(0))
                getattr(self, f"std_{m}").copy_(rows.std(0).clamp(min=1e-6))
        return self

    def forward(self, modality: str, x: Tensor) -> Tensor:
        return (x - getattr(self, f"mean_{modality}")) / getattr(self, f"std_{modality}")


class Fusion(nn.Module):
    """Base class of fusion strategies.

    Subclasses implement :meth:`fuse` on standardised inputs; :meth:`forward` checks the
    inputs, standardises them and zeroes absent rows first, so no strategy can read a
    missing modality's (zero or garbage) vector.

    Args:
        dims: modality name -> input width.
        out_dim: output width.
    """

    def __init__(self, dims: Mapping[str, int], out_dim: int) -> None:
        super().__init__()
        if not dims:
            raise ValueError(f"{type(self).__name__} needs at least one modality in `dims`")
        bad = {m: d for m, d in dims.items() if not isinstance(d, int) or d < 1}
        if bad:
            raise ValueError(f"{type(self).__name__}: modality widths must be positive integers, got {bad}")
        if not isinstance(out_dim, int) or out_dim < 1:
            raise ValueError(f"{type(self).__name__}: `out_dim` must be a positive integer, got {out_dim!r}")
        self.dims = dict(dims)
        self.modalities = list(dims)
        self.out_dim = out_dim
        self.scale = Standardize(dims)

    def fit_scale(self, features: Mapping[str, Tensor], mask: Mapping[str, Tensor]) -> "Fusion":
        """Fit the per-modality standardisation (mean and std of each dimension) on the
        catalogue; returns ``self``.

        :class:`~ctxrec.training.models.ContextGNN` calls it in ``prepare`` with the vectors of
        every node of a type (``data[t].x_<m>``): for items, the whole catalogue's features,
        not only the train items' ones, so items held out as cold (``cold_items`` validation
        and test items) and items nobody interacted with count too. That is not leakage:
        features are inputs, not labels. They come from an item's content (text, image,
        audio), are known for every item at serving time, cold ones included, and say nothing
        about who interacts with what; no interaction, held out or not, enters the statistics.
        Fitting on the whole catalogue also standardises a cold item at evaluation as it will
        be standardised when served.

        Args:
            features (Mapping[str, Tensor]): modality -> ``[N, d_m]`` features of the nodes.
            mask (Mapping[str, Tensor]): modality -> ``[N]`` presence; only present rows count,
                and a modality with fewer than two present rows keeps the identity.

        Example:
            >>> fusion = get_fusion("mean", {"text": 8}, 16)
            >>> fusion = fusion.fit_scale({"text": torch.randn(5, 8)}, {"text": torch.ones(5, dtype=torch.bool)})
            >>> fusion({"text": torch.randn(2, 8)}, {"text": torch.ones(2, dtype=torch.bool)})["fused"].shape
            torch.Size([2, 16])
        """
        self.scale.fit(features, mask)
        return self

    def forward(self, features: Mapping[str, Tensor], mask: Mapping[str, Tensor]) -> Dict[str, Tensor]:
        xs, ps = {}, {}
        for m in self.modalities:
            if m not in features or m not in mask:
                raise KeyError(f"{type(self).__name__}: modality {m!r} missing from features/mask "
                               f"(got features {sorted(features)}, mask {sorted(mask)})")
            x, p = features[m], mask[m].bool()
            if x.dim() != 2 or x.size(1) != self.dims[m] or p.shape != x.shape[:1]:
                raise ValueError(f"{type(self).__name__}: modality {m!r} expects features [N, {self.dims[m]}] "
                                 f"and mask [N], got {tuple(x.shape)} and {tuple(p.shape)}")
            ps[m] = p.to(x.dtype).unsqueeze(1)
            # where, not multiply: an absent row may hold NaN/inf (export keeps such
            # vectors and masks them), and 0 * NaN is NaN
            xs[m] = torch.where(p.unsqueeze(1), self.scale(m, x), torch.zeros_like(x))
        return self.fuse(xs, ps)

    def fuse(self, xs: Dict[str, Tensor], ps: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Fuse standardised ``xs`` (absent rows zeroed) given presence ``ps`` ([N, 1] floats).

        Returns ``{"fused": [N, out_dim]}`` and optionally extra entries (e.g. ``"weights"``).
        """
        raise NotImplementedError


_FUSIONS: Dict[str, Type[Fusion]] = {}


def register_fusion(name: str, cls: Type[Fusion]) -> Type[Fusion]:
    """Make ``cls`` available to :func:`get_fusion` as ``name``."""
    if not (isinstance(cls, type) and issubclass(cls, Fusion)):
        raise TypeError(f"fusion {name!r} must be a Fusion subclass, got {cls!r}")
    _FUSIONS[name] = cls
    return cls


def get_fusion(name: str, dims: Mapping[str, int], out_dim: int, **kwargs) -> Fusion:
    """Build the fusion strategy registered as ``name`` (``mean``, ``concat``, ``gated``, ``attention``)."""
    import ctxrec.fusion  # noqa: F401  (registers the built-ins)

    if name not in _FUSIONS:
        raise ValueError(f"Unknown fusion {name!r}; choose one of: {', '.join(sorted(_FUSIONS))}")
    return _FUSIONS[name](dims, out_dim, **kwargs)
