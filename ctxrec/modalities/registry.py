"""Encoders by name: built-ins, runtime registrations and third-party plugins.

Built-ins are registered as dotted paths and imported on first use, so listing
encoders never imports a heavy library. Third-party packages add encoders through
the ``ctxrec.encoders`` entry-point group (as fsspec does for file systems)::

    # pyproject.toml of a plugin package
    [project.entry-points."ctxrec.encoders"]
    clap = "my_plugin.clap:ClapEncoder"

after which ``get_encoder("clap")`` works without touching ctxrec.

The registry also records which encoders write into one **shared embedding space**
(a *space family*): ``image`` and ``clip-text`` (open_clip's two towers), ``clap`` and
``clap-text`` (CLAP's), and ``text``, ``multilingual-text`` (USE, family
``use-multilingual``) or ``imagenet`` each with itself. Vectors of two encoders in one family,
built from the same weights, are directly comparable, which is what lets a text query
find images or sounds (see :func:`ctxrec.graph.search.ItemSearch`). A plug-in joins a
family by setting the class attribute ``space_family``; otherwise it is alone in its own.
"""
from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from ctxrec.modalities.base import Encoder

#: The entry-point group third-party encoders register under.
ENTRY_POINT_GROUP = "ctxrec.encoders"


class EncoderRegistryWarning(UserWarning):
    """An entry point was skipped (its name is taken or it could not be read)."""


@dataclass
class _Entry:
    target: str | type  # a class, or "pkg.mod:Class"
    modality: str | None  # None: an entry point whose class is not imported yet
    source: str  # "built-in" | "user" | "entry-point"
    space: str | None = None  # space family; None: the class's `space_family`, else the name
    entry_point: EntryPoint | None = None
    cls: type | None = None


_REGISTRY: dict[str, _Entry] = {}


