"""Modality encoders: the contract, the registry, the built-ins and the feature cache.

Everything imported here is light: heavy libraries (sentence-transformers, open_clip,
torchaudio) are imported when an encoder first loads its model.
"""
from ctxrec.modalities.base import Encoder, is_missing
from ctxrec.modalities.cache import FeatureCache, FeatureCacheWarning
from ctxrec.modalities.registry import (
    ENTRY_POINT_GROUP,
    EncoderRegistryWarning,
    get_encoder,
    list_encoders,
    register_encoder,
    space_family,
    space_members,
)
from ctxrec.modalities.text import DEFAULT_TEXT_MODEL, TextEncoder, default_text_model_path

__all__ = [
    "Encoder",
    "is_missing",
    "register_encoder",
    "get_encoder",
    "list_encoders",
    "space_family",
    "space_members",
    "ENTRY_POINT_GROUP",
    "EncoderRegistryWarning",
    "TextEncoder",
    "DEFAULT_TEXT_MODEL",
    "default_text_model_path",
    "FeatureCache",
    "FeatureCacheWarning",
]
