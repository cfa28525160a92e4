// The model folder's browser copy (`web/`, made by `python -m training.web_export`), run in plain JavaScript:
// the tokenizers as Keras' TextVectorization does them, then embedding -> BiLSTM -> max over time -> dense
// layers, the n-gram branch, and the output layer. No runtime library: the browser unpacks the gzipped files, and
// the weights are typed arrays.

// training/web_export.py names these; tests/test_static_space.py keeps them equal.
export const WEB_DIR = "web/";
export const MANIFEST = "model.json";
const VOCABULARY = "vocabulary.json.gz";
const WEIGHTS = "weights.bin.gz";
const FORMAT = "imdb-sentiment-web/3";
// Bytes per number of each dtype a tensor of the manifest may have.
const DTYPE_BYTES = { float32: 4, float16: 2 };
// TensorFlow's whitespace split: ASCII whitespace only (a no-break space is part of a word).
const WORD = /[^ \t\n\r\v\f]+/g;
const ASCII_UPPER = /[A-Z]+/g;
// The occlusion loop hands the page back its event loop this often, so the page stays responsive.
const YIELD_MS = 30;
// A download stops as soon as it is larger than it may be: the manifest at most MAX_MANIFEST_BYTES, each other
// file the size its manifest says, at most MAX_FILE_BYTES (far above the model's), and unpacked no further than the
// size its manifest says, so a wrong or hostile download never fills the page's memory.
const MAX_MANIFEST_BYTES = 1 << 20;
const MAX_FILE_BYTES = 1 << 29;

export class ModelUnavailable extends Error {}

const sigmoid = (x) => 1 / (1 + Math.exp(-x));
const ACTIVATIONS = { linear: (x) => x, relu: (x) => Math.max(0, x), sigmoid, tanh: Math.tanh };

// The bytes at `url`: exactly `expected` of them, or (undefined) at most MAX_MANIFEST_BYTES, checked while streaming.
async function fetchBytes(url, expected, onBytes, signal) {
  const limit = expected ?? MAX_MANIFEST_BYTES;
  const path = new URL(url).pathname;
  let response;
  try {
    response = await fetch(url, { credentials: "omit", signal });
  } catch (error) {
    throw new ModelUnavailable(`the Hub could not be reached (${error.message})`);
  }
  if (!response.ok) throw new ModelUnavailable(`${path} answered HTTP ${response.status}`);
  const reader = response.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    signal?.throwIfAborted();
    if (done) break;
    size += value.length;
    if (size > limit) {
      reader.cancel();  // the rest is never downloaded
      throw new ModelUnavailable(`${path} is larger than the ${limit} bytes ` +
                                 (expected === undefined ? "a manifest may have" : "its manifest says"));
    }
    chunks.push(value);
    onBytes(value.length);
  }
  if (expected !== undefined && size !== expected) {
    throw new ModelUnavailable(`${path} is ${size} bytes, not the ${expected} its manifest says`);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

// The manifest names each file's SHA-256: a damaged or mixed-up download is refused, not run.
async function checkDigest(bytes, expected, name) {
  if (!globalThis.crypto?.subtle) return;  // only on plain-HTTP pages other than localhost
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  if (Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("") !== expected) {
    throw new ModelUnavailable(`${WEB_DIR}${name} is damaged: its SHA-256 is not the one in ${MANIFEST}`);
  }
}

// `bytes` gunzipped by the browser: exactly `expected` bytes, stopped as soon as they unpack to more.
async function unpack(bytes, expected, name) {
  const reader = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip")).getReader();
  const out = new Uint8Array(expected);
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (size + value.length > expected) {
        reader.cancel();
        throw new ModelUnavailable(`${WEB_DIR}${name} unpacks to more than the ${expected} bytes its manifest says`);
      }
      out.set(value, size);
      size += value.length;
    }
  } catch (error) {
    if (error instanceof ModelUnavailable) throw error;
    throw new ModelUnavailable(`${WEB_DIR}${name} is not a valid gzip file (${error.message})`);
  }
  if (size !== expected) {
    throw new ModelUnavailable(`${WEB_DIR}${name} unpacks to ${size} bytes, not the ${expected} its manifest says`);
  }
  return out;
}

