"""The Gradio Space: a movie review in, P(positive) and the words that moved it out; CSVs in bulk; an API.
`MODEL_REPO=owner/name python app.py` (a Hub repo, or a folder made by `python -m training.train`)."""

from __future__ import annotations

import gc
import logging
import math
import os
import threading
from pathlib import Path

import lean_memory

# Each setting here is explained under "Serving more traffic" and "Memory" in tools/README.md.
lean_memory.tame()  # before Gradio and TensorFlow start their threads
# The start makes close to a million objects that live as long as the server; the garbage collector would walk them
# again at every collection. It rests until they are frozen, once the page is built.
gc.disable()
# More threads than calls run at once: a CSV's long op never holds up a one-line API call's.
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "16")
# Gradio's monitoring summary, rebuilt after every event by default, costs much of the CPU under load.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")

import gradio as gr  # noqa: E402  (reads the setting above)
from gradio.utils import get_upload_folder  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

import inference  # noqa: E402
import limits  # noqa: E402
import review_csv  # noqa: E402
from examples import EXAMPLES
from review_text import MAX_TEXT_CHARS

log = logging.getLogger("space")
# Our own lines (model loading; never a review) at INFO, the libraries' at WARNING.
logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
log.setLevel(logging.INFO)

TITLE = "Movie review sentiment: a bidirectional LSTM"
EMPTY_REVIEW = "Type or paste a review first: the text is empty."
# Label names live in the model folder; without one, the page shows these placeholders.
NO_MODEL_LABELS = ("label 0", "label 1")
# Of the text after the last word the model reads, the highlights show at most this much, then MORE.
TAIL_CHARS = 200
MORE = " [...]"
# What a caller sent instead of a string, in the API's terms (JSON).
JSON_TYPES = {bool: "a boolean", int: "a number", float: "a number", list: "an array", dict: "an object"}
# Each kind of work has its own bound: past it, a call is refused at once with "busy, try again". Classify runs
# one at a time in Gradio's queue; the CSV tab and the API have a gate.
CSV_GATE = limits.Gate(running=1, waiting=4, per_session=2)
# The page's kinds wait in Gradio's queue, at most this many each; past them, refused at the door (limits.QueueDoor).
QUEUE_LINES = {"classify": 16, "score_csv": 8}
API_FIRST_S = 0.05  # a long batch waits this long at most, between chunks, for the API's calls to go first
QUEUE_MAX_SIZE = 256
QUEUE_POLL_S = 0.02  # Gradio's queue polls every 1 ms while free: an idle Space would not rest
# Request bodies: one review is at most about 240 kB of JSON; a 5 MB CSV in base64 (MCP) is 6.7 MB.
BODY_CAP = 1024 * 1024
FILE_BODY_CAP = 8 * 1024 * 1024
FILE_ROUTES = ("/gradio_api/upload", "/gradio_api/mcp")
# Each call without a session is a new Gradio session, and the page keeps nothing between events.
STATE_CAPACITY = 256
# The API's queue-less routes, whose calls without a session share one (limits.SharedSession): they keep nothing.
API_ROUTES = ("/gradio_api/run/predict", "/gradio_api/run/probability")
API_SESSION = "api"
# Word highlights: a diverging pair that colour-blind readers tell apart too (ColorBrewer's RdBu blues and
# PuOr oranges): blue pushed towards the positive label, orange towards the negative one. A word's effect
# is compared with the strongest word's: the darker shade from STRONG times it, no colour under FAINT times it.
POSITIVE_SHADES = ("#92c5de", "#2166ac")
NEGATIVE_SHADES = ("#fdb863", "#e66101")
STRONG = 0.5
FAINT = 0.1
# Scored CSVs are written into Gradio's cache, from where Gradio serves a file as it is (no copy). Gradio deletes
# the files of its cache that it served or received (scored CSVs, uploads) once they are DELETE_AFTER_S old,
# looking every DELETE_EVERY_S, so that none is kept for over an hour.
OUTPUT_ROOT = Path(get_upload_folder())
DELETE_AFTER_S = 3000
DELETE_EVERY_S = 600


try:  # the model named by the environment, or None and what is missing
    PREDICTOR, PROBLEM = inference.load_from_environment(), ""
except inference.ModelUnavailable as problem:
    log.warning("no model: %s", problem)
    PREDICTOR, PROBLEM = None, str(problem)
# The model's programs compile while the page is built and the server starts: the compiler runs outside Python.
WARM_UP = threading.Thread(target=PREDICTOR.warm_up if PREDICTOR else None, name="warm-up")
WARM_UP.start()


