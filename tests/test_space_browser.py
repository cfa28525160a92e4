"""The Space in a real browser: headless Chromium types a review, clicks Classify and reads the probability,
both on the app's own page and in a third-party page that embeds it with the <gradio-app> web component.

Needs Debian's `chromium` (apt-get install -y chromium) and the `playwright` Python package; no
Playwright browser download. Screenshots go to $SPACE_SCREENSHOT_DIR if set, else to pytest's tmp dir.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import BROWSER_TIMEOUT_MS, CHROMIUM, serving

TESTS_DIR = Path(__file__).resolve().parent
REVIEW = 'A moving film <script>window.pwned = 1</script><img src=x onerror="window.pwned = 1"> with great acting.'

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")


@pytest.fixture(scope="module")
def embed_url(app_url: str) -> Iterator[str]:
    """tests/embed.html served over HTTP from another port: a page of another origin, as on a blog."""
    with serving(TESTS_DIR) as url:
        yield f"{url}embed.html?src={app_url}"


def api_probability(app_url: str, review: str) -> float:
    """The same review through the app's /probability endpoint (one-shot POST)."""
    request = urllib.request.Request(f"{app_url}/gradio_api/run/probability", method="POST",
                                     data=json.dumps({"data": [review]}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["data"][0]


@pytest.mark.parametrize("where", ["embedded", "own-page"])
def test_classify_in_a_browser(browser, app_url: str, embed_url: str, screenshots: Path, where: str) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(embed_url if where == "embedded" else app_url, timeout=BROWSER_TIMEOUT_MS)
        if where == "embedded":
            sync_api.expect(page.locator("#embed-status")).to_have_text("embedded", timeout=BROWSER_TIMEOUT_MS)
        review = page.locator("gradio-app #review textarea")
        review.wait_for(timeout=BROWSER_TIMEOUT_MS)
        review.fill(REVIEW)
        page.locator("gradio-app #classify").click()

        shown = page.locator("gradio-app #probability input")
        sync_api.expect(shown).to_have_value(re.compile(r"^(0\.\d+|1)$"), timeout=BROWSER_TIMEOUT_MS)
        assert float(shown.input_value()) == pytest.approx(api_probability(app_url, REVIEW), abs=1e-4)
        # The review's HTML is shown as text and never run.
        sync_api.expect(page.locator("gradio-app #highlights")).to_contain_text("<script>window.pwned", timeout=BROWSER_TIMEOUT_MS)
        assert page.evaluate("window.pwned") is None
        assert not errors
    finally:
        path = screenshots / f"space-{where}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        page.close()


def test_csv_tab_shows_what_came_out(browser, app_url: str, screenshots: Path, tmp_path: Path) -> None:
    """The CSV tab: after scoring, the preview, the count per label and the histogram are on the page."""
    upload = tmp_path / "reviews.csv"
    upload.write_text('review\n"A wonderful, moving film."\nDull and far too long.\n""\nNot bad at all.\n')
    page = browser.new_page(viewport={"width": 1280, "height": 1300})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(app_url, timeout=BROWSER_TIMEOUT_MS)
        page.get_by_role("tab", name="Batch (CSV)").click()
        sync_api.expect(page.get_by_role("button", name="Score the file")).to_be_visible(timeout=BROWSER_TIMEOUT_MS)
        # Nothing scored yet: no empty tables with made-up headers ("1 2 3").
        assert page.locator("#preview, #label-counts, #histogram").filter(visible=True).count() == 0
        page.locator("gradio-app input[type=file]").first.set_input_files(str(upload))
        # A click before the upload ends is dropped by Gradio ("Waiting for file(s) to finish uploading"): the
        # file's download link shows once the server has it.
        sync_api.expect(page.locator("a[href*='reviews.csv']")).to_be_visible(timeout=BROWSER_TIMEOUT_MS)
        page.get_by_role("button", name="Score the file").click()
        sync_api.expect(page.locator("#batch-message")).to_contain_text("Scored 3 review(s)", timeout=BROWSER_TIMEOUT_MS)
        sync_api.expect(page.locator("#preview")).to_contain_text("Dull and far too long.", timeout=BROWSER_TIMEOUT_MS)
        # The model's answers are the first columns, inside the window's width.
        header = page.locator("#preview th").filter(has_text="predicted_probability").first
        box = header.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1280
        assert page.locator("#preview th").first.inner_text().strip().startswith("predicted_probability")
        sync_api.expect(page.locator("#label-counts")).to_contain_text("(empty: not scored)", timeout=BROWSER_TIMEOUT_MS)
        sync_api.expect(page.locator("#histogram canvas, #histogram svg").first).to_be_visible(timeout=BROWSER_TIMEOUT_MS)
        assert not errors
    finally:
        path = screenshots / "space-csv-tab.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        page.close()
