"""The web page the app serves at ``/``: pick a user and a context (time, place), see
recommendations with posters and titles, click an item for related items, search by text.

The page is one static HTML file (``web/index.html``) that calls the JSON API; this module
adds it and the three small endpoints it needs: ``/catalog`` (users, time slots and places
to choose from), ``/items/{id}`` (title, whether there is a picture) and
``/items/{id}/image`` (the picture file itself).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

from ctxrec.graph import context as ctx
from ctxrec.serve.errors import NotFound

PAGE = Path(__file__).with_name("web") / "index.html"
#: picture types the image endpoint serves, by file suffix
IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
               ".webp": "image/webp"}


class Catalog:
    """Item titles and pictures, and the choices the page offers, read once from the store."""

    def __init__(self, service, users: int = 200) -> None:
        items = service.store.read_nodes("Item")
        paths = items["image_path"] if "image_path" in items else None
        self.names = dict(zip(items["id"].astype(str), items["name"].where(items["name"].notna(), items["id"])))
        self.images: Dict[str, Path] = {}
        if paths is not None:
            for item, path in zip(items["id"].astype(str), paths):
                if isinstance(path, str) and path and Path(path).suffix.lower() in IMAGE_TYPES:
                    self.images[item] = Path(path)
        graph = service.graph
        counts = graph.train.user.bincount(minlength=graph.num_users)
        busiest = counts.argsort(descending=True)[:users].sort().values.tolist()
        self.choices = {
            "users": [str(graph.ids["user"][u]) for u in busiest],
            "times": [str(t) for t in graph.ids["time"]],
            "places": [{"id": str(p), "name": ctx.display_place(str(p))} for p in graph.ids["place"]],
        }

    def item(self, item: str) -> Dict[str, Any]:
        if item not in self.names:
            raise NotFound(f"unknown item {item!r}: no such item id in the store", "item_id", code="unknown_item")
        return {"id": item, "name": self.names[item], "image": item in self.images and self.images[item].is_file()}

    def image(self, item: str) -> Path:
        path = self.images.get(item)
        if path is None or not path.is_file():
            self.item(item)  # unknown item -> its own 404
            raise NotFound(f"item {item!r} has no picture", "item_id", code="no_image")
        return path


def add_web(app, service) -> None:
    """Register ``/`` and the page's endpoints on ``app``."""
    from fastapi.responses import FileResponse, HTMLResponse

    catalog = Catalog(service)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    @app.get("/catalog", tags=["page"])
    def choices() -> Dict[str, Any]:
        """Users (the most active ones), time slots and places to choose from."""
        return catalog.choices

    @app.get("/items/{item_id}", tags=["items"])
    def item(item_id: str) -> Dict[str, Any]:
        """An item's title and whether it has a picture."""
        return catalog.item(item_id)

    @app.get("/items/{item_id}/image", tags=["items"], response_class=FileResponse)
    def image(item_id: str):
        """The item's picture (poster, cover)."""
        path = catalog.image(item_id)
        return FileResponse(path, media_type=IMAGE_TYPES[path.suffix.lower()])
