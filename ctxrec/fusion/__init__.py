"""Fusion: per-modality item features -> one item representation."""
from ctxrec.fusion.mean import MeanFusion

__all__ = ["MeanFusion"]
