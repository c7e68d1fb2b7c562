"""PII masking of transcripts: numbers written as digits or spoken as Sino-Korean syllables."""

from __future__ import annotations

import pytest

from pipelines.core.pii import (
    ACCOUNT,
    CARD,
    EMAIL,
    NUMBER,
    PHONE,
    RRN,
    classify,
    mask,
    mask_text,
    to_digits,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("제 번호는 010-1234-5678입니다", "제 번호는 [전화번호]입니다"),
        ("01012345678로 연락주세요", "[전화번호]로 연락주세요"),
        ("010 1234 5678", "[전화번호]"),
        ("010.1234.5678", "[전화번호]"),
        ("사무실은 02-123-4567 이에요", "사무실은 [전화번호] 이에요"),
        ("(031) 123-4567", "[전화번호]"),
        ("+82 10-1234-5678", "[전화번호]"),
        ("070-1234-5678로", "[전화번호]로"),
        ("공일공 일이삼사 오육칠팔로 전화 주세요", "[전화번호]로 전화 주세요"),
        ("번호가 공일공에 일이삼사에 오육칠팔이에요", "번호가 [전화번호]이에요"),
        ("공일공 다시 일이삼사 다시 오육칠팔", "[전화번호]"),
        ("영일영 일이삼사 오육칠팔", "[전화번호]"),
        ("공일공 1234 5678", "[전화번호]"),
        ("공이 일이삼에 사오육칠", "[전화번호]"),
        ("그 사이 공일공 일이삼사 오육칠팔 이 사람이", "그 사이 [전화번호] 이 사람이"),
    ],
)
def test_phone_numbers(text: str, expected: str) -> None:
    masked = mask(text)
    assert masked.text == expected
    assert masked.found == (PHONE,)


@pytest.mark.parametrize(
    ("text", "expected", "label"),
    [
        ("주민번호는 900101-1234567 입니다", "주민번호는 [주민번호] 입니다", RRN),
        ("9001012234567", "[주민번호]", RRN),
        ("900101-1******", "[주민번호]", RRN),
        ("구공공일공일 다시 일이삼사오육칠", "[주민번호]", RRN),
        ("카드 1234-5678-9012-3456 결제", "카드 [카드번호] 결제", CARD),
        ("카드번호 1234 5678 9012 3456", "카드번호 [카드번호]", CARD),
        ("1234567890123456", "[카드번호]", CARD),
        ("아멕스 3782-822463-10005", "아멕스 [카드번호]", CARD),
        ("일이삼사 오육칠팔 구공일이 삼사오육", "[카드번호]", CARD),
        ("신한은행 110-123-456789로 보내", "신한은행 [계좌번호]로 보내", ACCOUNT),
        ("123456-01-234567", "[계좌번호]", ACCOUNT),
        ("국민은행 계좌 123456789012 입니다", "국민은행 계좌 [계좌번호] 입니다", ACCOUNT),
        ("계좌는 3333 01 1234567", "계좌는 [계좌번호]", ACCOUNT),
        ("이메일은 hong.gildong@example.co.kr 이고", "이메일은 [이메일] 이고", EMAIL),
        ("hong 골뱅이 naver 닷컴으로", "[이메일]으로", EMAIL),
        ("일이삼사오육칠팔구 번이요", "[번호] 번이요", NUMBER),
    ],
)
def test_other_personal_numbers(text: str, expected: str, label: str) -> None:
    masked = mask(text)
    assert masked.text == expected
    assert masked.found == (label,)


@pytest.mark.parametrize(
    "text",
    [
        "2024-11-29에 방문했어요",
        "오늘 삼사일 걸린다고요",
        "고객센터 1588-1234",
        "오만 원 입니다",
        "민원 접수번호 1234 입니다",
        "이 사람이 일을 이상하게 해요",
        "오후 3시 30분에 다시 전화할게요",
        "구청 일이 삼일 걸려요",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    masked = mask(text)
    assert masked.text == text and not masked.changed


def test_several_items_in_one_utterance() -> None:
    text = "제 전화는 010-9876-5432고 메일은 a.b@c.com, 주민번호 850505-2345678이요"
    masked = mask(text)
    assert masked.text == "제 전화는 [전화번호]고 메일은 [이메일], 주민번호 [주민번호]이요"
    assert sorted(masked.found) == sorted([PHONE, EMAIL, RRN])
    assert mask_text(text) == masked.text
    assert not any(ch.isdigit() for ch in masked.text)


def test_classify_and_to_digits() -> None:
    assert to_digits("공일공-일이삼사 5678") == "01012345678"
    assert classify("01012345678") == PHONE
    assert classify("0212345678") == PHONE
    assert classify("1234567") == PHONE  # a local number without the area code
    assert classify("9001011234567") == RRN
    assert classify("9013011234567") == ACCOUNT  # month 13: not an RRN
    assert classify("1234567890123456") == CARD
    assert classify("123456") is None
