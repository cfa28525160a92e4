"""The Space in-process: scoring, occlusion, the page's answers to bad input, the CSV tab, model problems."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import space_support  # noqa: F401  (the quiet environment, before gradio is imported)

import gradio as gr  # noqa: E402  (after space_support set the telemetry variables)
from gradio import route_utils  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import fast_bilstm  # noqa: E402
import review_csv  # noqa: E402
import inference  # noqa: E402
import model_folder  # noqa: E402
from review_text import MAX_TEXT_CHARS, WindowReader, clean  # noqa: E402
from tools import publish  # noqa: E402
from training import web_export  # noqa: E402
from training.model import PAD_ID  # noqa: E402

LINE_BREAK = "<br />"  # what the IMDB dump has between paragraphs
SAMPLE_CSV = Path(__file__).resolve().parent.parent / "training" / "data" / "imdb_sample.csv.gz"

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def model_dir(tiny_model: Path) -> Path:
    return tiny_model


@pytest.fixture(scope="module")
def window(model_dir: Path) -> int:
    return json.loads((model_dir / "tokenizer.json").read_text())["sequence_length"]


@pytest.fixture(scope="module")
def predictor(model_dir: Path) -> inference.Predictor:
    return inference.load_predictor(model_dir)


@pytest.fixture(scope="module")
def model(model_dir: Path) -> keras.Model:
    return keras.saving.load_model(model_dir, safe_mode=True)


@pytest.fixture(scope="module")
def app(model_dir: Path):
    """The app module, imported fresh with MODEL_REPO pointing at the tiny folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODEL_REPO", str(model_dir))
        patch.delenv("SPACE_ID", raising=False)
        sys.modules.pop("app", None)
        yield importlib.import_module("app")


def reference(model: keras.Model, texts: list[str]) -> np.ndarray:
    """What the saved model itself says, through Keras, on the raw text."""
    return model(tf.constant(texts)).numpy()[:, 0]


def words(n: int) -> str:
    pool = "the film was great but the plot felt thin and the acting was wooden , sadly".split()
    return " ".join(pool[i % len(pool)] for i in range(n))


# ---------------------------------------------------------------- scoring


def test_scores_match_the_saved_model(predictor, model, window: int) -> None:
    texts = [
        "A wonderful, moving film.",
        f"Awful.{LINE_BREAK}{LINE_BREAK}Boring and far too long.",
        "!!! ... -- ?",  # words that are all punctuation give no token
        words(window + 25),  # cut at the window
        "tab\tand\x0bvertical\x0cform feed\rbreaks\x1cand\u00a0others\u2028too",
        "",
    ]
    np.testing.assert_allclose(predictor.probabilities(texts), reference(model, texts), atol=1e-5)


def test_a_batch_of_many_chunks_gives_each_review_its_own_score(predictor, model, window: int) -> None:
    """A batch is scored in chunks, in length order: every score must go back to its own review."""
    lengths = np.random.default_rng(0).integers(1, window + 5, 3 * inference.MAX_BATCH + 7)
    texts = [words(int(n)) + f" review {i}" for i, n in enumerate(lengths)]
    pauses = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(predictor, "between_chunks", lambda: pauses.append(1))
        np.testing.assert_allclose(predictor.probabilities(texts), reference(model, texts), atol=1e-5)
    assert len(pauses) == 3  # between the 4 chunks: other calls may go first there (see app.py)


def padded_ids(lengths: list[int], window: int, vocabulary: int) -> tf.Tensor:
    """Random word ids, row i holding lengths[i] words and padding after them."""
    ids = np.random.default_rng(1).integers(2, vocabulary, (len(lengths), window))
    return tf.constant(np.where(np.arange(window) < np.array(lengths)[:, None], ids, PAD_ID), tf.int64)


