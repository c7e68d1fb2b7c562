"""The learning-loop scenario: two kinds of error the shipped model makes, and staff feedback.

* a **new homograph** (false positive): "가만 안 있어" said of a restless child, a patient
  with dementia or a dog ("won't keep still") — in a threat it means "I won't sit still
  (for this)".  Neither the training data nor the dev set has the restless sense; the shipped
  model flags most of these as threats.  Staff *reject* the incidents.
* a **missed insult**: calling the staff member a lifeless object for not answering — a
  scarecrow, a mannequin, a log ("허수아비 세워 놨냐", "마네킹이랑 통화하는 줄").  Not in the
  training data; the shipped model leaves them clean.  Staff report them as *missed*.

``TRAIN_*`` phrasings become feedback; ``HELD_BACK_*`` phrasings are never labelled: they
check that the retrained model learned the kind, not the strings.  Plus ordinary confirmed
detections and a staff/supervisor conflict, as a real feedback table has them.
"""

from __future__ import annotations

from pipelines.learning.labels import FeedbackRow

RESTLESS_TRAIN = [
    "아이가 가만 안 있어요",
    "치매 어르신이 가만 안 있어요",
    "강아지가 가만 안 있어서 목줄을 했어요",
    "아이들이 가만 안 있어서 도서관에서 쫓겨났어요",
    "애가 가만 안 있어서 접종을 못 했어요",
    "저희 아버지가 병원에서 가만 안 있으세요",
    "고양이가 가만 안 있어서 중성화 수술 예약을 못 했어요",
    "손주가 가만 안 있어서 민원실에서 기다리기가 힘들어요",
    "어머니가 밤에 가만 안 있으시고 자꾸 나가세요",
    "다섯 살짜리가 가만 안 있어요 놀이방 있나요",
    "환자분이 가만 안 있어서 요양보호사가 필요해요",
    "애들이 차에서 가만 안 있어서 주차 요금 정산을 못 했어요",
    "쌍둥이가 가만 안 있어서 예방접종을 두 번 미뤘어요",
    "어르신이 주간보호센터에서 가만 안 있으셔서요",
    "강아지가 목욕할 때 가만 안 있어요",
    "아이가 검사받을 때 가만 안 있어서 수면으로 해야 하나요",
]
RESTLESS_HELD_BACK = [
    "할아버지가 가만 안 있으셔서 복지관에 여쭤봐요",
    "강아지가 진료실에서 가만 안 있어요",
    "유치원생 아들이 가만 안 있어서 줄 서기가 힘들었어요",
    "어르신이 가만 안 있어서 보호자가 꼭 있어야 해요",
    "반려견이 가만 안 있어서 등록 사진을 못 찍었어요",
    "세 살 아기가 가만 안 있어서 검진을 못 받았어요",
]
LIFELESS_TRAIN = [
    "허수아비 세워 놨냐 대답 좀 해",
    "너 허수아비지",
    "마네킹이랑 통화하는 줄 알았네",
    "장승처럼 서 있기만 하네",
    "돌부처야 뭐야 말 좀 해",
    "나무토막이랑 얘기하는 것 같네",
    "허수아비 앉혀 놓고 월급 주네",
    "마네킹도 너보단 반응하겠다",
    "거기 허수아비만 있냐",
    "장승이야 왜 말이 없어",
    "돌덩이랑 통화하는 기분이네",
    "당신 마네킹이에요",
    "허수아비처럼 멀뚱멀뚱 듣기만 하고",
    "나무토막 같은 양반",
    "밀랍 인형이냐 대답을 해",
    "허수아비한테 민원 넣는 꼴이네",
]
LIFELESS_HELD_BACK = [
    "허수아비 노릇 그만하고 답을 해",
    "너 사람 맞아 허수아비 아니고",
    "구청은 허수아비만 뽑냐",
    "나무토막처럼 말이 없네",
    "돌부처 모셔 놨냐 거기",
    "밀랍 인형처럼 굳어 있네",
]
#: ordinary detections staff confirmed (the current model is right on these)
CONFIRMED = [
    ("씨발 언제까지 기다리라는 거야", "profanity"),
    ("이 멍청한 공무원아 일 좀 해", "insult"),
    ("찾아가서 가만 안 둔다", "threat"),
    ("목소리 섹시하네 몇 살이야", "sexual_harassment"),
    ("개새끼들 세금 받아 처먹고", "profanity"),
    ("월급 루팡 같은 놈들", "insult"),
]
#: one incident both labelled: staff said abusive, the supervisor said no (supervisor wins)
CONFLICT = ("오늘 진짜 미친 듯이 바쁘시죠", "insult")

T0 = 1_790_000_000_000  # ms


def incidents() -> list[dict[str, str]]:
    """Incidents the current model raised: id, category it said, evidence (text)."""
    out = [
        {"incident_id": f"inc-restless-{i}", "category": "threat", "evidence": text}
        for i, text in enumerate(RESTLESS_TRAIN)
    ]
    out += [
        {"incident_id": f"inc-confirmed-{i}", "category": category, "evidence": text}
        for i, (text, category) in enumerate(CONFIRMED)
    ]
    out.append({"incident_id": "inc-conflict", "category": CONFLICT[1], "evidence": CONFLICT[0]})
    return out


def feedback_rows() -> list[FeedbackRow]:
    """Feedback as stored (``feedback FINAL``, evidence joined), the two kinds interleaved in
    time so the most recent 20 % (the holdout) holds both."""
    rows: list[FeedbackRow] = []
    t = T0

    def add(
        incident_id: str,
        label: str,
        category: str,
        text: str = "",
        evidence: str = "",
        role: str = "staff",
        by: str = "kim",
        call_id: str = "",
    ) -> None:
        nonlocal t
        t += 60_000
        rows.append(
            FeedbackRow(
                feedback_id=f"fb-{len(rows)}",
                incident_id=incident_id,
                call_id=call_id,
                label=label,
                category=category,
                text=text,
                role=role,
                labeled_by=by,
                ts_ms=t,
                evidence=evidence,
            )
        )

    for i, (text, category) in enumerate(CONFIRMED):
        add(f"inc-confirmed-{i}", "confirmed", category, evidence=text)
    add("inc-conflict", "confirmed", CONFLICT[1], evidence=CONFLICT[0])
    add("inc-conflict", "rejected", "clean", evidence=CONFLICT[0], role="supervisor", by="park")
    for i, (restless, lifeless) in enumerate(zip(RESTLESS_TRAIN, LIFELESS_TRAIN, strict=True)):
        add(f"inc-restless-{i}", "rejected", "clean", evidence=restless)
        add("", "missed", "insult", text=lifeless, call_id=f"call-lifeless-{i}")
    return rows
