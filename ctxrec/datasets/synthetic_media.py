"""How the synthetic world shows its items: text, cover image and sound.

Each rendering reveals some of an item's latent attributes, so that a modality
encoder can recover them (and a multimodal recommender can use them for items
nobody has interacted with yet):

- **text**: the description names category, mood, tempo, colour and shape through
  varied templates and synonyms, e.g. ``"An upbeat rock anthem with a fast beat;
  its cover shows a red star."``
- **image**: the fill colour (and a pale tint of it as background) is the
  ``colour`` attribute; the drawn shape is the ``shape`` attribute.
- **audio**: a tone whose pitch is set by category and mood (upbeat is a fifth
  higher and brighter) and whose amplitude-modulation rate is set by tempo.

Every renderer takes its own ``numpy.random.Generator`` so a world renders the
same bytes whatever order its items are written in.
"""
from __future__ import annotations

import math
from typing import Dict, Tuple

import numpy as np
import pandas as pd

__all__ = [
    "CATEGORIES",
    "COLOURS",
    "SHAPES",
    "MOODS",
    "TEMPOS",
    "CATEGORY_PITCH_HZ",
    "TEMPO_AM_HZ",
    "item_name",
    "describe_item",
    "sample_items",
    "render_image",
    "render_audio",
]

#: item categories, media-like
CATEGORIES = ("jazz", "rock", "ambient", "news", "comedy", "drama", "sport", "kids")
#: colour attribute -> RGB of the cover's shape
COLOURS: Dict[str, Tuple[int, int, int]] = {
    "red": (214, 40, 40),
    "orange": (247, 127, 0),
    "yellow": (240, 200, 20),
    "green": (46, 160, 67),
    "teal": (0, 150, 150),
    "blue": (30, 90, 220),
    "purple": (120, 60, 180),
    "pink": (230, 100, 170),
}
SHAPES = ("circle", "square", "triangle", "star", "diamond", "hexagon")
MOODS = ("calm", "upbeat")
TEMPOS = ("slow", "medium", "fast")

#: base pitch of a calm item per category; upbeat items sound a fifth (x1.5) higher
CATEGORY_PITCH_HZ: Dict[str, float] = {
    "jazz": 196.0, "rock": 220.0, "ambient": 247.0, "news": 277.0,
    "comedy": 311.0, "drama": 349.0, "sport": 392.0, "kids": 440.0,
}
#: amplitude-modulation (pulse) rate per tempo
TEMPO_AM_HZ: Dict[str, float] = {"slow": 2.0, "medium": 5.0, "fast": 10.0}

# category -> (adjective used in text, nouns for one item)
_CATEGORY_WORDS = {
    "jazz": ("jazz", ("tune", "session", "number", "standard")),
    "rock": ("rock", ("song", "anthem", "track", "riff")),
    "ambient": ("ambient", ("soundscape", "piece", "drone", "track")),
    "news": ("news", ("bulletin", "report", "briefing", "roundup")),
    "comedy": ("comedy", ("sketch", "skit", "stand-up set", "sitcom clip")),
    "drama": ("drama", ("episode", "scene", "radio play", "serial")),
    "sport": ("sports", ("highlight reel", "match recap", "commentary", "preview")),
    "kids": ("kids'", ("story", "sing-along", "cartoon", "show")),
}
_MOOD_WORDS = {
    "calm": ("calm", "relaxed", "mellow", "soothing", "gentle", "laid-back"),
    "upbeat": ("upbeat", "lively", "energetic", "cheerful", "bouncy", "peppy"),
}
_TEMPO_WORDS = {
    "slow": ("slow", "unhurried", "leisurely", "languid"),
    "medium": ("steady", "moderate", "mid-tempo", "even"),
    "fast": ("fast", "quick", "brisk", "rapid"),
}
_TEMPLATES = (
    "{A_mood} {cat} {noun} with {a_tempo} beat; its cover shows {a_colour} {shape}.",
    "{Mood} and {tempo}: {a_cat} {noun} whose artwork is {a_colour} {shape}.",
    "{A_colour} {shape} marks this {mood} {cat} {noun}, played at {a_tempo} pace.",
    "{Cat} {noun}, {mood} in feel and {tempo} in tempo. Cover: {a_colour} {shape} on a pale background.",
    "This {tempo} {cat} {noun} has {a_mood} mood. Look for the {colour} {shape} on its cover.",
    "{A_cat} {noun} to enjoy: {mood}, {tempo}, pictured as {a_colour} {shape}.",
)
# P(calm | category) and P(tempo | mood): category, mood and tempo are related, not identical;
# colour leans to the category's colour and shape to the mood's shapes, so covers carry signal
_P_CALM = {"jazz": 0.6, "rock": 0.25, "ambient": 0.85, "news": 0.4, "comedy": 0.3, "drama": 0.6, "sport": 0.2,
           "kids": 0.45}