def test_the_bilstm_loop_gives_the_logits_of_keras_layers(model, window: int) -> None:
    """The Space computes the presets' BiLSTM classifier in a loop of its own: reviews shorter than the window
    (masked steps), filling it, and empty give the logits of Keras' layers."""
    classifier = model.get_layer(model_folder.CLASSIFIER_LAYER)
    assert fast_bilstm.computes(classifier)
    vocabulary = classifier.get_layer(model_folder.EMBEDDING_LAYER).input_dim
    ids = padded_ids([0, 1, 5, window // 2, window - 1, window], window, vocabulary)
    loop = tf.function(fast_bilstm.logits(classifier, PAD_ID), jit_compile=True)
    np.testing.assert_allclose(loop(ids), classifier(ids), atol=1e-5)


@pytest.mark.parametrize("change", ["unmasked", "last state", "relu cells"])
def test_other_classifiers_are_left_to_keras(change: str) -> None:
    """A classifier the loop does not compute exactly (the `tutorial` preset's: no mask, the last state) is
    computed by its own layers."""
    layers = keras.layers
    ids = keras.Input(shape=(None,), dtype="int64")
    x = layers.Embedding(50, 4, mask_zero=change != "unmasked", name=model_folder.EMBEDDING_LAYER)(ids)
    lstm = layers.LSTM(3, return_sequences=change != "last state", activation="relu" if change == "relu cells" else "tanh")
    x = layers.Bidirectional(lstm, name=model_folder.BILSTM_LAYER)(x)
    if change != "last state":
        x = layers.GlobalMaxPooling1D()(x)
    classifier = keras.Model(ids, layers.Dense(1)(layers.Dense(2, activation="relu")(x)))
    assert not fast_bilstm.computes(classifier)
    rows = padded_ids([0, 3, 9], 9, 50)
    np.testing.assert_allclose(fast_bilstm.logits(classifier, PAD_ID)(rows), classifier(rows), atol=1e-6)


def test_reviews_that_fill_a_compiled_window_exactly_match_the_saved_model(predictor, model, window: int) -> None:
    """The saved model's max over time also sees its padding's zeros: a review as long as a short compiled window
    must be scored in a longer one (the full window has no padding to see)."""
    reviews = pd.read_csv(SAMPLE_CSV)["review"][:20]
    for length in [w for w in inference.WINDOWS if w < window] + [window]:
        texts = [" ".join(re.findall("[a-z]+", review.lower())[:length]) for review in reviews]
        assert {len(text.split()) for text in texts} == {length}
        np.testing.assert_allclose(predictor.probabilities(texts), reference(model, texts), atol=1e-5)


@FUZZ
@given(words=st.lists(st.sampled_from(["film", "!!", "...", "\xa0", "a-b", "\u2028", "é"]), max_size=60),
       separators=st.lists(st.sampled_from([" ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\u3000"]),
                           min_size=1),
       size=st.integers(1, 60))
def test_the_part_read_is_found_fast_and_exactly(model_dir: Path, words: list[str], separators: list[str],
                                                 size: int) -> None:
    """The shortcut for texts that cannot fill the window gives what the word-by-word reader gives, at the edge too."""
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    reader = WindowReader(tokenizer["split"], tokenizer["strip_regex"], size)
    text = "".join((separators[i % len(separators)] if i else "") + word for i, word in enumerate(words))
    assert reader.part_read(text) == reader(text).read


def test_window_and_labels_come_from_the_folder(predictor, model_dir: Path) -> None:
    assert predictor.window_size == json.loads((model_dir / "tokenizer.json").read_text())["sequence_length"]
    assert predictor.labels == tuple(json.loads((model_dir / "training_config.json").read_text())["labels"])


def test_labels_are_read_not_assumed(model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "renamed"
    shutil.copytree(model_dir, folder)
    config = json.loads((folder / "training_config.json").read_text())
    config["labels"] = ["thumbs down", "thumbs up"]
    (folder / "training_config.json").write_text(json.dumps(config))
    assert inference.load_predictor(folder).labels == ("thumbs down", "thumbs up")


@pytest.mark.parametrize("labels, says", [
    (["x", "x"], "names the same label twice"), ([" good", "good "], "names the same label twice"),
    (["", "positive"], "two non-empty strings"), (["negative", " \t"], "two non-empty strings"),
    (["negative"], "two non-empty strings"), (["a", "b", "c"], "two non-empty strings"),
    ([0, 1], "two non-empty strings"), ("negative,positive", "two non-empty strings"), (None, "two non-empty strings"),
])
def test_labels_must_be_two_different_non_empty_names(model_dir: Path, tmp_path: Path, labels, says: str) -> None:
    """Equal names would merge /predict's two confidences into one; a blank one shows nothing on the page."""
    folder = tmp_path / "relabelled"
    shutil.copytree(model_dir, folder)
    config = json.loads((folder / "training_config.json").read_text())
    (folder / "training_config.json").write_text(json.dumps({**config, "labels": labels}))
    with pytest.raises(model_folder.ModelUnavailable, match="training_config.json") as problem:
        inference.load_predictor(folder)
    assert says in str(problem.value) and "\n" not in str(problem.value)


def test_long_text_the_lstm_reads_only_the_window(predictor, model, window: int) -> None:
    ngrams = model.get_layer(inference.NGRAM_TOKENIZER_LAYER)
    # A word past the window that the n-gram branch knows and the window does not hold.
    extra = next(w for w in ngrams.get_vocabulary()[1:] if " " not in w and w not in words(window).split())
    text = words(window + 10) + " " + extra
    read = predictor.window(text)
    assert read.truncated and len([w for w in read.read.split() if w != ","]) == window
    # The LSTM's tokenizer gives the same ids for the whole text and for the part the Space tokenizes...
    tokenizer = model.get_layer(inference.TOKENIZER_LAYER)
    np.testing.assert_array_equal(tokenizer(tf.constant([text])), tokenizer(tf.constant([read.read])))
    # ...while the n-gram branch reads the rest too, as the saved model does.
    assert predictor.has_ngram_branch
    assert predictor.probabilities([text])[0] == pytest.approx(reference(model, [text])[0], abs=1e-5)
    assert ngrams(tf.constant([text])).indices.shape[0] > ngrams(tf.constant([read.read])).indices.shape[0]


def test_every_batch_and_window_shares_one_trace(predictor, window: int) -> None:
    """A trace of the BiLSTM per (batch, window) shape kept a copy of its graph each (~7 MiB); XLA still
    compiles one program per shape, but the trace is shared, by every window of both compiled calls too."""
    predictor.probabilities(["Great.", "Bad film.", "A fine film, well acted."])
    predictor.probabilities(["word " * (window + 10)] * 5)
    predictor.explain("A fine film, well acted.")
    assert predictor._classify.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("past_window", [None, -30, 0, 3])
def test_occlusion_is_the_change_when_a_word_is_left_out(predictor, model, window: int, past_window) -> None:
    # One word, a short text, exactly the window, and a longer text whose next word moves in.
    text = "great" if past_window is None else "Sadly , " + words(window + past_window - 1)
    explanation = predictor.explain(text)
    spans = explanation.window.spans[: predictor.window_size]
    assert len(explanation.effects) == len(spans)
    assert explanation.probability == pytest.approx(predictor.probabilities([text])[0], abs=1e-6)
    # Check against the saved model on the literal text with each word cut out.
    without = [text[:start] + text[end:] for start, end in spans]
    expected = reference(model, [text])[0] - reference(model, without)
    np.testing.assert_allclose(explanation.effects, expected, atol=1e-5)


# ---------------------------------------------------------------- the page's answers


def test_classify_answers_with_both_labels(app) -> None:
    review = "A wonderful, moving film."
    confidences, probability, highlights, note = app.classify(review)
    negative, positive = app.PREDICTOR.labels
    assert confidences[positive] == pytest.approx(probability)
    assert confidences[negative] == pytest.approx(1 - probability)
    assert probability == pytest.approx(app.PREDICTOR.probabilities([review])[0]) and note == ""
    assert "".join(piece for piece, _ in highlights) == review
    # Each word gets the class of its effect; the strongest word the strong class of its direction.
    words = [label for piece, label in highlights if piece.strip()]
    effects = app.PREDICTOR.explain(review).effects
    assert len(words) == len(effects) == 4 and set(words) <= set(app.word_classes(app.PREDICTOR.labels)) | {None}
    strongest = int(abs(effects).argmax())
    assert words[strongest] == f"strongly towards {positive if effects[strongest] > 0 else negative}"


def test_word_classes_follow_direction_and_strength(app) -> None:
    labels = ("bad", "good")
    assert app.word_class(0.8, 1.0, labels) == "strongly towards good"
    assert app.word_class(-0.3, 1.0, labels) == "towards bad"
    assert app.word_class(0.05, 1.0, labels) is None and app.word_class(0.0, 0.0, labels) is None
    colours = app.word_classes(labels)
    assert set(colours) == {"towards good", "strongly towards good", "towards bad", "strongly towards bad"}
    assert colours["strongly towards good"] == app.POSITIVE_SHADES[1] and colours["towards bad"] == app.NEGATIVE_SHADES[0]


def js_constants(script: str) -> dict[str, object]:
    """The `const NAME = value;` lines of one of the static page's scripts whose value is JSON."""
    text = (space_support.SPACE_DIR / "static" / script).read_text(encoding="utf-8")
    constants = {}
    for name, value in re.findall(r"^(?:export )?const ([A-Z_]+) = (.+);$", text, re.MULTILINE):
        with contextlib.suppress(ValueError):  # a regular expression, a function
            constants[name] = json.loads(value)
    return constants


def test_the_static_page_highlights_as_the_app_does(app) -> None:
    page = js_constants("app.js")
    for name in ("POSITIVE_SHADES", "NEGATIVE_SHADES"):
        assert tuple(page[name]) == getattr(app, name), name
    for name in ("STRONG", "FAINT", "TAIL_CHARS", "MORE"):
        assert page[name] == getattr(app, name), name
    assert page["CONFIG"] == publish.STATIC_CONFIG


def test_the_static_page_reads_the_files_that_web_export_writes() -> None:
    page = js_constants("sentiment.js")
    assert (page["WEB_DIR"], page["MANIFEST"], page["VOCABULARY"], page["WEIGHTS"], page["FORMAT"]) == (
        f"{web_export.WEB_DIR}/", web_export.MANIFEST, web_export.VOCABULARY, web_export.WEIGHTS, web_export.FORMAT)
    assert publish.WEB_MANIFEST == f"{web_export.WEB_DIR}/{web_export.MANIFEST}"


def test_highlights_show_a_legend_of_the_classes(app) -> None:
    components = {c.get("props", {}).get("elem_id"): c["props"] for c in app.demo.get_config_file()["components"]}
    highlights = components["highlights"]
    assert highlights["show_legend"] and highlights["color_map"] == app.word_classes(app.PREDICTOR.labels)
    assert "blue" in highlights["label"] and "orange" in highlights["label"]


@pytest.mark.parametrize("empty", ["", "   ", "\n\t ", None])
def test_empty_review_gets_a_friendly_message(app, empty) -> None:
    assert app.classify(empty) == (None, None, [], app.EMPTY_REVIEW)


def test_a_megabyte_of_text_is_answered_with_the_truncation_note(app, window: int) -> None:
    _, probability, highlights, note = app.classify("great " * 200_000)
    assert probability == pytest.approx(app.PREDICTOR.probabilities(["great " * window])[0], abs=1e-6)
    assert f"first {window} words" in note
    assert sum(1 for piece, _ in highlights if piece.strip() and piece != " [...]") == window


def test_text_past_the_character_cap_is_not_read(predictor, model) -> None:
    head = words(MAX_TEXT_CHARS // 4)[:MAX_TEXT_CHARS]
    text = head + " awful terrible boring" * 1000
    assert predictor.probabilities([text])[0] == pytest.approx(reference(model, [head])[0], abs=1e-5)


# Texts that cost the most per character before the cut: only punctuation, one huge word, combining marks.
PATHOLOGICAL = {"punctuation": "!! " * 3_500_000, "one word": "x" * 10_000_000, "combining": "e" + "\u0301" * 5_000_000,
                "words": "great " * 2_000_000}


def test_every_path_reads_at_most_the_character_cap(app, tmp_path: Path, monkeypatch) -> None:
    """The API, the Classify button and the CSV tab: the model's calls never get more than MAX_TEXT_CHARS
    characters of a text, however it is built, so any text costs what its first MAX_TEXT_CHARS cost."""
    longest = []
    for name in ("_score_texts", "_score_ids"):
        def spy(rows, texts, call=getattr(app.PREDICTOR, name)):
            strings = [*texts.numpy(), *(rows.numpy() if rows.dtype == tf.string else [])]
            longest.append(max(len(text.decode()) for text in strings))
            return call(rows, texts)

        monkeypatch.setattr(app.PREDICTOR, name, spy)
    tokenizer = app.PREDICTOR._tokenizer  # the highlights tokenize the words of the text alone

    def spy_tokenizer(words):
        longest.append(max(len(word.decode()) for word in words.numpy()))
        return tokenizer(words)

    monkeypatch.setattr(app.PREDICTOR, "_tokenizer", spy_tokenizer)
    for text in PATHOLOGICAL.values():
        asyncio.run(app.probability(text)), asyncio.run(app.predict(text)), app.classify(text)
    upload = tmp_path / "long.csv"
    upload.write_text("review\n" + "x" * (review_csv.MAX_BYTES - 100) + "\n")
    assert app.scored_csv(str(upload))[1] == "Scored 1 review(s)."
    assert longest and max(longest) <= MAX_TEXT_CHARS


@pytest.mark.parametrize("text", ["A fine film" + " !!" * 5000, *PATHOLOGICAL.values()],
                         ids=["trailing punctuation", *PATHOLOGICAL])
def test_highlights_show_what_was_read_and_a_marker_not_the_rest(app, text: str) -> None:
    _, _, pieces, note = app.classify(text)
    window = app.PREDICTOR.window(text)
    last_word_end = window.spans[min(len(window.spans), window.size) - 1][1] if window.spans else 0
    shown = "".join(piece for piece, _ in pieces)
    assert len(shown) <= last_word_end + app.TAIL_CHARS + len(app.MORE) and shown.endswith(app.MORE)
    assert (f"cut at {MAX_TEXT_CHARS:,} characters" in note) == (len(text) > MAX_TEXT_CHARS)


@pytest.mark.parametrize("text", [" " * MAX_TEXT_CHARS + "A wonderful film.", "\u200b", "\ufeff \u200b\n\u200d",
                                  "\u2060\u00ad\u200c", "\u200b" * MAX_TEXT_CHARS + "A wonderful film."],
                         ids=["spaces-then-words", "zero-width-space", "bom-and-joiner", "format-chars", "zero-width-then-words"])
def test_a_text_blank_where_it_is_read_has_nothing_to_score(app, tmp_path: Path, text: str) -> None:
    """Only whitespace, or invisible format characters (zero-width spaces, U+FEFF), in the part that is read."""
    assert inference.blank(text)
    assert asyncio.run(app.probability(text)) is None and asyncio.run(app.predict(text)) is None
    assert app.classify(text)[3] == app.EMPTY_REVIEW
    path, message = app.scored_csv(write_csv(tmp_path / "in.csv", pd.DataFrame({"review": [text, "Fine."]})))
    assert "Scored 1 review(s). 1 empty" in message
    assert pd.read_csv(path, dtype=str, keep_default_na=False)[review_csv.LABEL_COLUMN][0] == ""
    assert not inference.blank("\u200bx") and not inference.blank("\u3000\u200b\u00e9")


def test_html_is_kept_as_text(app) -> None:
    review = 'Fine <script>alert("x")</script> <img src=x onerror=alert(1)> film'
    _, _, highlights, _ = app.classify(review)
    assert "".join(piece for piece, _ in highlights) == review


@FUZZ
@given(text=st.text(alphabet=st.characters(exclude_categories=()), max_size=300) | st.just("\ud800 lone \udfff surrogates"))
def test_any_unicode_gives_a_probability(app, text: str) -> None:
    assert 0 <= app.PREDICTOR.probabilities([text])[0] <= 1
    confidences, probability, _, note = app.classify(text)
    assert (probability is None and note == app.EMPTY_REVIEW) or 0 <= probability <= 1


async def answers(app, reviews: list) -> tuple[list, list]:
    """/probability's and /predict's answers to calls made together (their gate scores them in batches)."""
    return (await asyncio.gather(*map(app.probability, reviews)), await asyncio.gather(*map(app.predict, reviews)))


def test_api_endpoints_answer_calls_made_together(app) -> None:
    reviews = ["Not bad at all.", "A dull, lifeless film.", "Wonderful!"] * 20
    probabilities, confidences = asyncio.run(answers(app, reviews))
    np.testing.assert_allclose(probabilities, app.PREDICTOR.probabilities(reviews), rtol=1e-6)
    negative, positive = app.PREDICTOR.labels
    for p, answer in zip(probabilities, confidences):
        assert answer == {positive: pytest.approx(p), negative: pytest.approx(1 - p)}
    endpoints = {dep.api_name: dep for dep in app.demo.fns.values()}
    assert {"predict", "probability", "score_csv"} <= set(endpoints)
    assert not endpoints["predict"].queue and not endpoints["probability"].queue


@pytest.mark.parametrize("empty", ["", "   ", "\n\t ", None])
def test_an_empty_text_among_others_gets_none_and_the_others_their_score(app, empty) -> None:
    probabilities, confidences = asyncio.run(answers(app, ["A fine film.", empty, "Awful."]))
    assert probabilities[1] is None and confidences[1] is None
    assert probabilities[0] == pytest.approx(asyncio.run(app.probability("A fine film.")))
    assert probabilities[2] == pytest.approx(asyncio.run(app.probability("Awful.")))


def test_api_without_a_model_says_why(app, monkeypatch) -> None:
    monkeypatch.setattr(app, "PREDICTOR", None)
    monkeypatch.setattr(app, "PROBLEM", "No model is configured.")
    with pytest.raises(gr.Error, match="No model is configured"):
        asyncio.run(app.probability("A fine film."))


def test_clean_keeps_text_and_fixes_what_cannot_be_encoded() -> None:
    assert clean(f"one{LINE_BREAK}two") == f"one{LINE_BREAK}two"
    assert clean("a\ud800b") == "a\ufffdb"
    assert clean("\U0001f600 \x00") == "\U0001f600 \x00"


# ---------------------------------------------------------------- the CSV tab


def write_csv(path: Path, frame: pd.DataFrame) -> str:
    frame.to_csv(path, index=False)
    return str(path)


PROBABILITY, LABEL = review_csv.PROBABILITY_COLUMN, review_csv.LABEL_COLUMN


def test_csv_is_scored_and_safe_for_spreadsheets(app, tmp_path: Path) -> None:
    reviews = ["A wonderful film.", "=HYPERLINK(\"http://x\",\"click\")", "", "+1 terrible", "@SUM(A1)", "-bad",
               " =HYPERLINK(\"http://x\")", "\n=1+1 dull", "\r\n \t@SUM(A1) bad", "Fine - mostly. =)"]
    ids = ["=1", " +2", "\n-3", "4", "5", "6", "7", "8", "9", "10"]
    upload = write_csv(tmp_path / "in.csv", pd.DataFrame({"id": ids, "review": reviews}))
    path, message = app.scored_csv(upload)
    assert "Scored 9 review(s)" in message and "1 empty" in message
    out = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(out.columns) == [PROBABILITY, LABEL, "id", "review"]
    guarded = [1, 3, 4, 5, 6, 7, 8]
    assert out["review"].tolist() == ["'" + text if i in guarded else text for i, text in enumerate(reviews)]
    assert out["id"].tolist()[:3] == ["'=1", "' +2", "'\n-3"]
    scores = app.PREDICTOR.probabilities(["A wonderful film.", reviews[1]])
    assert float(out[PROBABILITY][0]) == pytest.approx(scores[0], abs=1e-5)
    assert float(out[PROBABILITY][1]) == pytest.approx(scores[1], abs=1e-5)
    assert out[LABEL][0] == app.PREDICTOR.labels[int(scores[0] >= review_csv.THRESHOLD)]
    assert out[PROBABILITY][2] == "" and out[LABEL][2] == ""


def test_csv_keeps_the_callers_own_columns(app, tmp_path: Path) -> None:
    """A ground-truth `label` or a `probability` of the caller's stays as it was, beside ours."""
    given = pd.DataFrame({"label": ["neg", "pos"], "review": ["Dull.", "Great!"], "probability": ["0.1", "0.9"]})
    path, message = app.scored_csv(write_csv(tmp_path / "in.csv", given))
    out = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(out.columns) == [PROBABILITY, LABEL, "label", "review", "probability"]
    pd.testing.assert_frame_equal(out[list(given.columns)], given)
    assert set(out[LABEL]) <= set(app.PREDICTOR.labels)
    for ours in (PROBABILITY, LABEL):
        taken = write_csv(tmp_path / "taken.csv", pd.DataFrame({"review": ["Fine."], ours: ["mine"]}))
        assert app.scored_csv(taken) == (None, f"The CSV already has a column named `{ours}`, where the scores "
                                              "go; rename it.")


def test_csv_tab_shows_rows_counts_and_histogram(app, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(review_csv, "PREVIEW_ROWS", 3)
    reviews = ["A wonderful film.", "", "Dreadful and dull.", "Not bad at all.", "Great!"]
    path, _ = app.scored_csv(write_csv(tmp_path / "in.csv", pd.DataFrame({"review": reviews})))
    shown = app.csv_summary(path)
    assert all(update["visible"] for update in shown)
    preview, counts, histogram = (update["value"] for update in shown)
    scored = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert preview.to_dict("records") == scored.head(3).to_dict("records")
    assert list(preview.columns[:2]) == [PROBABILITY, LABEL]  # the answers first, never past the right edge
    labels = app.PREDICTOR.labels
    expected = scored[LABEL].replace("", review_csv.NOT_SCORED).value_counts()
    assert dict(zip(counts[LABEL], counts["reviews"])) == {label: expected.get(label, 0) for label in
                                                           (*labels, review_csv.NOT_SCORED)}
    assert list(counts[LABEL][:2]) == list(labels)
    scores = np.array([float(p) for p in scored[PROBABILITY] if p])
    assert len(histogram) == review_csv.HISTOGRAM_BINS and histogram["reviews"].sum() == len(scores) == 4
    for bin_, count in zip(histogram[PROBABILITY], histogram["reviews"]):
        low, high = map(float, bin_.split("-"))
        assert count == ((scores >= low) & ((scores < high) | (high == 1.0))).sum()
    assert [(update["value"], update["visible"]) for update in app.csv_summary(None)] == [(None, False)] * 3


def test_csv_tables_are_hidden_until_something_is_scored(app) -> None:
    """An empty gr.Dataframe shows made-up headers ("1 2 3"): the page shows no table before there is one."""
    page = app.demo.get_config_file()
    shown = {c["props"].get("elem_id"): c["props"].get("visible") for c in page["components"]}
    assert shown["preview"] is False and shown["label-counts"] is False and shown["histogram"] is False


def test_csv_from_a_spreadsheet_with_a_byte_order_mark_and_a_formula_header(app, tmp_path: Path) -> None:
    # Excel's "CSV UTF-8" starts with a byte order mark; a header cell is a cell a spreadsheet may run too.
    upload = tmp_path / "excel.csv"
    upload.write_bytes("\ufeffreview,=SUM(A1)\nA wonderful film.,1\n".encode())
    path, message = app.scored_csv(str(upload))
    assert message == "Scored 1 review(s)."
    out = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(out.columns) == [PROBABILITY, LABEL, "review", "'=SUM(A1)"]
    expected = app.PREDICTOR.probabilities(["A wonderful film."])[0]
    assert float(out[PROBABILITY][0]) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"text,stars\nfine,5\n", "column named `review`"),
        (b"", "empty"),
        (b"review\n\xff\xfe\x00bad bytes\x9c\n", "UTF-8"),
        (bytes(range(256)) * 20, "UTF-8"),
        (b'review,stars\n"an unterminated quote,5\n', "readable CSV"),
    ],
)
def test_bad_csv_gets_a_clear_message(app, tmp_path: Path, content: bytes, expected: str) -> None:
    upload = tmp_path / "bad.csv"
    upload.write_bytes(content)
    path, message = app.scored_csv(str(upload))
    assert path is None and expected in message


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("id,review\n1,bad, really bad\n2,great\n", 2),  # pandas took the first field as an index: shifted
        ("id,review\n1,fine\n2,bad, really bad\n", 3),
        ('review\n"two\nlines",\n', 3),
    ],
)
def test_a_row_with_an_extra_field_is_refused_naming_its_line(app, tmp_path: Path, content: str, line: int) -> None:
    upload = tmp_path / "extra.csv"
    upload.write_text(content)
    path, message = app.scored_csv(str(upload))
    assert path is None and message.startswith(f"Line {line} has ") and "fields but the header has" in message