// Download web/ from `base` (the model repo's files at a pinned revision); onProgress(loaded, total) in bytes.
export async function loadModel(base, { maxTextChars, onProgress = () => {} }) {
  const manifestBytes = await fetchBytes(base + WEB_DIR + MANIFEST, undefined, () => {});
  let manifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
  } catch {
    throw new ModelUnavailable(`${WEB_DIR}${MANIFEST} is not valid JSON`);
  }
  if (manifest.format !== FORMAT) throw new ModelUnavailable(`${WEB_DIR}${MANIFEST} is not in the format ${FORMAT}`);
  const sizes = [VOCABULARY, WEIGHTS].map((name) => manifest.files?.[name]?.bytes);
  const unpacked = [VOCABULARY, WEIGHTS].map((name) => manifest.files?.[name]?.unpacked_bytes);
  if (![...sizes, ...unpacked].every((bytes) => Number.isSafeInteger(bytes) && bytes >= 0 && bytes <= MAX_FILE_BYTES)) {
    throw new ModelUnavailable(`${WEB_DIR}${MANIFEST} does not give the sizes of ${VOCABULARY} and ${WEIGHTS}, ` +
                               `packed and unpacked (each at most ${MAX_FILE_BYTES} bytes)`);
  }
  const total = sizes[0] + sizes[1];
  let loaded = 0;
  onProgress(loaded, total);
  // When one file fails, the other's download stops too: its progress would overwrite the failure's message.
  const controller = new AbortController();
  const [vocabulary, weights] = await Promise.all([VOCABULARY, WEIGHTS].map(async (name, i) => {
    const bytes = await fetchBytes(base + WEB_DIR + name, sizes[i], (n) => onProgress((loaded += n), total),
                                   controller.signal);
    await checkDigest(bytes, manifest.files[name]?.sha256, name);
    return unpack(bytes, unpacked[i], name);
  })).catch((error) => {
    controller.abort();
    throw error;
  });
  try {
    return new Model(manifest, JSON.parse(new TextDecoder().decode(vocabulary)), weights, maxTextChars);
  } catch (error) {
    if (error instanceof ModelUnavailable) throw error;
    throw new ModelUnavailable(`${WEB_DIR}${MANIFEST} does not describe a model this page can run (${error.message})`);
  }
}

// IEEE half-precision numbers as float32 (Float16Array is not in every browser yet).
function halvesToFloats(halves) {
  const out = new Float32Array(halves.length);
  for (let i = 0; i < halves.length; i++) {
    const h = halves[i], exponent = (h >> 10) & 0x1f, fraction = h & 0x3ff;
    const magnitude = exponent === 0 ? fraction * 2 ** -24
      : exponent === 31 ? (fraction ? NaN : Infinity) : (1024 + fraction) * 2 ** (exponent - 25);
    out[i] = h & 0x8000 ? -magnitude : magnitude;
  }
  return out;
}

// The numbers (a Float32Array) of the tensor that a manifest's entry ({offset in bytes, shape, dtype}) names in the
// unpacked `weights` bytes; ModelUnavailable if it is not all inside them, or (with `size`) does not hold `size`
// numbers.
function tensorIn(weights, spec, size) {
  const { offset, shape, dtype } = spec ?? {};
  const width = DTYPE_BYTES[dtype];
  const valid = width !== undefined && Number.isSafeInteger(offset) && offset >= 0 && offset % width === 0 &&
    Array.isArray(shape) && shape.every((d) => Number.isSafeInteger(d) && d >= 0);
  const length = valid ? shape.reduce((a, b) => a * b, 1) : NaN;
  if (!(offset + length * width <= weights.length) || (size !== undefined && length !== size)) {
    throw new ModelUnavailable(`${WEB_DIR}${MANIFEST} names a tensor (offset ${JSON.stringify(offset)}, shape ` +
      `${JSON.stringify(shape)}, dtype ${JSON.stringify(dtype)}) that is not inside ${WEIGHTS} (${weights.length} ` +
      "bytes unpacked) or has the wrong size");
  }
  // Typed arrays read the platform's byte order: little-endian in every browser.
  const at = weights.byteOffset + offset;
  return dtype === "float32" ? new Float32Array(weights.buffer, at, length)
    : halvesToFloats(new Uint16Array(weights.buffer, at, length));
}

// The first `max` code points of `text` (Python's text[:max]), lone surrogates replaced by U+FFFD as the Space does.
function cut(text, max) {
  let end = 0;
  for (let count = 0; end < text.length && count < max; count++) {
    end += text.codePointAt(end) > 0xffff ? 2 : 1;
  }
  return text.slice(0, end).toWellFormed();
}

