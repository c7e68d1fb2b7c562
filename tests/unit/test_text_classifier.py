"""The abuse text classifier: normalisation, rules, context, the shipped model, CLI, dev set."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from connectors.models.evaluate import DEFAULT_DEVSET, HARD_NEGATIVE_KINDS, evaluate, load_devset
from connectors.models.text_classifier import (
    DEFAULT_MODEL_DIR,
    KeywordOnlyClassifier,
    TextClassifier,
    TextVerdict,
    load_text_classifier,
)
from pipelines.core.abuse_text import analyze, normalize, rule_verdict

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
CATEGORIES = {"clean", "profanity", "insult", "threat", "sexual_harassment"}

# Floors measured on the dev set with the shipped model (see models/abuse-text/v1/metrics.json)
# minus a margin: a regression gate, not a target.
MEASURED_BINARY_F1 = 0.994
MEASURED_MACRO_F1 = 0.988
MARGIN = 0.05
# Blind sets (see MODEL_CARD.md): hand-written by other writers, never trained on.  Sets 1-5
# were seen after their first measurement (their errors prompted rule and template changes);
# set 6 was measured but never used to change rules or data, so its floor is the honest one.
BLIND_SETS = {
    "blind_phone_complaints.jsonl": (0.990, 0.989),
    "blind2_phone_complaints.jsonl": (1.000, 0.983),
    "blind3_phone_complaints.jsonl": (1.000, 0.990),
    "blind4_phone_complaints.jsonl": (0.993, 0.973),
    "blind5_phone_complaints.jsonl": (0.981, 0.937),
    "blind6_phone_complaints.jsonl": (0.914, 0.858),
}


@pytest.fixture(scope="module")
def model() -> TextClassifier:
    return load_text_classifier()


# --- normalisation and rules (pure) --------------------------------------------------------


def test_normalize_spoken_and_written_forms() -> None:
    assert normalize("  씨~~발!!  진짜?? ") == "씨 발 진짜"
    assert normalize("ＡＢＣ 네에에에에") == "abc 네에에"  # NFKC, lower case, a run cut to two
    assert normalize("18놈아") == "십팔놈아"
    assert normalize("18 번 버스") == "십팔 번 버스"
    assert normalize("2025년") == "2025년"


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("씨 발 장난하냐", "profanity"),
        ("시발 뭐 하는 거야", "profanity"),
        ("개새끼야 똑바로 해", "profanity"),
        ("좆같네 진짜", "profanity"),
        ("병신아 그것도 몰라", "profanity"),
        ("지랄하고 자빠졌네", "profanity"),
        ("미친년아 내 말 안 들려", "profanity"),
        ("멍청한 소리 하지 마", "insult"),
        ("월급 루팡 같으니라고", "insult"),
        ("무능한 공무원 놈들", "insult"),
        ("죽여버린다", "threat"),
        ("찾아가서 가만 안 둔다", "threat"),
        ("칼 들고 간다", "threat"),
        ("집 주소 알아낸다 기다려", "threat"),
        ("목소리 섹시하네", "sexual_harassment"),
        ("나랑 모텔 가자", "sexual_harassment"),
        ("가슴 사이즈가 몇이야", "sexual_harassment"),
        # v2 families: compound swearing, split words, put-downs, veiled threats, propositions
        ("개같은 규정 좀 바꿔", "profanity"),
        ("엿 같네 정말", "profanity"),
        ("존 나 느려", "profanity"),
        ("씨 바 알 뭐라는 거야", "profanity"),
        ("졸라 오래 걸리네", "profanity"),
        ("당신 지능이 몇이야", "insult"),
        ("이것도 모르면서 상담을 해", "insult"),
        ("얼굴 외웠다 두고 보자", "threat"),
        ("밖에서 보자 너", "threat"),
        ("너 집이 어디냐", "threat"),
        ("눈에 띄면 그날로 끝이야", "threat"),
        ("가족들 잘 지내지", "threat"),
        ("옷 벗고 통화할래", "sexual_harassment"),
        ("모텔에서 만나자", "sexual_harassment"),
        # v3 families: veiled intimidation, sarcasm, condescension, indirect harassment
        ("오래 살고 싶으면 조용히 처리해", "threat"),
        ("밤에 혼자 다닐 때 뒤 조심해라", "threat"),
        ("후회하게 될 거야 두고 봐", "threat"),
        ("내가 가만히 있을 줄 알아", "threat"),
        ("손 좀 봐 줘야겠네", "threat"),
        ("출근길에 인사하러 갈게", "threat"),
        ("니네 애들 학교 어딘지 내가 다 알아", "threat"),
        ("당신 가족들 잘 지내나 궁금하네", "threat"),
        ("와 정말 대단하시네요 한 달째 감감무소식이고", "insult"),
        ("글은 읽을 줄 아세요", "insult"),
        ("로봇이 해도 그쪽보다 낫겠어", "insult"),
        ("결혼은 했어요 안 했으면 내가 책임져 줄게", "sexual_harassment"),
        ("목소리 들으니까 기분이 이상해지네", "sexual_harassment"),
        ("셀카 하나만 보내 줘", "sexual_harassment"),
        ("조 까 그딴 규정", "profanity"),
        # v4: spoken threats, harassment and insults without the usual keywords
        ("또 그러면 여기 있는 사람들 다 다친다", "threat"),
        ("정문 앞에서 기다린다 나오기만 해 봐", "threat"),
        ("니 실명이랑 얼굴 커뮤니티에 다 올려 버린다", "threat"),
        ("그쪽 차 번호판 봤어 싹 긁어 놓을 거야", "threat"),
        ("몇 시에 퇴근하세요 차는 어디 대세요", "threat"),
        ("하아 목소리 좋다 계속 말해 봐", "sexual_harassment"),
        ("지금 바지 벗고 통화하는 중이야", "sexual_harassment"),
        ("브라는 무슨 색 했어요", "sexual_harassment"),
        ("모텔비는 내가 낼 테니까 나와", "sexual_harassment"),
        ("귀머거리야 몇 번을 말해", "insult"),
        ("싸가지 없게 어디서 말대꾸야", "insult"),
        ("밥값은 좀 하고 앉아 있어라", "insult"),
        ("개씨발 또 대기 순번이래", "profanity"),
    ],
)
def test_rules_find_directed_abuse(text: str, category: str) -> None:
    assert rule_verdict(analyze(text))[0] == category


HARD_NEGATIVES = [
    # angry but civil
    "도대체 몇 번을 전화해야 처리가 됩니까 정말 화가 납니다",
    "답답해 죽겠네요 언제 처리돼요",
    # lawful pressure
    "소송하겠습니다",
    "언론에 제보하겠습니다",
    "국민신문고에 민원 넣겠습니다",
    "감사 청구하겠습니다",
    "가만있지 않겠습니다 법적 절차 밟을 겁니다",
    # homographs
    "그게 시발점이었어요",
    "개나리 아파트 민원이요",
    "십팔 번 버스가 안 와요",
    "시발택시 전시 문의요",
    "개발 제한 구역 문의입니다",
    "조선 시대 병신년 자료 문의요",
    "가로등 불이 꺼져 있어요",
    "위층 음악 소리 좀 죽여 달라고 해 주세요",
    "강아지가 새끼를 낳았어요",
    "음식물 쓰레기 수거가 안 돼요",
    "감기 조심하시고 몸조심하세요",
    # v2 homographs: literal dogs, seeds, Shiba dogs, a person called John
    "옆집 개새끼 두 마리가 밤새 짖어요",
    "유기견 개 새끼들 보호소 문의요",
    "참외 씨 발라 먹다가 흘렸어요",
    "시바견 동물 등록하려고요",
    "존 나갔어요 다른 분 바꿔 주세요",
    "저희 집이 어디냐면 망원동이에요",
    "시장실에 직접 찾아가서 항의하겠습니다",
    "현수막에 미친놈이라고 적혀 있어요 철거해 주세요",
    # reports and quotes of someone else's abuse
    "옆집 사람이 저한테 욕을 해서 신고하려고요",
    "아들이 학교에서 성희롱을 당했어요",
    "그 사람이 씨발이라고 했다니까요",
    "상대편이 니 집에 불 질러 버린다고 했어요",
    # v3: civil look-alikes of the veiled-threat, sarcasm and harassment families
    "밤길 혼자 다니면 위험해요 가로등 좀 달아 주세요",
    "퇴근길에 들러서 서류 내도 될까요",
    "나중에 후회하실 거예요 이렇게 처리하시면",
    "가만히 있을 줄 아셨어요 정식으로 감사 청구하겠습니다",
    "놀이터 미끄럼틀 손 좀 봐 주세요",
    "친절하게 알려 주셔서 감사한데 석 달째 처리가 안 됐어요",
    "글을 읽을 줄 모르시는 어르신이라 대신 전화드렸어요",
    "결혼했어요 신혼부부 임대 주택 문의드려요",
    "혼자 살아요 기초 연금 대상인지 궁금해서요",
    "현장 사진 찍어서 보내 드리면 되나요",
    "목소리 들으니까 마음이 놓이네요 고맙습니다",
    "새끼 고양이 두 마리가 배수로에 빠졌어요",
    "강아지 같이 데리고 들어가도 되는 공원인가요",
    "그 사람이 '너 조심해'라고 쓴 쪽지를 붙였어요",
    # v4: written or received abuse read aloud, and more homographs
    "밤새 현관문에 죽여 버린다 이렇게 적어 놨더라고요",
    "모르는 번호로 니 집 안다 이렇게 문자가 왔어요",
    "배달 기사가 저보고 미친년 이러더라고요 어디다 신고해요",
    "그 할배가 내보고 씨부랄 카더라고예",
    "경비 아저씨가 병신 같은 소리 한다고 혼잣말하셨어요",
    "가로등이 또 꺼져 있어요",
    "선거 등신대 좀 치워 주세요",
    "상추 씨 발아가 잘 안 돼요",
    "시발 정류장에서 타면 되나요",
    "기자한테 제보해서 뉴스에 나오게 할 겁니다",
    "우리 애들 학교가 어딘지 알아야 전학 신청을 하죠",
]


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_rules_leave_hard_negatives_clean(text: str) -> None:
    assert rule_verdict(analyze(text))[0] == "clean", analyze(text).reasons()


def test_context_flags() -> None:
    quoted = analyze("그 기사가 개새끼야 하고 욕을 하고 갔어요")
    assert quoted.reported and not quoted.directed
    assert all(h.discounted for h in quoted.hits)
    direct = analyze("당신 진짜 멍청하네")
    assert direct.directed and not direct.reported
    lawful = analyze("가만있지 않겠습니다 소송하겠습니다")
    assert lawful.lawful and all(h.discounted for h in lawful.hits)
    assert "sibal_origin" in analyze("시발 점이 어디야").homographs


# --- the shipped model ---------------------------------------------------------------------


def test_shipped_model_is_small_and_complete() -> None:
    files = {p.name: p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir()}
    assert {"weights.npz", "config.json", "metrics.json", "MODEL_CARD.md"} <= set(files)
    assert sum(files.values()) < 8 * 1024 * 1024
    assert "CC BY-SA 4.0" in (DEFAULT_MODEL_DIR / "MODEL_CARD.md").read_text(encoding="utf-8")


def test_model_verdicts_are_well_formed(model: TextClassifier) -> None:
    assert isinstance(model, TextClassifier)
    assert model.version.startswith("abuse-text-v1")
    verdicts = model.classify(["씨발 당장 처리해", "여권 발급 문의드려요", ""])
    for v in verdicts:
        assert isinstance(v, TextVerdict)
        assert v.category in CATEGORIES
        assert 0.0 <= v.score <= 1.0
        assert set(v.scores) == CATEGORIES
        assert v.abusive == (v.category != "clean")
        assert all(0.0 <= s <= 1.0 for s in v.scores.values())
    assert verdicts[0].abusive and verdicts[0].category == "profanity"
    assert not verdicts[1].abusive and not verdicts[2].abusive
    assert verdicts[1].score == max(verdicts[1].scores[c] for c in CATEGORIES - {"clean"})


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_model_leaves_hard_negatives_clean(model: TextClassifier, text: str) -> None:
    verdict = model.classify([text])[0]
    assert verdict.category == "clean", verdict


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("너 찾아가서 가만 안 둔다", "threat"),
        ("칼 들고 간다 기다려라", "threat"),
        ("목소리 섹시하네 몇 살이에요 애인 있어요", "sexual_harassment"),
        ("이 멍청한 인간아 일 좀 제대로 해", "insult"),
        ("씨 발 몇 번을 말해", "profanity"),
    ],
)
def test_model_flags_abuse(model: TextClassifier, text: str, category: str) -> None:
    verdict = model.classify([text])[0]
    assert verdict.abusive and verdict.category == category, verdict


def test_keyword_only_classifier_is_a_text_classifier() -> None:
    fake = KeywordOnlyClassifier()
    assert isinstance(fake, TextClassifier)
    (verdict,) = fake.classify(["개새끼야"])
    assert verdict.category == "profanity" and verdict.score == 1.0


def test_inference_imports_neither_torch_nor_sklearn() -> None:
    code = (
        "import sys; from connectors.models.text_classifier import load_text_classifier; "
        "load_text_classifier().classify(['안녕하세요']); "
        "bad = [m for m in ('torch', 'sklearn', 'scipy') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


# --- CLI contract --------------------------------------------------------------------------


def test_cli_classify_contract() -> None:
    from pipelines.cli import main

    lines = [
        json.dumps({"id": "a", "text": "씨발 당장 처리해"}, ensure_ascii=False),
        "{broken",
        json.dumps({"id": "b"}),
        json.dumps({"id": 7, "text": "주민등록등본 떼려고요"}, ensure_ascii=False),
        "",
    ]
    result = CliRunner().invoke(main, ["classify"], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == ["a", 7]
    for o in out:
        assert set(o) == {"id", "abusive", "category", "score"}
        assert 0.0 <= o["score"] <= 1.0
    assert out[0]["abusive"] is True and out[0]["category"] == "profanity"
    assert out[1] == {**out[1], "abusive": False, "category": "clean"}
    assert "line 2" in result.stderr and "line 3" in result.stderr


def test_cli_classify_with_model_dir_and_evaluate_text() -> None:
    from pipelines.cli import main

    runner = CliRunner()
    result = runner.invoke(
        main,
        ["classify", "--model", str(DEFAULT_MODEL_DIR)],
        input='{"id": 1, "text": "네 감사합니다"}\n',
    )
    assert result.exit_code == 0 and json.loads(result.stdout)["category"] == "clean"
    result = runner.invoke(main, ["evaluate-text", "--no-baseline"])
    assert result.exit_code == 0, result.output
    assert "abusive (binary)" in result.stdout and "third_party_report" in result.stdout


def test_written_training_data_covers_every_category_and_no_evaluation_utterance() -> None:
    from connectors.models.phone_domain import EVAL_SETS, read_jsonl
    from connectors.models.train_text import WRITTEN_DIR, load_written

    rows = [r for path in sorted(WRITTEN_DIR.glob("*.jsonl")) for r in read_jsonl(path)]
    assert len(rows) >= 800
    assert {r["category"] for r in rows} == CATEGORIES
    assert all(set(r) == {"text", "category", "kind"} for r in rows)
    kept = load_written(WRITTEN_DIR, weight=3.0)
    assert kept and all(e.weight == 3.0 and e.source.startswith("written:") for e in kept)
    held_out = {
        normalize(r["text"]).replace(" ", "")
        for path in EVAL_SETS
        if path.is_file()
        for r in read_jsonl(path)
    }
    assert not {normalize(e.text).replace(" ", "") for e in kept} & held_out


# --- dev set -------------------------------------------------------------------------------


def test_devset_is_large_and_covers_every_kind() -> None:
    rows = load_devset(DEFAULT_DEVSET)
    assert len(rows) >= 320
    assert len({r["id"] for r in rows}) == len(rows)
    assert {r["category"] for r in rows} == CATEGORIES
    categories = Counter(r["category"] for r in rows)
    assert all(categories[c] >= 25 for c in CATEGORIES - {"clean"})
    assert categories["clean"] >= 120
    kinds = Counter(r["kind"] for r in rows if r["category"] == "clean")
    assert all(kinds[k] >= 15 for k in HARD_NEGATIVE_KINDS), kinds


def test_devset_is_not_in_the_training_data() -> None:
    def key(text: str) -> str:
        return normalize(text).replace(" ", "")

    dev = {key(r["text"]) for r in load_devset(DEFAULT_DEVSET)}
    train_path = REPO / "data" / "train" / "phone_domain.jsonl"
    train = {
        key(json.loads(line)["text"])
        for line in train_path.read_text(encoding="utf-8").splitlines()
    }
    assert not dev & train


def test_devset_metrics_stay_above_measured_floors(model: TextClassifier) -> None:
    report = evaluate(model, load_devset(DEFAULT_DEVSET))
    assert report["binary"]["f1"] >= MEASURED_BINARY_F1 - MARGIN, report["binary"]
    assert report["macro_f1_abusive"] >= MEASURED_MACRO_F1 - MARGIN
    assert report["clean_fp_rate"] <= 0.03
    for kind, rate in report["hard_negative_fp_rate"].items():
        assert rate <= 0.10, (kind, rate)
    for category in CATEGORIES - {"clean"}:
        assert report["per_category"][category]["f1"] >= 0.8, (category, report["per_category"])
    # the model must beat the keyword baseline it was built to improve on
    baseline = evaluate(KeywordOnlyClassifier(), load_devset(DEFAULT_DEVSET))
    assert report["binary"]["f1"] >= baseline["binary"]["f1"]


@pytest.mark.parametrize(("name", "measured"), sorted(BLIND_SETS.items()))
def test_blindset_metrics_stay_above_measured_floors(
    model: TextClassifier, name: str, measured: tuple[float, float]
) -> None:
    path = REPO / "data" / "devset" / name
    rows = load_devset(path)
    assert len(rows) >= 90 and {r["category"] for r in rows} == CATEGORIES
    report = evaluate(model, rows)
    binary_f1, macro_f1 = measured
    assert report["binary"]["f1"] >= binary_f1 - MARGIN, report["binary"]
    assert report["macro_f1_abusive"] >= macro_f1 - MARGIN, report["per_category"]
    assert report["clean_fp_rate"] <= 0.07, report["hard_negative_fp_rate"]


def test_blindset3_covers_the_weak_spots_and_is_not_in_the_training_data() -> None:
    rows = load_devset(REPO / "data" / "devset" / "blind3_phone_complaints.jsonl")
    assert len(rows) >= 150 and len({r["id"] for r in rows}) == len(rows)
    categories = Counter(r["category"] for r in rows)
    assert categories["threat"] >= 25 and categories["insult"] >= 20
    assert categories["sexual_harassment"] >= 20 and categories["profanity"] >= 15
    assert categories["clean"] >= 60
    kinds = Counter(r["kind"] for r in rows if r["category"] == "clean")
    assert all(kinds[k] >= 10 for k in HARD_NEGATIVE_KINDS), kinds
    blind = {normalize(r["text"]).replace(" ", "") for r in rows}
    train_path = REPO / "data" / "train" / "phone_domain.jsonl"
    train = {
        normalize(json.loads(line)["text"]).replace(" ", "")
        for line in train_path.read_text(encoding="utf-8").splitlines()
    }
    assert not blind & train


def test_blindset_is_large_and_not_in_the_training_data() -> None:
    rows = load_devset(REPO / "data" / "devset" / "blind_phone_complaints.jsonl")
    assert len(rows) >= 200
    categories = Counter(r["category"] for r in rows)
    assert all(categories[c] >= 28 for c in CATEGORIES - {"clean"}) and categories["clean"] >= 80
    kinds = Counter(r["kind"] for r in rows if r["category"] == "clean")
    assert all(kinds[k] >= 10 for k in HARD_NEGATIVE_KINDS), kinds
    blind = {normalize(r["text"]).replace(" ", "") for r in rows}
    train_path = REPO / "data" / "train" / "phone_domain.jsonl"
    train = {
        normalize(json.loads(line)["text"]).replace(" ", "")
        for line in train_path.read_text(encoding="utf-8").splitlines()
    }
    assert not blind & train


# --- training ------------------------------------------------------------------------------


def test_training_on_phone_data_writes_a_loadable_model(tmp_path: Path) -> None:
    pytest.importorskip("sklearn", reason="training needs scikit-learn (the train/dev extra)")
    from connectors.models.train_text import train

    metrics = train(None, out_dir=tmp_path, n_features=1 << 14, max_iter=10, log=lambda *_: None)
    assert metrics["training"]["examples"] > 1000
    assert metrics["heldout_phone_domain"]["binary"]["f1"] > 0.8
    clf = load_text_classifier(tmp_path)
    assert clf.classify(["죽여버린다"])[0].category == "threat"
    assert (tmp_path / "MODEL_CARD.md").exists()


@pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason="public data (../shared/data) not present in this clone"
)
def test_public_data_loads_and_maps_to_categories() -> None:
    import random

    from connectors.models.train_text import load_public

    rows = load_public(SHARED_DATA, random.Random(0), cap=500)
    counts = Counter(r.category for r in rows)
    assert counts["clean"] > 1000 and counts["profanity"] > 100 and counts["insult"] > 100
    assert {r.source for r in rows} >= {"beep", "curse", "kmhas", "kodoli", "zizun", "kosbi"}
