"""Privacy: keyed pseudonyms for user ids at ingestion, and the Gaussian mechanism for
exported user embeddings.

**Pseudonyms.** :class:`Pseudonymizer` maps a raw user id to ``"p_" + HMAC-SHA256(key,
"ctxrec-user\\0" + id)`` truncated to ``hex_chars`` hex digits (default 16, i.e. 64 bits).
The same key gives the same pseudonym in every run, so appends and serving work; without
the key a pseudonym cannot be reversed or recomputed. :func:`~ctxrec.graph.build.build_graph`
applies it (``BuildConfig(pseudonymize=...)``) to the ``user_id`` columns of the
interactions and context tables and to the row's own user id inside the free-text columns
``session_id``, ``location`` and ``shopping_cart`` (as a whole token), after validation
and before anything is derived or written; session ids (``"<user>#<session_id>"``), the
store, bundles, networkx/DGL exports and the reject file then hold only pseudonyms. The key
itself is never written anywhere by ctxrec.

Collision bound (birthday): ``n`` distinct ids collide with probability at most
``n (n - 1) / 2 / 16**hex_chars`` (1e6 users, 16 hex chars: 2.7e-8); ingestion checks the
ids it sees and raises on a collision (raise ``hex_chars``).

**Gaussian mechanism.** :class:`GaussianMechanism` clips each user vector to L2 norm ``C``
and adds ``N(0, sigma^2 I)``. Neighbouring releases differ in one user's vector, replaced by
any other vector of norm <= C, so the L2 sensitivity is ``2C``. ``"classic"`` calibration
(Dwork & Roth 2014, Theorem A.1): ``sigma = 2C * sqrt(2 ln(1.25 / delta)) / epsilon``, proven
for ``epsilon < 1`` only; ``"analytic"`` (Balle & Wang 2018, https://arxiv.org/abs/1805.06530)
finds the smallest sigma that is exactly (epsilon, delta)-DP for any ``epsilon > 0``.

Example:
    >>> p = Pseudonymizer(b"0123456789abcdef0123456789abcdef")
    >>> p.user("u0001")                                       # 'p_' + 16 hex digits  # doctest: +SKIP
    >>> mech = GaussianMechanism(0.5, 1e-5, clip=1.0, seed=0)
    >>> noisy = mech.apply(np.ones((4, 8), np.float32))      # [4, 8], rows clipped to norm 1, then noised
"""
from __future__ import annotations

import hashlib
import hmac
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

PREFIX = "p_"
#: environment variable the CLI reads the key from (library code never reads it)
KEY_ENV = "CTXREC_PSEUDONYM_KEY"
MIN_KEY_BYTES = 16
#: columns holding the user id itself, and free-text columns where a copy of it is replaced
USER_COLUMNS = ("user_id",)
FREE_TEXT_COLUMNS = ("session_id", "location", "shopping_cart")
WITHHELD = "[withheld: pseudonymisation is on; see this row in the source file]"
MECHANISMS = ("classic", "analytic")


class PrivacyWarning(UserWarning):
    """A privacy setting whose guarantee is weaker than it may look."""