export class Tokenizer {
  constructor(settings, words, maxTextChars) {
    this.settings = settings;
    this.window = settings.sequence_length;
    this.maxTextChars = maxTextChars;
    // Without the "u" flag: Keras' pattern escapes a quote, which "u" refuses; it matches ASCII only either way.
    this.strip = new RegExp(settings.strip_regex, "g");
    this.ids = new Map();
    words.forEach((word, id) => {
      if (id !== settings.pad_id && id !== settings.oov_id) this.ids.set(word, id);
    });
  }

  // What the Space does to a review first: cut, lone surrogates replaced.
  clean(text) {
    return cut(text, this.maxTextChars);
  }

  // Every word that gives a token: {start, end, token}, in order. Lower-casing is ASCII only, as tf.strings.lower.
  words(text) {
    const out = [];
    for (const match of text.matchAll(WORD)) {
      const token = match[0].replace(ASCII_UPPER, (s) => s.toLowerCase()).replace(this.strip, "");
      if (token) out.push({ start: match.index, end: match.index + match[0].length, token });
    }
    return out;
  }

  id(token) {
    return this.ids.get(token) ?? this.settings.oov_id;
  }
}

// The n-gram branch: which of its n-grams a text has (multi-hot) and their weights; index 0 is "any other".
class NgramBranch {
  constructor(spec, grams, tensor) {
    this.widths = spec.widths;
    this.separator = spec.separator;
    this.oov = spec.oov_index;
    this.ids = new Map();
    grams.forEach((gram, id) => id !== this.oov && this.ids.set(gram, id));
    this.kernel = tensor(spec.weights.kernel);  // one row per n-gram, one column per logit
    this.bias = Array.from(tensor(spec.weights.bias));
    this.columns = this.bias.length;
  }

  // Each logit with the weights of n-gram `id` added (sign 1) or taken away (-1).
  shift(logits, id, sign) {
    return logits.map((x, j) => x + sign * this.kernel[id * this.columns + j]);
  }

  id(tokens, start, width) {
    return this.ids.get(tokens.slice(start, start + width).join(this.separator)) ?? this.oov;
  }

  // The id of every n-gram of `tokens`, with its count.
  counts(tokens) {
    const counts = new Map();
    for (const width of this.widths) {
      for (let start = 0; start + width <= tokens.length; start++) {
        const id = this.id(tokens, start, width);
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
    }
    return counts;
  }

  logits(counts) {
    let sum = this.bias;
    for (const id of counts.keys()) sum = this.shift(sum, id, 1);
    return sum;
  }

  // The logits once token i is left out: n-grams through it go, n-grams across the gap come; only a count that
  // drops to or rises from zero changes the (multi-hot) sum.
  logitsWithout(tokens, counts, logits, i) {
    const change = new Map();
    const add = (id, n) => change.set(id, (change.get(id) ?? 0) + n);
    const reach = Math.max(...this.widths) - 1;
    const rest = tokens.slice(Math.max(0, i - reach), i).concat(tokens.slice(i + 1, i + 1 + reach));
    const gap = Math.min(i, reach);  // index in `rest` of the first token after the gap
    for (const width of this.widths) {
      for (let start = Math.max(0, i - width + 1); start <= i && start + width <= tokens.length; start++) {
        add(this.id(tokens, start, width), -1);
      }
      for (let start = Math.max(0, gap - width + 1); start < gap && start + width <= rest.length; start++) {
        if (start + width > gap) add(this.id(rest, start, width), +1);
      }
    }
    for (const [id, n] of change) {
      const before = counts.get(id) ?? 0;
      if ((before > 0) !== (before + n > 0)) logits = this.shift(logits, id, before > 0 ? -1 : 1);
    }
    return logits;
  }
}

// One direction of the Bidirectional LSTM, as Keras' LSTMCell: z = x K + h R + b; gates i, f, c, o.
class LSTM {
  constructor(spec, tensor) {
    this.units = spec.units;
    const g = 4 * this.units;
    this.inputs = spec.kernel?.shape?.[0];
    this.kernel = tensor(spec.kernel, this.inputs * g);
    // Transposed (one row per gate unit), so each step sums contiguous numbers into a local variable.
    const recurrent = tensor(spec.recurrent_kernel, this.units * g);
    this.recurrentT = new Float32Array(g * this.units);
    for (let j = 0; j < this.units; j++) {
      for (let q = 0; q < g; q++) this.recurrentT[q * this.units + j] = recurrent[j * g + q];
    }
    this.bias = tensor(spec.bias, g);
    this.z = new Float64Array(4 * this.units);
  }

