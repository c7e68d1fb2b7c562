"""pipelines/core must stay pure: standard library only, and it must not read the clock."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "pipelines" / "core"


def test_core_imports_only_the_standard_library() -> None:
    offenders = []
    for path in CORE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "pipelines":
                    offenders.append(f"{path.name}: {name}")
                if name.startswith("pipelines.") and not name.startswith("pipelines.core"):
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []


def test_core_never_reads_the_clock() -> None:
    for path in CORE.glob("*.py"):
        source = path.read_text()
        for call in ("time.time(", "datetime.now(", "time.monotonic(", "import time"):
            assert call not in source, f"{path.name} reads the clock via {call}"