_P_TEMPO = {"calm": (0.55, 0.35, 0.10), "upbeat": (0.10, 0.35, 0.55)}
_CATEGORY_COLOUR = {"jazz": "blue", "rock": "red", "ambient": "green", "news": "teal", "comedy": "yellow",
                    "drama": "purple", "sport": "orange", "kids": "pink"}
_MOOD_SHAPES = {"calm": ("circle", "square", "hexagon"), "upbeat": ("triangle", "star", "diamond")}
_CATEGORY_PRICE = {"jazz": 1.99, "rock": 1.49, "ambient": 0.99, "news": 0.49, "comedy": 2.99, "drama": 3.99,
                   "sport": 2.49, "kids": 1.99}
_QUALITY_NOTES = {
    "high": (" A listener favourite.", " Widely loved.", " Often recommended."),
    "low": (" A niche pick.", " Little known.", ""),
}


def _a(word: str) -> str:
    return ("an " if word[0].lower() in "aeiou" else "a ") + word


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def item_name(colour: str, shape: str, category: str, number: int) -> str:
    """Display name of an item: ``("red", "star", "rock", 12)`` -> ``"Red Star Rock #12"``."""
    return f"{colour.capitalize()} {shape.capitalize()} {category.capitalize()} #{number}"


def describe_item(rng: np.random.Generator, category: str, mood: str, tempo: str, colour: str, shape: str,
                  quality: float) -> str:
    """A one- or two-sentence description that reveals the item's attributes.

    Args:
        rng: picks template and synonyms.
        category: one of :data:`CATEGORIES`.
        mood: one of :data:`MOODS`.
        tempo: one of :data:`TEMPOS`.
        colour: one of :data:`COLOURS`.
        shape: one of :data:`SHAPES`.
        quality: latent popularity; clearly high or low values add a hint.

    Example:
        >>> describe_item(np.random.default_rng(0), "rock", "upbeat", "fast", "red", "star", 0.0)  # doctest: +SKIP
        'An upbeat rock anthem with a fast beat; its cover shows a red star.'
    """
    cat, nouns = _CATEGORY_WORDS[category]
    mood_w = _MOOD_WORDS[mood][rng.integers(len(_MOOD_WORDS[mood]))]
    tempo_w = _TEMPO_WORDS[tempo][rng.integers(len(_TEMPO_WORDS[tempo]))]
    noun = nouns[rng.integers(len(nouns))]
    template = _TEMPLATES[rng.integers(len(_TEMPLATES))]
    text = template.format(
        A_mood=_cap(_a(mood_w)), a_mood=_a(mood_w), Mood=_cap(mood_w), mood=mood_w, tempo=tempo_w, a_tempo=_a(tempo_w), cat=cat, Cat=_cap(cat),
        A_cat=_cap(_a(cat)), a_cat=_a(cat), noun=noun, colour=colour, a_colour=_a(colour), A_colour=_cap(_a(colour)), shape=shape,
    )
    if quality > 1.0 or quality < -1.0:
        notes = _QUALITY_NOTES["high" if quality > 0 else "low"]
        text += notes[rng.integers(len(notes))]
    return text


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list:
    """Corners of ``shape`` with circumradius ``r`` around (cx, cy), turned by ``angle``."""
    if shape == "star":
        corners = [(r if k % 2 == 0 else 0.45 * r, -math.pi / 2 + k * math.pi / 5) for k in range(10)]
    else:
        sides, start = {"square": (4, math.pi / 4), "triangle": (3, -math.pi / 2),
                        "diamond": (4, 0.0), "hexagon": (6, 0.0)}[shape]
        corners = [(r, start + k * 2 * math.pi / sides) for k in range(sides)]
    squeeze = 0.6 if shape == "diamond" else 1.0  # a narrow rhombus, never a turned square
    points = [(squeeze * rr * math.cos(a), rr * math.sin(a)) for rr, a in corners]
    cos, sin = math.cos(angle), math.sin(angle)
    return [(cx + x * cos - y * sin, cy + x * sin + y * cos) for x, y in points]


