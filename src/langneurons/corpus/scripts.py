"""Guess the ISO 15924 script of a text from Unicode character names (for UDHR translations with no tag)."""

from __future__ import annotations

import functools
import unicodedata
from collections import Counter

# First word(s) of Unicode character names -> ISO 15924 code. Longer prefixes are tried first.
_PREFIXES: dict[str, str] = {
    "LATIN": "Latn", "CYRILLIC": "Cyrl", "GREEK": "Grek", "ARABIC": "Arab", "HEBREW": "Hebr",
    "SYRIAC": "Syrc", "THAANA": "Thaa", "NKO": "Nkoo", "DEVANAGARI": "Deva", "BENGALI": "Beng",
    "GURMUKHI": "Guru", "GUJARATI": "Gujr", "ORIYA": "Orya", "TAMIL": "Taml", "TELUGU": "Telu",
    "KANNADA": "Knda", "MALAYALAM": "Mlym", "SINHALA": "Sinh", "THAI": "Thai", "LAO": "Laoo",
    "TIBETAN": "Tibt", "MYANMAR": "Mymr", "GEORGIAN": "Geor", "HANGUL": "Hang", "ETHIOPIC": "Ethi",
    "CHEROKEE": "Cher", "CANADIAN": "Cans",
    "KHMER": "Khmr", "MONGOLIAN": "Mong", "ARMENIAN": "Armn", "CJK": "Hani", "HIRAGANA": "Hira",
    "KATAKANA": "Kana", "TIFINAGH": "Tfng", "YI": "Yiii", "VAI": "Vaii", "ADLAM": "Adlm", "JAVANESE": "Java",
    "TAI THAM": "Lana", "TAI LE": "Tale", "NEW TAI LUE": "Talu", "TAI VIET": "Tavt", "BALINESE": "Bali",
    "BUGINESE": "Bugi", "TAGALOG": "Tglg", "GRANTHA": "Gran", "OL CHIKI": "Olck", "BAMUM": "Bamu",
    "COPTIC": "Copt", "SUNDANESE": "Sund", "BATAK": "Batk", "LEPCHA": "Lepc", "LIMBU": "Limb",
    "MEETEI MAYEK": "Mtei", "SAURASHTRA": "Saur", "CHAM": "Cham", "OSAGE": "Osge", "BOPOMOFO": "Bopo",
    "CHAKMA": "Cakm", "KAYAH LI": "Kali", "SYLOTI NAGRI": "Sylo", "GLAGOLITIC": "Glag",
}
_ORDERED = sorted(_PREFIXES.items(), key=lambda kv: -len(kv[0]))


@functools.cache
def _script_of(char: str) -> str | None:
    name = unicodedata.name(char, "")
    for prefix, script in _ORDERED:
        if name.startswith(prefix + " ") or name == prefix:
            return script
    return None


def detect_script(text: str) -> str | None:
    """The ISO 15924 code of most letters in ``text`` (``Jpan`` for kana with kanji); None if no letters."""
    counts = Counter(s for ch in text if ch.isalpha() and (s := _script_of(ch)))
    if not counts:
        return None
    if counts["Hira"] + counts["Kana"] > 0.1 * sum(counts.values()):
        return "Jpan"
    return counts.most_common(1)[0][0]