def confidences(probability: float) -> dict[str, float]:
    """Both labels with their probabilities, as `gr.Label` shows them."""
    negative, positive = PREDICTOR.labels
    return {positive: probability, negative: 1.0 - probability}


def word_classes(labels: tuple[str, str]) -> dict[str, str]:
    """The highlight classes, weakest to strongest on each side, with their colours (the page's legend)."""
    negative, positive = labels
    return {f"towards {positive}": POSITIVE_SHADES[0], f"strongly towards {positive}": POSITIVE_SHADES[1],
            f"towards {negative}": NEGATIVE_SHADES[0], f"strongly towards {negative}": NEGATIVE_SHADES[1]}


def word_class(effect: float, strongest: float, labels: tuple[str, str]) -> str | None:
    """The highlight class of a word whose removal lowers P(positive) by `effect`; None if it hardly matters."""
    if not strongest or abs(effect) < FAINT * strongest:
        return None
    strength = "strongly towards" if abs(effect) >= STRONG * strongest else "towards"
    return f"{strength} {labels[1] if effect > 0 else labels[0]}"


def highlights(explanation: inference.Explanation, cut: bool) -> list[tuple[str, str | None]]:
    """The text the model read, each word with its highlight class (the words that moved the score most); of
    the text after its last word, at most TAIL_CHARS, then MORE if anything was left out (`cut`: the text was
    longer than MAX_TEXT_CHARS)."""
    window, effects = explanation.window, explanation.effects
    strongest = float(abs(effects).max()) if len(effects) else 0.0
    pieces: list[tuple[str, str | None]] = []
    position = 0
    for (start, end), effect in zip(window.spans, effects):
        if start > position:
            pieces.append((window.text[position:start], None))
        pieces.append((window.text[start:end], word_class(float(effect), strongest, PREDICTOR.labels)))
        position = end
    tail = "" if window.truncated else window.text[position:]
    if tail:
        pieces.append((tail[:TAIL_CHARS], None))
    if window.truncated or cut or len(tail) > TAIL_CHARS:
        pieces.append((MORE, None))
    return pieces


def note(explanation: inference.Explanation, cut: bool) -> str:
    """What the reader should know about how much of the text was read."""
    window = explanation.window
    if window.truncated:
        rest = "the n-gram part read all of it" if PREDICTOR.has_ngram_branch else "the rest was ignored"
        message = (f"This review is longer than the model's window: the LSTM read only its first "
                   f"{PREDICTOR.window_size} words (highlighted), {rest}.")
    elif not window.spans:
        message = "The text has no words, only punctuation: the score is the model's answer for an empty review."
    else:
        message = ""
    if cut:
        message += f" Texts are cut at {MAX_TEXT_CHARS:,} characters: the end of this one was not read."
    return message.strip()


def classify(review: str | None) -> tuple[dict[str, float] | None, float | None, list, str]:
    """Label confidences, P(positive), word highlights and a note."""
    if PREDICTOR is None:
        return None, None, [], PROBLEM
    if inference.blank(review):
        return None, None, [], EMPTY_REVIEW
    explanation, cut = PREDICTOR.explain(review), len(review) > MAX_TEXT_CHARS
    return (confidences(explanation.probability), explanation.probability, highlights(explanation, cut),
            note(explanation, cut))


def not_text(value: object) -> str | None:
    """Why an API call's review is refused (it must be a string or null), or None."""
    if value is None or isinstance(value, str):
        return None
    return f"The review must be a string (or null for no review), not {JSON_TYPES.get(type(value), type(value).__name__)}."


def require_text(review: object) -> dict:
    """The API's validator for calls through Gradio's queue (/gradio_api/call/...): HTTP 400 with the reason."""
    if problem := not_text(review):
        raise ValueError(problem)
    return gr.validate(True, "")


def probabilities_or_none(reviews: list[str | None]) -> list[float | None]:
    """P(positive) of each review, None for a blank one (one blank text must not fail a whole batch)."""
    return [None if math.isnan(p) else p for p in PREDICTOR.probabilities_or_nan(reviews).tolist()]


# The API's calls that wait while the model is busy are scored together, up to 32 a model call.
API_GATE = limits.BatchGate(probabilities_or_none, running=2, waiting=128, max_batch=32)
if PREDICTOR:
    PREDICTOR.between_chunks = lambda: API_GATE.idle.wait(API_FIRST_S)


async def probability(review: str | None) -> float | None:
    """The probability that an English movie review is positive, from 0 to 1, or null for an empty text.

    Args:
        review: the text of an English movie review (plain text; HTML line breaks such as <br /> are fine)
    """
    if problem := not_text(review):  # the queue-less route skips the validator
        raise gr.Error(problem)
    if PREDICTOR is None:
        raise gr.Error(PROBLEM)
    return await API_GATE.run(review)


