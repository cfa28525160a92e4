"""The static Space in headless Chromium: the page downloads the model's web/ copy from the local Hub look-alike
and must give plain Keras' probabilities, tokens and highlights, classify without any network request, and say
clearly when the model cannot be fetched.

Needs Debian's `chromium` and the `playwright` Python package, like test_space_browser.py.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import BROWSER_TIMEOUT_MS, CHROMIUM, REAL_WINDOW, run_module, serving
from hub_server import FakeHub
from space_support import AWKWARD_TEXTS  # puts space/ on the path

from tools import publish  # noqa: E402
from review_text import WindowReader, clean  # noqa: E402
from training.data import SAMPLE_CSV  # noqa: E402
from training.model import STRIP_PUNCTUATION_REGEX as STRIP_REGEX  # noqa: E402

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")

MODEL_REPO = f"{FakeHub.user}/imdb-sentiment-bilstm"
TESTS_DIR = Path(__file__).resolve().parent
REVIEWS = 200
TOLERANCE = 1e-3  # the n-gram branch's weights are 16-bit in web/
# A port nothing listens on: the Hub is unreachable.
DEAD_HUB = "http://127.0.0.1:9"
# Built in the page from JSON with ASCII escapes, so lone surrogates survive the trip.
HOSTILE = [
    "", "   \t\n ", "!!! ... ???", *AWKWARD_TEXTS, "word " * 60 + "great", "fantastic " * 3,
    "A moving film. " * 70_000,  # ~1 MB: cut at the Space's MAX_TEXT_CHARS before anything else
]
IN_PAGE_TOKENS = """async ([base, maxTextChars, texts]) => {
  const { loadModel } = await import("./sentiment.js");
  const model = await loadModel(base, { maxTextChars });
  const grams = new Map([...model.ngram.ids].map(([gram, id]) => [id, gram]));
  return JSON.parse(texts).map((text) => {
    const review = model.read(text);
    const ids = [...model.ngram.counts(review.tokens).keys()];
    return { tokens: review.tokens, ids: model.sequence(review.words, model.window),
             ngrams: ids.map((id) => id === model.ngram.oov ? null : grams.get(id)),
             probability: model.probability(text) };
  });
}"""
# Every text the status line shows, from the start.
STATUS_LOG = """window.statuses = [];
document.addEventListener("DOMContentLoaded", () => {
  const status = document.getElementById("status");
  new MutationObserver(() => window.statuses.push(status.textContent)).observe(status, { childList: true });
});"""
CLASSIFY_EACH = """(texts) => texts.map((text) => {
  document.getElementById("review").value = text;
  document.getElementById("classify").click();
  return Number(document.getElementById("probability").dataset.value);
})"""


@pytest.fixture(scope="module")
def hub(web_model: Path) -> Iterator[tuple[FakeHub, str]]:
    """The local Hub holding the model folder (web/ included); with the commit to pin."""
    with FakeHub() as server:
        files = {str(path.relative_to(web_model)): path.read_bytes() for path in web_model.rglob("*") if path.is_file()}
        yield server, server.publish(MODEL_REPO, files, repo_type="model")


@dataclass
class Held:
    """Requests matching the glob wait in `routes` until `release`; `ended` lists every request that ended."""
    glob: str
    routes: list = field(default_factory=list)
    ended: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.route(self.glob, lambda route: self.routes.append(route))
        page.on("requestfinished", lambda request: self.ended.append(request.url))
        page.on("requestfailed", lambda request: self.ended.append(request.url))

    def release(self, page) -> None:
        """Let the held requests go on, and wait until each has ended: answered, or cancelled by the page."""
        assert self.routes, f"the page asked for nothing that matches {self.glob}"
        for route in self.routes:
            try:
                route.continue_()
            except sync_api.Error:  # already cancelled
                pass
        for _ in range(BROWSER_TIMEOUT_MS // 50):
            if {route.request.url for route in self.routes} <= set(self.ended):
                return
            page.wait_for_timeout(50)
        raise AssertionError(f"a held request never ended: {self.routes}")


def staged_site(folder: Path, hub_url: str, model_repo: str, revision: str) -> Path:
    folder.mkdir()
    publish.stage_static(folder, model_repo, revision, hub_url)
    return folder


@pytest.fixture(scope="module")
def site(hub: tuple[FakeHub, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server, commit = hub
    with serving(staged_site(tmp_path_factory.mktemp("site") / "space", server.url, MODEL_REPO, commit)) as url:
        yield url


@pytest.fixture(scope="module")
def keras_model(web_model: Path):
    import keras

    return keras.saving.load_model(web_model, safe_mode=True)


@pytest.fixture(scope="module")
def tokenizer_json(web_model: Path) -> dict:
    return json.loads((web_model / "tokenizer.json").read_text(encoding="utf-8"))


def keras_probabilities(model, texts: list[str]) -> np.ndarray:
    import tensorflow as tf

    return model.predict(tf.constant(texts), verbose=0)[:, 0]


def open_page(browser, url: str, errors: list[str], held: Held | None = None):
    page = browser.new_page(viewport={"width": 1100, "height": 1300})
    page.on("pageerror", lambda error: errors.append(str(error)))
    if held:
        held.attach(page)
    page.goto(url, timeout=BROWSER_TIMEOUT_MS)
    return page


def ready_page(browser, url: str, errors: list[str]):
    page = open_page(browser, url, errors)
    page.wait_for_selector("body[data-ready=true]", timeout=BROWSER_TIMEOUT_MS)
    return page


def test_probabilities_equal_keras_on_real_reviews(browser, site: str, keras_model, tokenizer_json: dict) -> None:
    reviews = pd.read_csv(SAMPLE_CSV)["review"].iloc[:REVIEWS].tolist()
    errors: list[str] = []
    page = ready_page(browser, site, errors)
    try:
        shown = np.array(page.evaluate(CLASSIFY_EACH, reviews))
    finally:
        page.close()
    # Raw text, the IMDB dump's line breaks included: the page's answer is plain Keras' on the same string.
    assert sum("<br />" in review for review in reviews) > REVIEWS // 4
    expected = keras_probabilities(keras_model, reviews)
    assert np.abs(shown - expected).max() < TOLERANCE
    assert np.array_equal(shown >= 0.5, expected >= 0.5)  # the same decision on every review
    assert len({round(p, 3) for p in shown}) > REVIEWS // 4  # the page really scored each review
    assert not errors


@pytest.mark.parametrize("review_index", [0, 3])
def test_highlights_equal_keras_occlusion(browser, site: str, keras_model, tokenizer_json: dict,
                                          review_index: int) -> None:
    """Each highlighted word's effect is Keras' P(review) - P(review without that word); a review longer than the
    window lets the first word past it move in."""
    review = pd.read_csv(SAMPLE_CSV)["review"].iloc[review_index]
    window = tokenizer_json["sequence_length"]
    spans = WindowReader(tokenizer_json["split"], tokenizer_json["strip_regex"], window)(review).spans[:window]
    texts = [review] + [review[:start] + review[end:] for start, end in spans]
    probabilities = keras_probabilities(keras_model, texts)
    errors: list[str] = []
    page = ready_page(browser, site, errors)
    try:
        page.fill("#review", review)
        page.click("#classify")
        page.wait_for_selector("#highlights[data-ms]", timeout=BROWSER_TIMEOUT_MS)
        effects = [float(x) for x in page.eval_on_selector_all("#highlights span", "s => s.map(e => e.dataset.effect)")]
        words = page.eval_on_selector_all("#highlights span", "s => s.map(e => e.textContent)")
    finally:
        page.close()
    assert words == [review[start:end] for start, end in spans]
    assert np.abs(np.array(effects) - (probabilities[0] - probabilities[1:])).max() < TOLERANCE
    assert not errors


def test_tokens_equal_keras_on_real_reviews_and_hostile_strings(browser, site: str, keras_model,
                                                                tokenizer_json: dict) -> None:
    """Real reviews, then non-ASCII letters, emoji, lone surrogates, other whitespace, punctuation and 1 MB of text:
    the page's words, word ids, n-gram ids and probabilities are Keras' for the text as the Space cleans it."""
    texts = pd.read_csv(SAMPLE_CSV)["review"].iloc[:REVIEWS].tolist() + HOSTILE
    import keras
    import tensorflow as tf

    config = json.loads(staged_site_config(site))
    base = f"{config['hub_url']}/{config['model_repo']}/resolve/{config['revision']}/"
    errors: list[str] = []
    page = ready_page(browser, site, errors)
    try:
        got = page.evaluate(IN_PAGE_TOKENS, [base, config["max_text_chars"], json.dumps(texts)])
    finally:
        page.close()
    cleaned = [clean(text) for text in texts]
    # The words themselves (most are out of the tiny vocabulary): the model tokenizer's own rules, with a vocabulary
    # of every word of these texts.
    words = keras.layers.TextVectorization(**{key: keras_model.get_layer("tokenizer").get_config()[key]
                                              for key in ("standardize", "split")})
    words.adapt(cleaned)
    vocabulary = words.get_vocabulary()
    all_words = words(tf.constant(cleaned)).numpy()
    ids = keras_model.get_layer("tokenizer")(tf.constant(cleaned)).numpy()
    ngram_layer = keras_model.get_layer("ngram_tokenizer")
    ngram_ids = ngram_layer(tf.constant(cleaned)).indices.numpy()  # (row, n-gram id)
    ngrams = [None, *ngram_layer.get_vocabulary()[1:]]  # id 0: any other n-gram
    expected = keras_probabilities(keras_model, cleaned)
    for row, (text, page_result) in enumerate(zip(texts, got)):
        assert page_result["tokens"] == [vocabulary[i] for i in all_words[row] if i != tokenizer_json["pad_id"]]
        assert page_result["ids"] == [int(i) for i in ids[row] if i != tokenizer_json["pad_id"]], text[:80]
        keras_ngrams = [ngrams[i] for i in ngram_ids[ngram_ids[:, 0] == row, 1]]
        assert sorted(page_result["ngrams"], key=str) == sorted(keras_ngrams, key=str)
        assert abs(page_result["probability"] - expected[row]) < TOLERANCE, text[:80]
    assert not errors


def page_equals_keras(browser, folder: Path, tmp_path: Path, reviews: list[str], highlighted: list[str]) -> None:
    """The model folder exported for the page and published on a local Hub: the page's probability of every review
    and the highlights of each `highlighted` one (its words' occlusion effects) equal plain Keras'."""
    import keras

    assert run_module("training.web_export", "--model-dir", str(folder)).returncode == 0
    model = keras.saving.load_model(folder, safe_mode=True)
    window = model.get_layer("tokenizer").get_config()["output_sequence_length"]
    errors: list[str] = []
    with FakeHub() as server:
        commit = server.publish(MODEL_REPO, {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*")
                                             if p.is_file()}, repo_type="model")
        with serving(staged_site(tmp_path / "space", server.url, MODEL_REPO, commit)) as url:
            page = ready_page(browser, url, errors)
            try:
                shown = np.array(page.evaluate(CLASSIFY_EACH, reviews))
                effects = []
                for review in highlighted:
                    page.fill("#review", review)
                    page.click("#classify")
                    page.wait_for_selector("#highlights[data-ms]", timeout=BROWSER_TIMEOUT_MS)
                    effects.append(page.eval_on_selector_all("#highlights span",
                                                             "s => s.map(e => Number(e.dataset.effect))"))
                    page.evaluate("document.getElementById('highlights').removeAttribute('data-ms')")
            finally:
                page.close()
    assert np.abs(shown - keras_probabilities(model, reviews)).max() < TOLERANCE
    for review, shown_effects in zip(highlighted, effects):
        spans = WindowReader("whitespace", STRIP_REGEX, window)(review).spans[:window]
        occluded = keras_probabilities(model, [review] + [review[:start] + review[end:] for start, end in spans])
        assert np.abs(np.array(shown_effects) - (occluded[0] - occluded[1:])).max() < TOLERANCE
    assert not errors


def sample_reviews(folder: Path, count: int) -> list[str]:
    """The first `count` reviews of the sample, as written."""
    return pd.read_csv(SAMPLE_CSV)["review"].iloc[:count].tolist()


def test_the_original_tutorials_network(browser, tutorial_model: Path, tmp_path: Path) -> None:
    """`--preset tutorial`: no padding mask (padding is read like words), the BiLSTM's last states instead of the max
    over time, no n-gram branch. Probabilities and highlights still equal Keras'."""
    folder = tmp_path / "tutorial"
    shutil.copytree(tutorial_model, folder)
    reviews = sample_reviews(folder, 50)
    page_equals_keras(browser, folder, tmp_path, reviews + ["Fine."], reviews[:1])


def test_the_real_window_on_short_and_long_reviews(browser, window_model: Path, tmp_path: Path) -> None:
    """With the default's 400-token window most reviews are shorter than the window: their probabilities and
    highlights (the masked, short-review path) equal Keras', as do those of a review longer than the window."""
    folder = tmp_path / "window"
    shutil.copytree(window_model, folder)
    reviews = sample_reviews(folder, 50)
    short = min(reviews, key=len)
    long = max(reviews, key=len)
    assert len(short.split()) < REAL_WINDOW < len(long.split())
    page_equals_keras(browser, folder, tmp_path, reviews + ["Fine."], [short, long])


def staged_site_config(site: str) -> str:
    import urllib.request

    with urllib.request.urlopen(site + publish.STATIC_CONFIG, timeout=10) as response:
        return response.read().decode()


def test_classifying_makes_no_network_request(browser, site: str, hub: tuple[FakeHub, str]) -> None:
    """After the model has loaded, the review and its highlights stay in the page: not one request goes out."""
    errors: list[str] = []
    requests: list[str] = []
    page = browser.new_page()
    page.add_init_script(STATUS_LOG)
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(site, timeout=BROWSER_TIMEOUT_MS)
        page.wait_for_selector("body[data-ready=true]", timeout=BROWSER_TIMEOUT_MS)
        # The page said how far the download had got while it loaded.
        statuses = page.evaluate("window.statuses")
        assert any(re.fullmatch(r"Downloading the model: \d+\.\d of \d+\.\d MB .*", line) for line in statuses)
        # While loading, only the page's own files and the Hub were asked for anything: no CDN.
        assert requests and all(url.startswith((site, hub[0].url + "/")) for url in requests), requests
        loaded = len(requests)
        for review in ["A private review: nobody else should read these words.", "Dull. " * 200]:
            page.fill("#review", review)
            page.click("#classify")
            page.wait_for_selector("#highlights[data-ms]", timeout=BROWSER_TIMEOUT_MS)
            page.evaluate("delete document.getElementById('highlights').dataset.ms")
        page.locator("#examples button").first.click()
        page.wait_for_selector("#highlights[data-ms]", timeout=BROWSER_TIMEOUT_MS)
    finally:
        page.close()
    assert requests[loaded:] == []
    assert not errors


def damaged_files(files: dict[str, bytes], problem: str) -> dict[str, bytes]:
    """The model repo's files with one `problem`, as a bad mirror, a mixed-up upload or a hostile repo has it."""
    weights, manifest = bytearray(files["web/weights.bin.gz"]), json.loads(files["web/model.json"])
    if problem == "damaged weights":  # the same size, one byte changed
        weights[100] ^= 0xFF
    elif problem == "oversized weights":  # far more than the manifest says: stopped while streaming
        weights += bytes(64 << 20)
    elif problem == "huge manifest":
        manifest["padding"] = "x" * (2 << 20)
    elif problem == "tensor outside weights":
        manifest["output"]["kernel"]["offset"] = manifest["files"]["weights.bin.gz"]["unpacked_bytes"] - 4
    elif problem == "weights unpack larger":  # a gzip bomb's way: stopped while unpacking
        manifest["files"]["weights.bin.gz"]["unpacked_bytes"] -= 4
    return {**files, "web/weights.bin.gz": bytes(weights), "web/model.json": json.dumps(manifest).encode()}


DAMAGED = {"damaged weights": "web/weights.bin.gz is damaged",
           "oversized weights": "weights.bin.gz is larger than the {weights} bytes its manifest says",
           "huge manifest": "model.json is larger than the 1048576 bytes a manifest may have",
           "tensor outside weights": "web/model.json names a tensor (offset {last}, shape",
           "weights unpack larger": "web/weights.bin.gz unpacks to more than the {short} bytes its manifest says"}


@pytest.mark.parametrize("problem", ["missing repo", "missing revision", "unreachable hub", *DAMAGED])
def test_a_model_that_cannot_be_fetched_is_said_clearly(browser, hub: tuple[FakeHub, str], tmp_path: Path,
                                                        problem: str) -> None:
    server, commit = hub
    damaged = None
    files = server.files(MODEL_REPO, commit)
    weights = len(files["web/weights.bin.gz"])
    unpacked = json.loads(files["web/model.json"])["files"]["weights.bin.gz"]["unpacked_bytes"]
    if problem in DAMAGED:
        damaged = server.publish(f"{FakeHub.user}/damaged", damaged_files(server.files(MODEL_REPO, commit), problem),
                                 repo_type="model")
    hub_url, repo, revision = {"missing repo": (server.url, f"{FakeHub.user}/no-such-model", commit),
                               "missing revision": (server.url, MODEL_REPO, "0" * 40),
                               "unreachable hub": (DEAD_HUB, MODEL_REPO, commit)}.get(
                                   problem, (server.url, f"{FakeHub.user}/damaged", damaged))
    errors: list[str] = []
    # The vocabulary arrives only after the weights have failed: its progress must not hide the failure.
    held = Held("**/web/vocabulary.json.gz") if problem == "damaged weights" else None
    with serving(staged_site(tmp_path / "space", hub_url, repo, revision)) as url:
        page = open_page(browser, url, errors, held)
        try:
            status = page.locator("#status.error")
            sync_api.expect(status).to_contain_text("The model could not be fetched", timeout=BROWSER_TIMEOUT_MS)
            if held:
                held.release(page)
            sync_api.expect(status).to_contain_text("The model could not be fetched")
            text = status.text_content()
        finally:
            page.close()
    assert repo in text and revision in text
    expected = {"unreachable hub": "could not be reached", "missing repo": "HTTP 401", **DAMAGED}.get(problem, "HTTP 404")
    assert expected.format(weights=weights, last=unpacked - 4, short=unpacked - 4) in text
    assert not errors


def test_a_failure_while_classifying_is_said_on_the_page(browser, site: str) -> None:
    """An exception inside classify() shows a clear message instead of leaving "Finding the words..." on screen."""
    errors: list[str] = []
    page = ready_page(browser, site, errors)
    try:
        page.evaluate("""async () => {
          const { Model } = await import("./sentiment.js");
          Model.prototype.explain = async () => { throw new RangeError("out of memory in a test"); };
        }""")
        page.fill("#review", "A fine film.")
        page.click("#classify")
        status = page.locator("#status.error")
        sync_api.expect(status).to_contain_text("This review could not be classified (RangeError: out of memory in "
                                                "a test)", timeout=BROWSER_TIMEOUT_MS)
        assert page.locator("#explain-status").text_content() == ""
    finally:
        page.close()
    assert not errors


def test_the_iframe_snippet_embeds_the_page(browser, site: str, screenshots: Path) -> None:
    """README's <iframe> snippet in a page of another origin: the page loads the model and classifies in it."""
    errors: list[str] = []
    with serving(TESTS_DIR) as host:
        page = open_page(browser, f"{host}embed_static.html?src={site}", errors)
        try:
            frame = page.frame_locator("#embedded")
            frame.locator("body[data-ready=true]").wait_for(timeout=BROWSER_TIMEOUT_MS)
            frame.locator("#review").fill("A moving, beautifully acted film.")
            frame.locator("#classify").click()
            sync_api.expect(frame.locator("#probability")).to_have_text(re.compile(r"^[01]\.\d{4}$"),
                                                                        timeout=BROWSER_TIMEOUT_MS)
            frame.locator("#highlights[data-ms]").wait_for(timeout=BROWSER_TIMEOUT_MS)
        finally:
            path = screenshots / "static-space-embedded.png"
            page.screenshot(path=str(path), full_page=True)
            print(f"screenshot: {path}")
            page.close()
    assert not errors
