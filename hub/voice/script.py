"""The voice script of one ``<info>``: SSML, its estimated duration and what it costs.

Pure: no I/O. What is said, in the member's language (nl, fr, de, en; anything else is
spoken in English)::

    <announcement of the sender> <break/>
    <headline> <break/> <description, shortened> <break/> <instruction> <break/>
    <"I repeat"> <break/> <headline> ... <instruction>          (the body, repeated once)
    [<"press 1 to confirm">]

It is SSML 1.1 (``<speak xml:lang="nl-BE">``, ``<s>``, ``<break>``, ``<say-as>`` for times and
numbers) so that any engine can speak it; espeak-ng reads it with ``-m``.

**Cleaning.** CAP text comes from people's keyboards: emoji, pictographs, control characters,
private-use and unassigned code points, zero-width joiners and variation selectors are what a
TTS engine cannot speak (espeak-ng spells some of them by name, "smiling face with..."), so
they go; letters, digits, punctuation and common signs stay; runs of white space become one
space; the text is NFC-normalised.

**Duration.** Words at the language's speaking rate (``WPM``, the same rate the TTS engine is
given, so the estimate is what the audio will last within a few seconds) plus the breaks. A
number counts as several spoken words. **Cost**: started minutes, at ``price_per_minute``.

**Fitting.** The script never lasts longer than ``max_seconds``: the description (said twice)
is shortened first, at a sentence boundary when one fits, else at a word; then the
instruction; then the repetition is dropped; the announcement and the headline stay.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from hub.cap.model import Info

VOICE_PRICE_EUR = Decimal("0.055")  # BE-Alert's price per started minute, excl. VAT
LANGUAGES = ("nl", "fr", "de", "en")
XML_LANG = {"nl": "nl-BE", "fr": "fr-BE", "de": "de-BE", "en": "en-GB"}
# Words per minute: what the estimate assumes and what the TTS engine is told to speak at.
WPM = {"nl": 150, "fr": 160, "de": 140, "en": 160}
WORDS_PER_NUMBER = 2  # "14:30", "112", "2024": two or three words when spoken

# Seconds of each break.
BREAK_SHORT = 0.4
BREAK_LONG = 0.8

PHRASES: dict[str, dict[str, str]] = {
    "nl": {"from": "Dit is een bericht van {sender}.", "repeat": "Ik herhaal.",
           "confirm": "Druk op 1 om te bevestigen dat u dit bericht hebt gehoord.",
           "end": "Einde van het bericht."},
    "fr": {"from": "Ceci est un message de {sender}.", "repeat": "Je répète.",
           "confirm": "Appuyez sur 1 pour confirmer que vous avez entendu ce message.",
           "end": "Fin du message."},
    "de": {"from": "Dies ist eine Nachricht von {sender}.", "repeat": "Ich wiederhole.",
           "confirm": "Drücken Sie 1, um zu bestätigen, dass Sie diese Nachricht gehört haben.",
           "end": "Ende der Nachricht."},
    "en": {"from": "This is a message from {sender}.", "repeat": "I repeat.",
           "confirm": "Press 1 to confirm that you have heard this message.",
           "end": "End of message."},
}

# Unicode categories a TTS engine speaks: letters, marks, numbers, punctuation, the currency
# and math signs (€, %, +) and spaces. Everything else (So: emoji and pictographs, Sk, Cc,
# Cf, Co, Cn, Cs) is dropped.
_SPOKEN = ("L", "M", "N", "P", "Zs")
_KEPT_SYMBOLS = frozenset("€$£%+=°")
_SPACES = re.compile(r"\s+")
_TIME = re.compile(r"\b([01]?\d|2[0-3])[:h.]([0-5]\d)\b")
_NUMBER = re.compile(r"\b\d+(?:[.,]\d+)?\b")
_TOKEN = re.compile(rf"{_TIME.pattern}|{_NUMBER.pattern}")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s")


def clean(text: str | None) -> str:
    """``text`` as a TTS engine can speak it: see the module docstring."""
    if not text:
        return ""
    out = []
    for ch in unicodedata.normalize("NFC", text):
        cat = unicodedata.category(ch)
        if ch in "\t\n\r\f\v":
            out.append(" ")
        elif _is_selector(ch):
            continue  # emoji presentation and variation selectors are marks, but say nothing
        elif cat.startswith(_SPOKEN) or ch in _KEPT_SYMBOLS:
            out.append(ch)
        elif cat.startswith("S"):
            out.append(" ")  # a sign between two words must not glue them together
    return _SPACES.sub(" ", "".join(out)).strip()


def _is_selector(ch: str) -> bool:
    code = ord(ch)
    return 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF or 0x1F3FB <= code <= 0x1F3FF


def language_of(tag: str | None) -> str:
    """``nl-BE`` → ``nl``; a language this channel does not speak → ``en``."""
    primary = (tag or "").split("-")[0].lower()
    return primary if primary in LANGUAGES else "en"


def spoken_words(text: str) -> int:
    """Words a speaker says for ``text``: a number or time counts as several."""
    numbers = len(_TOKEN.findall(text))
    return len(text.split()) + numbers * (WORDS_PER_NUMBER - 1)


def seconds_for(words: int, language: str) -> float:
    return words * 60.0 / WPM[language]


def billed_minutes(seconds: float) -> int:
    """Started minutes: 0 for a call nobody answered, else at least 1."""
    return 0 if seconds <= 0 else math.ceil(seconds / 60.0 - 1e-9)


def call_cost(minutes: int, price_per_minute: Decimal = VOICE_PRICE_EUR) -> Decimal:
    return (price_per_minute * minutes).quantize(Decimal("0.0001"), ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class VoiceScript:
    """What one call says. ``seconds`` is the estimate, ``minutes`` the billed minutes of a
    call that plays it to the end, ``cost_eur`` their price; ``shortened`` names what was cut
    to fit ``max_seconds`` (empty when nothing was)."""

    language: str
    ssml: str
    text: str  # the same words without markup, for previews and tests
    words: int
    seconds: float
    minutes: int
    cost_eur: Decimal
    shortened: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Part:
    text: str
    pause: float  # seconds of silence after it


def voice_script(info: Info, *, language: str | None = None, sender: str = "BE-Alert",
                 max_seconds: float = 90.0, confirm: bool = False,
                 price_per_minute: Decimal = VOICE_PRICE_EUR) -> VoiceScript:
    """The script of ``info`` in ``language`` (default: the info's own), lasting at most
    ``max_seconds``. ``sender`` is announced when the info has no ``<senderName>``."""
    if max_seconds <= 0:
        raise ValueError("max_seconds must be positive")
    lang = language_of(language or info.language)
    words = PHRASES[lang]
    who = clean(info.sender_name) or clean(sender) or "BE-Alert"
    headline = clean(info.headline) or clean(info.event)
    description, instruction = clean(info.description), clean(info.instruction)
    shortened: list[str] = []

    def build(desc: str, instr: str, repeat: bool) -> list[_Part]:
        body = [_Part(t, BREAK_SHORT) for t in (headline, desc, instr) if t]
        if body:
            body[-1] = _Part(body[-1].text, BREAK_LONG)
        parts = [_Part(words["from"].format(sender=who), BREAK_LONG), *body]
        if repeat and body:
            parts += [_Part(words["repeat"], BREAK_SHORT), *body]
        if confirm:
            parts.append(_Part(words["confirm"], BREAK_SHORT))
        parts.append(_Part(words["end"], 0.0))
        return parts

    def seconds(parts: list[_Part]) -> float:
        return sum(seconds_for(spoken_words(p.text), lang) + p.pause for p in parts)

    repeat = True
    parts = build(description, instruction, repeat)
    if seconds(parts) > max_seconds and description:
        # Said twice: each word of the description costs two.
        spare = max_seconds - seconds(build("", instruction, repeat))
        description = _shorten(description, int(spare / 2 * WPM[lang] / 60.0))
        shortened.append("description")
        parts = build(description, instruction, repeat)
    if seconds(parts) > max_seconds and instruction:
        spare = max_seconds - seconds(build(description, "", repeat))
        instruction = _shorten(instruction, int(spare / 2 * WPM[lang] / 60.0))
        shortened.append("instruction")
        parts = build(description, instruction, repeat)
    if seconds(parts) > max_seconds:
        repeat = False
        shortened.append("repetition")
        parts = build(description, instruction, repeat)
    total = seconds(parts)
    minutes = billed_minutes(total)
    return VoiceScript(
        language=lang, ssml=_ssml(parts, lang), text=" ".join(p.text for p in parts),
        words=sum(spoken_words(p.text) for p in parts), seconds=round(total, 1), minutes=minutes,
        cost_eur=call_cost(minutes, price_per_minute), shortened=tuple(shortened))


def _shorten(text: str, words: int) -> str:
    """At most ``words`` spoken words of ``text``: whole sentences when at least one fits,
    else whole words; "" when none fits."""
    if words <= 0:
        return ""
    sentences = _SENTENCE_END.split(text)
    kept: list[str] = []
    for sentence in sentences:
        if spoken_words(" ".join([*kept, sentence])) > words:
            break
        kept.append(sentence)
    if kept:
        return " ".join(kept)
    out: list[str] = []
    for word in text.split():
        if spoken_words(" ".join([*out, word])) > words:
            break
        out.append(word)
    return " ".join(out).rstrip(",;:") + ("..." if out else "")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _say_as(text: str) -> str:
    """Escaped ``text`` with times and numbers marked up for the engine."""
    out, last = [], 0
    for m in _TOKEN.finditer(text):
        out.append(_escape(text[last:m.start()]))
        token = m.group(0)
        if _TIME.fullmatch(token):
            hours, minutes = _TIME.fullmatch(token).groups()  # type: ignore[union-attr]
            out.append(f'<say-as interpret-as="time" format="hms24">{int(hours):02d}:{minutes}</say-as>')
        elif token.startswith("0") and len(token) > 1 and token.isdigit():
            out.append(f'<say-as interpret-as="digits">{token}</say-as>')  # a phone number, a code
        else:
            out.append(f'<say-as interpret-as="cardinal">{token}</say-as>')
        last = m.end()
    rest = text[last:]
    if last and not any(c.isalnum() for c in rest):
        rest = ""  # the sentence's own end says it; espeak-ng would read ". " after say-as aloud
    out.append(_escape(rest))
    return "".join(out)


def _ssml(parts: list[_Part], lang: str) -> str:
    body = "".join(
        f"<s>{_say_as(p.text)}</s>" + (f'<break time="{round(p.pause * 1000)}ms"/>' if p.pause else "")
        for p in parts)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<speak version="1.1" '
            f'xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="{XML_LANG[lang]}">{body}</speak>')