  // x K + b for each position of `ids`: the part of each step that does not depend on the state.
  project(ids, embeddings) {
    const g = 4 * this.units;
    const out = new Float64Array(ids.length * g);
    ids.forEach((id, p) => {
      const row = out.subarray(p * g, (p + 1) * g);
      row.set(this.bias);
      for (let j = 0; j < this.inputs; j++) {
        const x = embeddings[id * this.inputs + j];
        const k = j * g;
        for (let q = 0; q < g; q++) row[q] += x * this.kernel[k + q];
      }
    });
    return out;
  }

  // Run the positions `from`, `from + step`, ... up to `to` (excluded), updating h, c and the running max.
  run(projected, from, to, step, h, c, max) {
    const u = this.units, g = 4 * u, z = this.z, r = this.recurrentT;
    for (let p = from; p !== to; p += step) {
      for (let q = 0, k = 0; q < g; q++) {
        let sum = projected[p * g + q];
        for (let j = 0; j < u; j++, k++) sum += h[j] * r[k];
        z[q] = sum;
      }
      for (let q = 0; q < u; q++) {
        c[q] = sigmoid(z[u + q]) * c[q] + sigmoid(z[q]) * Math.tanh(z[2 * u + q]);
        h[q] = sigmoid(z[3 * u + q]) * Math.tanh(c[q]);
        if (max && h[q] > max[q]) max[q] = h[q];
      }
    }
  }
}

// A direction's state: h, c and the max of its outputs so far.
const state = (u) => ({ h: new Float64Array(u), c: new Float64Array(u), max: new Float64Array(u).fill(-Infinity) });
const copy = (s) => ({ h: s.h.slice(), c: s.c.slice(), max: s.max.slice() });

export class Model {
  constructor(manifest, vocabulary, weights, maxTextChars) {
    const tensor = (spec, size) => tensorIn(weights, spec, size);
    this.labels = manifest.labels;
    this.tokenizer = new Tokenizer(manifest.tokenizer, vocabulary.words, maxTextChars);
    this.window = this.tokenizer.window;
    const [embedding, bilstm, ...head] = manifest.classifier;
    this.embeddings = tensor(embedding.embeddings);
    this.mask = embedding.mask_zero;
    this.pad = manifest.tokenizer.pad_id;
    this.forward = new LSTM(bilstm.forward, tensor);
    this.backward = new LSTM(bilstm.backward, tensor);
    this.pool = head[0]?.type === "global_max_pool";
    if (this.pool !== bilstm.return_sequences) throw new ModelUnavailable("the BiLSTM's outputs and pooling disagree");
    this.head = head.filter((layer) => layer.type === "dense").map((layer) => ({
      kernel: tensor(layer.kernel), bias: tensor(layer.bias), units: layer.bias.shape[0],
      activation: ACTIVATIONS[layer.activation],
    }));
    this.ngram = manifest.ngram && new NgramBranch(manifest.ngram, vocabulary.ngrams, tensor);
    this.output = { kernel: tensor(manifest.output.kernel), bias: tensor(manifest.output.bias)[0] };
  }

  // The token ids the BiLSTM reads of `words`, up to `length` of them: with a mask, padding is skipped
  // (it changes nothing but a 0 in the max); without one, the padding is read like a word.
  sequence(words, length) {
    const ids = words.slice(0, length).map((word) => this.tokenizer.id(word.token));
    while (!this.mask && ids.length < length) ids.push(this.pad);
    return ids;
  }

  // Dense layers over the pooled (or last) outputs of both directions: the BiLSTM's logit.
  headLogit(fwd, bwd, padded) {
    const pick = (s) => (this.pool ? s.max : s.h);
    let x = [...pick(fwd), ...pick(bwd)];
    // Keras gives masked steps an output of 0, and its max over time includes them.
    if (this.pool && padded) x = x.map((v) => Math.max(v, 0));
    for (const layer of this.head) {
      const y = new Float64Array(layer.units);
      for (let o = 0; o < layer.units; o++) {
        let sum = layer.bias[o];
        for (let j = 0; j < x.length; j++) sum += x[j] * layer.kernel[j * layer.units + o];
        y[o] = layer.activation(sum);
      }
      x = y;
    }
    return x[0];
  }

