"""Word vectors without labels: positive PMI of word co-occurrences, reduced by truncated SVD (word2vec's
objective solved in closed form, Levy & Goldberg, 2014)."""

from __future__ import annotations

import logging

import numpy as np
from scipy import sparse
from sklearn.decomposition import TruncatedSVD

from training.model import FIRST_WORD_ID  # below it, padding and out-of-vocabulary: no vector from the data

log = logging.getLogger(__name__)

WINDOW = 5  # words on each side that count as context
CONTEXT_SMOOTHING = 0.75  # as in word2vec: rare contexts get less extreme PMI


def cooccurrences(ids: np.ndarray, vocab_size: int) -> sparse.csr_matrix:
    """Symmetric co-occurrence counts within WINDOW, weighted 1/distance; padding and OOV ignored."""
    counts = sparse.csr_matrix((vocab_size, vocab_size), dtype=np.float64)
    for distance in range(1, WINDOW + 1):
        left, right = ids[:, :-distance].ravel(), ids[:, distance:].ravel()
        keep = (left >= FIRST_WORD_ID) & (right >= FIRST_WORD_ID)
        pairs = sparse.coo_matrix(
            (np.full(int(keep.sum()), 1.0 / distance), (left[keep], right[keep])), shape=(vocab_size, vocab_size)
        ).tocsr()
        counts = counts + pairs + pairs.T
    return counts


def ppmi(counts: sparse.csr_matrix) -> sparse.csr_matrix:
    """Positive pointwise mutual information of a co-occurrence matrix, smoothed context counts."""
    counts = counts.tocoo()
    words = np.asarray(counts.sum(axis=1)).ravel()
    contexts = np.asarray(counts.sum(axis=0)).ravel() ** CONTEXT_SMOOTHING
    pmi = np.log(counts.data * contexts.sum() / (words[counts.row] * contexts[counts.col]))
    keep = pmi > 0
    return sparse.csr_matrix((pmi[keep], (counts.row[keep], counts.col[keep])), shape=counts.shape)


def word_vectors(ids: np.ndarray, vocab_size: int, dim: int, seed: int) -> np.ndarray:
    """An embedding matrix (vocab_size, dim) from token ids (n, length); rows of unseen words are zero."""
    matrix = ppmi(cooccurrences(ids, vocab_size))
    log.info("pre-training word vectors: %d words, %d co-occurrence pairs", vocab_size, matrix.nnz)
    svd = TruncatedSVD(n_components=dim, random_state=seed)
    vectors = svd.fit_transform(matrix)
    # Unit-length rows: each word's direction matters, not how often it occurs.
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0).astype("float32")
