"""What the Space does to a review before the model sees it, and which of its words the model reads."""

from __future__ import annotations

import re
from dataclasses import dataclass

# What each split rule that `tokenizer.json` can name splits on: Keras' "whitespace" is ASCII whitespace only.
SEPARATORS = {"whitespace": " \t\n\r\x0b\x0c"}
# Texts are cut here before anything else: the n-gram branch reads a whole text, and the highlights
# score a copy of it per word. The longest IMDB review has about 13,700 characters.
MAX_TEXT_CHARS = 20_000


def clean(text: str) -> str:
    """Cut the text at MAX_TEXT_CHARS and replace lone surrogates (which cannot be encoded) with U+FFFD."""
    return text[:MAX_TEXT_CHARS].encode("utf-16", "surrogatepass").decode("utf-16", "replace")


@dataclass(frozen=True)
class Window:
    """The words of a review that give the model a token, as (start, end) spans, in order.

    `spans` holds up to window + 1 words: the last one, if present, is the first word the model
    does not read (it moves into the window when an earlier word is left out).
    """

    text: str
    spans: list[tuple[int, int]]
    size: int

    @property
    def truncated(self) -> bool:
        return len(self.spans) > self.size

    @property
    def read(self) -> str:
        """The part of the text the model reads: everything up to the end of its last token."""
        if not self.truncated:
            return self.text
        return self.text[: self.spans[self.size - 1][1]]

    def words(self) -> list[str]:
        return [self.text[start:end] for start, end in self.spans]


class WindowReader:
    """Finds the words that produce tokens, following the tokenizer's split and strip rules."""

    def __init__(self, split: str, strip_regex: str, size: int) -> None:
        if split not in SEPARATORS:
            raise ValueError(f"unsupported split rule {split!r}; known: {', '.join(SEPARATORS)}")
        self._separators = SEPARATORS[split]
        self._word = re.compile(f"[^{re.escape(self._separators)}]+")
        self._strip = re.compile(strip_regex)
        self.size = size

    def part_read(self, text: str) -> str:
        """The part of `text` the model reads (`Window.read`), without a look at each word of a text with fewer
        separators than the window holds words (most reviews): it cannot fill the window."""
        if sum(map(text.count, self._separators)) < self.size:
            return text
        return self(text).read

    def __call__(self, text: str) -> Window:
        """Scan `text` lazily: a 1 MB review costs no more than its first window + 1 words."""
        spans: list[tuple[int, int]] = []
        for match in self._word.finditer(text):
            # A word made only of stripped punctuation gives no token, so it takes no place in the window.
            if self._strip.sub("", match.group()):
                spans.append(match.span())
                if len(spans) > self.size:
                    break
        return Window(text, spans, self.size)
