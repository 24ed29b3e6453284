"""Which installed model reads a page's script, and a plain note where none does.

Tesseract's orientation and script detection (OSD) names the page's script. Measured on the same scans
(docs/benchmarks.md, ``tests.benchmarks.ocr_scripts``), RapidOCR's bundled PP-OCRv6 models read Chinese and
Japanese exactly where Tesseract's ``jpn`` model misreads Chinese and spaces every character, while Tesseract reads
Latin text as well and about twice as fast: so Han and Japanese pages go to RapidOCR when it is installed, Latin
pages to Tesseract (German ones, told by their common words, with ``deu`` when it is installed, which has the
umlauts and ß; French, Spanish, Portuguese, Italian, Czech and Polish ones by RapidOCR, whose Latin model has their
accents). A script no installed model reads (Hangul, Cyrillic, Greek, Arabic, Hebrew, Thai, Devanagari with
only the packaged models) is never read as Latin junk: the page says which text was not read and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# the script names OSD gives -> the name a reader knows the text by
SCRIPT_NAMES = {
    "Latin": "Latin-script",
    "Han": "Chinese",
    "Japanese": "Japanese",
    "Hangul": "Korean",
    "Korean": "Korean",
    "Cyrillic": "Cyrillic-script",
    "Greek": "Greek",
    "Arabic": "Arabic-script",
    "Hebrew": "Hebrew",
    "Thai": "Thai",
    "Devanagari": "Devanagari-script",
    "Bengali": "Bengali",
    "Tamil": "Tamil",
    "Georgian": "Georgian",
    "Armenian": "Armenian",
}
RAPID_SCRIPTS = ("Han", "Japanese")  # where RapidOCR's bundled models win (docs/benchmarks.md)
MIN_DOUBT = 0.25  # under MIN_SCRIPT_CONFIDENCE but above this, a script no model reads is named if English fails
SURE_ENOUGH = 0.7  # English read with this confidence (and words cased as words) stands against OSD's script
CASED_WORDS = 0.6  # the share of its letter-only words English must read cased as words (not "yeTBEpTas")
MIN_SCRIPT_CONFIDENCE = 0.5  # OSD's script confidence under which it is taken as unsure (a few lines of text)
GERMAN = frozenset("der die das und ist nicht mit für auf dem den des ein eine sich von zu im auch werden".split())
# common words of Latin-script languages whose accents Tesseract's eng model drops ("nao" for não), as eng reads them
ACCENTED = {
    "French": frozenset("le la les des et est une dans pour que qui pas sur avec du au ce sont".split()),
    "Spanish": frozenset("el la los las y es una en por que del con para se lo como".split()),
    "Portuguese": frozenset("o os as e um uma em por que do da nao na no com para ha ao".split()),
    "Italian": frozenset("il lo la gli le e di che per una con del della non sono".split()),
    "Czech": frozenset("a je se na v to ze s z do jako pro od by jsou".split()),
    "Polish": frozenset("i w z na sie nie do to jest ze jak od po".split()),
}
ENGLISH = frozenset("the of and to in is that for it with as was on by this are be at from".split())
CJK_CHAR = r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]"
CJK_SPACE = re.compile(rf"(?<={CJK_CHAR}) +(?={CJK_CHAR})")


@dataclass(frozen=True)
class Choice:
    """How a page is read: ``engine`` "tesseract" (with ``lang``), "rapidocr", or "none" (no installed model reads
    ``script``: the page carries ``note`` instead of text)."""

    engine: str
    lang: str
    script: str = ""
    note: str = ""
    doubt: str = ""  # a script OSD named without confidence that no model reads: named if English reads poorly


def choose(script: str | None, confidence: float, installed: list[str], rapid: bool) -> Choice:
    """The reader for a page whose script OSD named ``script`` with ``confidence``: Tesseract's first installed
    language for it, RapidOCR for Han and Japanese when it is installed, else none. An unsure or missing answer
    reads with English (most pages are Latin; the page's confidence then tells how that went)."""
    from inference.ocr.tesseract import SCRIPT_LANGS

    fallback = "eng" if "eng" in installed else (installed[0] if installed else "eng")
    script = "Hangul" if script == "Korean" else script
    if not script or confidence < MIN_SCRIPT_CONFIDENCE:
        unread = script and script != "Latin" and confidence >= MIN_DOUBT and choose(script, 1.0, installed, rapid)
        doubt = script if unread and unread.engine == "none" else ""
        return Choice("tesseract", fallback, "", note=not_read(doubt) if doubt else "", doubt=doubt or "")
    if rapid and script in RAPID_SCRIPTS:
        return Choice("rapidocr", "", script)
    lang = next((code for code in SCRIPT_LANGS.get(script, ()) if code in installed), None)
    if lang:
        return Choice("tesseract", lang, script)
    if script == "Latin":
        return Choice("tesseract", fallback, script)
    return Choice("none", "", script, not_read(script))


def latin_first(choice: Choice, installed: list[str]) -> Choice:
    """A script OSD names that no installed model reads is read with English first, however sure OSD is: on
    screenshots (light text on dark bars, small UI fonts) OSD names Cyrillic or Fraktur with confidence above 2
    where English reads the page at 0.87. The page is named as not read only when English reads it poorly
    (:func:`reads_as_latin`; Russian read with English: 0.28, Hebrew 0.12)."""
    if choice.engine != "none":
        return choice
    fallback = "eng" if "eng" in installed else (installed[0] if installed else "eng")
    return Choice("tesseract", fallback, "", note=choice.note, doubt=choice.script)


def reads_as_latin(text: str, confidence: float | None) -> bool:
    """Whether English's reading of a page stands against a script OSD named: Tesseract's confidence at least
    ``SURE_ENOUGH``, and at least ``CASED_WORDS`` of its letter-only words cased as words are (lower case,
    Capitalised, CAPITALS): Cyrillic read with English's letters comes out "yeTBEpTas nNaaHeTa"."""
    if confidence is None or confidence < SURE_ENOUGH:
        return False
    words = [w.strip(".,:;!?()[]{}\"'“”‘’") for w in text.split()]
    words = [w for w in words if len(w) >= 2 and w.isalpha()]
    if not words:
        return True  # numbers and codes only: the confidence decides
    cased = sum(w.islower() or w.isupper() or (w[0].isupper() and w[1:].islower()) for w in words)
    return cased >= CASED_WORDS * len(words)


def not_read(script: str) -> str:
    name = SCRIPT_NAMES.get(script, f"{script}-script")
    shown = "Hangul" if script == "Hangul" else script
    return f"{name} text on this page was not read: no OCR model for {shown} is installed; see docs/parsing.md"


def german(text: str, installed: list[str]) -> bool:
    """Whether text read with English is German (a tenth of its words are common German words) and ``deu`` is
    installed to read it again with its umlauts and ß."""
    words = re.findall(r"[a-zäöüß]+", text.lower())
    return "deu" in installed and len(words) >= 8 and sum(w in GERMAN for w in words) >= 0.1 * len(words)


def accented(text: str) -> str | None:
    """The accented Latin-script language that text read with English is in (an eighth of its words are common
    words of that language, and more of them than English ones), or None: such a page is read again by RapidOCR,
    whose Latin model has the accents (docs/benchmarks.md)."""
    words = re.findall(r"[a-z]+", text.lower())
    if len(words) < 8:
        return None
    english = sum(w in ENGLISH for w in words)
    best = max(ACCENTED, key=lambda name: sum(w in ACCENTED[name] for w in words))
    hits = sum(w in ACCENTED[best] for w in words)
    return best if hits >= len(words) / 8 and hits > english else None


def unspaced(text: str) -> str:
    """CJK text without the spaces Tesseract puts between its characters ("い つ も" -> "いつも"); spaces beside
    Latin words and digits stay."""
    return CJK_SPACE.sub("", text)
