"""The /ui/ page in a real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium): fill,
submit, and check that the page shows what the API returns for the same request; an image upload for the
segmentation example (on CPU); the api-key prompt.

MLGIT_UI_SCREENSHOTS=1 rewrites docs/images/ui-iris.png and docs/images/ui-segmentation.png (the README shows
them); without it the screenshots go to a temporary folder, so that taking them is still tested.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import REPO_ROOT
from tests.fixtures_integration import unavailable
from tests.serving_runtime.conftest import RunningServer, lookup, start_server, stop_server, write_model
from tests.ui.examples import add_example

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")  # Debian's chromium-driver: never a browser download
IRIS = "iris-classifier"
SEGMENTATION = "image-segmentation"
KEY = "browser-test-key-0123456789"
HEADLESS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
    "--force-device-scale-factor=1",
    "--lang=en-US",
)
WAIT_SECONDS = 60  # the longest a page step may take on a loaded 2-core machine; a hang fails, nothing is timed


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        unavailable(f"{' and '.join(missing)} missing: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # --no-sandbox: tests run as root, where Chromium's sandbox refuses to start.
    for argument in HEADLESS:
        options.add_argument(argument)
    try:
        driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    except WebDriverException as exc:
        unavailable(f"chromium does not start headless: {exc.msg}")
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    add_example(root, IRIS)
    add_example(root, SEGMENTATION)
    write_model(root, "lookup", {"1": lookup()})  # an index past 9 fails in onnxruntime: an API error
    return root


def _serve(repository: Path, **settings: Any) -> Iterator[RunningServer]:
    running = start_server(repository, **settings)
    try:
        running.wait_loaded()
        yield running
    finally:
        stop_server(running)


@pytest.fixture(scope="module")
def server(repository: Path) -> Iterator[RunningServer]:
    yield from _serve(repository)


@pytest.fixture
def shots(tmp_path: Path) -> Callable[[WebDriver, str], None]:
    folder = REPO_ROOT / "docs" / "images" if os.environ.get("MLGIT_UI_SCREENSHOTS") == "1" else tmp_path

    def take(driver: WebDriver, name: str) -> None:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, max(600, min(int(height) + 40, 1600)))
        path = folder / name
        assert driver.save_screenshot(str(path)), path
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        driver.set_window_size(1280, 900)

    return take


def _wait(driver: WebDriver, css: str, text: str | None = None) -> WebElement:
    """The first visible element matching `css` (holding `text`, when given), once the page shows it."""

    def found(d: WebDriver) -> WebElement | bool:
        for element in d.find_elements(By.CSS_SELECTOR, css):
            if element.is_displayed() and (text is None or text in element.text):
                return element
        return False

    return WebDriverWait(driver, WAIT_SECONDS).until(found, f"no visible {css!r} showing {text!r}")


def _infer(server: RunningServer, model: str, inputs: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(f"{server.url}/v2/models/{model}/infer", json={"inputs": inputs}, timeout=60)


def _table(driver: WebDriver, output: str) -> list[list[str]]:
    table = _wait(driver, f'table[data-output="{output}"]')
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    return [[cell.text for cell in row.find_elements(By.CSS_SELECTOR, "td")] for row in rows]


def _fill_rows(driver: WebDriver, field: str, rows: list[list[float]]) -> None:
    fieldset = _wait(driver, f'fieldset[data-input="{field}"] table')
    while len(fieldset.find_elements(By.CSS_SELECTOR, "tbody tr")) < len(rows):
        driver.find_element(By.XPATH, f'//fieldset[@data-input="{field}"]//button[text()="Add a row"]').click()
    for row, values in zip(fieldset.find_elements(By.CSS_SELECTOR, "tbody tr"), rows, strict=True):
        for cell, value in zip(row.find_elements(By.CSS_SELECTOR, "input"), values, strict=True):
            cell.clear()
            cell.send_keys(str(value))


def test_iris_table_in_and_out(browser: WebDriver, server: RunningServer, shots: Callable[..., None]) -> None:
    browser.get(f"{server.url}/ui/?model={IRIS}")
    first = _wait(browser, 'fieldset[data-input="input"] tbody input')
    assert first.get_attribute("value") == "5.1", "the sample is filled in"
    rows = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]]
    _fill_rows(browser, "input", rows)
    browser.find_element(By.ID, "submit").click()
    labels = _table(browser, "label")
    probabilities = _table(browser, "probabilities")
    flat = [v for row in rows for v in row]
    api = _infer(server, IRIS, [{"name": "input", "datatype": "FP32", "shape": [3, 4], "data": flat}])
    outputs = {o["name"]: o for o in api.json()["outputs"]}
    assert [int(v) for (v,) in labels] == outputs["label"]["data"] == [0, 1, 2]
    shown = [float(v) for row in probabilities for v in row]
    assert shown == outputs["probabilities"]["data"]  # the very numbers the API returned
    shots(browser, "ui-iris.png")


def test_errors_are_shown_as_the_api_returns_them(browser: WebDriver, server: RunningServer) -> None:
    browser.get(f"{server.url}/ui/?model=lookup")
    _fill_rows(browser, "index", [[3], [12]])
    browser.find_element(By.ID, "submit").click()
    api = _infer(server, "lookup", [{"name": "index", "datatype": "INT64", "shape": [2], "data": [3, 12]}])
    assert api.status_code >= 400
    _wait(browser, "#error", f"HTTP {api.status_code}: {api.json()['error']}")
    _fill_rows(browser, "index", [["three"], [1]])  # caught in the page, naming the cell
    browser.find_element(By.ID, "submit").click()
    _wait(browser, "#error", 'index: row 0, column 0: "three" is not a number')


def _png(path: Path, pixels: np.ndarray) -> Path:
    """An 8-bit grayscale PNG, written by hand (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width = pixels.shape
    rows = b"".join(b"\x00" + pixels[y].astype(np.uint8).tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunks)
    return path


def _sky(size: int) -> np.ndarray:
    """Noise around pixel 10 (0 in the model's units: 0.2 * p - 2) with two bright sources."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:size, 0:size]
    sky = 10 + rng.normal(0, 5, (size, size))
    for y, x, peak, width in ((20, 18, 80, 2.0), (44, 40, 60, 4.0)):
        sky += peak * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * width**2))
    return np.clip(np.rint(sky), 0, 255).astype(np.uint8)


def _mask_pixels(driver: WebDriver) -> np.ndarray:
    canvas = _wait(driver, 'figure[data-mask="mask"] canvas')
    red = driver.execute_script(
        "const c = arguments[0]; const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "return Array.from(d.filter((_, i) => i % 4 === 0));",
        canvas,
    )
    return np.array(red, dtype=np.uint8).reshape(int(canvas.get_attribute("height")), -1)


def test_segmentation_image_upload(
    browser: WebDriver, server: RunningServer, tmp_path: Path, shots: Callable[..., None]
) -> None:
    browser.get(f"{server.url}/ui/?model={SEGMENTATION}")
    _wait(browser, 'fieldset[data-input="image"] .image-message', "The sample request is filled in")
    upload = browser.find_element(By.CSS_SELECTOR, 'fieldset[data-input="image"] input[type="file"]')
    upload.send_keys(str(_png(tmp_path / "small.png", _sky(32))))
    _wait(browser, ".image-message.problem", "small.png is 32 x 32 pixels; this model takes 64 x 64 (width x height)")
    sky = _sky(64)
    upload.send_keys(str(_png(tmp_path / "sky.png", sky)))
    _wait(browser, ".image-message", "sky.png: 64 x 64, grayscale.")
    browser.find_element(By.ID, "submit").click()
    shown = _mask_pixels(browser)
    # The adapter of the example (mlgit.yaml model.adapter): pixel * 0.2, then (x - 2.0) / 1.0, NCHW.
    tensor = ((sky.astype(np.float32) * 0.2 - 2.0) / 1.0).reshape(1, 1, 64, 64)
    image = {"name": "image", "datatype": "FP32", "shape": [1, 1, 64, 64], "data": tensor.ravel().tolist()}
    api = _infer(server, SEGMENTATION, [image])
    (mask,) = api.json()["outputs"]
    expected = np.where(np.array(mask["data"]).reshape(64, 64) > 0.5, 255, 0)
    assert 20 < (expected == 255).sum() < 64 * 64 / 2, "the sources are found, the noise is not"
    assert (shown == expected).all(), f"{(shown != expected).sum()} mask pixels differ from the API's"
    _wait(browser, "figcaption", f"{(expected == 255).sum()} of 4096 pixels above 0.5")
    shots(browser, "ui-segmentation.png")


@pytest.fixture(scope="module")
def keyed(repository: Path) -> Iterator[RunningServer]:
    yield from _serve(repository, auth_mode="api-key", api_keys=KEY)


def test_the_page_asks_for_a_key_and_keeps_it_in_the_tab(browser: WebDriver, keyed: RunningServer) -> None:
    browser.get(f"{keyed.url}/ui/?model={IRIS}")
    _wait(browser, "#auth-message", "The API answered 401: authentication required")
    browser.find_element(By.ID, "credential").send_keys("not-the-key")
    browser.find_element(By.CSS_SELECTOR, "#auth-form button").click()
    _wait(browser, "#auth-message", "The key given is not accepted; give another.")
    browser.find_element(By.ID, "credential").send_keys(KEY)
    browser.find_element(By.CSS_SELECTOR, "#auth-form button").click()
    _wait(browser, 'fieldset[data-input="input"] tbody input')
    browser.find_element(By.ID, "submit").click()
    assert [int(v) for (v,) in _table(browser, "label")] == [0]
    assert browser.execute_script("return sessionStorage.getItem('mlgit-ui-credential')") == KEY
    assert browser.execute_script("return localStorage.length") == 0 and browser.get_cookies() == []
