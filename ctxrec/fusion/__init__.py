"""Fusion: per-modality item features -> one item representation, and alignment of
modalities into a shared space.

Strategies are resolved by name with :func:`get_fusion`: ``mean``, ``concat``, ``gated``,
``attention``.
"""
from ctxrec.fusion.align import Alignment, fit_alignment
from ctxrec.fusion.base import Fusion, Standardize, get_fusion, register_fusion
from ctxrec.fusion.attention import AttentionFusion
from ctxrec.fusion.concat import ConcatFusion
from ctxrec.fusion.gated import GatedFusion
from ctxrec.fusion.mean import MeanFusion

__all__ = [
    "Alignment",
    "AttentionFusion",
    "ConcatFusion",
    "Fusion",
    "GatedFusion",
    "MeanFusion",
    "Standardize",
    "fit_alignment",
    "get_fusion",
    "register_fusion",
]
