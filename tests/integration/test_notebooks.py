"""Every notebook in notebooks/ runs top to bottom (nbclient, a real Python kernel) against a
seeded chDB directory.  Needs only chDB, not Kafka.

The kernel is another process, so the directory is seeded by another process too
(``python -m tests.support.seed``): this test process never opens it, and chDB's one-owner
lock stays free for the kernel.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.integration.conftest import free_port
from tests.support.seed import REPORT_MONTH

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def seeded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("notebooks") / "chdb"
    subprocess.run(
        [sys.executable, "-m", "tests.support.seed", str(path)],
        cwd=REPO, check=True, timeout=120, capture_output=True,
    )
    return path


def outputs(notebook: nbformat.NotebookNode) -> str:
    text = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                text.append(output["text"])
            elif "data" in output:
                text.append(output["data"].get("text/plain", ""))
    return "\n".join(text)


def test_the_two_notebooks_are_there() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "incidents_exploration.ipynb", "retraining_walkthrough.ipynb"
    ]
    for path in NOTEBOOKS:  # committed without outputs
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_against_seeded_chdb(
    path: Path, seeded_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLGUARD_CHDB_PATH", str(seeded_dir))
    monkeypatch.setenv("CALLGUARD_CLICKHOUSE_DATABASE", "callguard")
    monkeypatch.setenv("CALLGUARD_QUERY_PORT", str(free_port()))  # no sink: open chDB directly
    monkeypatch.setenv("CALLGUARD_NOTEBOOK_MONTH", REPORT_MONTH)
    monkeypatch.setenv("MPLBACKEND", "agg")
    monkeypatch.delenv("CALLGUARD_CLICKHOUSE_URL", raising=False)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=120, kernel_name="python3",
        resources={"metadata": {"path": str(REPO)}},
    )
    client.execute()  # raises CellExecutionError on any failing cell
    text = outputs(notebook)
    assert "via ClientReader" in text
    assert f"month {REPORT_MONTH}" in text
    if path.stem == "incidents_exploration":
        assert "incidents in" in text and "ended for abuse" in text
    else:
        assert "labelled incidents" in text
        # the classifier cell either evaluated the model or said why it could not
        assert "agreement with reviewers" in text or "classifier" in text
