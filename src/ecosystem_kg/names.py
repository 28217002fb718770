"""Name keys for entity resolution: case-, width-, whitespace-insensitive, plus pinyin.

Kept free of heavy imports: the query path imports :func:`normalize` at every start.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from itertools import chain

_STRIP = re.compile(r"[\s\-_·・.,，、'\"“”‘’()（）《》<>\[\]【】「」:：/]+")


def normalize(text: str) -> str:
    """Case-, width-, whitespace- and punctuation-insensitive key."""
    if type(text) is str and text.isascii():  # NFKC keeps ASCII, and casefold() is lower()
        return _STRIP.sub("", text.lower())
    return _STRIP.sub("", unicodedata.normalize("NFKC", text).casefold())


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


# pinyin keys already known (a build fills it from the index rows its workers computed)
PINYIN_KEYS: dict[str, str] = {}


def pinyin_key(text: str) -> str | None:
    """Toneless pinyin of the Chinese characters in ``text`` (沐曦 -> 'muxi'), or None."""
    if type(text) is str and text.isascii() or not _CJK.search(text):
        return None
    known = PINYIN_KEYS.get(text)
    if known is not None:
        return known
    seg, word_pinyin = _pinyin_tools()
    return normalize("".join([word_pinyin(w) for w in seg(text)]))


def load_pinyin() -> None:
    """Load pypinyin and its dictionaries now (:func:`pinyin_key` does when first needed)."""
    _pinyin_tools()


@lru_cache(maxsize=1)
def _pinyin_tools() -> tuple[Callable[[str], list[str]], Callable[[str], str]]:
    """pypinyin's ``lazy_pinyin(text)`` in two steps: the words it splits the text into, and
    the pinyin of one word, which depends on nothing else (so it is cached: names share
    words such as 科技 or 智能)."""
    from pypinyin import Style
    from pypinyin.converter import UltimateConverter
    from pypinyin.core import Pinyin

    converter = UltimateConverter(v_to_u=False, neutral_tone_with_five=False,
                                  tone_sandhi=False)  # what lazy_pinyin uses

    @lru_cache(maxsize=1 << 16)
    def word_pinyin(word: str) -> str:
        return "".join(chain.from_iterable(
            converter.convert(word, Style.NORMAL, False, "default", strict=True)))

    return Pinyin(converter).seg, word_pinyin

