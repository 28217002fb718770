"""Name keys for entity resolution: case-, width-, whitespace-insensitive, plus pinyin.

Kept free of heavy imports: the query path imports :func:`normalize` at every start.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from itertools import chain
from typing import Any

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

    pinyin = Pinyin(converter)
    return _fast_seg(pinyin) or pinyin.seg, word_pinyin


# the pypinyin whose segmentation _fast_seg repeats
_SEG_VERSIONS = {"0.55.0"}


def _fast_seg(pinyin: Any) -> Callable[[str], list[str]] | None:
    """``pinyin.seg`` (pypinyin's words of a text) without its calls per character: the
    same steps, in one function. None unless pypinyin is the version it follows, set up as
    it comes (then ``pinyin.seg`` itself is used)."""
    import pypinyin
    from pypinyin import constants, core
    from pypinyin.seg import mmseg, simpleseg

    cut = mmseg.seg
    phrases: Any = getattr(constants, "PHRASES_DICT", None)
    re_hans: Any = getattr(constants, "RE_HANS", None)
    if not (getattr(pypinyin, "__version__", None) in _SEG_VERSIONS
            and type(pinyin) is core.Pinyin and pinyin.get_seg() is simpleseg.seg
            and pinyin.pre_seg("中文") is None and pinyin.post_seg("中文", ["中文"]) is None
            and type(cut) is mmseg.Seg and type(cut._prefix_set) is mmseg.PrefixSet
            and type(cut._no_non_phrases) is bool
            and phrases is not None and re_hans is not None
            and getattr(simpleseg, "PHRASES_DICT", None) is phrases
            and getattr(mmseg, "PHRASES_DICT", None) is phrases
            and getattr(simpleseg, "RE_HANS", None) is re_hans):
        return None
    pattern: str = getattr(re_hans, "pattern", "")
    if not (pattern.startswith("^(?:[") and pattern.endswith("])+$")):
        return None
    hans = pattern[4:-3]  # the character class of the characters with a pinyin
    runs = re.compile(f"({hans}+)|([^{hans[1:]}+)")  # simpleseg's runs: hans or not
    prefixes = cut._prefix_set._set
    strict = cut._no_non_phrases

    def seg(text: str) -> list[str]:
        """``simpleseg.seg(text)``: its runs; each run of hans cut as ``mmseg.Seg.cut``
        does (the longest phrase at each place, in the prefix set and, when strict, in the
        phrases)."""
        if not text:
            return [text]
        words: list[str] = []
        for run, other in runs.findall(text):
            if not run:
                words.append(other)
                continue
            if not phrases:
                words.append(run)
                continue
            remain = run
            while remain:
                matched = last = ""
                end = 0
                for i in range(1, len(remain) + 1):
                    word = remain[:i]
                    if word in prefixes:
                        matched = word
                        if not strict or word in phrases:
                            last, end = word, i
                    else:
                        if last:
                            words.append(last)
                            remain = remain[end:]
                        elif strict or not matched:
                            words.append(remain[0])
                            remain = remain[1:]
                        else:
                            words.append(matched)
                            remain = remain[len(matched):]
                        break
                else:
                    if last:
                        words.append(last)
                        remain = remain[end:]
                    else:
                        if strict and remain not in phrases:
                            words.extend(remain)
                        else:
                            words.append(remain)
                        break
        return words

    return seg
