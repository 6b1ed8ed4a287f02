"""Serving: cross-modal search, the plain-Python service behind the HTTP API, and reason text.

Importing this package stays light: FastAPI loads only with :mod:`ctxrec.serve.app`
(``create_app``), transformers only with :class:`~ctxrec.serve.text.LMWriter`.
"""
from ctxrec.serve.errors import Conflict, Invalid, NotFound, ServiceError
from ctxrec.serve.search import ItemSearch, guess_modality
from ctxrec.serve.service import RecService
from ctxrec.serve.text import LMWriter, reason_sentence

__all__ = ["Conflict", "Invalid", "ItemSearch", "LMWriter", "NotFound", "RecService", "ServiceError",
           "guess_modality", "reason_sentence"]
