"""Data sets: a synthetic multimodal world with known right answers, and a MovieLens-100K loader."""
from ctxrec.datasets.movielens import MovieLens, MovieLensWarning, load_movielens
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
    "MovieLens",
    "MovieLensWarning",
    "load_movielens",
]
