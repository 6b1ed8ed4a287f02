"""Serving: queries over a trained catalogue (cross-modal search) and, later, the HTTP API.

Importing this package stays light; web dependencies load in the modules that need them.
"""
from ctxrec.serve.search import ItemSearch, guess_modality

__all__ = ["ItemSearch", "guess_modality"]
