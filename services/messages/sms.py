"""SMS bodies: one GSM-7 segment (160 characters) where possible.

A text in GSM-7 fits 160 characters in one segment; one character outside it (an emoji, a
curly quote, most accents) switches the whole text to UCS-2 and 70 characters, and a
longer text is split into segments of 153 (or 67) that each cost a message. So a body is
the first of its template's variants (one per line, richest first) that fits one segment,
after folding what has a GSM-7 look-alike (`Zoë` → `Zoe`, `’` → `'`).
"""

from __future__ import annotations

import unicodedata
from typing import Any

from services.messages.rendering import one_line, template

SEGMENT = 160  # GSM-7 characters in a single-segment SMS
UCS2_SEGMENT = 70

# GSM 03.38 default alphabet, and its extension table (each of those costs two characters).
_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_EXTENDED = set("^{}\\[~]|€")
_LOOKALIKES = {"‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "–": "-", "—": "-", "…": "...",
               "\u00a0": " ", "•": "-"}


def is_gsm7(text: str) -> bool:
    return all(c in _BASIC or c in _EXTENDED for c in text)


def length(text: str) -> int:
    """Characters as the network counts them: GSM-7 septets (extension characters are two),
    or UTF-16 code units when the text needs UCS-2."""
    if is_gsm7(text):
        return sum(2 if c in _EXTENDED else 1 for c in text)
    return len(text.encode("utf-16-le")) // 2


def segments(text: str) -> int:
    n = length(text)
    single, multi = (SEGMENT, 153) if is_gsm7(text) else (UCS2_SEGMENT, 67)
    return 1 if n <= single else -(-n // multi)


def to_gsm7(text: str) -> str:
    """Characters outside GSM-7 replaced by a look-alike inside it where one exists (accents
    dropped, typographic quotes made straight); the rest left as they are."""
    out = []
    for c in text:
        if c in _BASIC or c in _EXTENDED:
            out.append(c)
        elif c in _LOOKALIKES:
            out.append(_LOOKALIKES[c])
        else:
            folded = "".join(x for x in unicodedata.normalize("NFKD", c) if not unicodedata.combining(x))
            out.append(folded if folded and all(x in _BASIC for x in folded) else c)
    return "".join(out)


def render_sms(message: str, context: dict[str, Any]) -> str:
    """The first variant of `templates/<message>/sms.txt` (one per line) that fits one segment;
    the shortest when none does (still sent, in several segments)."""
    lines = template(f"{message}/sms.txt").render(context).splitlines()
    variants = [to_gsm7(one_line(line)) for line in lines if line.strip()]
    for body in variants:
        if segments(body) == 1:
            return body
    return min(variants, key=length)