def register_encoder(name: str, target: str | type, *, modality: str, space: str | None = None,
                     override: bool = False) -> None:
    """Make an encoder class available to :func:`get_encoder` under ``name``.

    Args:
        name (str): The registry name (e.g. ``"text"``).
        target (str | type): An :class:`Encoder` subclass, or its dotted path
            ``"pkg.mod:Class"`` (or ``"pkg.mod.Class"``), imported on first use.
        modality (str): The modality it encodes (``"text"``, ``"image"``, ...).
        space (str, optional): The space family it shares with other encoders (e.g.
            ``"clip"``). (default: the class's ``space_family`` attribute, else ``name``)
        override (bool, optional): Replace an encoder already registered under ``name``.
            (default: :obj:`False`)

    Example:
        >>> register_encoder("my-text", "my_pkg.enc:MyTextEncoder", modality="text")  # doctest: +SKIP
        >>> get_encoder("my-text", model="...")                                        # doctest: +SKIP
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a non-empty string, got {name!r}")
    if isinstance(target, str):
        _split_target(target)  # fail now on a malformed path, not on first use
    elif not (isinstance(target, type) and issubclass(target, Encoder)):
        raise TypeError(
            f"`target` for encoder {name!r} must be an Encoder subclass or a dotted path "
            f"'pkg.mod:Class', got {target!r}"
        )
    if name in _REGISTRY and not override:
        raise ValueError(
            f"An encoder named {name!r} is already registered ({_describe(_REGISTRY[name])}); "
            "pass override=True to replace it or choose another name"
        )
    _REGISTRY[name] = _Entry(target=target, modality=modality, source="user", space=space)


def get_encoder(name: str, **kwargs: Any) -> Encoder:
    """Build the encoder registered under ``name``.

    Args:
        name (str): A registry name; see :func:`list_encoders`.
        **kwargs: Passed to the encoder's constructor.

    Raises:
        ValueError: When no encoder has that name; the message lists the choices.

    Example:
        >>> enc = get_encoder("text", normalize=True)  # doctest: +SKIP
    """
    entry = _REGISTRY.get(name)
    if entry is None:
        _load_entry_points()  # a plugin may have been installed since the last look
        entry = _REGISTRY.get(name)
    if entry is None:
        choices = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise ValueError(f"Unknown encoder {name!r}; choose one of: {choices}")
    cls = _resolve(name, entry)
    encoder = cls(**kwargs)
    if encoder.name != name:
        # The registry name is how a saved pipeline finds the encoder again.
        encoder.name = name
    return encoder


def list_encoders(*, load: bool = False, describe: bool = False) -> list[dict]:
    """The registered encoders, sorted by name.

    Args:
        load (bool, optional): Import entry-point encoders to report their modality and
            space; otherwise those are ``None`` until the encoder is first used.
            (default: :obj:`False`)
        describe (bool, optional): Also build each encoder with its default arguments
            (no weights are loaded unless its constructor must) to report ``dim``; an
            encoder that cannot be built gets ``dim=None`` and the reason in ``error``.
            Implies ``load``. (default: :obj:`False`)

    Returns:
        list[dict]: One ``{"name", "modality", "space", "target", "source"}`` per encoder
        (plus ``"dim"``, ``"weights"`` and ``"error"`` with ``describe``), where ``source`` is
        ``"built-in"``, ``"user"`` (registered at runtime) or ``"entry-point"``, ``space`` is
        the encoder's space family and ``weights`` its default build's
        :meth:`~ctxrec.modalities.base.Encoder.weights_kind` (``"pretrained"``, ``"random"``,
        ``"none"`` or None).
    """
    load = load or describe
    _load_entry_points()
    rows = []
    for name in sorted(_REGISTRY):
        entry = _REGISTRY[name]
        if load and entry.cls is None and entry.source == "entry-point":
            try:
                _resolve(name, entry)
            except Exception as e:  # a broken plugin must not hide the others
                warnings.warn(f"Could not load encoder {name!r}: {e}", EncoderRegistryWarning, stacklevel=2)
        target = entry.target if isinstance(entry.target, str) else _dotted(entry.target)
        row = {"name": name, "modality": entry.modality, "space": space_family(name, load=False),
               "target": target, "source": entry.source}
        if describe:
            row["dim"], row["weights"], row["error"] = None, None, None
            try:
                encoder = get_encoder(name)
                row["weights"] = encoder.weights_kind()
                row["dim"] = int(encoder.output_dim)
            except Exception as e:  # weights not on disk, a missing extra: report, go on
                row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        rows.append(row)
    return rows


def space_family(name: str, *, load: bool = True) -> str | None:
    """The space family of the encoder registered as ``name`` (see the module doc).

    Args:
        name (str): A registry name.
        load (bool, optional): Import an entry-point class to read its ``space_family``;
            otherwise such an entry reports ``None`` until used. (default: :obj:`True`)
    """
    entry = _REGISTRY.get(name)
    if entry is None:
        _load_entry_points()
        entry = _REGISTRY.get(name)
    if entry is None:
        raise ValueError(f"Unknown encoder {name!r}; choose one of: {', '.join(sorted(_REGISTRY))}")
    if entry.space is not None:
        return entry.space
    if entry.cls is None and not load:
        return None
    cls = _resolve(name, entry)
    return getattr(cls, "space_family", None) or name


def space_members(family: str) -> dict[str, str | None]:
    """Encoders of one space family: ``{registry name: modality}``.

    Example:
        >>> space_members("clip")
        {'clip-text': 'text', 'image': 'image'}
    """
    out = {}
    for row in list_encoders(load=True):
        if row["space"] == family:
            out[row["name"]] = row["modality"]
    return out


def _load_entry_points() -> None:
    """Add entry-point encoders not seen yet. Explicit registrations win over plugins."""
    try:
        eps = entry_points(group=ENTRY_POINT_GROUP)
    except Exception as e:  # broken metadata somewhere on sys.path
        warnings.warn(f"Could not read {ENTRY_POINT_GROUP!r} entry points: {e}", EncoderRegistryWarning, stacklevel=3)
        return
    for ep in eps:
        existing = _REGISTRY.get(ep.name)
        if existing is None:
            _REGISTRY[ep.name] = _Entry(target=ep.value, modality=None, source="entry-point", entry_point=ep)
        elif existing.target != ep.value:
            _warn_shadowed(ep, existing)


_warned: set[tuple[str, str]] = set()


def _warn_shadowed(ep: EntryPoint, existing: _Entry) -> None:
    if (ep.name, ep.value) in _warned:
        return
    _warned.add((ep.name, ep.value))
    warnings.warn(
        f"Entry point {ep.name!r} = {ep.value!r} in group {ENTRY_POINT_GROUP!r} is ignored: "
        f"the name is taken by {_describe(existing)}",
        EncoderRegistryWarning,
        stacklevel=4,
    )


def _resolve(name: str, entry: _Entry) -> type:
    if entry.cls is not None:
        return entry.cls
    try:
        if entry.entry_point is not None:
            cls = entry.entry_point.load()
        elif isinstance(entry.target, str):
            module, attr = _split_target(entry.target)
            cls = importlib.import_module(module)
            for part in attr.split("."):
                cls = getattr(cls, part)
        else:
            cls = entry.target
    except (ImportError, AttributeError) as e:
        raise ImportError(f"Could not import encoder {name!r} from {_describe(entry)}: {e}") from e
    if not (isinstance(cls, type) and issubclass(cls, Encoder)):
        raise TypeError(f"Encoder {name!r} ({_describe(entry)}) resolved to {cls!r}, which is not an Encoder subclass")
    entry.cls = cls
    if entry.modality is None:
        entry.modality = cls.modality or None
    return cls


def _split_target(target: str) -> tuple[str, str]:
    module, sep, attr = target.partition(":")
    if not sep:
        module, _, attr = target.rpartition(".")
    if not module or not attr or not all(p.isidentifier() for p in module.split(".") + attr.split(".")):
        raise ValueError(f"Encoder target {target!r} is not a dotted path; expected 'pkg.module:ClassName'")
    return module, attr


def _dotted(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _describe(entry: _Entry) -> str:
    target = entry.target if isinstance(entry.target, str) else _dotted(entry.target)
    return f"{entry.source} {target}"


#: Built-in encoders: name -> (dotted path, modality, space family). Imported on first use.
_BUILTINS: dict[str, tuple[str, str, str]] = {
    "text": ("ctxrec.modalities.text:TextEncoder", "text", "text"),
    "multilingual-text": ("ctxrec.modalities.multilingual:MultilingualTextEncoder", "text", "use-multilingual"),
    "image": ("ctxrec.modalities.image:ImageEncoder", "image", "clip"),
    "imagenet": ("ctxrec.modalities.imagenet:ImageNetEncoder", "image", "imagenet"),
    "clip-text": ("ctxrec.modalities.image:TextTowerEncoder", "text", "clip"),
    "audio": ("ctxrec.modalities.audio:AudioEncoder", "audio", "logmel"),
    "clap": ("ctxrec.modalities.clap:ClapEncoder", "audio", "clap"),
    "clap-text": ("ctxrec.modalities.clap:ClapTextEncoder", "text", "clap"),
}
for _name, (_target, _modality, _space) in _BUILTINS.items():
    _REGISTRY[_name] = _Entry(target=_target, modality=_modality, source="built-in", space=_space)
del _name, _target, _modality, _space
