"""The web page in a real headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium) against the real app served by uvicorn on 127.0.0.1: real items with their covers
appear, a different context changes them, clicking an item shows related items, text search
finds items. A screenshot lands in ``artifacts/browser/`` (CI keeps it)."""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the web page needs fastapi: pip install 'ctxrec[serve]'")

from ctxrec.datasets.synthetic import generate_world  # noqa: E402
from ctxrec.graph.export import export_pyg  # noqa: E402
from ctxrec.graph.ingest import ingest  # noqa: E402
from ctxrec.graph.stores import open_store  # noqa: E402
from ctxrec.modalities.features import encode_store  # noqa: E402
from ctxrec.serve.app import create_app  # noqa: E402
from ctxrec.serve.service import RecService  # noqa: E402
from ctxrec.training.models import ContextGNN  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "browser"
pytestmark = pytest.mark.browser


def _browser():
    """Chromium + chromedriver, or a skip (locally) / failure (CI=true) naming what is missing."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    missing = [name for name, path in (("chromium", binary), ("chromium-driver", driver)) if path is None]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium (pip)")
    if missing:
        reason = f"browser test needs {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1400"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    import uvicorn

    root = tmp_path_factory.mktemp("web")
    files = generate_world("tiny").write(root / "world")  # with cover PNGs
    store = open_store("embedded", root / "graph.db")
    ingest(store, files["interactions"], files["items"], files["context"])
    encode_store(store, "text", cache_dir=root / "cache", out_dir=root / "features")
    graph = export_pyg(store)
    model = ContextGNN(hidden=16, features=("text",), train={"epochs": 3, "seed": 0}).fit(graph)
    service = RecService(store, model, features=root / "features")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}", service
    server.should_exit = True
    thread.join(10)
    store.close()


def test_pick_context_click_related_search(site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    url, service = site
    browser = _browser()
    try:
        wait = WebDriverWait(browser, 30)
        browser.get(url + "/")
        wait.until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
        assert not browser.find_element(By.ID, "error").text

        def shown(grid: str):
            """Item ids the grid shows (the page sets them once every card is drawn)."""
            ids = browser.find_element(By.ID, grid).get_attribute("data-items")
            return ids.split(",") if ids else []

        first = shown("recs")
        items = set(map(str, service.graph.ids["item"]))
        assert len(first) == 8 and set(first) <= items
        # titles are the store's names, and covers really load
        titles = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#recs .card .title")]
        assert titles == [service._names[i] for i in first]
        assert all(browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
                   for img in browser.find_elements(By.CSS_SELECTOR, "#recs .card img"))
        user = Select(browser.find_element(By.ID, "user")).first_selected_option.get_attribute("value")
        # the page shows what the service recommends with no context
        assert first == [r["id"] for r in service.recommend(user, 8, reasons=False)["items"]]

        # another context: a time slot and a place; the page must show what the service says there
        time_slot = str(service.graph.ids["time"][len(service.graph.ids["time"]) // 2])
        place = str(service.graph.ids["place"][0])
        expected = [r["id"] for r in service.recommend(user, 8, time=time_slot, place=place, reasons=False)["items"]]
        assert expected != first  # the context matters to the model
        Select(browser.find_element(By.ID, "time")).select_by_value(time_slot)
        Select(browser.find_element(By.ID, "place")).select_by_value(place)
        wait.until(lambda b: shown("recs") == expected)
        second = shown("recs")
        assert second != first and set(second) <= items
        assert place.split()[0].lower() in browser.find_element(By.ID, "recs-title").text.lower()

        # clicking an item shows its related items
        browser.find_elements(By.CSS_SELECTOR, "#recs .card")[0].click()
        wait.until(lambda b: shown("related"))
        related = shown("related")
        assert related == [r["id"] for r in service.related(second[0], 8)["items"]]

        # text search
        browser.find_element(By.ID, "query").send_keys("calm evening music")
        browser.find_element(By.ID, "search").click()
        wait.until(lambda b: shown("results") or b.find_element(By.ID, "error").text)
        assert not browser.find_element(By.ID, "error").text
        assert set(shown("results")) <= items and shown("results")

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "web.png"))
        assert (ARTIFACTS / "web.png").stat().st_size > 10_000
    finally:
        browser.quit()


def test_page_endpoints_answer_errors_in_the_one_body(site):
    import httpx2 as httpx

    url, service = site
    item = str(service.graph.ids["item"][0])
    assert httpx.get(f"{url}/items/{item}").json()["image"] is True
    assert httpx.get(f"{url}/items/{item}/image").headers["content-type"] == "image/png"
    missing = httpx.get(f"{url}/items/nope/image")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_item"
    catalog = httpx.get(f"{url}/catalog").json()
    assert catalog["users"] and catalog["times"] and catalog["places"][0]["name"]
