"""Abuse in a call transcript: text normalisation, high-precision rules and context cues.

Pure and standard-library only.  The trained model (``connectors/models/text_classifier.py``)
uses :func:`analyze` twice: its rule hits and context flags are features of the linear model,
and they decide the final verdict together with the model's probabilities.

Domain: ASR transcripts of Korean complaint calls to a city office.  They have no emoticons
and no jamo abbreviations, numbers are often written as words (``십팔 번 버스``), the recogniser
may split a word (``씨 발``, ``시발 점``), and speakers quote other people a lot.

Categories (priority when several apply, most severe first): ``threat``,
``sexual_harassment``, ``profanity`` (swear words), ``insult`` (demeaning words without
swearing); otherwise ``clean``.

Three kinds of context lower or raise the weight of a rule hit:

* **homographs** are masked before any rule runs (``시발점``, ``십팔 번``, ``소리 좀 죽여``,
  ``병신년`` as a year, ``개가 새끼를 낳았는데``, ``미친 듯이``);
* **reported speech** (``…이라고 했어요``, ``…하면서 욕을 했어요``, ``옆집 사람이 저한테``,
  ``성희롱을 당했어요``): the caller tells about abuse by someone else;
* **lawful pressure** (``소송하겠습니다``, ``언론에 제보``, ``국민신문고``): a complaint's
  legitimate threat, which makes a weak threat cue (``가만있지 않겠습니다``) civil;
* **directed** cues (``당신``, ``너``, ``니가``, vocatives ``-아/-야``, imperatives) say the
  abuse is aimed at the listener.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

PROFANITY, INSULT, THREAT, SEXUAL, CLEAN = (
    "profanity",
    "insult",
    "threat",
    "sexual_harassment",
    "clean",
)
#: abusive categories, most severe first (ties between rule hits resolve in this order)
ABUSIVE = (THREAT, SEXUAL, PROFANITY, INSULT)
CATEGORIES = (CLEAN, PROFANITY, INSULT, THREAT, SEXUAL)

STRONG, MEDIUM, WEAK = 1.0, 0.7, 0.4

# --- normalisation -------------------------------------------------------------------------

_KEEP = re.compile(r"[^0-9a-z가-힣ㄱ-ㅎㅏ-ㅣ#]+")
_SPACES = re.compile(r"\s+")
_REPEAT = re.compile(r"(.)\1{2,}")
_DIGIT_WORDS = {"18": "십팔", "10": "십", "8": "팔"}
_DIGITS = re.compile(r"(?<![0-9])(18|10|8)(?=[가-힣])|(?<![0-9])18(?![0-9])")
#: a closing quote mark before a quoting particle (``'가만 안 둔다'고``, ``"씨발"이라는``)
_QUOTE_PARTICLE = re.compile(
    "[\"'\u2018\u2019\u201c\u201d\u300c\u300d\u300e\u300f]\\s?"
    r"(?=(?:이?라고|고|이?라는|이?란|이?라며|이?라면서|하고|이?라던|하는|하면서|라)(?:$|[\s가-힣]))"
)


def normalize(text: str) -> str:
    """NFKC, lower case, punctuation → space, ``aaaa`` → ``aa``, one space between words.

    Digits glued to a Hangul word become Hangul (``18놈`` → ``십팔놈``), and a lone ``18``
    too, so that the rules see what the recogniser would have written in words.
    """
    text = unicodedata.normalize("NFKC", text).lower().replace("#", " ")
    text = _QUOTE_PARTICLE.sub("", text)
    text = _DIGITS.sub(lambda m: _DIGIT_WORDS[m.group(0)], text)
    text = _KEEP.sub(" ", text)
    text = _REPEAT.sub(r"\1\1", text)
    return _SPACES.sub(" ", text).strip()


# --- rules ---------------------------------------------------------------------------------

#: left token boundary: start of text or a space (Korean particles attach on the right)
_L = r"(?<![가-힣a-z0-9])"
#: right boundary for stems that are words only when nothing but a particle follows
_R = r"(?=$|\s|아|야|이|들|같|놈|년|새|라|하고|하네|하지)"


@dataclass(frozen=True)
class Rule:
    name: str
    category: str
    strength: float
    pattern: re.Pattern[str]


def _rule(name: str, category: str, strength: float, regex: str) -> Rule:
    return Rule(name, category, strength, re.compile(regex))


#: homographs and idioms, masked before the rules run (replaced by ``#``)
HOMOGRAPHS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(regex))
    for name, regex in (
        ("sibal_origin", r"시\s?발\s?(?:점|역|택시|지(?!랄)|노선|차|선|정류장|정류소|버스)"),
        ("place_yadong", r"야동\s?(?:동|리)"),
        (
            "byeongsin_year",
            r"(?:(?:조선|시대|연도|년도|역사|태어난|생년|갑오|을미|천구백\S*|육십)\s?병신년)"
            r"|병신년\s?(?:에|생|도|부터|까지|기록|이었|의|생이|이에요|입니다)",
        ),
        (
            "number_18",
            r"십\s?팔\s?(?:번|일|세|살|퍼센트|프로|시|분|층|호|개|명|원|만|년|차|동|평|킬로|미터"
            r"|쪽|장|회|대|점|등)",
        ),
        ("plan_years", r"(?:[일이삼사오육칠팔구십]|몇)\s?개\s?년"),
        (
            "sound_down",
            r"(?:소리|볼륨|숨|기|벌레|모기|바퀴|쥐|해충|잡초|곰팡이|세균|균)\S*\s?(?:좀\s?)?죽(?:여|이)",
        ),
        (
            "offspring",
            r"새끼\s?(?:를|가|도|들을|들이)?\s?(?:낳|분양|고양이|강아지|손가락|발가락|줄|돼지|곰|새|오리)",
        ),
        ("dog_puppy", r"개\s?새끼\s?(?:를|가|들을|들이)?\s?(?:낳|분양)"),
        (
            # young animals: 고양이 새끼, 새끼 세 마리, 새끼 고양이
            "animal_young",
            r"(?:고양이|강아지|냥이|길냥이|오리|닭|돼지|소|곰|쥐|너구리|비둘기|까치|참새|제비|새|토끼|"
            r"고라니|멧돼지|동물)\s?새끼"
            r"|(?<!개\s)(?<!개)새끼\s?(?:들)?\s?(?:이|가|를|도|들이|들을)?\s?(?:한|두|세|네|다섯|여러|몇)\s?마리",
        ),
        (
            # taking a (literal) dog along: 개 같이 데려가도, 개랑 같이 산책
            "dog_along",
            r"(?<![가-힣])개\s?(?:를|랑|하고|와)?\s?같이\s?(?:\S+\s)?(?:데려|데리고|산책|들어가|입장|타|동반|가도|갈\s?수|놀)",
        ),
        (
            # a literal dog or pup: counted in 마리, barking/biting, strays, shelters
            "literal_dog",
            r"개\s?새\s?끼\s?(?:들)?\s?(?:이|가|를|도|들이|들을)?\s?"
            r"(?:한|두|세|네|다섯|여러|몇)\s?마리"
            r"|(?:떠돌이|유기|들|길|주인\s?없는|버려진|길\s?잃은|어미)\s?개\s?새\s?끼"
            r"|개\s?새\s?끼\s?(?:들)?\s?(?:이|가|를|도|들이|들을)?\s?(?:\S+\s)?"
            r"(?:짖|물었|물어|물려|똥|오줌|산책|목줄|입마개|보호소|입양|구조|포획)",
        ),
        ("seed_peel", r"씨\s?(?:를\s?)?발라\s?(?:먹|내|놓|서|야|줘|주)"),
        # "looks like a dog" about a thing, not a person
        (
            "dog_shaped",
            r"개\s?(?:같이|처럼)\s?생긴(?!\s?(?:놈|년|새끼|자식|인간|얼굴|면상|상판|것|게|거|애|양반|사람))",
        ),
        # tightening a belt or a budget: 허리띠 졸라 맨
        ("tighten", r"졸라\s?(?:매|맨|맸|맬|메)(?!\S*\s?(?:버|죽))"),
        ("shiba_dog", r"시바\s?(?:견|이누|강아지)"),
        ("john_went", r"존\s?나(?:가|갔|간|갈|와|왔|온|올|이)"),
        ("crazy_busy", r"미친\s?듯(?:이)?|미친\s?(?:물가|날씨|집값|더위|추위)"),
        (
            "garbage",
            r"쓰레기\s?(?:수거|봉투|처리|분리|배출|무단|문제|더미|통|차|장|소각|투기|를|가|는|도|좀)",
        ),
        (
            "chest_feeling",
            r"가슴\s?(?:이|이요)?\s?(?:답답|아프|아파|아픈|철렁|떨리|뛰|두근|먹먹|통증|통|쓰리|무너)",
        ),
        ("knife_noodle", r"칼\s?(?:국수|슘|라|로리|퇴근|같이)"),
        ("die_of", r"죽겠|죽을\s?것\s?같|죽을\s?맛|죽는\s?줄"),
        (
            "light_off",
            r"(?:불|등|가로등|전등|신호등|전기|전원|시동|엔진|조명|티비|화면|보일러|컴퓨터)"
            r"\s?(?:이|가|은|는|도)?\s?(?:다\s?|자꾸\s?|갑자기\s?|또\s?|계속\s?|밤새\s?)?꺼져"
            # a state, not an order: 꺼져 있어요, 꺼져 버렸어요, 꺼져서
            r"|꺼져\s?(?:있|버렸|버려서|가지고|갖고|서(?=$|\s))",
        ),
        ("standee", r"등신대"),
        # seeds: 씨 발아 (germination), 씨가 발아
        ("seed_sprout", r"씨\s?(?:가\s?|앗이\s?)?발아"),
        ("approach", r"닥쳐\s?(?:서|올|와|오는)|닥치는"),
    )
)

RULES: tuple[Rule, ...] = (
    # profanity: swear words, incl. spaced and softened spellings the recogniser writes
    _rule(
        "ssibal",
        PROFANITY,
        STRONG,
        _L
        + r"(?:개\s?)?씨(?:발|팔|빨|벌|바|뻘|부랄|부럴|부렁|방|불(?:놈|년|럴|알))|"
        + _L
        + r"씨\s(?:발|팔|빨|바(?=$|\s|알))"
        + _R
        + r"|씹(?:새|색|쌔|할|년|놈|창|팔|발|같|탱|만)|"
        + _L
        + r"씹(?=$|\s)|좆|썅|쌍\s?(?:놈|년)",
    ),
    _rule(
        "sibal",
        PROFANITY,
        STRONG,
        _L + r"(?:개\s?)?(?:시발|시팔|시빨|시\s발|시바(?=$|\s|알|라))" + _R,
    ),
    _rule("sipal_18", PROFANITY, STRONG, _L + r"십\s?팔\s?(?:놈|년|새끼|것)"),
    _rule(
        "gaesaekki",
        PROFANITY,
        STRONG,
        r"개\s?새\s?끼|개\s?색\s?기|개\s?쉐\s?(?:이|끼)|개\s?자식|개\s?같은\s?(?:년|놈|새끼)|"
        r"개\s?같이\s?(?:일|하|굴)|개\s?년|개\s?놈",
    ),
    _rule(
        "saekki",
        PROFANITY,
        MEDIUM,
        r"(?:(?:이|저|그|이런|저런|미친|나쁜|호로|후레|망할|공무원|놈의|한심한|무능한)\s?새끼"
        r"|새끼\s?(?:야|들아|가|들이|들|는|냐))",
    ),
    _rule("horo", PROFANITY, STRONG, r"호로\s?(?:새끼|자식|놈|년)|후레\s?(?:자식|새끼|놈)"),
    _rule(
        "byeongsin",
        PROFANITY,
        STRONG,
        _L + r"(?:병신(?!고|청)|병\s신(?=$|\s|아|같|이)|븅\s?신|빙\s?신)",
    ),
    _rule("jiral", PROFANITY, STRONG, _L + r"지랄"),
    _rule(
        "michin_nom",
        PROFANITY,
        STRONG,
        _L + r"미친\s?(?:놈|년|새끼|자식|개)|또라이|돌아이|정신\s?병자",
    ),
    _rule(
        "jonna",
        PROFANITY,
        STRONG,
        _L
        + r"(?:존나|졸라(?!\s?(?:매|맨|맸|맬|메)|서)|존내|좆나|존니|조낸|존\s나(?=\s)|개\s?짜증"
        r"|개\s?빡(?:치|쳐|침|돌))",
    ),
    # compound swearing: 개같-, 엿 같-, 엿 먹어
    _rule(
        "gaegat",
        PROFANITY,
        STRONG,
        _L + r"(?:개\s?같(?:은|네|다|이|아|애|어|지|냐|군)|엿\s?같|엿\s?(?:이나\s?)?먹어|개\s?좆)",
    ),
    _rule(
        "yeombyeong",
        PROFANITY,
        STRONG,
        _L + r"(?:빌어먹을|써글|썩을\s?놈|염병|옘병|엠병|니미|니기미|느금|니애미|니애비|애미|"
        r"애비\s?(?:없|뒤))",
    ),
    _rule("kkeojyeo", PROFANITY, MEDIUM, _L + r"(?:꺼져|닥쳐|닥치고|아가리)(?=$|\s|라|요)"),
    _rule("cheomeok", PROFANITY, MEDIUM, r"처\s?먹|쳐\s?먹|처\s?자빠|뒤질래|뒈져|뒤져라"),
    _rule(
        "nom_nyeon",
        PROFANITY,
        MEDIUM,
        r"(?:같은|이런|저런|나쁜|무능한|멍청한|미친|못된|썩을)\s?(?:놈|년)|"
        + _L
        + r"(?:이|저)\s?(?:놈|년)아|"
        + _L
        + r"(?:놈|년)아(?=$|\s)",
    ),
    # insult: demeaning the listener without swear words
    _rule(
        "meongcheong",
        INSULT,
        STRONG,
        _L
        + r"(?:멍청|멍텅|머저리|바보|등신|천치|저능|돌대가리|닭대가리|무뇌|찐따|얼간이"
        r"|칠푼이|팔푼이)",
    ),
    _rule(
        "muneung",
        INSULT,
        MEDIUM,
        _L + r"(?:무능|무식|무개념|개념\s?(?:이|도)?\s?없|한심|능력\s?(?:도|이)?\s?없|"
        r"머리\s?(?:가|는)?\s?(?:나쁘|나쁜|나빠|장식|비었|텅)|뇌\s?(?:가|는)?\s?(?:있긴|있으면|없|비었))",
    ),
    _rule(
        "wolgeup_lupin",
        INSULT,
        STRONG,
        r"월급\s?루팡|세금\s?(?:도둑|벌레|충)|밥\s?버러지|버러지|식충|벌레\s?(?:만도|같은)|기생충|월급\s?도둑",
    ),
    _rule(
        "trash_person",
        INSULT,
        STRONG,
        r"쓰레기\s?(?:같은|같이|들|야|새끼|인간)|인간\s?(?:말종|쓰레기)|거지\s?같|양아치|꼰대|"
        r"사람\s?(?:새끼|도)\s?아니",
    ),
    _rule(
        "nom_official",
        INSULT,
        MEDIUM,
        r"(?:공무원|직원|담당자|상담원|양반)\s?(?:놈|년|나부랭이|따위)|놈들|주제에|주제가|"
        r"(?:귀가?|귀를)\s?먹었|짤려야|잘려야|수준\s?(?:이|하고는)\s?(?:그렇|뻔|낮)",
    ),
    _rule(
        "put_down",
        INSULT,
        STRONG,
        r"지능\s?(?:이|은|지수가?)?\s?(?:몇|낮|의심|떨어|모자)|"
        r"정신\s?(?:이|을)?\s?(?:나간|빠진|나갔냐|나갔어|나갔니|없는\s?(?:놈|년|것|거|인간))|"
        r"(?:부모|엄마|아빠|애미|애비)\S*\s?(?:그렇게|그따위로|뭘|그런\s?식으로)\s?가르(?:치디|치더냐|쳤냐|쳤니|치던|쳤어|쳤길래|쳤기에|쳤으면)|"
        r"가정\s?교육\s?(?:을|도|이)?\s?(?:못|잘못|안)\s?받|"
        r"(?:이런|그런|이것|그것|이거|그거)\s?(?:것)?\s?도\s?모르(?:게|냐|니|면서|나|고\s?앉아)|"
        r"(?:학교|대학|초등학교)\s?(?:는|도|를|은)?\s?(?:제대로\s?)?(?:나왔|다녔|졸업했)(?:냐|니|어|나)",
    ),
    _rule(
        "like_you",
        INSULT,
        MEDIUM,
        _L
        + r"(?:너|니|당신|그쪽|너네|니네|당신들)\s?같은\s?"
        r"(?:게|것|거|애|놈|년|인간|사람|것들|애들|사람들|인간들)"
        r"|(?:똑똑|대단|잘났|훌륭|유능|잘\s?하)\S*\s?(?:\S+\s){0,4}\S*(?:못\s?하|이따위|그\s?모양|엉망)"
        r"|못\s?하는\s?(?:걸로|거로)\s?(?:는|치면)?\s?(?:상|일등|최고|일\s?등)",
    ),
    _rule(
        "despise",
        INSULT,
        WEAK,
        r"못한\s?것|불쌍하게\s?산|창피한\s?줄|부끄러운\s?줄|쪽팔린\s?줄|밥값도\s?못|숨만\s?쉬고|"
        r"어떻게\s?붙었|대학\s?나왔",
    ),
    # threat: harm to the listener, their family, property or the office
    _rule(
        "kill",
        THREAT,
        STRONG,
        r"죽(?:여|이)\s?(?:버(?!렸)|벌|삘|줄게|줄\s?거|놓|야|겠)|죽인다|죽일\s?(?:거|테|까|놈|년|수도)|"
        r"죽이러|죽여(?=$|\s?(?:라|$))",
    ),
    _rule(
        "you_die",
        THREAT,
        STRONG,
        r"(?:넌|너|니|당신|만나면|걸리면|오면|나오면)\s?(?:이제\s?)?죽었(?:어|다)|죽을\s?줄\s?알|"
        r"(?:죽고|뒤지고|뒈지고|디지고)\s?싶(?:냐|니|어\s?(?:서\s?)?(?:환장|안달))|살아서\s?못|같이\s?죽(?:자|자고)|"
        r"(?:눈에\s?띄면|마주치면|걸리면|만나기만\s?하면|보이면|나타나면)\s?(?:\S+\s?){0,3}"
        r"(?:끝(?:이야|이다|장|인\s?줄)|죽|각오|가만|그날로)",
    ),
    _rule(
        "weapon",
        THREAT,
        STRONG,
        _L + r"(?:칼|흉기|망치|몽둥이|쇠파이프|야구\s?방망이|낫|도끼|총|휘발유|시너|폭탄|염산)"
        r"\s?(?:을|를|이|로|으로|하고)?(?:\s\S{1,3}){0,2}\s?"
        r"(?:들고|가지고|갖고|챙겨|뿌리|뿌려|쑤셔|찔러|터뜨|붓|부어|놓고)",
    ),
    _rule(
        "arson",
        THREAT,
        STRONG,
        r"불\s?(?:을\s?)?(?:확\s?|다\s?|싹\s?|그냥\s?)?(?:질러|지르|싸질러|태워\s?버|붙여\s?버|내\s?버)|폭파|터뜨려\s?버",
    ),
    _rule(
        "violence",
        THREAT,
        STRONG,
        r"때려\s?(?:부(?!쉈|서)|죽|패|버(?!렸)|줄)|팰\s?(?:거|테|까)|패\s?(?:버|줄|죽)|두들겨\s?(?:패|맞|줄)|"
        r"한\s?대\s?(?:칠|치|맞|쳐|때)|맞고\s?싶|면상|모가지|목을\s?(?:따|비틀|졸라)|찔러\s?(?:버|죽|줄)|"
        r"칼\s?(?:빵|침)|박살\s?(?:을\s?)?(?:내|낼|낸)|분질러|부러뜨려\s?(?:버|줄|놓)|묻어\s?버(?!렸)|"
        r"끝장\s?(?:내|낼|낸)|부숴\s?버(?!렸)|엎어\s?버(?!렸)|쳐들어|밟아\s?(?:버|줄|죽)|반\s?죽여|피\s?(?:를|가)?\s?볼|아작",
    ),
    _rule(
        "stalk",
        THREAT,
        STRONG,
        r"(?:집|주소|사는\s?곳|사는\s?데|학교|직장|얼굴|신상|차\s?번호)\s?(?:을|를|이|가|도)?\s?"
        r"(?:어딘지\s?|다\s?)?(?:알아\s?(?:내|낸|낼|냈|놨|뒀)|털어|찾아\s?(?:내|낸|낼|냈))|"
        r"끝까지\s?(?:쫓아|찾아가|찾아낸|찾아낼)|쫓아\s?(?:간|갈|가서)|"
        r"(?:집|사는\s?곳|사는\s?데)\s?(?:이|은|가)?\s?어디(?:야|냐(?!면)|니|인지\s?(?:알|찾|다))|"
        r"어디\s?사는지\s?(?:\S+\s)?(?:알(?!려)|찾|다\s?알|안다)|어디\s?사(?:냐|니)(?=$|\s)|"
        r"(?:얼굴|목소리|이름)\s?(?:을|도)?\s?(?:다\s?)?(?:기억했|기억해\s?뒀|기억해\s?둘|외웠|외워\s?뒀)(?!습니다|어요)|"
        r"(?:밖에서|나와서|퇴근길에|길에서|주차장에서)\s?(?:한번\s?)?(?:보자|만나자|마주치면|만나면|두고\s?보자)",
    ),
    _rule(
        "watch_out",
        THREAT,
        STRONG,
        r"(?:밤길|퇴근길|뒤통수|몸|등\s?뒤|뒤|길)\s?(?:에|을|에는)?\s?조심\s?"
        r"(?:해라|해$|해\s|하는\s?게\s?좋|하라고|해야\s?(?:할|될)\s?거|하쇼)|"
        r"퇴근\s?(?:할\s?때|하면|하고)\s?(?:보자|조심|두고)|(?<!앞)뒤\s?(?:를|도)?\s?조심|"
        r"(?:몇\s?시에|언제)\s?퇴근(?:하냐|하니|해|하는지)\S*\s?(?:\S+\s)?(?:기다|보자|찾아|따라)|(?:밤에|밤길에|혼자)\s?(?:혼자\s?)?다니지\s?마(?:라|$|\s)|(?:출근|퇴근)\s?하면\s?죽",
    ),
    _rule(
        "wait_for_you",
        THREAT,
        WEAK,
        r"기다릴\s?테니|기다리고\s?있을\s?테니|집\s?앞에\s?가\s?있|찾아가서|찾아\s?간다|찾아\s?갈\s?거|"
        r"찾아\s?갈게|찾아간다|찾아갈",
    ),
    _rule(
        "not_leave_alone",
        THREAT,
        MEDIUM,
        r"가만\s?(?:안\s?(?:둔|둬|두|놔)|두지\s?않|놔두지\s?않|안\s?있|있지\s?않|못\s?둬)|가만두지|"
        r"두고\s?(?:봐라|보자|봐$|봐\s)|어떻게\s?되는지\s?(?:보자|봐|두고)|"
        r"각오\s?(?:해라|해$|해\s|하세요|하쇼|하시오|들\s?해)|경고\s?(?:했|한다)",
    ),
    _rule(
        "family_harm",
        THREAT,
        MEDIUM,
        r"(?:가족|애들|새끼들|자식|아이|부모|와이프|남편|아내|딸|아들)\s?(?:들)?\s?(?:이|을|은|도)?\s?(?:다\s?)?"
        r"(?:어떻게\s?되는지|무사할|학교\s?어딘지|학교\s?어디|잘\s?(?:지내지|있지|있나)|안녕하지|조심하라)|"
        r"무슨\s?일\s?(?:이\s?)?(?:생겨도|생기든|나도|당해도)\s?(?:난|나는)?\s?(?:모른|책임\s?못|책임\s?안)",
    ),
    # sexual harassment: comments on body or voice, sexual propositions, dating pressure
    _rule(
        "sexy_voice",
        SEXUAL,
        STRONG,
        r"(?:목소리|숨소리|몸|얼굴)\s?(?:가|는|이|도|만)?\s?(?:너무|되게|진짜|참)?\s?"
        r"(?:섹시|야하|야해|야한|꼴리|흥분)|섹시|꼴리|꼴린|꼴려",
    ),
    _rule(
        "body",
        SEXUAL,
        STRONG,
        r"(?:가슴|엉덩이|허벅지|유두|속옷|팬티|브라)\s?(?:가|이|는|을|를|도|만)?\s?"
        r"(?:크|작|사이즈|몇|만지|만져|보여|빨|예쁘|예뻐|이쁘|무슨\s?색|벗|보고\s?싶|얘기)|몸매(?!\s?관리)|"
        r"다리\s?(?:가|도)?\s?(?:예쁘|예쁠|이쁘|보여|만지)|치마\s?(?:입|짧)",
    ),
    _rule(
        "sex_act",
        SEXUAL,
        STRONG,
        r"섹스|성관계|잠자리\s?(?:는|를|도|하자|가지|자주|어때|같이|해)|"
        + _L
        + r"따먹|한\s?번\s?(?:하|자|대)자|신음\s?(?:소리)?\s?(?:한\s?번|내|들려)|"
        r"모텔\s?(?:가자|갈래|가서|에서\s?(?:만나|보자))|(?:너랑|당신이랑|같이|나랑)\s?자고\s?싶|"
        r"나랑\s?(?:한\s?번|자|잘|잠)|같이\s?(?:자자|잘래|밤\s?(?:보내|을))|하룻밤|(?:랑|하고)\s?자고\s?싶|(?:오늘|내일)\s?밤\s?같이|"
        r"벗(?:은\s?(?:모습|몸|사진)|고\s?(?:있|영상|통화|사진|와|봐)|어\s?(?:봐|줘|줄래)|겨)|"
        r"야한\s?(?:얘기|거|사진|생각|소리|목소리)|처녀|뽀뽀\s?(?:하고|해\s?줘|할래|하자)|키스\s?(?:하고|해|할)|안고\s?싶|만지고\s?싶|"
        r"만져\s?(?:보고|주고|볼까)|빨아\s?(?:줘|줄|봐)|아무것도\s?안\s?입|"
        r"(?:보\s?지|자\s?지)\s?(?:냄새|털|빨|구멍|맛)|야동|(?:몸|몸을)\s?(?:팔아|파는|팔았|팔고)|"
        r"옷\s?(?:을\s?)?(?:다\s?)?벗(?:고|은|어|겨)|침대\s?(?:위)?에서\s?(?:도|는|같이|듣|해\s?줘|만나)|"
        r"(?:한\s?번|한번)\s?(?:대|자)\s?(?:주면|줘|줄래|줄)|자고\s?(?:가|갈래|가자|가라)(?=$|\s)|"
        r"모텔\s?(?:에서|으로|로|에)\s?(?:만나|보자|상담|놀|쉬|같이|둘이)|"
        r"신음\s?(?:소리)?\s?(?:좀\s?)?(?:녹음해\s?(?:줘|줄)|내\s?봐|들려\s?줘|해\s?줘)",
    ),
    _rule(
        "dating",
        SEXUAL,
        MEDIUM,
        r"애인\s?(?:있|없|해\s?줄|돼|하자|할래)|(?:남자|여자)\s?친구\s?(?:있|없|랑\s?(?:잠|자|모텔))|"
        r"(?:남친|여친)\s?(?:있|없)|데이트\s?(?:하자|할래|해요|한\s?번|신청|어때)|(?:나랑|둘이|같이)\s?(?:술|밥|커피)|"
        r"(?:술|밥|커피)\s?(?:한\s?잔|먹|마시)\S*\s?(?:하자|할래|갈래|어때)|"
        r"(?:오늘|이따|주말)\s?(?:밤|저녁)?\s?(?:에)?\s?나랑|자기야|내\s?스타일|예쁘게\s?입었|"
        r"오빠랑|따로\s?(?:연락할게|만나자|만날래|보자|만나서)",
    ),
    _rule(
        "age_ask",
        SEXUAL,
        WEAK,
        r"(?:몇\s?살|나이가?\s?(?:어떻게|몇))|아가씨|처자|결혼\s?(?:했어|했냐|했니|안\s?했)|외롭지",
    ),
    # --- v3 families: veiled intimidation, sarcasm, indirect harassment ------------------
    _rule("jotka", PROFANITY, STRONG, _L + r"(?:조\s?까(?=$|\s|라|고|네)|좆\s?까)"),
    _rule(
        "gaesori",
        PROFANITY,
        MEDIUM,
        r"개소리\s?(?:야|냐|지|를|하|그만|집어|마|좀\s?(?:그만|작작|하지))"
        r"|개\s소리\s?(?:그만|하지\s?마|하고\s?(?:있|자빠)|하네|집어치|작작)",
    ),
    _rule(
        # conditional threats to life or body, and harm forecast for the listener
        "veiled_harm",
        THREAT,
        STRONG,
        r"(?:오래|더)\s?살고\s?싶으면|(?:죽고|다치고|맞고|병원\s?가고)\s?싶지\s?않으면|"
        r"(?:다치기|죽기|맞기)\s?싫으면|"
        r"몸\s?(?:이|은)?\s?(?:성할|멀쩡할|온전할)\s?(?:줄|것\s?같|거\s?같)|"
        r"(?:내일|오늘\s?밤|앞으로|언제)\s?(?:당신|네가|니가|너|그쪽)\s?(?:\S+\s)?어떻게\s?될지|"
        r"(?:어느\s?날|하루아침에|한순간에)\s?(?:\S+\s)?(?:갑자기\s?)?(?:사라지|없어지)는\s?수",
    ),
    _rule(
        # the listener's safety on the way home, at night, behind locked doors
        "veiled_safety",
        THREAT,
        MEDIUM,
        r"무사(?:히|할)\s?(?:\S+\s){0,4}(?:생각하지\s?마|줄\s?알|수\s?있을\s?(?:거|것|줄))|"
        r"(?:사람\s?일은?|세상\s?일은?)\s?(?:아무도\s?)?"
        r"(?:모르는\s?(?:거야|거다|법이야|법이다|거지|법)(?=$|\s)|몰라(?=$|\s)|모른다)|"
        r"잃을\s?(?:게|것)\s?(?:하나도\s?)?없는|"
        r"(?:감옥|교도소|깜방)\s?(?:에\s?)?(?:가도|가더라도|갈\s?각오|가는\s?거\s?(?:무섭|안\s?무서))|"
        r"내가\s?무슨\s?(?:짓|일)을?\s?(?:할지|저지를지|벌일지)|"
        r"(?:문|현관|창문)\s?(?:단속\s?)?(?:잘\s?)?잠그고\s?(?:자|다녀|살아|있어)(?=$|\s)|"
        r"(?:밤에|밤늦게|혼자|늦게|밤길)\s?(?:\S+\s)?다닐\s?때\s?(?:\S+\s)?"
        r"(?:조심해(?:라)?(?=$|\s)|뒤\s?조심|뒤\s?(?:잘\s?)?봐|잘\s?봐(?=$|\s))|"
        r"조심\s?(?:하시라고|하라고)\s?(?:\S+\s){0,2}(?:전해|그래|말해)|"
        r"(?:당신|너|니|네|그쪽)\S*\s?(?:\S+\s){0,3}(?:밤길|밤에|혼자)\s?(?:\S+\s)?"
        r"(?:다니면|다니지|다닐|조심)",
    ),
    _rule(
        # pressure with an unspoken consequence ("후회하게 될 거야", "가만히 있을 줄 알아")
        "veiled_pressure",
        THREAT,
        MEDIUM,
        r"후회\s?(?:하게\s?될|하게\s?해\s?줄|하게\s?만들어\s?줄|할)\s?(?:거|걸|겁|테|줄)(?!예요|에요|요|\s?같)|"
        r"가만히\s?(?:있을|당하고\s?있을|넘어갈)\s?(?:줄|거라고|것\s?같)|"
        r"말로\s?(?:해서는|해선|는)?\s?안\s?(?:끝나|끝날|되겠(?:네|다|어|군)(?=$|\s))|"
        r"본때를?\s?(?:보여|보이)|혼쭐\s?(?:을\s?)?(?:내|낼|나)|뒷감당|"
        r"손\s?(?:좀\s?)?봐\s?(?:줘야\s?(?:겠|되겠|할\s?(?:놈|년|인간|것))|줄까|준다|줄게)"
        r"(?:네|다|어|군|지)?(?=$|\s)",
    ),
    _rule(
        # waiting for the listener, coming to their commute or their home
        "veiled_pursuit",
        THREAT,
        MEDIUM,
        r"(?:출근|퇴근)\s?길에?\s?(?:\S+\s)?(?:인사|찾아|기다|만나|보자|보러|마중|따라|들를)|"
        r"(?:기다렸다가|기다리다가|퇴근하면|퇴근할\s?때|나오면|끝나면|끝나고|집까지)\s?(?:\S+\s)?"
        r"(?:따라\s?(?:가|갈|간다)|뒤\s?따라|미행)|"
        r"기다릴\s?(?:테니|게|께)\S*\s?(?:\S+\s)?(?:이따|나중에|나와서|나오면|끝나고|퇴근)\S*\s?(?:\S+\s)?"
        r"(?:보자|봅시다|만나|얼굴)|"
        r"몇\s?시에\s?(?:끝나|퇴근|나오)\S*\s?(?:\S+\s){0,2}(?:앞으로|앞에서|밖에서|입구)\s?(?:갈게|간다|기다)|"
        r"(?<!우리\s)(?<!저희\s)(?<!제\s)(?<!내\s)집\s?앞(?:에|으로|까지)\s?(?:\S+\s)?"
        r"(?:찾아\s?(?:가|갈|간)|가\s?(?:볼|있을|서\s?기다)|갈게|간다|기다릴|기다린다)|"
        r"(?:당신|너|니|네|그쪽)\s?(?:\S+\s)?(?:집|사는\s?(?:곳|데|동네))\S*\s?(?:\S+\s)?"
        r"(?:찾아|가\s?볼|갈게|간다|알아|앞)",
    ),
    _rule(
        # "I know where you go / live / where your children study"
        "know_private",
        THREAT,
        MEDIUM,
        r"(?:퇴근\S*|출근\s?길|어디로\s?가는지|어디\s?사는지|어디서\s?사는지|어느\s?학교|무슨\s?학교|"
        r"학교\s?어디|혼자\s?사는\s?(?:거|것|줄)|부모님\s?(?:댁|집)|본가|(?:집|사는\s?(?:곳|데))\s?(?:주소|위치)|"
        r"(?:당신|너|니|네|그쪽)\s?(?:의\s?)?(?:차|자동차|집|가족|애|아이|딸|아들|부모)\S*)"
        r"\s?(?:\S+\s){0,4}"
        r"(?:(?:다|이미|벌써|내가|난|나는|전부)\s?(?:다\s?)?(?:알아(?:요)?(?=$|\s)|알고\s?있|안다|알지)|"
        r"알았으니|알아냈|알아\s?(?:뒀|놨|냈)|알아\s?(?:내는|보는)\s?(?:건|거)\s?(?:\S+\s)?(?:일도|쉬|금방)|"
        r"알게\s?될|알아낼|봐\s?(?:뒀|놨|둔)|찍어\s?(?:뒀|놨)|파악\s?(?:했|해\s?뒀|끝)|"
        r"찾으면\s?되겠(?:네|다|지|군)(?=$|\s)|일도\s?아니|금방\s?(?:알|찾))",
    ),
    _rule(
        # the listener's family brought up: "당신 애들 잘 크지", "가족들 잘 지내는지 궁금하네"
        "family_veiled",
        THREAT,
        MEDIUM,
        r"(?:당신|너|니|네|그쪽)\s?(?:\S+\s)?(?:가족|식구|애|애들|아이|자식|딸|아들|부모|와이프|남편|아내|"
        r"어머니|아버지)\S*\s?(?:\S+\s){0,3}(?:잘\s?(?:지내|크|있|자라|사)|안녕|무사|궁금|예쁘|귀엽|어디|어딘|학교)|"
        r"(?:애들|아이들?|애|자식|딸|아들|식구|가족)\S*\s?잘\s?"
        r"(?:크지|크냐|크나|크고\s?있지|있지|있나|지내지|지내나|지내는지\s?궁금)(?=$|\s)(?!\s?(?:않|못))",
    ),
    _rule(
        # ironic praise with the failure it mocks, in either order
        "sarcasm",
        INSULT,
        MEDIUM,
        r"^(?!.*(?:감사|고맙|고마워|죄송))"
        r"(?=.*(?:대단(?:들)?\s?하|대단해|똑똑(?:들)?\s?하|친절하|훌륭(?:들)?\s?하|유능하|빠르시|빠르네|"
        r"일\s?(?:참|정말|진짜|하나는)?\s?잘\s?하시|수고가?\s?많으시네|열심히\s?(?:노시|일하시네|하시네)|"
        r"여유가?\s?넘치|창의적|전문가\s?나셨|잘나셨|머리가?\s?좋으신|상\s?(?:을\s?)?(?:받으셔야|드려야|줘야)|"
        r"부럽네|역시\s?(?:공무원|철밥통|구청)))"
        r"(?=.*(?:감감무소식|석\s?달|몇\s?달|한\s?달째|몇\s?번을|열\s?번|못\s?알아|망치|노시|놀고|"
        r"하는\s?일(?:도|이)?\s?없|아무것도\s?모르|세금\s?(?:이|도)?\s?아깝|아까운\s?세금|이따위|이\s?모양|"
        r"그\s?모양|엉망|말귀|편하게\s?돈|자리만|철밥통|그래서\s?일을|일을\s?이렇게|처리를\s?이렇게|"
        r"(?:기가\s?막히게|하나는|참)\s?못\s?하))\S",
    ),
    _rule(
        # condescending questions about basic competence, comparisons with a child or a machine
        "competence_put_down",
        INSULT,
        MEDIUM,
        r"(?:글|한글|글자)\s?(?:은|을|도)?\s?(?:제대로\s?)?읽을\s?줄\s?"
        r"(?:아세요|알아|아냐|아니|아십니까|모르세요|모르냐|몰라)(?=$|\s)|"
        r"외계어|이해력\s?(?:이|도)?\s?(?:그\s?정도|없|떨어|부족|딸리|바닥)|"
        r"머리에\s?(?:뭐가|뭐|든\s?게|똥|돌|톱밥)|(?:귀|눈)\s?(?:는|은)\s?(?:장식|폼)|"
        r"기본\s?(?:상식|개념)\s?(?:이|도)?\s?없|상식\s?(?:이|도)?\s?(?:없으|없네|없어|없냐)|"
        r"(?:그것|이것|그거|이거|그\s?정도)\s?(?:조차|도|하나)\s?(?:제대로\s?)?(?:못\s?하세|벅차)|"
        r"(?:로봇|기계|강아지|고양이|원숭이|초등학생|유치원생|중학생|애들|애가|인공지능|알바생)\S*\s?"
        r"(?:\S+\s){0,4}(?:당신|그쪽|너|니|선생님)\s?(?:보다|보단|보다는|보다도)\s?(?:\S+\s)?(?:낫|빠르|잘|똑똑)|"
        r"누가\s?(?:뽑았|채용했|붙여\s?줬|합격시켰)|"
        r"(?:시험|공무원)\s?(?:은|을)?\s?(?:도대체\s?)?(?:어떻게|무슨\s?수로)\s?(?:붙으셨|붙었|합격하셨|들어오셨|되셨)|"
        r"학교\s?(?:는|도|를|은)?\s?(?:제대로\s?)?(?:나오셨|다니셨|졸업하셨|나오신)|"
        r"수준\s?(?:이|하고는)?\s?(?:딱\s?)?(?:보이|보여|알겠|나오|그\s?정도|그것밖에)|철밥통|"
        r"이런\s?(?:분|사람|양반|인간)이\s?(?:공무원|담당자|주무관|직원|상담원)\s?(?:이라니|이라고|을\s?한다|이니까|이니)|"
        r"(?:월급|봉급)\s?(?:을|이)?\s?(?:주는|받는)\s?(?:게|거|것)\s?(?:\S+\s)?(?:아깝|아까운|부끄러|안\s?부끄|창피)|"
        r"(?:무능|무식|멍청)\S*\s?(?:것도|함도)\s?재능|창의적으로\s?(?:망치|말아먹|엉망)|"
        r"(?:그|이)\s?나이\s?(?:를|에|까지|먹도록|먹고|처먹고|되도록)\s?(?:\S+\s){0,3}"
        r"(?:모르|못|그것|이것|이거|그거)|"
        r"(?:하는\s?일(?:도|이)?\s?없이|놀면서|노는\s?주제에)\s?(?:\S+\s)?(?:수고|월급|돈)|"
        r"열심히\s?(?:노시|노네|놀고\s?계시)",
    ),
    _rule(
        # relationship status asked and followed by an advance
        "relationship_probe",
        SEXUAL,
        MEDIUM,
        r"(?:결혼|애인|남자\s?친구|남친|여자\s?친구|여친|싱글)\S*\s?(?:\S+\s){0,3}"
        r"(?:아직이면|없으면|나랑|내가\s?(?:책임|데려|만나|놀아|잘해|소개|해\s?줄)|책임져\s?(?:줄|줘)|재워)|"
        r"혼자\s?(?:살아요|살아|사세요|사니|사냐|살지|살죠)(?=$|\s)\s?(?:\S+\s){0,3}"
        r"(?:놀러|나랑|내가|같이|재워|자고)|"
        r"결혼\S*\s?(?:\S+\s){0,2}(?:남자\s?친구|남친|애인|여친|여자\s?친구)(?:는|도|있|없)|"
        r"(?:남자\s?친구|남친|애인|남편|여자\s?친구|여친)\s?(?:랑|하고|이랑|와)\s?(?:\S+\s)?"
        r"(?:어디까지|몇\s?번|자\s?봤|잤|잠자리|밤에\s?뭐|뽀뽀|키스)",
    ),
    _rule(
        # the listener's voice, looks, clothes or body made sexual without explicit words
        "indirect_sexual",
        SEXUAL,
        MEDIUM,
        r"(?:목소리|숨소리|말투|웃음소리)\S*\s?(?:\S+\s){0,4}"
        r"(?:기분이\s?(?:이상|묘|야릇)|이상한\s?(?:상상|기분)|야릇|묘한\s?기분|설레|녹아|넘어가겠|넘어갈\s?것|"
        r"두근|밤마다|잠\s?(?:이|도)?\s?안\s?오|상상이\s?(?:돼|되|가))|"
        r"(?:이상한|야릇한|야한|묘한)\s?상상|"
        r"(?:셀카|얼굴\s?사진|전신\s?사진|본인\s?사진|(?:당신|너|니|그쪽|아가씨|언니)\s?사진)\S*\s?(?:\S+\s)?"
        r"(?:보내|찍어|보여|줘|주면|올려)|"
        r"^(?:(?:어|음|저기|아|그|막|뭐|에|근데|혹시)\s)?사진\s?(?:좀\s?)?(?:하나\s?|한\s?장\s?)?(?:만\s?)?"
        r"보내\s?(?:줄\s?수|주실\s?수|줄래|줘(?=$|\s))|"
        r"(?:지금|오늘)\s?(?:뭐|무슨\s?옷)\s?(?:\S+\s)?입고\s?(?:있|계세|계신|있어)|"
        r"(?:스타킹|레깅스|속옷|팬티|브라|잠옷)\S*\s?(?:\S+\s)?(?:색|무슨\s?색|벗)|"
        r"몸으로\s?(?:사과|때우|갚|보답|해결|봉사)|"
        r"야하게\s?(?:\S+\s)?(?:불러|말해|해\s?(?:줘|봐)|웃어|숨|신음)|"
        r"(?:밤에|퇴근하고|끝나고|주말에)\s?(?:\S+\s)?(?:전화|연락)\S*\s?(?:\S+\s){0,3}"
        r"(?:개인\s?(?:번호|연락처|전화)|따로\s?(?:번호|연락처))|"
        r"(?:키|신체)\s?(?:랑|하고|는)?\s?(?:몸무게|사이즈|치수)\S*\s?(?:\S+\s)?(?:말해|알려|불러|몇이)|"
        r"몸무게\s?(?:가|는|도)?\s?(?:몇이|말해|알려)|뽀뽀\s?(?:해\s?(?:주|줘|줄)|한\s?번|하면|해\s?주면)|"
        r"모텔\s?(?:에서|으로|로|에|가서)\s?(?:\S+\s)?(?:하자|할래|갈래|가자|쉬었다|보자|해\s?줄|처리)",
    ),
    # --- spoken threats without a violent verb -------------------------------------------
    _rule(
        # "한 번만 더 거절하면 … 다친다", "또 그러면 가만 안 둬": a condition, then harm
        "conditional_harm",
        THREAT,
        MEDIUM,
        r"(?:한\s?번만\s?더|한\s?번\s?더|또|다시\s?(?:한\s?번)?)\s?(?:\S+\s){0,3}\S*"
        r"(?:하면|그러면|그러면은|거절하면|안\s?해\s?주면|미루면|돌리면)\s?(?:\S+\s){0,4}"
        r"(?:다친다|다칠\s?(?:거|줄|테)|죽는다|죽을\s?(?:줄|거)|끝(?:이야|이다|장)|무사|각오|알아서\s?해)",
    ),
    _rule(
        "youre_done",
        THREAT,
        MEDIUM,
        r"(?:넌|너는|너|당신은|당신|니는|그쪽은)\s?(?:이제\s?|진짜\s?)?끝(?:이야|이다|인\s?줄|난\s?줄)"
        r"|그날로\s?(?:\S+\s)?끝|(?:나오기만|눈에\s?띄기만|걸리기만|마주치기만|만나기만)\s?(?:해\s?(?:봐|바)|하면)"
        r"|도망\s?(?:갈|칠)\s?생각\s?(?:도\s?)?(?:하지\s?마|마)|무사하지\s?못(?:할|하)"
        r"|끝장\s?(?:을\s?)?(?:볼|보자|본다|봐야)",
    ),
    _rule(
        "fist",
        THREAT,
        MEDIUM,
        r"주먹\s?(?:이|부터)?\s?(?:먼저\s?)?(?:나갈|나가|날아|올라|운다)|주먹\s?맛|손이\s?(?:먼저\s?)?나갈"
        r"|전과\s?(?:가\s?)?(?:\S+\s)?(?:몇\s?(?:범|개)|\S*범(?:이야|인\s?줄))"
        r"|(?:한\s?번\s?더|또)\s?(?:감방|교도소|감옥|깜방)?\s?(?:들어가도|가도)\s?(?:\S+\s)?(?:상관없|괜찮|돼)",
    ),
    _rule(
        # publishing the staff member's identity so that others come after them
        "doxxing",
        THREAT,
        MEDIUM,
        r"(?:니|너|네|당신|그쪽|담당자)\S*\s?(?:\S+\s){0,2}(?:실명|신상|얼굴|사진|집\s?주소|주소|"
        r"전화\s?번호|핸드폰\s?번호|번호)\S*\s?(?:\S+\s){0,4}(?:올려|올린|올릴|뿌려|뿌린|뿌릴|퍼뜨|공개)"
        r"|(?:집까지|집으로)\s?(?:\S+\s)?찾아가게",
    ),
    _rule(
        # knowing the staff member's schedule, car, phone or children, asked as a question
        "private_probe",
        THREAT,
        MEDIUM,
        r"(?:몇\s?시에|언제)\s?퇴근\S*\s?(?:\S+\s){0,4}(?:차는|차를|차\s|주차|집은|집이|사는|혼자)"
        r"|(?<!우리\s)(?<!저희\s)(?<!제\s)(?:애들|아이들?|자식|딸|아들)\S*\s?(?:\S+\s){0,3}학교\S*\s?"
        r"(?:\S+\s){0,2}(?:어딘지|어디(?:야|냐|지|더라))\s?(?:\S+\s)?(?:궁금|알아|알지|안다|찾)"
        r"|(?:핸드폰|휴대폰|전화)\s?번호\s?(?:\S+\s)?(?:이미|벌써|다)\s?(?:\S+\s)?(?:알아|알고|안다)",
    ),
    # --- sexual harassment in spoken form -------------------------------------------------
    _rule(
        "moan",
        SEXUAL,
        STRONG,
        r"(?<![가-힣])(?:하아+|하악|아앙|흐응|으음+|으응)\s?(?:\S+\s){0,3}"
        r"(?:좋다|좋아|더\s?(?:해|말해)|계속\s?(?:말해|해)|목소리|흥분)",
    ),
    _rule(
        "undress_call",
        SEXUAL,
        STRONG,
        r"(?:바지|팬티|속옷|옷)\s?(?:를|을)?\s?(?:다\s?)?(?:내리고|내린|벗고|벗은)\s?(?:\S+\s)?(?:통화|전화|있)"
        r"|(?:뭐|무슨\s?짓)\s?(?:을\s?)?(?:하면서|하고\s?있으면서)\s?(?:\S+\s)?(?:통화|전화)"
        r"|벗으면\s?(?:\S+\s)?(?:어때|어떨|보여|예쁘|좋)"
        r"|(?:스타킹|레깅스|미니\s?스커트|짧은\s?치마)\S*\s?(?:신고|입고)\s?(?:일|출근|근무|나와)"
        r"|(?:브라|브래지어|팬티|속옷)\s?(?:는|를|은)?\s?"
        r"(?:했|안\s?했|입었|안\s?입|찼|무슨|어떤)|밤일|속궁합|뽀뽀\s?하기|키스\s?하기",
    ),
    _rule(
        "body_fixation",
        SEXUAL,
        STRONG,
        r"(?:다리|엉덩이|가슴|허벅지|몸매|치마|입술)\S*\s?(?:\S+\s){0,6}(?:생각나|떠올라|상상|빵빵|탱탱|"
        r"꼴|만지|두꺼워)|(?:몸매|얼굴|가슴)\s?(?:\S+\s)?보고\s?(?:뽑|채용)",
    ),
    _rule(
        "motel_offer",
        SEXUAL,
        MEDIUM,
        r"모텔\s?비|(?:모텔|호텔|여관)\s?(?:방)?\s?(?:은|는)?\s?(?:내가\s?)?(?:잡을게|잡아\s?놓|잡아\s?둘|쏠게|낼게)",
    ),
    _rule(
        "property_harm",
        THREAT,
        MEDIUM,
        r"(?:차|자동차|유리|창문|정문|현관|사무실|건물)\S*\s?(?:\S+\s){0,3}(?:긁어|부숴|깨\s?(?:버|놓)|페인트|"
        r"오물|똥|낙서|펑크)\S*\s?(?:\S+\s)?(?:놓을|놓는다|버릴|줄게|준다|놓겠|버린다|놓을게|뿌릴|부어|거야)"
        r"|긁어\s?놓을\s?(?:거|게|테)|(?:인스타|페이스북|페북|에스엔에스|프사|프로필)\S*\s?(?:\S+\s)?"
        r"(?:찾았|다\s?봤|잘\s?봤|털었)",
    ),
    _rule(
        "stalk_probe",
        THREAT,
        MEDIUM,
        r"(?:알아보는|찾는|알아내는|찾아내는)\s?(?:거|건|것)\s?(?:\S+\s)?(?:어렵지\s?않|일도\s?아니|쉬워|금방)"
        r"|기억해\s?(?:둘게|두겠다|둔다|놨다|놓을게)(?=$|\s)|(?:나오는|퇴근하는|들어가는)\s?(?:거|것)\s?(?:다\s?)?봤"
        r"|멀쩡히\s?(?:\S+\s)?못\s?(?:있|다니|살)|전과\s?(?:\S+\s)?(?:있는|많은)\s?(?:사람|놈)"
        r"|(?:들어가는\s?거|감방\s?가는\s?거|콩밥)\s?(?:\S+\s)?(?:겁\s?안|무섭지\s?않|안\s?무서)",
    ),
    _rule(
        # self-harm used as pressure on the staff member ("유서에 니 이름 쓴다")
        "self_harm_pressure",
        THREAT,
        MEDIUM,
        r"유서에|(?:니|너|당신|그쪽|담당자)\s?(?:\S+\s)?(?:책임이|때문에\s?죽)"
        r"|(?:목을\s?매|뛰어내|죽어\s?버리)\S*\s?(?:\S+\s){0,6}(?:뉴스|이름|책임)",
    ),
    _rule(
        "sexual_offer",
        SEXUAL,
        STRONG,
        r"용돈\s?(?:줄|준다|줄게)\S*\s?(?:\S+\s){0,3}(?:만나|자자|놀자)|모탤|데리고\s?(?:자|잘)"
        r"|생리\s?(?:중|하나|해서|할\s?때|날)\S*\s?(?:\S+\s)?(?:예민|그래|짜증)"
        r"|(?:다리|치마|단추|옷)\S*\s?(?:\S+\s){0,3}(?:풀어\s?봐|벌려|올려\s?봐|내려\s?봐)"
        r"|(?:입술|다리|몸매|가슴|엉덩이)\S*\s?(?:\S+\s){0,3}(?:이상한|야한|야릇한)\s?생각",
    ),
    _rule(
        "contempt",
        INSULT,
        MEDIUM,
        r"싸가지|싹수\s?(?:가|도)?\s?(?:없|노랗)|버르장머리|귀머거리|벙어리|(?<![가-힣])장님이|"
        r"(?:저런|이런|그런)\s?(?:걸|게|것|거)\s?(?:\S+\s)?(?:공무원|직원|상담원|담당자)"
        r"|낙하산\s?(?:아니면|이지|이야|으로)|빽으로\s?(?:들어|붙)|돈\s?주고\s?(?:들어|봤|샀)"
        r"|놀고\s?먹|인성\s?(?:이|도)?\s?(?:\S+\s)?(?:글러|쓰레기|바닥|그\s?모양)|글러\s?먹"
        r"|앵무새|(?<![가-힣])로봇(?:이야|이냐|이에요|이세요|같)|못\s?생(?:겨|긴|겼)"
        r"|한국말\s?(?:\S+\s)?(?:못\s?알아|몰라|못\s?해|할\s?줄)|말귀\s?(?:를|도)?\s?(?:\S+\s)?못\s?알아"
        r"|그\s?정도\s?머리|생각(?:이란|이라는)\s?(?:걸|것을|게)\s?(?:\S+\s)?(?:안\s?하|좀\s?해|하고\s?사|해\s?봐|못)"
        r"|(?:일\s?못하게|멍청하게|못되게|한심하게)\s?생겼"
        r"|(?:원숭이|초등학생|유치원생|애들|강아지|로봇|기계)\S*\s?도\s?(?:\S+\s){0,2}(?:그거|이거|저거|당신|그쪽|너|니)"
        r"\s?(?:보다|보단|보다는|보다도)\s?(?:\S+\s)?(?:낫|잘|빠르|똑똑)"
        r"|(?<!우리\s)(?<!제\s)(?<!저희\s)(?<!내\s)(?:엄마\s?아빠|부모님?|엄마|아빠|어머니|아버지)(?:가|이)?\s?"
        r"(?:불쌍하다|창피하겠|부끄럽겠|울겠|우시겠)|(?:이런|저런)\s?(?:자식|인간|것들)",
    ),
    # --- insults without swear words --------------------------------------------------------
    _rule(
        "upbringing",
        INSULT,
        MEDIUM,
        r"(?:그쪽|당신|너|니|네)\s?(?:\S+\s)?(?:부모|엄마|아빠|어머니|아버지)\S*\s?(?:이|가|는)?\s?(?:\S+\s)?"
        r"(?:불쌍|창피|부끄럽|한심|울겠|우시겠)|배워\s?먹은|멱\s?따는",
    ),
    _rule(
        "worthless_worker",
        INSULT,
        MEDIUM,
        r"밥값\s?(?:은|좀|이나)?\s?(?:\S+\s)?(?:해|하고|하세|하라|하쇼)|숨만\s?쉬어도|"
        r"모자란\s?(?:사람|인간|놈|년|애|거|것)|모자라(?:냐|니|나)(?=$|\s)|"
        r"(?:집에\s?(?:가서|가)\s?)(?:애나|밥이나|살림이나)\s?(?:봐|보|해|하)|"
        r"(?:한글|글)\s?(?:은|을|도)?\s?(?:제대로\s?)?읽을\s?줄\s?(?:알아요|아나|아냐고|알긴)",
    ),
)

_SEX_STRONG_NEEDS_CONTEXT = frozenset({"age_ask"})


# --- context -------------------------------------------------------------------------------

#: the listener is addressed: pronouns, vocatives, imperatives
DIRECTED = re.compile(
    _L
    + r"(?:당신|너(?=$|\s|는|도|를|가|랑|한테|같|만|희|네|말|나)|넌|니(?=$|\s|가|들|네|놈|년)|"
    r"느그|너거|니그|"
    r"네가|너희|니들|너네|댁|자기야|아가씨|"
    r"언니|아줌마|아저씨야|야(?=\s)|이\s?(?:양반|인간|자식|사람아)|그쪽)"
    r"|(?:새끼|놈|년|병신|양반|인간|멍청이|자식|아저씨|아줌마)\s?(?:아|야|들아|들)?(?=$|\s)"
    r"|(?:아|야|들아|놈아|년아)$|(?:해라|봐라|하지\s?마|나와|기다려|받아|알아|조심해|명심해|명심해라)(?:$|\s)"
)

#: the caller reports what someone else said or did
QUOTE_FRAME = re.compile(
    r"(?:이?라고|다고|자고|냐고|라는|라며|라면서|하면서|이러면서|그러면서|거리면서|하고)\s?"
    r"(?:했|하더|하던|해서|했다|소리|욕|말|그러|그랬|쓰|썼|써|문자|협박|놀|침|따라|계속|들었|하네|하셨|하시|해요|했어|올렸|보냈)"
    r"|(?:그러더라|그랬대|했대|하더라고|하던데|했다는|했다니까|했답니다|들었대|들었다고)"
    # "… 이러더라고요", "… 이랬어요", dialect "… 카더라고예", "… 캤어요"
    r"|(?<![가-힣])(?:이러더라|이러대요|이러던데|이랬대|이랬다니까|이러시더라|이러시던데|저러더라|"
    r"카더라|카데예|카던데|캤다니까|캤어예|캤대|하대요)"
    # "…한다고 혼잣말하셨어요", "…라고 중얼거려요", "…라고 소리를 질러요"
    r"|(?:이?라고|다고|냐고)\s?(?:\S+\s)?(?:혼잣말|중얼|소리\s?(?:를\s?)?(?:쳐|치|질러|지르)|고함|욕하|말씀)"
    # "X 이러면서 그 사람이 따라왔대요", "X 이 말을 누가 계속 했어요", "X라고 달려 있어요"
    r"|(?:이러면서|그러면서|이\s?말을|이런\s?말을|저런\s?말을)\s?(?:\S+\s){0,4}\S*"
    r"(?:했|따라왔|그랬|하더|했대|했어|하던|하네|해요|해서)"
    r"|(?:이?라고|다고|냐고)\s?(?:\S+\s)?(?:달려|달린|올라와|올라온|적혀)"
    r"|(?:이?라고|다고|이?라는|다는)\s?(?:적혀|적힌|써\s?있|써\s?놓|쓰여|단어|문구|표현|낙서|글|말이|말\s?들어|욕이)"
    # written abuse: …라고 쓴 스티커, …라고 스프레이로 써 놨어요, …라는 쪽지가
    r"|(?:이?라고|다고|냐고|자고|이?라는|다는|이?란)\s?(?:(?!왜|안|또|그래서|근데|그런데)\S+\s)?"
    r"(?:쓴|써\s?(?:놨|놓|붙|있)|적어|적은|적혀|붙인|붙여|새긴|새겨|그려|쪽지|스티커|메모|편지|팻말|현수막|"
    r"전단|낙서|문자|카톡|메시지|댓글|게시물|글씨|문구|제목|간판)"
    # "X 이런 문구/말을": a quoted phrase, then what it was
    r"|(?<![가-힣])이런\s?(?:문구|표현|낙서|문자|쪽지|글|말을|소리를|욕을|단어|메시지)"
    # negated instruction: "죽여 놓으라는 게 아니라"
    r"|(?:라는|다는|자는|냐는)\s?(?:게|거|건|것)\s?아니"
    r"|이렇게\s?(?:\S+\s){0,2}(?:써|적어|적혀|쓰여)\s?(?:있|놨|놓|두|뒀)"
    # "… 이렇게 문자가 왔어요", "… 이런 카톡을 받았어요"
    r"|(?:이렇게|이런|요런)\s?(?:\S+\s)?(?:문자|카톡|메시지|쪽지|편지|댓글|디엠|메일|전화)\s?"
    r"(?:가|이|를|을|도)?\s?(?:왔|와|받|보냈|남겼|달|날아|오더|꽂혀|붙어|붙여|끼워|놓여|있었|있더)"
    r"|이렇게\s?(?:\S+\s)?(?:왔어|왔더라|왔다니까|왔습니다|보냈더라|보냈어요|남겼더라|남겼어요)"
    r"|(?<![가-힣])(?:이랬어요|이랬다니까요|이랬거든요|이랬다고요)"
    r"|(?<![가-힣])(?:이러고|그러고|저러고)\s?(?:갔|가더|가\s?버|나갔|끊었|끊더|끊어\s?버)"
    r"|이런\s?(?:건|거|말|단어|욕)\s?(?:은|는|도|이|을)?\s?(?:걸러|필터|차단|금지|써도|해도|나와|들어)"
)

#: the caller tells about abuse by someone else (without necessarily quoting it)
REPORTED = re.compile(
    r"(?:(?<!뭐가\s)(?<!뭐\s)(?<!게\s)들었어요|당했|당하|당하셨|당한)"
    r"|(?:신고|고소|고발|상담|처벌|문의)\s?(?:하려|하려고|할|해야|하고|받|할\s?수|드려|되나|돼요|가\s?되|합니다|했|하러|돼)"
    r"|(?:협박|폭언|욕설|막말|모욕|희롱|성희롱|성추행|추행|폭행|폭력|학대|스토킹|괴롭힘|악플|놀림|욕)\s?(?:을|를|이|에|에게|까지)?\s?(?:했|하|당|들|받|시달|문자|보냈|써|하고|해서|해요|하더|하는)"
    r"|(?:욕설|성희롱|음란|혐오|비방)\s?(?:글|댓글|게시물|문자|낙서|필터|방송|가사|현수막)"
    r"|(?:어디\s?(?:다|에|에다|로)?\s?신고)"
    r"|(?:저보고|저더러|제게|저희\s?(?:어머니|아버지|애|딸|아들)|우리\s?(?:애|딸|아들|아이|어머니|아버지|엄마|아빠))"
)

#: someone other than the caller and the listener is the subject (weaker than REPORTED)
THIRD_PARTY = re.compile(
    _L
    + r"(?:(?:옆집|아랫집|윗집|위층|아래층|이웃|상대방|상대편|남편|아내|아들|딸)"
    r"(?:이|가|은|는|도|집|네|사람|남자|여자|아저씨|아줌마)?(?![가-힣])|(?:애가|애들이|학생들?이|"
    r"기사가|기사님이|손님이|인부\S{0,2}이|배달\S{0,4}(?:기사|원)\S{0,2}이|경비\S{0,3}이|집주인이|"
    r"세입자가|관리인이|사장이|점원이|직원분이|아재가|아지매가|노인네가|할배가|할매가|총각이|"
    r"아저씨가|할아버지가|할머니가|남자가|여자가|선생이|직원이|"
    # "사람이 없어" (nobody answers) and "사람이 죽겠다는데" (the caller) are not a third party
    r"사람들?이(?!\s?(?:없|안\s?받|죽겠|죽는다는|살\s?수))|"
    r"(?:중|고등|초등|대|여|남)학생들?이|청소년들?이|취객이|주정뱅이가|(?:책|영화|노래|드라마|앨범)?\s?제목이|"
    r"상사가|친구가)(?![가-힣])|어떤\s?사람|누가(?=\s?(?:저|제|우리|자꾸|계속|몰래|밤마다|매일))|누군가|저한테|단톡방|댓글|"
    r"(?:현수막|전단지|게시판|낙서|가사|노래|드라마|방송|문자|벽|간판|문구)\s?(?:에|에서|에는))"
)

#: lawful pressure: legal, administrative or media action
LAWFUL = re.compile(
    r"소송|고소|고발|법적|변호사|법원|재판|행정\s?(?:심판|소송)|손해\s?배상|감사\s?(?:청구|원|실)|감사원|국민\s?신문고|신문고|"
    r"민원\s?(?:을|을\s?정식으로)?\s?(?:넣|제기|접수|올리)|언론|기자|방송|제보|유튜브|국민\s?청원|청원|진정\s?(?:을|서)?\s?(?:넣|내)|"
    r"인권\s?위|시위|정보\s?공개|이의\s?신청|국정\s?감사|구의원|시의원|국회의원|시장실|구청장실|항의|녹음|증거|신고\s?(?:하겠|할\s?거|할게)|"
    r"절차|정식으로|책임\s?(?:을\s?)?(?:묻|지게)"
)

#: thanks or relief: "목소리 들으니까 마음이 놓이네요 고맙습니다" is a compliment, not harassment
GRATEFUL = re.compile(
    r"감사(?:합니다|해요|드려요|드립니다)|고맙(?:습니다|어요|네요)|고마워요|안심이|마음이\s?놓|친절하"
)

#: threat rules that lawful pressure makes civil ("가만있지 않겠습니다, 법적 절차 밟겠습니다")
_LAWFUL_SOFTENS = frozenset(
    {"not_leave_alone", "wait_for_you", "veiled_pressure", "veiled_pursuit"}
)


@dataclass(frozen=True)
class RuleHit:
    name: str
    category: str
    strength: float
    start: int
    end: int
    #: True when the hit sits inside reported speech or lawful pressure and counts less
    discounted: bool = False


@dataclass(frozen=True)
class TextAnalysis:
    text: str
    normalized: str
    masked: str
    hits: tuple[RuleHit, ...]
    homographs: tuple[str, ...]
    directed: bool
    reported: bool
    lawful: bool
    #: thanks or relief (caps sexual harassment without a rule hit, see the classifier)
    grateful: bool = False

    def category_evidence(self) -> dict[str, float]:
        """Per abusive category, the strongest rule evidence after context (0..1)."""
        evidence = dict.fromkeys(ABUSIVE, 0.0)
        for hit in self.hits:
            value = hit.strength * (0.25 if hit.discounted else 1.0)
            evidence[hit.category] = max(evidence[hit.category], value)
        return evidence

    def reasons(self) -> tuple[str, ...]:
        names = [f"rule:{h.name}" + (":discounted" if h.discounted else "") for h in self.hits]
        names += [f"homograph:{h}" for h in self.homographs]
        for flag in ("directed", "reported", "lawful"):
            if getattr(self, flag):
                names.append(f"context:{flag}")
        return tuple(dict.fromkeys(names))


def _mask(text: str) -> tuple[str, tuple[str, ...]]:
    found = []
    for name, pattern in HOMOGRAPHS:
        if pattern.search(text):
            found.append(name)
            text = pattern.sub(lambda m: "#" * len(m.group(0)), text)
    return text, tuple(found)


def analyze(text: str) -> TextAnalysis:
    """Normalise ``text``, mask homographs, find rule hits and context cues."""
    normalized = normalize(text)
    masked, homographs = _mask(normalized)
    # a quote frame ("…라고 했어요") wraps what precedes it: a "너"/"당신" there is quoted
    quote_end = max((m.end() for m in QUOTE_FRAME.finditer(masked)), default=-1)
    directed = any(m.start() >= quote_end for m in DIRECTED.finditer(masked))
    reported = (
        quote_end >= 0
        or bool(REPORTED.search(masked))
        or (not directed and bool(THIRD_PARTY.search(masked)))
    )
    lawful = bool(LAWFUL.search(masked))
    grateful = bool(GRATEFUL.search(masked))
    hits: list[RuleHit] = []
    for rule in RULES:
        for match in rule.pattern.finditer(masked):
            if match.end() == match.start():
                continue
            discounted = (
                match.start() < quote_end
                or (reported and not directed)
                or (lawful and rule.name in _LAWFUL_SOFTENS)
            )
            strength = rule.strength
            if rule.name in _SEX_STRONG_NEEDS_CONTEXT and not directed:
                strength = WEAK / 2
            hits.append(
                RuleHit(rule.name, rule.category, strength, match.start(), match.end(), discounted)
            )
            break  # one hit per rule is enough
    return TextAnalysis(
        text=text,
        normalized=normalized,
        masked=masked,
        hits=tuple(hits),
        homographs=homographs,
        directed=directed,
        reported=reported,
        lawful=lawful,
        grateful=grateful,
    )


def rule_verdict(analysis: TextAnalysis, threshold: float = 0.6) -> tuple[str, float]:
    """Keyword-only verdict: the most severe category whose evidence reaches ``threshold``.

    Returns ``(category, score)``; ``("clean", strongest evidence)`` when none reaches it.
    """
    evidence = analysis.category_evidence()
    best = max(evidence.values())
    if best < threshold:
        return CLEAN, best
    for category in ABUSIVE:
        if evidence[category] >= max(threshold, best - 0.31):
            return category, evidence[category]
    return CLEAN, best  # pragma: no cover - unreachable


def feature_tokens(analysis: TextAnalysis) -> list[str]:
    """Symbolic features for the linear model: rule hits, context flags and their crossings."""
    tokens = []
    ctx = (
        ("R" if analysis.reported else "")
        + ("L" if analysis.lawful else "")
        + ("D" if analysis.directed else "")
    )
    tokens.append(f"ctx={ctx or '-'}")
    for flag in ("directed", "reported", "lawful"):
        if getattr(analysis, flag):
            tokens.append(f"flag={flag}")
    for hit in analysis.hits:
        level = "s" if hit.strength >= STRONG else ("m" if hit.strength >= MEDIUM else "w")
        tokens.append(f"rule={hit.name}")
        tokens.append(f"cat={hit.category}:{level}")
        tokens.append(f"cat={hit.category}:{level}:{ctx or '-'}")
    for name in analysis.homographs:
        tokens.append(f"homograph={name}")
    return tokens