def render_image(rng: np.random.Generator, colour: str, shape: str, size: int = 64):
    """Cover image: a ``colour`` ``shape`` on a pale tint of the same colour.

    Position, size, rotation (within +-10 degrees, so a square never turns into a
    diamond) and the exact shade jitter a little per item.

    Args:
        rng: per-item generator for the jitter.
        colour: one of :data:`COLOURS`.
        shape: one of :data:`SHAPES`.
        size: width and height in pixels (default: 64).

    Returns:
        PIL.Image.Image: RGB image of ``size`` x ``size``.
    """
    from PIL import Image, ImageDraw

    if size < 8:
        raise ValueError(f"image_size must be >= 8 pixels, got {size}")
    scale = 2  # draw at twice the size and downsample: cheap anti-aliasing
    s = size * scale
    base = np.array(COLOURS[colour], dtype=float)
    fill = np.clip(base + rng.integers(-15, 16, size=3), 0, 255)
    background = 0.25 * fill + 0.75 * 255.0
    img = Image.new("RGB", (s, s), tuple(int(v) for v in background))
    draw = ImageDraw.Draw(img)
    r = s * rng.uniform(0.28, 0.38)
    cx, cy = s / 2 + s * rng.uniform(-0.08, 0.08), s / 2 + s * rng.uniform(-0.08, 0.08)
    angle = math.radians(rng.uniform(-10.0, 10.0))
    fill_t = tuple(int(v) for v in fill)
    outline = tuple(int(v) for v in 0.5 * fill)
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill_t, outline=outline, width=scale)
    else:
        draw.polygon(_polygon(shape, cx, cy, r, angle), fill=fill_t, outline=outline, width=scale)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def render_audio(rng: np.random.Generator, category: str, mood: str, tempo: str, seconds: float = 0.5,
                 sample_rate: int = 16000) -> np.ndarray:
    """Sound of an item: a pulsing tone.

    The carrier is :data:`CATEGORY_PITCH_HZ` of the category, x1.5 for upbeat items,
    which also get a brighter timbre (2nd and 3rd harmonics); the amplitude
    pulses at :data:`TEMPO_AM_HZ` of the tempo:
    :math:`x(t) = (0.6 + 0.4 \\sin 2\\pi f_{am} t) \\sum_h a_h \\sin 2\\pi h f_0 t`.

    Args:
        rng: per-item generator (slight detune, phase, a little noise).
        category: one of :data:`CATEGORIES`.
        mood: one of :data:`MOODS`.
        tempo: one of :data:`TEMPOS`.
        seconds: duration (default: 0.5).
        sample_rate: samples per second (default: 16000).

    Returns:
        np.ndarray: int16 mono samples, shape ``[round(seconds * sample_rate)]``.
    """
    n = int(round(seconds * sample_rate))
    if n < 1:
        raise ValueError(f"audio_seconds * sample_rate must give >= 1 sample, got {seconds} s at {sample_rate} Hz")
    t = np.arange(n) / sample_rate
    f0 = CATEGORY_PITCH_HZ[category] * (1.5 if mood == "upbeat" else 1.0) * rng.uniform(0.985, 1.015)
    harmonics = (1.0, 0.35, 0.2) if mood == "upbeat" else (1.0, 0.05, 0.0)
    phase = rng.uniform(0, 2 * np.pi)
    tone = sum(a * np.sin(2 * np.pi * (h + 1) * f0 * t + phase) for h, a in enumerate(harmonics))
    tone = tone / sum(harmonics)
    am = 0.6 + 0.4 * np.sin(2 * np.pi * TEMPO_AM_HZ[tempo] * t - np.pi / 2)
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)  # 10 ms fades avoid clicks
    x = 0.6 * tone * am * fade + 0.005 * rng.standard_normal(n)
    return np.round(np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)


def sample_items(rng: np.random.Generator, n_items: int) -> pd.DataFrame:
    """Draw the item table: ids, latent attributes, price, name and description.

    Categories are balanced; mood depends on category, tempo on mood, colour leans
    to the category's colour (p=0.5) and shape to the mood's shapes (p=0.8);
    ``quality`` ~ N(0, 1) is the popularity bias.

    Args:
        rng: the items' generator.
        n_items: number of items; ids run ``i0001``.. (zero-padded to a fixed width).

    Returns:
        pd.DataFrame: ``item_id, name, description, category, colour, shape, mood, tempo,
        quality, price``.
    """
    width = max(4, len(str(n_items)))
    cats = np.array(CATEGORIES)[rng.permutation(np.arange(n_items) % len(CATEGORIES))]
    calm = rng.random(n_items) < np.array([_P_CALM[c] for c in cats])
    moods = np.where(calm, "calm", "upbeat")
    u = rng.random(n_items)
    tempos = np.array([TEMPOS[int(np.searchsorted(np.cumsum(_P_TEMPO[m])[:-1], x, side="right"))]
                       for m, x in zip(moods, u)])
    colours = np.where(rng.random(n_items) < 0.5, [_CATEGORY_COLOUR[c] for c in cats],
                       np.array(list(COLOURS))[rng.integers(len(COLOURS), size=n_items)])
    own = rng.random(n_items) < 0.8
    pick = rng.integers(3, size=n_items)
    shapes = np.array([_MOOD_SHAPES[m if o else ("upbeat" if m == "calm" else "calm")][k]
                       for m, o, k in zip(moods, own, pick)])
    quality = rng.standard_normal(n_items)
    price = np.round(np.array([_CATEGORY_PRICE[c] for c in cats]) * np.exp(0.15 * quality
                     + rng.normal(0.0, 0.2, size=n_items)), 2)
    rows = range(n_items)
    return pd.DataFrame({
        "item_id": [f"i{k + 1:0{width}d}" for k in rows],
        "name": [item_name(colours[k], shapes[k], cats[k], k + 1) for k in rows],
        "description": [describe_item(rng, cats[k], moods[k], tempos[k], colours[k], shapes[k], quality[k])
                        for k in rows],
        "category": cats, "colour": colours, "shape": shapes, "mood": moods, "tempo": tempos,
        "quality": quality, "price": price,
    })
