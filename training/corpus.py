"""The text the ``tiny-trained`` demonstration model learns to copy (:mod:`training.train` trains it).

CPython 3.11.7's help text (``pydoc_data.topics``, a snapshot in ``training/tiny-corpus.json.gz``), one topic in
eight held out; the byte-level BPE trained on it; the varied corpus (made-up English-like words, repeated names,
acronyms, numbers) and the made-up page headers that keep the copy from leaning on the help text's words or on the
hint's position; spans of a given token length.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SEED = 1234
VOCAB_SIZE = 1024
HOLD_OUT_EVERY = 8  # one topic in eight is held out
DOC_NAMES = ("sample.pdf", "report.pdf", "scan.tiff", "notes.pdf", "invoice.pdf", "paper.pdf", "letter.png")
EXTENSIONS = ("pdf", "pdf", "pdf", "PDF", "png", "jpg", "jpeg", "tiff", "tif", "webp", "bmp")


# ---------------------------------------------------------------------------------------------------- the corpus
CORPUS_FILE = "tiny-corpus.json.gz"  # CPython 3.11.7's pydoc_data.topics (PSF License): the same text on any Python


def corpus_topics() -> tuple[list[str], list[str]]:
    """``(train, held_out)`` topic texts of CPython's help (a snapshot kept beside this module, since each Python
    version bundles other text and the tokenizer, the split and the spans are made from it), cleaned to printable
    ASCII lines."""
    import gzip

    topics = json.loads(gzip.decompress((Path(__file__).parent / CORPUS_FILE).read_bytes()))["topics"]
    train, held = [], []
    for i, key in enumerate(sorted(topics)):
        text = topics[key].encode("ascii", "ignore").decode()
        lines = [ln.strip() for ln in text.splitlines()]
        lines = [re.sub(r"\s+", " ", ln) for ln in lines if ln and not set(ln) <= set("*=-~^")]
        (held if i % HOLD_OUT_EVERY == 0 else train).append("\n".join(lines))
    return train, held


def train_tokenizer_core(texts: Sequence[str], vocab_size: int = VOCAB_SIZE) -> Any:
    """A byte-level BPE ``tokenizers.Tokenizer`` with Gemma 4's special tokens first (ids as in the tiny model)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    from inference.weights.tiny import SPECIAL_TOKENS

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return core


class PseudoWords:
    """English-like words that the corpus does not have: character trigram and bigram models of its words. A page's
    own words (names, products, everyday words a help text never uses) are split by the corpus's BPE into pieces of
    one to three characters (``workbench`` = ``w or k b en ch``: 2.2 characters a token, the help text's words 3.7);
    trigram words split like them (2.4), bigram words into shorter pieces still (1.9)."""

    def __init__(self, texts: Sequence[str]) -> None:
        import collections

        follow: dict[str, list[str]] = collections.defaultdict(list)
        for text in texts:
            for word in re.findall(r"[a-z]{3,}", text.lower()):
                padded = "^^" + word + "$"
                for i in range(2, len(padded)):
                    follow[padded[i - 2 : i]].append(padded[i])
                    follow[padded[i - 1]].append(padded[i])
        self.follow = {k: sorted(v) for k, v in sorted(follow.items())}  # sorted: the same draws on any Python

    def word(self, rng: random.Random, shortest: int = 3, longest: int = 13, order: int = 3) -> str:
        """A word of ``shortest``-``longest`` letters from the trigram (``order`` 3) or bigram (2) model."""
        for _ in range(50):
            out = "^^"
            while len(out) < longest + 3:
                nxt = rng.choice(self.follow[out[-(order - 1) :]])
                if nxt == "$":
                    break
                out += nxt
            word = out[2:]
            if shortest <= len(word) <= longest:
                return word
        return word


_CORE = re.compile(r"^([^A-Za-z0-9]*)([A-Za-z]+)([^A-Za-z0-9]*)$")


