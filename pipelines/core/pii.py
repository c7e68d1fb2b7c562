"""Personal data in transcripts: phone, resident-registration, card and account numbers, e-mails.

Callers read out numbers to staff all the time.  Transcripts are stored, searched and shown on
dashboards, so every number that identifies a person is replaced by a label before a transcript
leaves the abuse stream:

=================  ==============  ====================================================
label              what            examples
=================  ==============  ====================================================
``[전화번호]``     phone numbers   010-1234-5678, 01012345678, 02-123-4567, +82 10 …
``[주민번호]``     RRN             900101-1234567, 9001011234567, 900101-1******
``[카드번호]``     card numbers    1234-5678-9012-3456, 1234 5678 9012 3456 (15/16 digits)
``[계좌번호]``     bank accounts   110-123-456789, 123456-01-234567, digits after 계좌/은행
``[이메일]``       e-mail          hong@example.com, "hong 골뱅이 naver 닷컴"
``[번호]``         other spoken    seven or more spoken digits that fit none of the above
=================  ==============  ====================================================

Speech recognition writes numbers either as digits or as Sino-Korean syllables ("공일공
일이삼사 오육칠팔"), often mixed ("공일공 1234 5678"); spoken runs are turned into digits and
classified by their shape.  Masking errs on the side of hiding: a date said as seven digits is
hidden too.  Business numbers (1588-xxxx) are not personal and stay.

Pure: standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

PHONE = "[전화번호]"
RRN = "[주민번호]"
CARD = "[카드번호]"
ACCOUNT = "[계좌번호]"
EMAIL = "[이메일]"
NUMBER = "[번호]"

SPOKEN_DIGITS = {
    "공": "0",
    "영": "0",
    "일": "1",
    "이": "2",
    "삼": "3",
    "사": "4",
    "오": "5",
    "육": "6",
    "륙": "6",
    "칠": "7",
    "팔": "8",
    "구": "9",
}

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_SPOKEN_EMAIL = re.compile(
    r"[A-Za-z0-9._-]+\s*(?:골뱅이|앳)\s*[A-Za-z0-9가-힣-]+(?:\s*(?:닷|점)\s*"
    r"(?:컴|넷|케이알|오알지|co|com|net|org|kr|[A-Za-z]{2,3}))+",
    re.IGNORECASE,
)
_RRN = re.compile(
    r"(?<![\d*])\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\s?[-–]?\s?[1-8][\d*]{6}(?![\d*])"
)
_CARD = re.compile(
    r"(?<!\d)(?:\d{4}([\s-]?)\d{4}\1\d{4}\1\d{4}|\d{4}([\s-]?)\d{6}\2\d{5})(?!\d)"
)
_PHONE = re.compile(
    r"(?<![\d+])(?:\+82[\s-]?\(?0?|\(?0)(?:1[016789]|2|[3-6][1-5]|70|50\d)\)?[\s.-]?"
    r"\d{3,4}[\s.-]?\d{4}(?!\d)"
)
_ACCOUNT_HYPHENS = re.compile(r"(?<![\d-])\d{2,6}(?:-\d{2,7}){2,3}(?![\d-])")
_BANK_WORDS = (
    r"계좌(?:번호)?|통장|은행|농협|국민|신한|우리|하나|기업|카카오뱅크|케이뱅크|토스|우체국|"
    r"새마을금고|신협|수협|제일|씨티|대구|부산|경남|광주|전북|제주"
)
_ACCOUNT_AFTER_WORD = re.compile(
    rf"(?:{_BANK_WORDS})[^\d\[\]]{{0,12}}?(?P<number>(?<!\d)\d(?:[\s-]?\d){{9,15}})(?!\d)"
)
_DIGIT = "[0-9공영일이삼사오육륙칠팔구]"
_SPOKEN_RUN = re.compile(rf"{_DIGIT}(?:(?:\s*-\s*|\s*다시\s*|에\s+|\s+)?{_DIGIT})*")
_HANGUL_DIGIT = re.compile("[공영일이삼사오육륙칠팔구]")
_HANGUL = re.compile("[가-힣]")
_GROUPS = re.compile(rf"{_DIGIT}+")
_MOBILE_OR_AREA = re.compile(r"0(?:1[016789]|2|[3-6][1-5]|70|50\d)")
_TRAILING_SEPARATOR = re.compile(r"(?:\s*-\s*|\s*다시\s*|에\s+|\s+)$")


@dataclass(frozen=True)
class Masked:
    text: str
    found: tuple[str, ...]  # the label of each masked item (grouped by kind of pattern)

    @property
    def changed(self) -> bool:
        return bool(self.found)


def to_digits(spoken: str) -> str:
    """Digits of a mixed run: ``"공일공 1234"`` → ``"0101234"`` (other characters dropped)."""
    return "".join(
        SPOKEN_DIGITS.get(ch, ch) for ch in spoken if ch.isdigit() or ch in SPOKEN_DIGITS
    )


def _valid_rrn(digits: str) -> bool:
    if len(digits) != 13 or digits[6] not in "12345678":
        return False
    month, day = int(digits[2:4]), int(digits[4:6])
    return 1 <= month <= 12 and 1 <= day <= 31


def _is_phone(digits: str) -> bool:
    if digits.startswith("82") and 11 <= len(digits) <= 12:
        digits = "0" + digits[2:]
    if digits.startswith("0"):
        match = _MOBILE_OR_AREA.match(digits)
        return match is not None and 7 <= len(digits) - match.end() <= 8
    return len(digits) in (7, 8)  # a local number without the area code


def classify(digits: str) -> str | None:
    """The label for a number given as bare digits, or None when it is too short to matter."""
    if len(digits) < 7:
        return None
    if _valid_rrn(digits):
        return RRN
    if _is_phone(digits):
        return PHONE
    if len(digits) in (15, 16):
        return CARD
    if 10 <= len(digits) <= 14:
        return ACCOUNT
    return NUMBER


def _hangul_digits_only(group: str) -> bool:
    return all(ch in SPOKEN_DIGITS for ch in group)


def _mask_spoken(match: re.Match[str], found: list[str]) -> str:
    run = match.group(0)
    if not _HANGUL_DIGIT.search(run):
        return run  # plain digits that no pattern above recognised: leave them
    text, rest = run, ""
    if _HANGUL.match(match.string[match.end() : match.end() + 1]):
        # the run's end is glued to a following word: "… 오육칠팔이에요", "… 이 사람"
        last = list(_GROUPS.finditer(run))[-1]
        if len(last.group(0)) <= 2 and _hangul_digits_only(last.group(0)):
            cut = _TRAILING_SEPARATOR.search(run[: last.start()])
            end = cut.start() if cut else last.start()
            text, rest = run[:end], run[end:]
        elif run.endswith("이"):
            text, rest = run[:-1], "이"
    groups = list(_GROUPS.finditer(text))
    # short words at either end that merely consist of digit syllables ("그 사이 공일공 …",
    # "… 오육칠팔 이 사람") may be left out when the rest is a phone, RRN or card number
    word = [len(g.group(0)) <= 2 and _hangul_digits_only(g.group(0)) for g in groups]
    heads = [0, *(i for i in range(1, len(groups)) if all(word[:i]))][:3]
    tails = [len(groups), *(j for j in range(len(groups) - 1, 0, -1) if all(word[j:]))][:3]
    best: tuple[tuple[int, int], str, int, int] | None = None
    for h, head in enumerate(heads):
        for t, tail in enumerate(tails):
            if head >= tail:
                continue
            first, last = groups[head], groups[tail - 1]
            digits = to_digits(text[first.start() : last.end()])
            label = classify(digits)
            if label not in (PHONE, RRN, CARD):
                continue
            # a number with an area or mobile prefix is the strongest evidence, a bare local
            # number the weakest; then the fewer words left out the better
            rank = 0 if label == PHONE and digits.startswith("0") else 2 if label == PHONE else 1
            if best is None or (rank, h + t) < best[0]:
                best = ((rank, h + t), label, first.start(), last.end())
    if best is not None:
        _, label, start, end = best
        found.append(label)
        return text[:start] + label + text[end:] + rest
    label = classify(to_digits(text))
    if label is None:
        return run
    found.append(label)
    return label + rest


def mask(text: str) -> Masked:
    """``text`` with personal numbers and e-mail addresses replaced by labels."""
    found: list[str] = []

    def replace(label: str) -> Callable[[re.Match[str]], str]:
        def apply(match: re.Match[str]) -> str:
            found.append(label)
            return label

        return apply

    def account_hyphens(match: re.Match[str]) -> str:
        if not 10 <= len(to_digits(match.group(0))) <= 16:
            return match.group(0)
        found.append(ACCOUNT)
        return ACCOUNT

    def account_after_word(match: re.Match[str]) -> str:
        start, end = match.span("number")
        found.append(ACCOUNT)
        whole = match.group(0)
        return whole[: start - match.start()] + ACCOUNT + whole[end - match.start() :]

    text = _EMAIL.sub(replace(EMAIL), text)
    text = _SPOKEN_EMAIL.sub(replace(EMAIL), text)
    text = _RRN.sub(replace(RRN), text)
    text = _CARD.sub(replace(CARD), text)
    text = _PHONE.sub(replace(PHONE), text)
    text = _ACCOUNT_HYPHENS.sub(account_hyphens, text)
    text = _ACCOUNT_AFTER_WORD.sub(account_after_word, text)
    text = _SPOKEN_RUN.sub(lambda m: _mask_spoken(m, found), text)
    return Masked(text=text, found=tuple(found))


def mask_text(text: str) -> str:
    return mask(text).text
