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


def pinyin_key(text: str) -> str | None:
    """Toneless pinyin of the Chinese characters in ``text`` (沐曦 -> 'muxi'), or None."""
    if not _CJK.search(text):
        return None
    from pypinyin import lazy_pinyin

    return normalize("".join(lazy_pinyin(text)))
