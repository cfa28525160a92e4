// The static Space's page: download the model named in config.json (a Hub model repo at a pinned revision),
// then classify and explain reviews here, with no server: the text never leaves the browser.
import { ModelUnavailable, loadModel } from "./sentiment.js";

const CONFIG = "config.json";
// Word highlights as on the Gradio page (app.py; tests/test_space.py keeps them equal): blue pushed towards the
// positive label, orange towards the negative one; the darker shade from STRONG times the strongest word's effect,
// no colour under FAINT times it.
const POSITIVE_SHADES = ["#92c5de", "#2166ac"];
const NEGATIVE_SHADES = ["#fdb863", "#e66101"];
const STRONG = 0.5;
const FAINT = 0.1;
// Of the text after the last word the model reads, the highlights show at most this much, then MORE.
const TAIL_CHARS = 200;
const MORE = " [...]";

const $ = (id) => document.getElementById(id);
const status = $("status");
let model = null;
let ready = "";  // the status line once the model is loaded
let asked = 0;  // the number of the latest review: an older explanation still running stops

function show(message, isError = false) {
  status.textContent = message;
  status.classList.toggle("error", isError);
  status.setAttribute("role", isError ? "alert" : "status");
}

const megabytes = (bytes) => (bytes / 1e6).toFixed(1);

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;  // text, never HTML: a review's markup is shown, not run
  if (className) node.className = className;
  return node;
}

function showLabels(probability) {
  const [negative, positive] = model.labels;
  $("labels").replaceChildren(...[[positive, probability, ""], [negative, 1 - probability, "negative"]]
    .sort((a, b) => b[1] - a[1])
    .map(([label, value, kind]) => {
      const bar = element("span", undefined, `bar ${kind}`);
      bar.style.width = `${(100 * value).toFixed(1)}%`;
      const row = element("li");
      row.append(element("span", label), bar, element("span", `${(100 * value).toFixed(1)}%`));
      return row;
    }));
}

function shade(effect, strongest) {
  if (!strongest || Math.abs(effect) < FAINT * strongest) return null;
  const shades = effect > 0 ? POSITIVE_SHADES : NEGATIVE_SHADES;
  return shades[Math.abs(effect) >= STRONG * strongest ? 1 : 0];
}

function showHighlights(explanation, cut) {
  const { text, words, effects, window } = explanation;
  const strongest = effects.reduce((max, e) => Math.max(max, Math.abs(e)), 0);
  const pieces = [];
  let position = 0;
  words.slice(0, effects.length).forEach((word, i) => {
    if (word.start > position) pieces.push(document.createTextNode(text.slice(position, word.start)));
    const span = element("span", text.slice(word.start, word.end));
    const colour = shade(effects[i], strongest);
    if (colour) span.style.background = colour;
    span.title = `leaving it out changes P(positive) by ${(-effects[i]).toFixed(4)}`;
    span.dataset.effect = String(effects[i]);  // full precision, for tests and scripts
    pieces.push(span);
    position = word.end;
  });
  const truncated = words.length > window;
  const tail = truncated ? "" : text.slice(position);
  if (tail) pieces.push(document.createTextNode(tail.slice(0, TAIL_CHARS)));
  if (truncated || cut || tail.length > TAIL_CHARS) pieces.push(document.createTextNode(MORE));
  $("highlights").replaceChildren(...pieces);
  let note = "";
  if (truncated) {
    note = `This review is longer than the model's window: the LSTM read only its first ${window} words ` +
      `(highlighted), ${model.ngram ? "the n-gram part read all of it" : "the rest was ignored"}.`;
  } else if (!words.length) {
    note = "The text has no words, only punctuation: the score is the model's answer for an empty review.";
  }
  if (cut) {
    note += ` Texts are cut at ${model.tokenizer.maxTextChars.toLocaleString("en")} characters: ` +
      "the end of this one was not read.";
  }
  $("note").textContent = note.trim();
}

// The Classify button: any failure is said on the page, never left as "Finding the words..." on screen.
async function classify() {
  try {
    await classifyReview();
  } catch (error) {
    $("explain-status").textContent = "";
    show(`This review could not be classified (${error.name}: ${error.message}). Try another text, or reload ` +
         "the page.", true);
  }
}

async function classifyReview() {
  const review = $("review").value;
  const number = ++asked;
  if (!review.trim()) {
    $("result").hidden = true;
    show("Type or paste a review first: the text is empty.");
    return;
  }
  const started = performance.now();
  const probability = model.probability(review);
  const output = $("probability");
  output.textContent = probability.toFixed(4);
  output.dataset.value = String(probability);  // full precision, for tests and scripts
  output.dataset.ms = (performance.now() - started).toFixed(1);
  showLabels(probability);
  $("result").hidden = false;
  show(ready);
  $("highlights").replaceChildren();
  $("note").textContent = "";
  $("explain-status").textContent = "Finding the words that moved the score...";
  const explanation = await model.explain(review, { stopped: () => number !== asked });
  if (!explanation) return;
  showHighlights(explanation, [...review].length > model.tokenizer.maxTextChars);
  $("explain-status").textContent = "";
  $("highlights").dataset.ms = (performance.now() - started).toFixed(1);
}

function showStatic(config) {
  $("legend").replaceChildren(...[["towards positive", POSITIVE_SHADES[1]], ["towards negative", NEGATIVE_SHADES[1]]]
    .map(([text, colour]) => {
      const swatch = element("span", text, "swatch");
      swatch.style.background = colour;
      return swatch;
    }));
  $("examples").replaceChildren(...config.examples.map((example) => {
    const button = element("button", example);
    button.type = "button";
    button.addEventListener("click", () => {
      $("review").value = example;
      if (model) classify();
    });
    const item = element("li");
    item.append(button);
    return item;
  }));
  $("about").textContent =
    `Model: ${config.model_repo} at revision ${config.revision}, downloaded from ${config.hub_url}.`;
}

async function start() {
  let config;
  try {
    config = await (await fetch(CONFIG)).json();
  } catch (error) {
    show(`This page's ${CONFIG} could not be read (${error.message}).`, true);
    return;
  }
  showStatic(config);
  const base = `${config.hub_url}/${config.model_repo}/resolve/${encodeURIComponent(config.revision)}/`;
  const progress = $("progress");
  const started = performance.now();
  try {
    model = await loadModel(base, {
      maxTextChars: config.max_text_chars,
      onProgress: (loaded, total) => {
        progress.max = total;
        progress.value = loaded;
        show(`Downloading the model: ${megabytes(loaded)} of ${megabytes(total)} MB (once; your browser caches it).`);
      },
    });
  } catch (error) {
    progress.hidden = true;
    const why = error instanceof ModelUnavailable ? error.message : `${error.name}: ${error.message}`;
    show(`The model could not be fetched: ${config.model_repo} (revision ${config.revision}) on ${config.hub_url}: ` +
         `${why}. The repo may be missing, private, or without the web/ folder that ` +
         "`python -m training.web_export` makes. Try again later, or tell the Space's owner.", true);
    return;
  }
  progress.hidden = true;
  ready = `Model ready: ${megabytes(progress.max)} MB in ${((performance.now() - started) / 1000).toFixed(1)} s.`;
  show(ready);
  document.body.dataset.ready = "true";
  $("classify").disabled = false;
  $("classify").addEventListener("click", classify);
}

start();
