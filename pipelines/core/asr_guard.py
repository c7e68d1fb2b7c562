"""Hallucination guard: keep Whisper's inventions on silence, noise and hold music out of calls.

Whisper was trained on subtitled video, so on audio without speech it tends to "hear" the
closing lines of Korean broadcasts and YouTube videos ("시청해 주셔서 감사합니다", "구독과
좋아요", "MBC 뉴스 홍길동입니다", "자막 제공 …"), short fillers ("네.", "아…"), or loops of one
phrase.  An abuse detector fed such text would act on words nobody said.  :func:`check` decides,
from the text and what is known about the audio and the decoder, whether a transcript is kept:

1. decoder confidence, when the backend reports it: Whisper's own no-speech rule
   (``no_speech_prob > 0.6`` and ``avg_logprob < -1``), or a very low ``avg_logprob`` alone;
2. energy: an utterance whose speech level is near silence cannot hold words;
3. known broadcast/video phrases are cut out; when nothing else is left, the transcript goes;
4. loops: one word or phrase repeated many times in a row, or text that compresses too well;
5. rate: more syllables than a human can say in the audio's duration;
6. script: Japanese kana or Chinese characters in a Korean call.

Pure (standard library only); thresholds live in :class:`GuardConfig`.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass

ACCEPTED = "accepted"
EMPTY = "empty"
NO_SPEECH = "no_speech"
LOW_CONFIDENCE = "low_confidence"
TOO_QUIET = "too_quiet"
KNOWN_HALLUCINATION = "known_hallucination"
REPETITION = "repetition"
TOO_FAST = "too_long_for_audio"
FOREIGN_SCRIPT = "foreign_script"

# Whole phrases Whisper emits on non-speech (matched on text without spaces/punctuation).
# Each is a regular expression over that squashed text.
KNOWN_PHRASES: tuple[str, ...] = (
    r"(?:지금까지|끝까지)?(?:오늘도)?시청(?:해|하여)?주(?:셔서|신)(?:정말|진심으로)?(?:대단히)?감사(?:합니다|드립니다|해요)",
    r"시청(?:해)?주셔서고맙습니다",
    r"(?:채널)?구독(?:과|이랑|하고|및|,)?좋아요(?:와|랑|및)?(?:알림(?:설정)?)?(?:부탁(?:드립니다|드려요|해요)|눌러주세요|해주세요)?",
    r"좋아요(?:와|랑)?구독(?:부탁(?:드립니다|드려요|해요)|해주세요)?",
    r"(?:MBC|KBS|SBS|YTN|JTBC|MBN|TV조선|채널A|연합)뉴스[가-힣A-Za-z]{0,8}(?:입니다|이었습니다|였습니다)",
    r"(?:한글)?자막(?:제공|제작|편집|by)(?:및)?(?:by|광고)?[가-힣A-Za-z0-9]{0,12}",
    r"(?:다음|오늘)?(?:영상|시간|방송)에서(?:또)?(?:만나요|뵙겠습니다|만나겠습니다)",
    r"(?:이|그)?영상(?:이)?도움이(?:되셨다면|됐다면)[가-힣]{0,20}",
    r"끝까지봐(?:주셔서|줘서)(?:정말)?(?:감사합니다|고맙습니다)",
    r"(?:ご視聴|视听|觀看|观看)[^\s]{0,20}",
    r"Thank(?:s|you)forwatching|Pleasesubscribe",
)
# Short fillers that are real words in a call but also Whisper's favourite inventions on noise:
# kept only when the decoder is confident there was speech (see GuardConfig.filler_*).
FILLERS: frozenset[str] = frozenset(
    {"네", "예", "아", "어", "음", "응", "그", "감사합니다", "고맙습니다", "안녕하세요", "뭐"}
)
_KNOWN = re.compile("|".join(f"(?:{p})" for p in KNOWN_PHRASES), re.IGNORECASE)
_NON_WORD = re.compile(r"[\s\W_]+", re.UNICODE)
_HANGUL = re.compile(r"[가-힣ᄀ-ᇿ㄰-㆏]")
_KANA_HAN = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff\u3400-\u4dbf]")


@dataclass(frozen=True)
class GuardConfig:
    no_speech_prob: float = 0.6  # Whisper's rule: above this …
    no_speech_logprob: float = -1.0  # … and avg_logprob below this → no speech
    min_avg_logprob: float = -1.5  # below this alone → too unsure to act on
    min_level_dbfs: float = -45.0  # speech level of the utterance
    filler_max_no_speech_prob: float = 0.3  # a lone filler needs no_speech_prob under this …
    filler_min_avg_logprob: float = -0.8  # … and avg_logprob above this
    max_syllables_per_s: float = 9.0  # fast Korean speech is about 7
    rate_slack: int = 6  # syllables allowed on top (short utterances)
    max_compression_ratio: float = 2.4  # Whisper's own loop threshold (zlib)
    min_chars_for_compression: int = 24
    max_repeats: int = 4  # the same n-gram more than this many times in a row
    max_foreign_ratio: float = 0.3  # kana/han share of letters


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str
    text: str  # cleaned text (known phrases removed, whitespace normalised); "" when rejected


def squash(text: str) -> str:
    """Text without spaces and punctuation, NFC-normalised (for matching phrases)."""
    return _NON_WORD.sub("", unicodedata.normalize("NFC", text))


def strip_known_phrases(text: str) -> str:
    """``text`` with every known broadcast/video phrase removed.

    Matching runs on the squashed text; the removed stretches are mapped back onto the original
    characters so the words around them keep their spacing.
    """
    text = unicodedata.normalize("NFC", text)
    keep = [i for i, ch in enumerate(text) if not _NON_WORD.fullmatch(ch)]
    squashed = "".join(text[i] for i in keep)
    drop: set[int] = set()
    for match in _KNOWN.finditer(squashed):
        if match.end() > match.start():
            first, last = keep[match.start()], keep[match.end() - 1]
            drop.update(range(first, last + 1))
    if not drop:
        return " ".join(text.split())
    # also drop punctuation that directly follows a removed stretch
    out = []
    for i, ch in enumerate(text):
        if i in drop or (i - 1 in drop and not ch.isspace() and _NON_WORD.fullmatch(ch)):
            drop.add(i)
            continue
        out.append(ch)
    cleaned = " ".join("".join(out).split())
    return cleaned.strip(" .,!?…·-")


def syllables(text: str) -> int:
    """Spoken-length proxy: Hangul syllables, plus digits and Latin letters / 2."""
    hangul = sum(1 for ch in text if "가" <= ch <= "힣")
    other = sum(1 for ch in text if ch.isascii() and ch.isalnum())
    return hangul + other // 2


def longest_repeat(text: str, max_n: int = 4) -> int:
    """Most consecutive repetitions of one word n-gram (n ≤ ``max_n``) or one short string.

    ``"네 네"`` → 2; ``"감사합니다. 감사합니다. 감사합니다."`` → 3; ``"아아아아아"`` → 5.
    """
    words = [w for w in (squash(w) for w in text.split()) if w]
    best = 1
    for n in range(1, max_n + 1):
        for start in range(n):
            run = 1
            for i in range(start + n, len(words) - n + 1, n):
                if words[i : i + n] == words[i - n : i]:
                    run += 1
                    best = max(best, run)
                else:
                    run = 1
    # loops inside one word or without spaces ("하하하하하하", "그래그래그래그래")
    for match in re.finditer(r"(.{1,6}?)\1+", squash(text)):
        best = max(best, len(match.group(0)) // len(match.group(1)))
    return best


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / max(1, len(zlib.compress(data)))


def check(
    text: str,
    duration_s: float,
    *,
    level_dbfs: float | None = None,
    avg_logprob: float | None = None,
    no_speech_prob: float | None = None,
    config: GuardConfig | None = None,
) -> Verdict:
    """Keep or reject one utterance's transcript; the first failing rule names the reason."""
    cfg = config or GuardConfig()
    cleaned = " ".join(unicodedata.normalize("NFC", text).split())
    if not squash(cleaned):
        return Verdict(False, EMPTY, "")
    if (
        no_speech_prob is not None
        and avg_logprob is not None
        and no_speech_prob > cfg.no_speech_prob
        and avg_logprob < cfg.no_speech_logprob
    ):
        return Verdict(False, NO_SPEECH, "")
    if avg_logprob is not None and avg_logprob < cfg.min_avg_logprob:
        return Verdict(False, LOW_CONFIDENCE, "")
    if level_dbfs is not None and level_dbfs < cfg.min_level_dbfs:
        return Verdict(False, TOO_QUIET, "")
    stripped = strip_known_phrases(cleaned)
    if not squash(stripped):
        return Verdict(False, KNOWN_HALLUCINATION, "")
    letters = [ch for ch in squash(stripped) if ch.isalpha()]
    if letters and sum(1 for ch in letters if _KANA_HAN.match(ch)) / len(letters) > (
        cfg.max_foreign_ratio
    ):
        return Verdict(False, FOREIGN_SCRIPT, "")
    if longest_repeat(stripped) > cfg.max_repeats:
        return Verdict(False, REPETITION, "")
    squashed = squash(stripped)
    if (
        len(squashed) >= cfg.min_chars_for_compression
        and compression_ratio(squashed) > cfg.max_compression_ratio
    ):
        return Verdict(False, REPETITION, "")
    if syllables(stripped) > cfg.max_syllables_per_s * max(duration_s, 0.0) + cfg.rate_slack:
        return Verdict(False, TOO_FAST, "")
    if squashed in FILLERS and (
        (no_speech_prob is not None and no_speech_prob > cfg.filler_max_no_speech_prob)
        or (avg_logprob is not None and avg_logprob < cfg.filler_min_avg_logprob)
    ):
        return Verdict(False, NO_SPEECH, "")
    return Verdict(True, ACCEPTED, stripped)