async def predict(review: str | None) -> dict[str, float] | None:
    """Classify the sentiment of an English movie review: the confidence of each label, or null for an empty text.

    Args:
        review: the text of an English movie review (plain text; HTML line breaks such as <br /> are fine)
    """
    p = await probability(review)
    return None if p is None else confidences(p)


def described(does: str, returns: str) -> str:
    """An endpoint's description for API and MCP users: what it does, what comes back, the limits."""
    lstm = f"the first {PREDICTOR.window_size:,} words" if PREDICTOR else "the start"
    return (f"{does} Returns {returns}. Limits: texts are cut at {MAX_TEXT_CHARS:,} characters, and the model's "
            f"LSTM reads {lstm} of a review (its n-gram part reads all of it); it learned from English movie "
            "reviews (IMDB), so other languages and other kinds of text get unreliable answers.")


def scored_csv(upload: str | None) -> tuple[str | None, str]:
    """The scored CSV of an upload and a message with the counts, or None and what is wrong."""
    if PREDICTOR is None:
        return None, PROBLEM
    if upload is None:
        return None, f"Upload a CSV file with a `{review_csv.TEXT_COLUMN}` column first."
    try:
        path, scored = review_csv.score_upload(Path(upload), OUTPUT_ROOT, PREDICTOR.probabilities_or_nan,
                                               PREDICTOR.labels)
    except review_csv.CsvError as problem:
        return None, str(problem)
    message = f"Scored {scored.rows - scored.blank:,} review(s)."
    if scored.blank:
        message += f" {scored.blank:,} empty review(s) left without a score."
    return str(path), message


async def score_csv(upload: str | None, request: gr.Request) -> tuple[str | None, str]:
    """Score every review of a CSV file.

    Args:
        upload: a UTF-8 CSV file with a header row and a `review` column, uploaded (through MCP: a base64 data: URI); a URL is refused, not fetched
    """
    return await CSV_GATE.run(scored_csv, upload, session=request.session_hash)


def csv_summary(scored: str | None) -> tuple[dict, dict, dict]:
    """The CSV tab beside the download: the first scored rows, the count per label, P(positive) for the histogram;
    hidden while there is nothing scored (an empty table would show made-up headers)."""
    if scored is None:
        return tuple(gr.update(value=None, visible=False) for _ in range(3))
    return tuple(gr.update(value=table, visible=True) for table in review_csv.summary(Path(scored), PREDICTOR.labels))


def review_tab(labels: tuple[str, str]) -> None:
    """The Review tab: a review in; the prediction, P(positive) and the words that moved it out."""
    with gr.Tab("Review"):
        with gr.Row():
            with gr.Column():
                review = gr.Textbox(label="Review", lines=8, placeholder="This film was...", elem_id="review")
                button = gr.Button("Classify", variant="primary", elem_id="classify")
            with gr.Column():
                label = gr.Label(num_top_classes=2, label="Prediction", elem_id="prediction")
                number = gr.Number(label=f"P({labels[1]})", precision=4, interactive=False, placeholder="-",
                                   elem_id="probability")
                message = gr.Markdown(elem_id="note")
        words = gr.HighlightedText(
            label=f"Words the model read: blue pushed it towards {labels[1]}, orange towards {labels[0]} "
            "(how much the score changes when the word is left out; darker: stronger)",
            color_map=word_classes(labels), show_legend=True, show_inline_category=False, elem_id="highlights",
        )
        gr.Examples(EXAMPLES, inputs=review, cache_examples=False)
    button.click(classify, review, [label, number, words, message], api_name="classify", api_visibility="private",
                 concurrency_limit=1)