def _number(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return str(rng.randint(0, 99))
    if kind == 1:
        return str(rng.randint(1900, 2030))
    if kind == 2:
        return f"{rng.randint(0, 999)}.{rng.randint(0, 99):02d}"
    if kind == 3:
        return f"{rng.randint(1, 100)}%"
    if kind == 4:
        return f"{rng.randint(1, 28)}/{rng.randint(1, 12)}/{rng.randint(1990, 2030)}"
    return f"{rng.randint(1, 999):,}" if rng.random() < 0.5 else str(rng.randint(100, 99999))


def _styled(word: str, like: str, rng: random.Random) -> str:
    if like[:1].isupper() or rng.random() < 0.25:
        return word[:1].upper() + word[1:]
    return word


def page_header(rng: random.Random, pseudo: PseudoWords) -> tuple[str, int]:
    """A document name and page number for the prompt's ``[name, page N]`` line, as users' files have them: a plain
    name, or one to eight made-up words (``_``, ``-``, space or camel case; sometimes a date or number before or after,
    a ``(final)`` or ``(2)``: ``scan_0041.tiff``, ``2024-03-12 Harbour minutes (final).pdf``), and a page log-uniform
    in 1-999 (a third each of 1-9, 10-99, 100-999): the hint starts 12 to about 60 tokens into the prompt.

    The header's length in tokens decides where the hint starts; a model trained on a few names and pages 1-40
    found the hint by that position and lost the copy's alignment when the header was a token shorter or longer
    (pages 1-3 of ``sample.pdf`` copied at 0.74 character accuracy, pages 4-33 at 1.0, a long name at 0.1-0.25)."""
    if rng.random() < 0.15:
        return rng.choice(DOC_NAMES), int(10 ** rng.uniform(0, 3))
    words = [pseudo.word(rng, 2, 10) for _ in range(rng.choice((1, 1, 2, 2, 3, 3, 4, 5, 6, 8)))]
    style = rng.randrange(4)
    if style == 0:
        words = [w[:1].upper() + w[1:] for w in words]
    elif style == 1:
        words = [w.upper() if len(w) <= 4 and rng.random() < 0.5 else w for w in words]
    sep = rng.choice(("_", "-", " ", " ", ""))
    stem = sep.join(words)

    def number() -> str:
        return _number(rng).replace("/", "-").replace(",", "") if rng.random() < 0.5 else f"{rng.randint(0, 9999):04d}"

    if rng.random() < 0.35:
        stem += sep + number()
    if rng.random() < 0.15:
        stem = number() + rng.choice((" ", "_", "-")) + stem
    if rng.random() < 0.15:
        stem += f" ({rng.choice(('final', 'draft', 'copy', str(rng.randint(1, 9)), pseudo.word(rng, 3, 8)))})"
    return f"{stem}.{rng.choice(EXTENSIONS)}", int(10 ** rng.uniform(0, 3))


def varied_topics(texts: Sequence[str], seed: int = SEED) -> list[str]:
    """The corpus with the words documents have and help text lacks: in each topic a share of the words (20-90 %)
    become made-up English-like words (:class:`PseudoWords`), a few names the topic repeats (a product or a person
    named again and again), title case, acronyms (``OCR``, ``PDFs``), numbers, dates and compounds. Deterministic
    in ``seed``."""
    rng = random.Random(seed)
    pseudo = PseudoWords(texts)
    out = []
    for text in texts:
        names = []
        for _ in range(rng.randint(1, 3)):
            name = pseudo.word(rng, 4, 12)
            if rng.random() < 0.4:  # a compound name: WorkBench, Datafold
                second = pseudo.word(rng, 3, 8)
                name += second[:1].upper() + second[1:] if rng.random() < 0.5 else second
            names.append(name[:1].upper() + name[1:] if rng.random() < 0.7 else name)
        rate = rng.uniform(0.2, 0.9)
        lines = []
        for line in text.split("\n"):
            words = []
            for word in line.split(" "):
                m = _CORE.match(word)
                if m is None or rng.random() >= rate:
                    words.append(word)
                    continue
                before, core, after = m.groups()
                kind = rng.random()
                if kind < 0.5:
                    core = _styled(pseudo.word(rng, order=3 if rng.random() < 0.7 else 2), core, rng)
                elif kind < 0.65:
                    core = rng.choice(names)
                elif kind < 0.75:
                    core = core[:1].upper() + core[1:]
                elif kind < 0.83:
                    core = "".join(rng.choice("ABCDEFGHIJKLMNOPRSTUVW") for _ in range(rng.randint(2, 4)))
                    core += "s" if rng.random() < 0.2 else ""
                elif kind < 0.93:
                    core = _number(rng)
                else:
                    core = core + pseudo.word(rng, 3, 7)
                words.append(before + core + after)
            lines.append(" ".join(words))
        out.append("\n".join(lines))
    return out


class SpanSampler:
    """Spans of whole words from the corpus with an exact token count (same count per batch: no padding)."""

    def __init__(self, texts: Sequence[str], tokenizer: Any) -> None:
        self.words: list[str] = []  # words with the whitespace before them ("\n" or " "), one topic after another
        self.costs: list[int] = []
        self.starts: list[int] = []  # indexes of words that begin a line
        for text in texts:
            for line in text.split("\n"):
                for j, word in enumerate(line.split(" ")):
                    if not word:
                        continue
                    if j == 0:
                        self.starts.append(len(self.words))
                    self.words.append(("\n" if j == 0 else " ") + word)
        # a word's own token count in context (a leading space merges into the word; a newline stays apart)
        for w in self.words:
            self.costs.append(
                len(tokenizer(w[1:] if w[0] == "\n" else w, add_special_tokens=False)["input_ids"])
                + (1 if w[0] == "\n" else 0)
            )
        self.tokenizer = tokenizer

    def span(self, n_tokens: int, rng: random.Random, tries: int = 200) -> str | None:
        for _ in range(tries):
            start = rng.choice(self.starts) if rng.random() < 0.5 else rng.randrange(len(self.words))
            total, end = -1 if self.words[start][0] == "\n" else 0, start
            while end < len(self.words) and total < n_tokens:
                total += self.costs[end]
                end += 1
            if total != n_tokens:
                continue
            text = ("".join(self.words[start:end])).strip()
            if len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) == n_tokens:
                return text
        return None