def test_a_short_row_keeps_its_fields_in_place(app, tmp_path: Path) -> None:
    upload = tmp_path / "short.csv"
    upload.write_text("review,id,stars\nA wonderful film.,7\n")
    path, _ = app.scored_csv(str(upload))
    out = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert out[["review", "id", "stars"]].values.tolist() == [["A wonderful film.", "7", ""]]


def bomb(path: Path, where: str) -> str:
    """A CSV just under the upload limit that is almost all empty columns, in its header or in a row."""
    columns = "," * (review_csv.MAX_BYTES - 100)
    path.write_text({"header": f"id,review{columns}\n1,fine\n", "row": f"id,review\n1,fine{columns}\n",
                     "header without a review column": f"id{columns}\n1\n"}[where])
    return str(path)


@pytest.mark.parametrize("where", ["header", "row", "header without a review column"])
def test_a_column_bomb_is_refused_before_pandas_parses_it(app, tmp_path: Path, monkeypatch, where: str) -> None:
    def parse(*args, **kwargs):
        raise AssertionError("pandas parsed the file")

    monkeypatch.setattr(pd, "read_csv", parse)
    upload = bomb(tmp_path / "bomb.csv", where)
    path, message = app.scored_csv(upload)
    columns = review_csv.MAX_BYTES - 100 + 2 - (where == "header without a review column")
    expected = {"row": f"Line 2 has {columns:,} fields but the header has 2"}.get(
        where, f"The CSV has {columns:,} columns; at most {review_csv.MAX_COLUMNS} can be read.")
    assert path is None and message.startswith(expected)


