"""The model registry: versioned text-classifier folders and which one is current.

Layout under the registry root (``settings.model_registry_dir``, default ``<data_dir>/models``)::

    abuse-text/
      registry.json      {"model", "current", "versions": {name: entry}, "history": [...]}
      v2/                config.json, weights.npz, metrics.json, MODEL_CARD.md, learning curve
      v3/ ...

The shipped model (``models/abuse-text/v1`` in the repository) is the seed: it is registered
as ``v1`` by its path, not copied, the first time the registry is written.  A version's entry
keeps its absolute ``path``, ``status`` (``shipped``, ``promoted``, ``refused`` or
``candidate``), the classifier version string its transcripts carry, creation time and the
headline metrics.  ``history`` lists every promote and rollback (who, when, why, from which
version), so a rollback returns to the version that was current before the current one.

Readers (workers) only read ``registry.json``; writers take an exclusive lock on
``registry.lock`` and replace the file atomically, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.models.text_classifier import DEFAULT_MODEL_DIR
from schemas.records import ModelPromotion

TEXT_MODEL = "abuse-text"
SEED_VERSION = "v1"
STATUSES = ("shipped", "candidate", "promoted", "refused")
_VERSION = re.compile(r"^v(\d+)$")


class RegistryError(RuntimeError):
    pass


@dataclass(frozen=True)
class VersionInfo:
    name: str
    path: Path
    status: str
    classifier_version: str
    created_ms: int
    metrics: dict[str, float]
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "status": self.status,
            "classifier_version": self.classifier_version,
            "created_ms": self.created_ms,
            "metrics": self.metrics,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> VersionInfo:
        return cls(
            name=name,
            path=Path(data["path"]),
            status=str(data.get("status", "candidate")),
            classifier_version=str(data.get("classifier_version", "")),
            created_ms=int(data.get("created_ms", 0)),
            metrics={k: float(v) for k, v in (data.get("metrics") or {}).items()},
            note=str(data.get("note", "")),
        )


def classifier_version_of(model_dir: Path) -> str:
    """The ``version`` written in a model folder's config.json ('' when unreadable)."""
    try:
        return str(json.loads((model_dir / "config.json").read_text("utf-8")).get("version", ""))
    except (OSError, ValueError):
        return ""


