"""Data sets: a synthetic multimodal world with known right answers."""
from ctxrec.datasets.synthetic import (
    ACTIONS,
    DAYPART_MOOD,
    PLACE_BOOST,
    PLACE_NAMES,
    QUALITY_WEIGHT,
    SIZES,
    WEEKEND_TEMPO,
    World,
    WorldConfig,
    generate_world,
)
from ctxrec.datasets.synthetic_media import CATEGORIES, COLOURS, MOODS, SHAPES, TEMPOS

__all__ = [
    "World",
    "WorldConfig",
    "SIZES",
    "generate_world",
    "ACTIONS",
    "CATEGORIES",
    "COLOURS",
    "SHAPES",
    "MOODS",
    "TEMPOS",
    "PLACE_NAMES",
    "DAYPART_MOOD",
    "WEEKEND_TEMPO",
    "PLACE_BOOST",
    "QUALITY_WEIGHT",
]