def test_scored_files_are_served_from_gradios_cache_and_deleted_on_its_schedule(app, tmp_path: Path) -> None:
    """A scored CSV is written into Gradio's cache: Gradio serves it as it is (no copy left behind) and its
    `delete_cache` schedule removes it. Fails if a Gradio upgrade copies such files or stops deleting them."""
    path, _ = app.scored_csv(write_csv(tmp_path / "in.csv", pd.DataFrame({"review": ["A fine film."]})))
    scored = next(block for block in app.demo.blocks.values() if getattr(block, "elem_id", None) == "scored")
    assert Path(scored.move_resource_to_block_cache(path)).samefile(path)
    assert app.demo.delete_cache == (app.DELETE_EVERY_S, app.DELETE_AFTER_S)
    assert app.DELETE_AFTER_S + app.DELETE_EVERY_S <= 3600  # the card says: deleted within an hour
    route_utils.delete_files_created_by_app(app.demo, None)
    assert not Path(path).exists()


def test_csv_limits(app, tmp_path: Path, monkeypatch) -> None:
    upload = write_csv(tmp_path / "rows.csv", pd.DataFrame({"review": ["good"] * 30}))
    monkeypatch.setattr(review_csv, "MAX_ROWS", 20)
    assert app.scored_csv(upload) == (None, "The CSV has more than 20 rows; split it into smaller files.")
    monkeypatch.setattr(review_csv, "MAX_BYTES", 100)
    path, message = app.scored_csv(upload)
    assert path is None and "larger than" in message
    assert app.scored_csv(None)[0] is None