  // The output layer reads the branches' logits, each times r, and r = log(1 + the number of words read).
  combine(bilstm, ngram, read) {
    const logits = [bilstm, ...ngram];
    const r = Math.log1p(read);
    return sigmoid([...logits, ...logits.map((x) => x * r), r]
      .reduce((sum, x, i) => sum + x * this.output.kernel[i], this.output.bias));
  }

  // The cleaned review and its words (all of them: the n-gram branch reads the whole text).
  read(text) {
    const clean = this.tokenizer.clean(text);
    const words = this.tokenizer.words(clean);
    return { text: clean, words, tokens: words.map((word) => word.token) };
  }

  bilstmLogit(ids, length) {
    const u = this.forward.units;
    const fwd = state(u), bwd = state(u);
    this.forward.run(this.forward.project(ids, this.embeddings), 0, ids.length, 1, fwd.h, fwd.c, fwd.max);
    this.backward.run(this.backward.project(ids, this.embeddings), ids.length - 1, -1, -1, bwd.h, bwd.c, bwd.max);
    return this.headLogit(fwd, bwd, ids.length < length);
  }

  // P(positive) of a review.
  probability(text) {
    const review = this.read(text);
    const ids = this.sequence(review.words, this.window);
    const ngram = this.ngram ? this.ngram.logits(this.ngram.counts(review.tokens)) : [];
    return this.combine(this.bilstmLogit(ids, this.window), ngram, Math.min(review.words.length, this.window));
  }

  // Occlusion, as the Gradio page: P(positive) of the review and of each copy with one of the words the BiLSTM
  // reads left out (the first word past the window moves in). Each copy reuses the forward states before its
  // gap and the backward states after it, so the cost is bounded by window x window LSTM steps. Resolves to
  // null if `stopped()` turns true (a newer review was asked for).
  async explain(text, { stopped = () => false } = {}) {
    const review = this.read(text);
    const S = this.window, u = this.forward.units, L = review.words.length;
    const rows = Math.min(L, S);
    const shown = this.sequence(review.words, S);
    const extended = this.sequence(review.words, S + 1);
    const last = this.mask ? Math.min(L - 1, S) : S;  // each copy reads positions 0..last of `extended` but its gap
    const fp = this.forward.project(extended, this.embeddings);
    const bp = this.backward.project(extended, this.embeddings);
    const prefix = [], suffix = [];
    const fwd = state(u);
    for (let p = 0; p < shown.length; p++) {
      this.forward.run(fp, p, p + 1, 1, fwd.h, fwd.c, fwd.max);
      if (p < rows) prefix.push(copy(fwd));
    }
    const back = state(u);
    for (let p = last; p >= 0; p--) {
      this.backward.run(bp, p, p - 1, -1, back.h, back.c, back.max);
      suffix[p] = copy(back);
    }
    let bwd = suffix[0] ?? state(u);
    if (last !== shown.length - 1) {  // the review is longer than the window: its own backward pass starts earlier
      bwd = state(u);
      this.backward.run(bp, shown.length - 1, -1, -1, bwd.h, bwd.c, bwd.max);
    }
    const counts = this.ngram ? this.ngram.counts(review.tokens) : null;
    const ngram = this.ngram ? this.ngram.logits(counts) : [];
    const probability = this.combine(this.headLogit(fwd, bwd, shown.length < S), ngram, Math.min(L, S));
    const effects = new Float64Array(rows);
    let since = performance.now();
    for (let i = 0; i < rows; i++) {
      const f = i > 0 ? copy(prefix[i - 1]) : state(u);
      this.forward.run(fp, i + 1, last + 1, 1, f.h, f.c, f.max);
      const b = i < last ? copy(suffix[i + 1]) : state(u);
      this.backward.run(bp, i - 1, -1, -1, b.h, b.c, b.max);
      const without = this.combine(this.headLogit(f, b, this.mask && last < S),
                                   this.ngram ? this.ngram.logitsWithout(review.tokens, counts, ngram, i) : [],
                                   Math.min(L - 1, S));
      effects[i] = probability - without;
      if (performance.now() - since > YIELD_MS) {
        await new Promise((resolve) => setTimeout(resolve, 0));
        if (stopped()) return null;
        since = performance.now();
      }
    }
    return { probability, text: review.text, words: review.words.slice(0, S + 1), effects, window: S };
  }
}