def csv_tab(labels: tuple[str, str]) -> None:
    """The CSV tab: a CSV in; the scored CSV, the count per label, a histogram and the first rows out."""
    size_limits = f"at most {review_csv.MAX_ROWS:,} rows and {review_csv.MAX_BYTES // (1024 * 1024)} MB"
    added = (f"`{review_csv.PROBABILITY_COLUMN}` (P({labels[1]})) and `{review_csv.LABEL_COLUMN}` (the model's "
             "answer)")
    with gr.Tab("Batch (CSV)"):
        gr.Markdown(f"Upload a UTF-8 CSV with a `{review_csv.TEXT_COLUMN}` column ({size_limits}). You get it back "
                    f"with two columns first, {added}, then every column of yours as it was.")
        with gr.Row():
            with gr.Column():
                upload = limits.UploadedFile(label="CSV file", file_types=[".csv"], type="filepath")
                score_button = gr.Button("Score the file", variant="primary")
                scored = gr.File(label="Scored CSV", elem_id="scored")
                message = gr.Markdown(elem_id="batch-message")
            with gr.Column():
                counts = gr.Dataframe(label="Reviews per label", interactive=False, visible=False,
                                      elem_id="label-counts")
                histogram = gr.BarPlot(x=review_csv.PROBABILITY_COLUMN, y="reviews", x_title=f"P({labels[1]})",
                                       sort="x", label="Scored reviews by probability", visible=False,
                                       elem_id="histogram")
        preview = gr.Dataframe(label=f"The first {review_csv.PREVIEW_ROWS} rows of the scored CSV, the model's "
                               "answers first", interactive=False, max_chars=200, wrap=True, visible=False,
                               elem_id="preview")
    description = described(f"Scores every review of a CSV file (a `{review_csv.TEXT_COLUMN}` column, {size_limits}).",
                            f"the scored CSV ({added} first, then every column of the upload; an upload that "
                            f"already has a column of one of those names is refused) and a message with the counts")
    score_button.click(score_csv, upload, [scored, message], api_name="score_csv", api_description=description,
                       concurrency_limit=CSV_GATE.capacity).then(csv_summary, scored, [preview, counts, histogram], api_visibility="private")


def api_endpoints(labels: tuple[str, str]) -> None:
    """/predict and /probability (also MCP tools): batched, on hidden components."""
    with gr.Row(visible=False):  # the API's inputs and outputs, never shown on the page
        api_review = gr.Textbox(label="review")
        api_confidences = gr.JSON(label="confidences")
        api_probability = gr.Number(label="probability")
    endpoints = (
        ("predict", predict, api_confidences,
         described("Classifies the sentiment of an English movie review.",
                   f"the confidence of each label ({labels[1]} and {labels[0]}, adding up to 1), or null for an "
                   "empty text")),
        ("probability", probability, api_probability,
         described(f"The probability that an English movie review is {labels[1]}.",
                   f"one number from 0 (surely {labels[0]}) to 1 (surely {labels[1]}), or null for an empty text")),
    )
    for api_name, endpoint, output, description in endpoints:
        # preprocess=False: the checks must see what was sent, not Textbox's str() of it. concurrency_limit=None:
        # the gate bounds them, on either route.
        api_review.submit(endpoint, api_review, output, api_name=api_name, api_description=description, queue=False,
                          concurrency_limit=None, validator=require_text, preprocess=False)


def build() -> gr.Blocks:
    """The page and its named API endpoints."""
    labels = PREDICTOR.labels if PREDICTOR else NO_MODEL_LABELS
    with gr.Blocks(title=TITLE, delete_cache=(DELETE_EVERY_S, DELETE_AFTER_S)) as page:
        gr.Markdown(f"# {TITLE}\nPaste an English movie review; the model gives the probability that it is "
                    f"**{labels[1]}** and shows which words pushed it up or down.")
        if PROBLEM:
            gr.Markdown(f"**The model is not available.** {PROBLEM}", elem_id="model-problem")
        review_tab(labels)
        csv_tab(labels)
        api_endpoints(labels)
    # api_open=False: the queued events (Classify, the CSV tab) cannot be called around the queue.
    page.queue(max_size=QUEUE_MAX_SIZE, api_open=False)
    limits.rest(page, QUEUE_POLL_S)
    return page


demo = build()
# The start's objects (the libraries, the model, the page) leave the collector's work for good: walking them all at
# each full collection paused the server under load. Frozen as they are: a collection first would hold up the first
# answer, and the start leaves little garbage.
gc.freeze()
gc.enable()


def body_cap(path: str) -> int:
    """The most bytes a request body to `path` may have."""
    return FILE_BODY_CAP if path.startswith(FILE_ROUTES) else BODY_CAP


if __name__ == "__main__":
    # mcp_server: the API endpoints are also MCP tools, at /gradio_api/mcp/ (see README.md).
    demo.launch(max_file_size=review_csv.MAX_BYTES, state_session_capacity=STATE_CAPACITY, mcp_server=True,
                prevent_thread_lock=True, app_kwargs={"middleware": [
                    Middleware(limits.BodyCap, cap_for=body_cap),
                    Middleware(limits.QueueDoor, page=demo, lines=QUEUE_LINES),
                    Middleware(limits.SharedSession, paths=API_ROUTES, session=API_SESSION)]})
    # The rest of the start-up runs while the Space already answers; what compiling made is frozen too.
    WARM_UP.join()
    gc.collect()
    gc.freeze()
    lean_memory.page_out_libraries()
    demo.block_thread()