def headline_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The few numbers a registry entry and a promotion message carry (flat, floats)."""
    out: dict[str, float] = {}
    dev = metrics.get("devset") or {}
    if "macro_f1_abusive" in dev:
        out["dev_macro_f1"] = float(dev["macro_f1_abusive"])
    for category, m in (dev.get("per_category") or {}).items():
        out[f"dev_f1_{category}"] = float(m["f1"])
    if "binary" in dev:
        out["dev_binary_f1"] = float(dev["binary"]["f1"])
    holdout = metrics.get("feedback_holdout") or {}
    if "macro_f1" in holdout:
        out["holdout_macro_f1"] = float(holdout["macro_f1"])
    feedback = metrics.get("feedback") or {}
    if "trained_on" in feedback:
        out["feedback_labels"] = float(feedback["trained_on"])
    return out


class ModelRegistry:
    """One model's versions under ``root/<model>``; see the module docstring."""

    def __init__(
        self, root: Path, model: str = TEXT_MODEL, seed_dir: Path | None = DEFAULT_MODEL_DIR
    ) -> None:
        self.root = Path(root).expanduser().resolve()
        self.model = model
        self.seed_dir = Path(seed_dir).resolve() if seed_dir is not None else None
        self.folder = self.root / model
        self.file = self.folder / "registry.json"

    # --- reading (no lock, no writes: safe for workers) -------------------------------------

    def exists(self) -> bool:
        return self.file.exists()

    def _read(self) -> dict[str, Any]:
        if self.file.exists():
            data: dict[str, Any] = json.loads(self.file.read_text(encoding="utf-8"))
            return data
        return self._seed()

    def _seed(self) -> dict[str, Any]:
        data: dict[str, Any] = {"model": self.model, "current": "", "versions": {}, "history": []}
        if self.seed_dir is not None and (self.seed_dir / "config.json").exists():
            seed = VersionInfo(
                name=SEED_VERSION,
                path=self.seed_dir,
                status="shipped",
                classifier_version=classifier_version_of(self.seed_dir),
                created_ms=int((self.seed_dir / "config.json").stat().st_mtime * 1000),
                metrics=_metrics_file(self.seed_dir),
                note="shipped with the repository (registered by path)",
            )
            data["versions"][SEED_VERSION] = seed.as_json()
            data["current"] = SEED_VERSION
        return data

    def versions(self) -> list[VersionInfo]:
        data = self._read()
        infos = [VersionInfo.from_json(n, v) for n, v in data["versions"].items()]
        return sorted(infos, key=_order)

    def get(self, name: str) -> VersionInfo:
        data = self._read()
        if name not in data["versions"]:
            known = ", ".join(sorted(data["versions"], key=_order_name)) or "none"
            raise RegistryError(f"no version {name!r} in {self.file} (known: {known})")
        return VersionInfo.from_json(name, data["versions"][name])

    def current(self) -> VersionInfo | None:
        data = self._read()
        name = data.get("current") or ""
        if not name:
            return None
        return VersionInfo.from_json(name, data["versions"][name])

    def current_path(self) -> Path | None:
        """The current version's folder, only when a registry file exists (else None)."""
        if not self.exists():
            return None
        current = self.current()
        return current.path if current is not None else None

    def history(self) -> list[dict[str, Any]]:
        history: list[dict[str, Any]] = self._read().get("history", [])
        return history

    def rollback_target(self) -> str:
        """The version that was current before the current one was last promoted (so
        repeated rollbacks walk back through the promotions, like a stack)."""
        data = self._read()
        current = data.get("current") or ""
        for event in reversed(data.get("history", [])):
            if event.get("action") == "promote" and event.get("version") == current:
                previous = str(event.get("from") or "")
                if previous in data["versions"]:
                    return previous
                break
        raise RegistryError(
            f"nothing to roll back to: {current or 'no version'} has no predecessor"
        )

    def next_version(self) -> str:
        data = self._read()
        numbers = [int(m.group(1)) for n in data["versions"] if (m := _VERSION.match(n))]
        if self.folder.exists():
            numbers += [
                int(m.group(1)) for p in self.folder.iterdir() if (m := _VERSION.match(p.name))
            ]
        return f"v{max(numbers, default=1) + 1}"

    # --- writing (locked, atomic) -----------------------------------------------------------

    def reserve_version(self) -> str:
        """The next version name, its folder created (so two retrains never share one)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            name = self.next_version()
            try:
                (self.folder / name).mkdir()
            except FileExistsError:
                continue
            return name

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "registry.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                data = self._read()
                yield data
                tmp = self.file.with_name(f".registry.{uuid.uuid4().hex}.tmp")
                tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", "utf-8")
                os.replace(tmp, self.file)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def ensure(self) -> None:
        """Write registry.json (with the seed) if it does not exist yet."""
        if not self.exists():
            with self._locked():
                pass

    def register(
        self,
        name: str,
        path: Path,
        *,
        status: str = "candidate",
        metrics: Mapping[str, float] | None = None,
        note: str = "",
        now_ms: int | None = None,
    ) -> VersionInfo:
        if status not in STATUSES:
            raise RegistryError(f"status must be one of {STATUSES}")
        path = Path(path).resolve()
        if not (path / "config.json").exists():
            raise RegistryError(f"{path} holds no model (config.json missing)")
        info = VersionInfo(
            name=name,
            path=path,
            status=status,
            classifier_version=classifier_version_of(path),
            created_ms=now_ms if now_ms is not None else _now_ms(),
            metrics=dict(metrics or _metrics_file(path)),
            note=note,
        )
        with self._locked() as data:
            data["versions"][name] = info.as_json()
        return info

    def set_status(self, name: str, status: str, note: str | None = None) -> None:
        with self._locked() as data:
            if name not in data["versions"]:
                raise RegistryError(f"no version {name!r}")
            data["versions"][name]["status"] = status
            if note is not None:
                data["versions"][name]["note"] = note

    def make_current(
        self, name: str, *, action: str, by: str, reason: str, now_ms: int | None = None
    ) -> tuple[VersionInfo, str]:
        """Make ``name`` current (action promote | rollback); returns (it, previous name)."""
        if action not in ("promote", "rollback"):
            raise RegistryError("action must be promote or rollback")
        with self._locked() as data:
            if name not in data["versions"]:
                known = ", ".join(sorted(data["versions"], key=_order_name)) or "none"
                raise RegistryError(f"no version {name!r} (known: {known})")
            entry = data["versions"][name]
            if not (Path(entry["path"]) / "config.json").exists():
                raise RegistryError(f"version {name}: {entry['path']} holds no model any more")
            previous = data.get("current") or ""
            if previous == name:
                raise RegistryError(f"{name} is already current")
            data["current"] = name
            if action == "promote" and entry.get("status") != "shipped":
                entry["status"] = "promoted"
            data["history"].append(
                {
                    "action": action,
                    "version": name,
                    "from": previous,
                    "ts_ms": now_ms if now_ms is not None else _now_ms(),
                    "by": by,
                    "reason": reason,
                }
            )
        return VersionInfo.from_json(name, entry), previous


def promotion_record(
    info: VersionInfo,
    *,
    action: str,
    by: str,
    reason: str,
    model: str = TEXT_MODEL,
    now_ms: int | None = None,
) -> ModelPromotion:
    """The ``callguard.models`` message that makes running workers load ``info``."""
    return ModelPromotion(
        promotion_id=str(uuid.uuid4()),
        model=model,
        version=info.name,
        path=str(info.path),
        action=action,
        promoted_by=by,
        reason=reason,
        metrics=dict(info.metrics),
        ts_ms=now_ms if now_ms is not None else _now_ms(),
    )


def publish_promotion(bootstrap: str, topic: str, record: ModelPromotion) -> None:
    """Send synchronously (raises ``DeliveryFailed`` when Kafka does not acknowledge)."""
    from connectors.recordings.kafka import KafkaOutbox

    KafkaOutbox(bootstrap).send(topic, record.model, record)


def _metrics_file(model_dir: Path) -> dict[str, float]:
    try:
        return headline_metrics(json.loads((model_dir / "metrics.json").read_text("utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _order_name(name: str) -> tuple[int, str]:
    m = _VERSION.match(name)
    return (int(m.group(1)) if m else 10**9, name)


def _order(info: VersionInfo) -> tuple[int, str]:
    return _order_name(info.name)


def _now_ms() -> int:
    return int(time.time() * 1000)


def current_model_dir(root: Path, model: str = TEXT_MODEL) -> Path | None:
    """The registry's current version folder; None when there is no registry (or it is
    unreadable, or the folder is gone: the caller then uses the shipped model)."""
    import logging

    log = logging.getLogger(__name__)
    try:
        path = ModelRegistry(root, model).current_path()
    except (OSError, ValueError, KeyError) as exc:
        log.warning("model registry in %s unreadable (%s): using the shipped model", root, exc)
        return None
    if path is not None and not (path / "config.json").exists():
        log.warning("registry's current %s model %s is missing: using the shipped one", model, path)
        return None
    return path
