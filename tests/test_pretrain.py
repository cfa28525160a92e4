"""The word vectors of training/pretrain.py: words that share contexts get close vectors; padding, OOV and unseen
words get none."""

from __future__ import annotations

import numpy as np

from training.model import FIRST_WORD_ID
from training.pretrain import cooccurrences, word_vectors

PAD, OOV = 0, 1
TOPICS = (range(2, 7), range(7, 12))  # two groups of words that never share a review
UNSEEN = (12, 13)
VOCABULARY = 14


def topic_corpus(reviews: int = 300, length: int = 30) -> np.ndarray:
    """Token ids: each review draws its words from one topic, with some OOV ids and trailing padding."""
    rng = np.random.default_rng(0)
    ids = np.full((reviews, length), PAD)
    for row in range(reviews):
        used = rng.integers(length // 2, length)
        ids[row, :used] = rng.choice(list(TOPICS[row % 2]) + [OOV], size=used)
    return ids


def test_cooccurrences_are_weighted_by_distance_and_skip_padding_and_oov() -> None:
    counts = cooccurrences(np.array([[2, 3, OOV, 4, PAD, PAD]]), vocab_size=5).toarray()
    assert counts[2, 3] == counts[3, 2] == 1.0  # neighbours
    assert counts[3, 4] == counts[4, 3] == 0.5  # two apart, over the OOV word
    assert counts[2, 4] == counts[4, 2] == 1 / 3
    assert not counts[[PAD, OOV]].any() and not counts[:, [PAD, OOV]].any()
    assert counts.sum() == 2 * (1.0 + 0.5 + 1 / 3)


def test_words_of_one_topic_are_closer_than_words_of_the_other() -> None:
    vectors = word_vectors(topic_corpus(), VOCABULARY, dim=4, seed=0)
    assert vectors.shape == (VOCABULARY, 4) and vectors.dtype == np.float32
    assert not vectors[[PAD, OOV, *UNSEEN]].any()
    seen = range(FIRST_WORD_ID, UNSEEN[0])
    np.testing.assert_allclose(np.linalg.norm(vectors[seen], axis=1), 1.0, rtol=1e-5)
    similarity = vectors @ vectors.T  # cosine: the rows are unit length
    within = [similarity[a, b] for topic in TOPICS for a in topic for b in topic if a < b]
    across = [similarity[a, b] for a in TOPICS[0] for b in TOPICS[1]]
    assert min(within) > max(across)


def test_the_same_ids_and_seed_give_the_same_vectors() -> None:
    first, again = (word_vectors(topic_corpus(), VOCABULARY, 4, seed=3) for _ in range(2))
    np.testing.assert_array_equal(first, again)
