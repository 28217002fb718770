"""Name keys for entity resolution: case-, width-, whitespace-insensitive, plus pinyin.

Kept free of heavy imports: the query path imports :func:`normalize` at every start.
"""

from __future__ import annotations

import re
import unicodedata

_STRIP = re.compile(r"[\s\-_·・.,，、'\"“”‘’()（）《》<>\[\]【】「」:：/]+")


def normalize(text: str) -> str:
    """Case-, width-, whitespace- and punctuation-insensitive key."""
    return _STRIP.sub("", unicodedata.normalize("NFKC", text).casefold())


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


# pinyin keys already known (a build fills it from the index rows its workers computed)
PINYIN_KEYS: dict[str, str] = {}


def pinyin_key(text: str) -> str | None:
    """Toneless pinyin of the Chinese characters in ``text`` (沐曦 -> 'muxi'), or None."""
    if not _CJK.search(text):
        return None
    known = PINYIN_KEYS.get(text)
    if known is not None:
        return known
    from pypinyin import lazy_pinyin

    return normalize("".join(lazy_pinyin(text)))