# ---------------------------------------------------------------- model problems


def test_no_model_configured_says_which_variable_to_set() -> None:
    with pytest.raises(inference.ModelUnavailable, match="MODEL_REPO"):
        model_folder.locate(None)


def test_bad_repo_id_is_explained() -> None:
    with pytest.raises(inference.ModelUnavailable, match="neither an existing folder nor a valid Hub repo id"):
        model_folder.locate("not a/valid/repo id")


def damage(model_dir: Path, tmp_path: Path, how: str) -> Path:
    folder = tmp_path / how
    shutil.copytree(model_dir, folder)
    if how == "truncated-weights":
        weights = folder / "model.weights.h5"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif how == "no-tokenizer":
        (folder / "tokenizer.json").unlink()
    elif how == "config-not-json":
        (folder / "config.json").write_text("{not json")
    elif how == "wrong-pad-id":
        spec = json.loads((folder / "tokenizer.json").read_text())
        (folder / "tokenizer.json").write_text(json.dumps({**spec, "pad_id": spec["oov_id"]}))
    return folder


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("truncated-weights", "could not be loaded"),
        ("no-tokenizer", "tokenizer.json missing"),
        ("config-not-json", "could not be loaded"),
        ("wrong-pad-id", "tokenizer.json does not describe the model's tokenizer"),
    ],
)
def test_damaged_folder_is_refused_with_a_message(model_dir: Path, tmp_path: Path, how: str, message: str) -> None:
    with pytest.raises(inference.ModelUnavailable, match=message):
        inference.load_predictor(damage(model_dir, tmp_path, how))


def test_safe_mode_refuses_a_lambda_layer(model, model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "with-lambda"
    text = keras.Input(shape=(), dtype="string")
    keras.Model(text, keras.layers.Lambda(lambda p: p * 1.0)(model(text))).save(folder, zipped=False)
    for name in ("tokenizer.json", "training_config.json"):
        shutil.copy(model_dir / name, folder / name)
    with pytest.raises(inference.ModelUnavailable, match="Lambda"):
        inference.load_predictor(folder)
