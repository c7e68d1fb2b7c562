"""The learning loop without services: labels from feedback, the gate, the registry, a
retrain on a small base with a fake feedback source, the `callguard models` commands."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connectors.models.registry import (
    ModelRegistry,
    RegistryError,
    current_model_dir,
    promotion_record,
)
from connectors.models.text_classifier import DEFAULT_MODEL_DIR, load_text_classifier
from pipelines.learning.labels import (
    FeedbackRow,
    LabeledText,
    StaticFeedbackSource,
    resolve,
    split_holdout,
)
from pipelines.learning.retrain import Gate, QuietProgress, Recipe, Scores, decide, fit, load_base
from pipelines.learning.retrain import retrain as run_retrain
from schemas.records import ModelPromotion
from tests.support import learning_scenario as scenario

pytest.importorskip("sklearn", reason="training needs the train extra")

REPO = Path(__file__).resolve().parents[2]
PHONE = REPO / "data" / "train" / "phone_domain.jsonl"


def row(
    subject: str, label: str, category: str, ts: int, role: str = "staff", **kw: Any
) -> FeedbackRow:
    return FeedbackRow(
        feedback_id=f"{subject}-{role}-{ts}",
        incident_id=kw.get("incident_id", subject if label != "missed" else ""),
        call_id=kw.get("call_id", ""),
        label=label,
        category=category,
        text=kw.get("text", ""),
        role=role,
        labeled_by=kw.get("by", role),
        ts_ms=ts,
        evidence=kw.get("evidence", f"evidence of {subject}"),
    )


# --- labels ---------------------------------------------------------------------------------


def test_supervisor_beats_staff_and_the_latest_label_wins() -> None:
    rows = [
        row("a", "confirmed", "insult", 1),
        row("a", "rejected", "clean", 2),  # staff changed their mind: later wins
        row("b", "rejected", "clean", 5, role="supervisor"),
        row("b", "confirmed", "threat", 9),  # later, but staff: the supervisor wins
        row("c", "confirmed", "threat", 3, evidence=""),  # incident not stored: no text
        row("m", "missed", "insult", 4, text="앵무새야 뭐야", call_id="c-1", evidence=""),
    ]
    labels, stats = resolve(rows)
    by = {t.subject: t for t in labels}
    assert by["a"].category == "clean" and by["a"].label == "rejected"
    assert by["b"].category == "clean" and by["b"].role == "supervisor"
    assert "c" not in by and stats.without_text == 1
    missed = next(t for t in labels if t.label == "missed")
    assert missed.text == "앵무새야 뭐야" and missed.category == "insult"
    assert stats.rows == 6 and stats.subjects == 4 and stats.overruled == 2
    assert stats.conflicts == 2
    assert [t.ts_ms for t in labels] == sorted(t.ts_ms for t in labels)


def test_holdout_is_the_most_recent_fifth() -> None:
    labels = [
        LabeledText(f"s{i}", f"t{i}", "clean", "rejected", "staff", 100 - i) for i in range(10)
    ]
    train, holdout = split_holdout(labels, 0.2)
    assert len(holdout) == 2 and {t.ts_ms for t in holdout} == {99, 100}
    assert max(t.ts_ms for t in train) < min(t.ts_ms for t in holdout)
    assert split_holdout(labels[:4], 0.2) == (sorted(labels[:4], key=lambda t: t.ts_ms), [])


def test_scenario_feedback_resolves_as_designed() -> None:
    labels, stats = resolve(scenario.feedback_rows())
    assert stats.conflicts == 1  # staff said insult, the supervisor said clean
    conflict = next(t for t in labels if t.subject == "inc-conflict")
    assert conflict.category == "clean"
    _, holdout = split_holdout(labels)
    assert {t.category for t in holdout} == {"clean", "insult"}  # both kinds held out


# --- the gate -------------------------------------------------------------------------------


def report(f1: dict[str, float], support: int = 40) -> dict[str, Any]:
    per = {c: {"f1": v, "precision": v, "recall": v, "support": support} for c, v in f1.items()}
    abusive = [v for c, v in f1.items() if c != "clean"]
    return {"per_category": per, "macro_f1_abusive": sum(abusive) / len(abusive)}


BASE = {"threat": 0.95, "sexual_harassment": 0.95, "profanity": 0.95, "insult": 0.9, "clean": 0.97}


def test_gate_promotes_a_better_model_and_refuses_a_regression() -> None:
    holdout_now = report(
        {"clean": 0.3, "insult": 0.0, "threat": 0.0, "sexual_harassment": 0.0, "profanity": 0.0}
        | {},
        support=0,
    )
    holdout_now["per_category"]["clean"]["support"] = 6
    holdout_now["per_category"]["insult"]["support"] = 6
    holdout_better = json.loads(json.dumps(holdout_now))
    holdout_better["per_category"]["clean"]["f1"] = 0.9
    holdout_better["per_category"]["insult"]["f1"] = 0.8

    current = Scores(report(BASE), holdout_now)
    better = Scores(report(BASE | {"insult": 0.89}), holdout_better)  # -0.01: tolerated
    decision = decide(current, better, Gate(tolerance=0.02))
    assert decision.promote, decision.table()
    assert "better" in decision.reason and decision.candidate_score > decision.current_score

    worse_dev = Scores(report(BASE | {"threat": 0.9}), holdout_better)  # -0.05 on threat
    decision = decide(current, worse_dev, Gate(tolerance=0.02))
    assert not decision.promote and "dev threat" in decision.reason
    assert "NO" in decision.table()

    same = decide(current, Scores(report(BASE), holdout_now))
    assert not same.promote and "not better" in same.reason


def test_gate_ignores_holdout_categories_with_too_few_labels() -> None:
    holdout = report({c: 0.0 for c in BASE}, support=0)
    holdout["per_category"]["threat"] |= {"support": 2, "f1": 1.0}
    holdout["per_category"]["insult"] |= {"support": 6, "f1": 0.0}
    after = json.loads(json.dumps(holdout))
    after["per_category"]["threat"]["f1"] = 0.5  # 2 labels: noise, not gated
    after["per_category"]["insult"]["f1"] = 1.0
    decision = decide(Scores(report(BASE), holdout), Scores(report(BASE), after), Gate())
    assert decision.promote, decision.table()
    assert "threat (n=2, few)" in decision.table()


def test_recipe_matches_train_text_defaults() -> None:
    from connectors.models.train_text import train

    defaults = inspect.signature(train).parameters
    recipe = Recipe()
    for name in ("public_weight", "written_weight", "alpha", "max_iter", "n_features", "seed"):
        assert getattr(recipe, name) == defaults[name].default, name


# --- registry -------------------------------------------------------------------------------


def test_registry_seeds_the_shipped_model_by_path(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    assert current_model_dir(tmp_path / "models") is None  # no registry file: shipped default
    current = registry.current()
    assert current is not None and current.name == "v1" and current.status == "shipped"
    assert current.path == DEFAULT_MODEL_DIR.resolve()
    registry.ensure()
    data = json.loads(registry.file.read_text())
    assert data["current"] == "v1" and data["versions"]["v1"]["path"] == str(DEFAULT_MODEL_DIR)
    assert not (registry.folder / "v1").exists()  # not copied
    assert current_model_dir(tmp_path / "models") == DEFAULT_MODEL_DIR.resolve()


def copy_model(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "weights.npz"):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def test_promote_rollback_history_and_failed_publish(tmp_path: Path) -> None:
    from pipelines.learning.retrain import promote

    registry = ModelRegistry(tmp_path / "models")
    name = registry.reserve_version()
    assert name == "v2" and registry.reserve_version() == "v3"
    for n in ("v2", "v3"):
        copy_model(DEFAULT_MODEL_DIR, registry.folder / n)
        registry.register(n, registry.folder / n, metrics={"dev_macro_f1": 0.9})
    sent: list[ModelPromotion] = []
    record = promote(registry, registry.get("v2"), by="kim", reason="r", publish=sent.append)
    assert sent == [record] and record.action == "promote" and record.version == "v2"
    assert record.path == str((registry.folder / "v2").resolve())
    assert record.metrics == {"dev_macro_f1": 0.9}
    assert registry.current().name == "v2" and registry.get("v2").status == "promoted"

    def broken(_: ModelPromotion) -> None:
        raise RuntimeError("broker away")

    with pytest.raises(RuntimeError):
        promote(registry, registry.get("v3"), by="kim", reason="r", publish=broken)
    assert registry.current().name == "v2"  # a failed publish changes nothing
    promote(registry, registry.get("v3"), by="kim", reason="r")
    assert registry.rollback_target() == "v2"
    promote(registry, registry.get("v2"), by="lee", reason="bad", action="rollback")
    assert registry.current().name == "v2" and registry.rollback_target() == "v1"
    history = registry.history()
    assert [(e["action"], e["version"], e["from"]) for e in history] == [
        ("promote", "v2", "v1"),
        ("promote", "v3", "v2"),
        ("rollback", "v2", "v3"),
    ]
    with pytest.raises(RegistryError, match="already current"):
        promote(registry, registry.get("v2"), by="kim", reason="again")
    with pytest.raises(RegistryError, match="no version"):
        registry.get("v9")


def test_worker_loader_uses_the_registrys_current_model(tmp_path: Path) -> None:
    from pipelines.abuse.analysis import classifier_loader
    from pipelines.settings import Settings

    settings = Settings(data_dir=tmp_path)
    load = classifier_loader(settings)
    assert load(None).version == load_text_classifier().version  # no registry: shipped
    registry = ModelRegistry(settings.model_registry_path)
    folder = copy_model(DEFAULT_MODEL_DIR, registry.folder / registry.reserve_version())
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"version": "abuse-text-v2-test"}))
    registry.register("v2", folder)
    registry.make_current("v2", action="promote", by="t", reason="t")
    assert load(None).version == "abuse-text-v2-test"
    assert load(str(DEFAULT_MODEL_DIR)).version == config["version"]  # explicit path wins
    for f in folder.iterdir():
        f.unlink()
    assert load(None).version == config["version"]  # current folder gone: shipped


def test_promotion_record_is_a_valid_wire_record(tmp_path: Path) -> None:
    from schemas.codec import decode, encode

    registry = ModelRegistry(tmp_path)
    record = promotion_record(registry.get("v1"), action="rollback", by="kim", reason="x")
    assert decode(ModelPromotion, encode(record)) == record


# --- a whole retrain on a small base --------------------------------------------------------


RECIPE = Recipe(n_features=1 << 16)


@pytest.fixture(scope="module")
def small_phone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lines = PHONE.read_text(encoding="utf-8").splitlines()
    path = tmp_path_factory.mktemp("phone") / "phone.jsonl"
    path.write_text("\n".join(lines[::3]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def registry(tmp_path: Path, small_phone: Path) -> ModelRegistry:
    """A registry whose seed is a model of the same recipe trained without feedback."""
    base = load_base(None, small_phone, RECIPE, tmp_path / "cache")
    seed = fit(base, [], RECIPE, "abuse-text-seed", {"medium_rule_floor": 0.55})
    seed.save(tmp_path / "seed")
    reg = ModelRegistry(tmp_path / "models", seed_dir=tmp_path / "seed")
    reg.ensure()
    return reg


def test_retrain_writes_everything_and_the_registry_follows_the_gate(
    registry: ModelRegistry, small_phone: Path
) -> None:
    sent: list[ModelPromotion] = []
    progress = QuietProgress()
    result = run_retrain(
        registry,
        StaticFeedbackSource(scenario.feedback_rows()),
        data_dir=None,
        phone_path=small_phone,
        recipe=RECIPE,
        curve=(0.0, 0.5, 1.0),
        progress=progress,
        publish=sent.append,
        min_feedback=10,
    )
    assert result.status in ("promoted", "refused"), result.message
    assert result.version == "v2" and result.out_dir == registry.folder / "v2"
    assert len(progress.steps) == 5 + 2
    files = {p.name for p in result.out_dir.iterdir()}
    assert {
        "config.json",
        "weights.npz",
        "metrics.json",
        "MODEL_CARD.md",
        "learning_curve.png",
        "learning_curve.csv",
        "learning_curve.md",
    } <= files
    metrics = json.loads((result.out_dir / "metrics.json").read_text())
    assert metrics["feedback"]["holdout"] == 8 and metrics["feedback"]["trained_on"] == 31
    assert metrics["training"]["public_data"] is False
    assert [r["feedback_labels"] for r in metrics["learning_curve"]] == [0, 16, 31]
    assert metrics["comparison"]["current_version"] == "v1"
    card = (result.out_dir / "MODEL_CARD.md").read_text()
    assert "public Korean data was not available" in card and "Learning curve" in card
    assert (result.out_dir / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    info = registry.get("v2")
    assert info.metrics["feedback_labels"] == 31
    model = load_text_classifier(result.out_dir)
    assert model.version == info.classifier_version
    assert model.config.medium_floor_min_model == RECIPE.medium_floor_min_model  # type: ignore[attr-defined]
    assert model.config.medium_rule_floor == 0.55  # type: ignore[attr-defined]  # family kept
    if result.status == "promoted":
        assert registry.current().name == "v2" and info.status == "promoted"
        assert [p.version for p in sent] == ["v2"] and sent[0].promoted_by == "retrain"
    else:
        assert registry.current().name == "v1" and info.status == "refused" and not sent


def test_a_model_trained_on_shuffled_labels_is_refused(
    registry: ModelRegistry, small_phone: Path
) -> None:
    sent: list[ModelPromotion] = []
    result = run_retrain(
        registry,
        StaticFeedbackSource(scenario.feedback_rows()),
        data_dir=None,
        phone_path=small_phone,
        recipe=Recipe(n_features=1 << 16, shuffle_labels=True),
        curve=(),
        publish=sent.append,
        min_feedback=10,
    )
    assert result.status == "refused" and "refused" in result.message
    assert result.decision is not None and not result.decision.promote
    assert registry.current().name == "v1" and registry.get(result.version).status == "refused"
    assert not sent


def test_too_little_feedback_and_dry_run(registry: ModelRegistry, small_phone: Path) -> None:
    few = run_retrain(
        registry,
        StaticFeedbackSource(scenario.feedback_rows()[:5]),
        data_dir=None,
        phone_path=small_phone,
        recipe=RECIPE,
    )
    assert few.status == "skipped" and "fewer than" in few.message
    dry = run_retrain(
        registry,
        StaticFeedbackSource(scenario.feedback_rows()),
        data_dir=None,
        phone_path=small_phone,
        recipe=RECIPE,
        curve=(),
        dry_run=True,
        min_feedback=10,
    )
    assert dry.status == "dry-run" and dry.out_dir == registry.folder / "dry-run"
    assert registry.current().name == "v1" and [v.name for v in registry.versions()] == ["v1"]


# --- the commands ---------------------------------------------------------------------------


def test_models_cli_list_promote_rollback_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.cli import main

    monkeypatch.setenv("CALLGUARD_DATA_DIR", str(tmp_path))
    registry = ModelRegistry(tmp_path / "models")
    name = registry.reserve_version()
    registry.register(name, copy_model(DEFAULT_MODEL_DIR, registry.folder / name))
    runner = CliRunner()
    listed = runner.invoke(main, ["models", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output)["current"] == "v1"
    done = runner.invoke(main, ["models", "promote", "v2", "--no-publish", "--by", "kim"])
    assert done.exit_code == 0, done.output
    assert "v2 is current" in done.output and registry.current().name == "v2"
    back = runner.invoke(main, ["models", "rollback", "--no-publish"])
    assert back.exit_code == 0, back.output
    assert registry.current().name == "v1"
    again = runner.invoke(main, ["models", "rollback", "--no-publish"])
    assert again.exit_code != 0 and "nothing to roll back" in again.output
    table = runner.invoke(main, ["models", "list"])
    assert table.exit_code == 0 and "rollback v1" in table.output


def test_feedback_records_without_a_call_or_an_incident_pass_the_wire_schema() -> None:
    """`callguard feedback` labels a detection by incident id (no call id) and missed abuse by
    call (no incident): the sink must not dead-letter either."""
    from pipelines.learning.feedback import Label, to_record
    from schemas.codec import decode, encode
    from schemas.records import Feedback

    for label in (Label("inc-1", "reject"), Label("", "missed", "insult", "앵무새야 뭐야")):
        record = to_record(label, labeled_by="kim", role="staff", source="cli", now_ms=1)
        assert decode(Feedback, encode(record)) == record
