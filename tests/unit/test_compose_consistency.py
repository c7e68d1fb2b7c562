"""docker/compose.yaml cannot run here (no Docker engine); prove it is consistent instead."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import yaml

from pipelines.cli import main
from pipelines.settings import Settings

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def load_check_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("check_compose", DOCKER / "check_compose.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_compose"] = module
    spec.loader.exec_module(module)
    return module


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_compose_static_check_passes() -> None:
    assert load_check_module().check(compose()) == []


def test_every_callguard_variable_is_a_setting() -> None:
    fields = {f"CALLGUARD_{name.upper()}" for name in Settings.model_fields}
    env = compose()["x-callguard"]["environment"]
    assert set(env) <= fields, set(env) - fields


def test_every_callguard_command_exists_in_the_cli() -> None:
    for name, service in compose()["services"].items():
        if not name.startswith("callguard-") or "command" not in service:
            continue
        command = service["command"]
        if service.get("entrypoint"):  # a shell line of callguard commands
            words = [w for part in command[0].split("&&") for w in [part.split()[1]]]
        else:
            words = [command[0]]
        for word in words:
            assert word in main.commands, f"{name}: `callguard {word}` does not exist"


def test_kafka_version_matches_the_local_broker() -> None:
    pom = (DOCKER / "kafka" / "pom.xml").read_text()
    image = compose()["services"]["kafka"]["image"]
    assert f"<kafka.version>{image.split(':')[1]}</kafka.version>" in pom