class Pseudonymizer:
    """Keyed, deterministic pseudonyms for user ids (HMAC-SHA256, truncated).

    Args:
        key (bytes): the secret, at least 16 bytes (e.g. ``secrets.token_bytes(32)``).
        hex_chars (int): hex digits kept, 8..64 (default: 16, 64 bits).

    Example:
        >>> p = Pseudonymizer.from_file("/secrets/ctxrec.key")      # doctest: +SKIP
        >>> model.recommend_ids(p.user("u0001"), k=10)              # doctest: +SKIP
    """

    def __init__(self, key: bytes, hex_chars: int = 16) -> None:
        if isinstance(key, str):
            key = key.encode("utf-8")
        if not isinstance(key, (bytes, bytearray)) or len(key) < MIN_KEY_BYTES:
            found = f"{len(key)} bytes" if isinstance(key, (bytes, bytearray)) else type(key).__name__
            raise ValueError(f"pseudonym key: expected at least {MIN_KEY_BYTES} bytes, found {found}; make one with "
                             "python -c 'import secrets; print(secrets.token_hex(32))' > KEYFILE")
        if not 8 <= int(hex_chars) <= 64:
            raise ValueError(f"hex_chars must be between 8 and 64, got {hex_chars}")
        self._key = bytes(key)
        self.hex_chars = int(hex_chars)

    @classmethod
    def from_file(cls, path: str | Path, hex_chars: int = 16, data_dirs: Iterable[str | Path] = ()) -> "Pseudonymizer":
        """Read the key from ``path`` (raw bytes; a trailing newline is dropped).

        Args:
            path: the key file.
            hex_chars: see the class (default: 16).
            data_dirs: folders the key must not lie in (the store, the export) (default: none).
        """
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"pseudonym key file {path}: not found; pass an existing file with at least "
                             f"{MIN_KEY_BYTES} bytes of secret")
        for d in data_dirs:
            if path.resolve().is_relative_to(Path(d).resolve()):
                raise ValueError(f"pseudonym key file {path} lies inside the data folder {d}; keep the key away "
                                 "from the data it protects (move it elsewhere)")
        return cls(path.read_bytes().rstrip(b"\r\n"), hex_chars)

    def __repr__(self) -> str:  # never the key
        return f"Pseudonymizer(hex_chars={self.hex_chars})"

    def user(self, raw: object) -> str:
        """The pseudonym of one raw user id (what to pass to ``recommend_ids`` at request time)."""
        mac = hmac.new(self._key, b"ctxrec-user\0" + str(raw).encode("utf-8", "surrogatepass"), hashlib.sha256)
        return PREFIX + mac.hexdigest()[:self.hex_chars]

    def collision_bound(self, n: int) -> float:
        """Upper bound on the probability that ``n`` distinct ids share a pseudonym."""
        return min(1.0, n * (n - 1) / 2 / 16.0 ** self.hex_chars)

    def frame(self, frame, text_columns: Sequence[str] = FREE_TEXT_COLUMNS):
        """``frame`` with ``user_id`` pseudonymised and the row's own raw id replaced in
        ``text_columns`` (as a whole token, so ``"u0001#web-1"`` -> ``"p_...#web-1"``).

        Raises:
            ValueError: two distinct ids got one pseudonym (raise ``hex_chars``).
        """
        from ctxrec.graph.readers import map_unique

        raw = frame["user_id"]
        out = frame.assign(user_id=map_unique(raw, lambda v: None if v is None else self.user(v)))
        uniq = raw.dropna().unique()
        if len(set(out["user_id"].dropna())) != len(uniq):
            raise ValueError(f"pseudonym collision among {len(uniq)} user ids at hex_chars={self.hex_chars}; "
                             "raise hex_chars (the same value for every run of this data)")
        for c in text_columns:
            if c in frame:
                out[c] = [_replace_token(t, u, p) for t, u, p in zip(frame[c], raw, out["user_id"])]
        return out

    def reject_value(self, column: str, value: object) -> object:
        """What a reject-file entry shows for a raw ``value``: the pseudonym for a user id,
        nothing for free text or a whole raw line (``column == "*"``), else the value."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return value
        if column in USER_COLUMNS:
            return self.user(value) if str(value).strip() else ""
        if column in FREE_TEXT_COLUMNS or column == "*":
            return WITHHELD
        return value


def _replace_token(text, raw, pseudonym):
    if text is None or raw is None or not isinstance(text, str) or raw not in text:
        return text
    return re.sub(rf"(?<![0-9A-Za-z]){re.escape(raw)}(?![0-9A-Za-z])", pseudonym, text)


@dataclass(frozen=True)
class GaussianMechanism:
    """Clip each row to L2 norm ``clip`` and add ``N(0, sigma^2 I)``: (epsilon, delta)-DP per row.

    Args:
        epsilon (float): privacy loss, > 0 (``"classic"`` is proven for < 1 only).
        delta (float): failure probability, in (0, 1); keep it below 1 / number of users.
        clip (float): L2 norm C each vector is clipped to (default: 1.0).
        mechanism (str): ``"classic"`` or ``"analytic"`` calibration (default: "classic").
        seed (int, optional): noise seed (default: fresh randomness).

    Neighbouring: one user's vector replaced by any other of norm <= C, so sensitivity 2C.
    """

    epsilon: float
    delta: float
    clip: float = 1.0
    mechanism: str = "classic"
    seed: Optional[int] = None

    def __post_init__(self) -> None:
        if not (isinstance(self.epsilon, (int, float)) and math.isfinite(self.epsilon) and self.epsilon > 0):
            raise ValueError(f"dp epsilon must be a finite number > 0, got {self.epsilon!r}; e.g. dp=(0.5, 1e-5)")
        if not (isinstance(self.delta, (int, float)) and 0 < self.delta < 1):
            raise ValueError(f"dp delta must be in (0, 1), got {self.delta!r}; use less than 1/number of users, "
                             "e.g. 1e-5")
        if not (isinstance(self.clip, (int, float)) and math.isfinite(self.clip) and self.clip > 0):
            raise ValueError(f"dp clip norm must be a finite number > 0, got {self.clip!r}")
        if self.mechanism not in MECHANISMS:
            raise ValueError(f"dp mechanism {self.mechanism!r} is not one of {list(MECHANISMS)}")

    @property
    def sensitivity(self) -> float:
        return 2.0 * self.clip

    @property
    def calibration_proven(self) -> bool:
        return self.mechanism == "analytic" or self.epsilon < 1

    @property
    def sigma(self) -> float:
        """Noise standard deviation per coordinate."""
        if self.mechanism == "classic":
            return self.sensitivity * math.sqrt(2 * math.log(1.25 / self.delta)) / self.epsilon
        return analytic_sigma(self.epsilon, self.delta, self.sensitivity)

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """Clipped and noised ``[N, d]`` float32 copy of ``vectors``."""
        if not self.calibration_proven:
            warnings.warn(f"the classic Gaussian mechanism is proven for epsilon < 1 only (got {self.epsilon}); "
                          "use mechanism='analytic' for a calibration valid at any epsilon", PrivacyWarning,
                          stacklevel=2)
        x = np.asarray(vectors, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"vectors must be [N, d], got shape {x.shape}")
        if len(x) and self.delta >= 1.0 / len(x):
            warnings.warn(f"dp delta {self.delta} >= 1/{len(x)} rows: a mechanism that publishes one row in the "
                          "clear meets it; use a smaller delta", PrivacyWarning, stacklevel=2)
        x = clip_rows(x, self.clip)
        noise = np.random.default_rng(self.seed).normal(0.0, self.sigma, size=x.shape)
        return (x + noise).astype(np.float32)

    def describe(self) -> dict:
        """The parameters, for a manifest."""
        name = ("classic Gaussian mechanism (Dwork & Roth 2014, Thm A.1)" if self.mechanism == "classic"
                else "analytic Gaussian mechanism (Balle & Wang 2018)")
        return {"mechanism": name, "calibration": self.mechanism, "epsilon": self.epsilon, "delta": self.delta,
                "clip_norm": self.clip, "sensitivity": self.sensitivity, "sigma": self.sigma, "seed": self.seed,
                "neighbouring": "one user's vector replaced by any other of L2 norm <= clip_norm (sensitivity "
                                "2 * clip_norm); each user's row is one release",
                "calibration_proven": self.calibration_proven}


def clip_rows(x: np.ndarray, clip: float) -> np.ndarray:
    """Rows of ``x`` [N, d] scaled down to L2 norm ``clip`` where longer (directions kept)."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x * np.minimum(1.0, clip / np.maximum(norms, 1e-12))


def analytic_sigma(epsilon: float, delta: float, sensitivity: float) -> float:
    """Smallest sigma for which ``N(0, sigma^2)`` noise on an L2-sensitivity-``sensitivity``
    query is (epsilon, delta)-DP (Balle & Wang 2018, Theorem 8), by bisection on
    ``Phi(D/(2s) - e s/D) - exp(e) Phi(-D/(2s) - e s/D) <= delta``."""
    def phi(t: float) -> float:
        return 0.5 * math.erfc(-t / math.sqrt(2))

    def log_phi(t: float) -> float:  # log Phi(t); the tail's asymptote where Phi underflows
        return math.log(phi(t)) if t > -30 else -t * t / 2 - math.log(-t) - 0.5 * math.log(2 * math.pi)

    def loss(s: float) -> float:  # exp(epsilon) * Phi(.) in log space: epsilon may be large
        a, b = sensitivity / (2 * s), epsilon * s / sensitivity
        return phi(a - b) - math.exp(min(epsilon + log_phi(-a - b), 700.0))

    lo, hi = 1e-6 * sensitivity, 1e6 * sensitivity
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if loss(mid) > delta else (lo, mid)
    return hi
