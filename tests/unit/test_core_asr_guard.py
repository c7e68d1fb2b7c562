"""The hallucination guard: what Whisper invents on silence and music never reaches the rules."""

from __future__ import annotations

import pytest

from pipelines.core.asr_guard import (
    ACCEPTED,
    EMPTY,
    FOREIGN_SCRIPT,
    KNOWN_HALLUCINATION,
    LOW_CONFIDENCE,
    NO_SPEECH,
    REPETITION,
    TOO_FAST,
    TOO_QUIET,
    GuardConfig,
    check,
    compression_ratio,
    longest_repeat,
    strip_known_phrases,
    syllables,
)

CONFIDENT = {"avg_logprob": -0.3, "no_speech_prob": 0.02, "level_dbfs": -22.0}


@pytest.mark.parametrize(
    "text",
    [
        "시청해주셔서 감사합니다.",
        "시청해 주셔서 감사합니다!",
        "오늘도 시청해 주셔서 정말 감사합니다",
        "구독과 좋아요 부탁드립니다.",
        "구독, 좋아요, 알림설정 부탁드려요",
        "좋아요와 구독 부탁드립니다",
        "MBC 뉴스 이덕영입니다.",
        "KBS 뉴스 김철수 기자입니다",
        "자막 제공 배달의민족",
        "한글자막 by 한효정",
        "다음 영상에서 만나요!",
        "끝까지 시청해주셔서 감사합니다.",
        "ご視聴ありがとうございました",
        "Thank you for watching!",
    ],
)
def test_known_broadcast_and_video_phrases_are_rejected(text: str) -> None:
    verdict = check(text, 3.0, **CONFIDENT)
    assert verdict.reason in (KNOWN_HALLUCINATION, FOREIGN_SCRIPT)
    assert not verdict.accepted and verdict.text == ""


def test_a_known_phrase_after_real_words_is_cut_off() -> None:
    verdict = check("네 알겠습니다. 시청해 주셔서 감사합니다.", 2.5, **CONFIDENT)
    assert verdict.accepted and verdict.text == "네 알겠습니다"
    assert strip_known_phrases("그럼 구독과 좋아요 부탁드립니다 아니 그게 아니고") == (
        "그럼 아니 그게 아니고"
    )


@pytest.mark.parametrize(
    "text",
    [
        "민원 처리가 왜 이렇게 늦어요?",
        "그런데 구독은 어떻게 취소하나요?",
        "어제 뉴스 봤어요",
        "자막이 안 나와요",
        "좋아요 그렇게 해주세요",
        "감사합니다",
        "네",
    ],
)
def test_ordinary_speech_is_kept(text: str) -> None:
    verdict = check(f"  {text} ", 2.0, **CONFIDENT)
    assert (verdict.accepted, verdict.reason, verdict.text) == (True, ACCEPTED, text)


def test_whispers_own_no_speech_rule() -> None:
    assert check("네.", 3.0, avg_logprob=-2.3, no_speech_prob=0.73).reason == NO_SPEECH
    # high no_speech_prob but a confident decode: kept (Whisper's rule needs both)
    assert check("여보세요", 1.0, avg_logprob=-0.4, no_speech_prob=0.7).accepted


def test_low_confidence_alone_rejects() -> None:
    assert check("이 영상은 영상이 많이", 3.0, avg_logprob=-1.8, no_speech_prob=0.2).reason == (
        LOW_CONFIDENCE
    )


def test_utterances_near_silence_cannot_hold_words() -> None:
    assert check("여보세요", 1.0, level_dbfs=-58.0).reason == TOO_QUIET
    assert check("여보세요", 1.0, level_dbfs=-30.0).accepted


def test_lone_fillers_need_a_confident_decoder() -> None:
    assert check("네.", 1.0, avg_logprob=-0.9, no_speech_prob=0.2).reason == NO_SPEECH
    assert check("감사합니다", 1.0, avg_logprob=-0.3, no_speech_prob=0.45).reason == NO_SPEECH
    assert check("감사합니다", 1.0, avg_logprob=-0.3, no_speech_prob=0.05).accepted
    assert check("네", 1.0).accepted  # a backend without figures: nothing to doubt


def test_loops_are_rejected() -> None:
    loop = " ".join(["감사합니다."] * 6)
    assert check(loop, 10.0, **CONFIDENT).reason == REPETITION
    assert check("아아아아아아아아아아", 2.0, **CONFIDENT).reason == REPETITION
    phrase = "그래서 제가 말씀드린 건 " * 6
    assert check(phrase, 15.0, **CONFIDENT).reason == REPETITION
    assert check("네 네 네", 1.5, **CONFIDENT).accepted
    assert longest_repeat("네 네") == 2 and longest_repeat("하 하 하 하 하") == 5
    ordinary = "민원 처리 결과를 알려주세요"
    assert compression_ratio("가나다라" * 20) > 2.4 > compression_ratio(ordinary)


def test_text_too_long_for_the_audio_is_rejected() -> None:
    text = "안녕하세요 저는 구청 민원실에 전화를 드린 사람인데요 처리 결과를 알고 싶습니다"
    assert syllables(text) == 34
    assert check(text, 1.0, **CONFIDENT).reason == TOO_FAST
    assert check(text, 5.0, **CONFIDENT).accepted
    assert check(text, 1.0, config=GuardConfig(max_syllables_per_s=40)).accepted


def test_foreign_script_and_empty_text() -> None:
    assert check("字幕由Amara.org社区提供", 2.0, **CONFIDENT).reason == FOREIGN_SCRIPT
    assert check("  ...  ", 2.0).reason == EMPTY
    assert check("", 2.0).reason == EMPTY
