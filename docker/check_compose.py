"""Static check of docker/compose.yaml and the files it mounts.

There is no Docker engine on the development machines, so the stack is never
started here; this only proves that the description is self-consistent:
the YAML parses, every build context, Dockerfile and bind-mounted host path
exists, named volumes and depends_on targets are declared, and the mounted
XML/YAML config files parse. Needs PyYAML.

    python docker/check_compose.py
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
COMPOSE = HERE / "compose.yaml"
# Paths a compose file may name before they exist (none now).
ALLOWED_MISSING: set[Path] = set()
CALLGUARD_ENV = {
    "CALLGUARD_KAFKA_BOOTSTRAP",
    "CALLGUARD_CLICKHOUSE_URL",
    "CALLGUARD_PARTITIONS",
    "CALLGUARD_REPLICATION_FACTOR",
    "CALLGUARD_DATA_DIR",
    "CALLGUARD_LOG_LEVEL",
}


def check(doc: dict) -> list[str]:
    errors: list[str] = []
    services: dict = doc.get("services") or {}
    volumes = set((doc.get("volumes") or {}).keys())

    def exists(path: Path, what: str) -> None:
        if not path.exists() and path not in ALLOWED_MISSING:
            errors.append(f"{what}: {path} does not exist")

    for name, svc in services.items():
        build = svc.get("build")
        if build is not None:
            ctx = HERE / (
                build if isinstance(build, str) else build.get("context", ".")
            )
            exists(ctx.resolve(), f"{name}: build context")
            dockerfile = (
                "Dockerfile"
                if isinstance(build, str)
                else build.get("dockerfile", "Dockerfile")
            )
            exists((ctx / dockerfile).resolve(), f"{name}: dockerfile")

        for vol in svc.get("volumes") or []:
            source = (
                vol.split(":", 1)[0] if isinstance(vol, str) else vol.get("source", "")
            )
            if source.startswith((".", "/")):
                exists((HERE / source).resolve(), f"{name}: bind mount")
            elif source not in volumes:
                errors.append(f"{name}: named volume {source!r} not declared")

        for dep in svc.get("depends_on") or {}:
            if dep not in services:
                errors.append(f"{name}: depends_on unknown service {dep!r}")

        restart = svc.get("restart")
        if restart is not None and not isinstance(restart, str):
            errors.append(f"{name}: restart must be a string, got {restart!r}")

        if name.startswith("callguard-"):
            missing = CALLGUARD_ENV - set((svc.get("environment") or {}).keys())
            if missing:
                errors.append(f"{name}: missing env {sorted(missing)}")

    for xml_file in sorted((HERE / "clickhouse").rglob("*.xml")):
        try:
            ET.parse(xml_file)
        except ET.ParseError as exc:
            errors.append(f"{xml_file}: {exc}")
    for yml in sorted((HERE / "grafana" / "provisioning").rglob("*.yaml")):
        try:
            yaml.safe_load(yml.read_text())
        except yaml.YAMLError as exc:
            errors.append(f"{yml}: {exc}")
    return errors


def main() -> int:
    # SafeLoader resolves the x-callguard anchor and the `<<` merges.
    doc = yaml.safe_load(COMPOSE.read_text())
    errors = check(doc)
    for err in errors:
        print(f"FAIL {err}")
    print(f"{len(doc['services'])} services checked, {len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
