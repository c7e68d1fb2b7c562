"""A font with Hangul for matplotlib (report figures, notebooks), found or fetched once.

Order: a font already in the cache (``~/.cache/callguard/fonts``), a Korean font the system
has (Nanum, Noto CJK KR, Un, Baekmuk), else Debian's ``fonts-nanum`` fetched with
``apt-get download`` (no root needed) and unpacked with ``dpkg-deb -x`` into the cache.
``scripts/bootstrap.sh`` runs ``python -m pipelines.reporting.fonts`` so the first report does
not wait for the download; the report command also does it lazily.

Without a Hangul font matplotlib draws empty boxes ("tofu") for Korean department names and
warns ``Glyph ... missing from font(s)``: :func:`ensure_korean_font` raises instead, unless
``required=False``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: family names that cover Hangul, preferred first
KOREAN_FAMILIES = (
    "NanumGothic",
    "NanumBarunGothic",
    "Noto Sans CJK KR",
    "Noto Sans KR",
    "Noto Serif CJK KR",
    "UnDotum",
    "Baekmuk Gulim",
)
DEBIAN_PACKAGE = "fonts-nanum"
#: file preferred inside the package
PREFERRED_FILE = "NanumGothic.ttf"
SAMPLE = "교통과 주택정책과 복지정책과 세무과"


class KoreanFontMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class KoreanFont:
    family: str
    path: Path
    source: str  # cache | system | downloaded


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "callguard" / "fonts"


def covers_hangul(path: Path, sample: str = SAMPLE) -> bool:
    """Whether the font file has a glyph for every Hangul character of ``sample``."""
    from matplotlib.ft2font import FT2Font

    try:
        font = FT2Font(str(path))
    except (OSError, RuntimeError, ValueError):
        return False
    return all(font.get_char_index(ord(ch)) != 0 for ch in sample if not ch.isspace())


def _cached(cache_dir: Path) -> Path | None:
    if not cache_dir.is_dir():
        return None
    found = sorted(cache_dir.rglob(PREFERRED_FILE)) or sorted(cache_dir.rglob("*.tt[fc]"))
    return next((p for p in found if covers_hangul(p)), None)


def _system() -> Path | None:
    from matplotlib import font_manager

    by_name = {f.name: Path(f.fname) for f in font_manager.fontManager.ttflist}
    for family in KOREAN_FAMILIES:
        path = by_name.get(family)
        if path is not None and covers_hangul(path):
            return path
    if shutil.which("fc-list"):
        listed = subprocess.run(
            ["fc-list", ":lang=ko", "file"], capture_output=True, text=True, check=False
        ).stdout
        for line in sorted(listed.splitlines()):
            path = Path(line.split(":", 1)[0].strip())
            if path.suffix.lower() in (".ttf", ".otf", ".ttc") and covers_hangul(path):
                return path
    return None


def download(cache_dir: Path, package: str = DEBIAN_PACKAGE) -> Path:
    """``apt-get download`` the Debian font package and unpack it under ``cache_dir``.

    Uses the host's apt lists; when they have no entry (never updated), retries with a
    throw-away list directory filled by ``apt-get update`` from the host's sources.
    """
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise KoreanFontMissing(
                f"no Hangul font found and `{tool}` is missing, so {package} cannot be fetched; "
                "install a Korean font (e.g. Debian's fonts-nanum or fonts-noto-cjk)"
            )
    with tempfile.TemporaryDirectory(prefix="callguard-font-") as tmp:
        work = Path(tmp)
        attempts: list[list[str]] = [[]]
        lists = work / "lists"
        (lists / "partial").mkdir(parents=True)
        (work / "cache" / "archives" / "partial").mkdir(parents=True)
        private = ["-o", f"Dir::State::Lists={lists}", "-o", f"Dir::Cache={work / 'cache'}"]
        attempts.append(private)
        errors = []
        for options in attempts:
            if options:
                subprocess.run(
                    ["apt-get", "-qq", *options, "update"],
                    capture_output=True, text=True, check=False, timeout=300,
                )
            done = subprocess.run(
                ["apt-get", "-qq", *options, "download", package],
                cwd=work, capture_output=True, text=True, check=False, timeout=300,
            )
            debs = sorted(work.glob(f"{package}_*.deb"))
            if done.returncode == 0 and debs:
                target = cache_dir / package
                if target.exists():
                    shutil.rmtree(target)
                target.mkdir(parents=True)
                subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(target)], check=True)
                found = _cached(target)
                if found is None:
                    raise KoreanFontMissing(f"{debs[0].name} holds no font with Hangul")
                return found
            errors.append((done.stderr or done.stdout).strip().splitlines()[-1:])
    raise KoreanFontMissing(
        f"could not fetch {package} with apt-get download: {errors}; install a Korean font "
        "(e.g. `apt-get install fonts-nanum`) or put a .ttf with Hangul into "
        f"{cache_dir}"
    )


def find_korean_font(cache_dir: Path | None = None, *, fetch: bool = True) -> KoreanFont | None:
    cache_dir = cache_dir or default_cache_dir()
    found = _cached(cache_dir)
    source = "cache"
    if found is None:
        found, source = _system(), "system"
    if found is None and fetch:
        found, source = download(cache_dir), "downloaded"
    if found is None:
        return None
    from matplotlib import font_manager

    family = font_manager.FontProperties(fname=str(found)).get_name()
    # the family's other weights beside it (NanumGothicBold.ttf ...) for bold titles
    for sibling in sorted(found.parent.glob(f"{found.stem}*")):
        if (
            sibling.suffix.lower() in (".ttf", ".otf", ".ttc")
            and font_manager.FontProperties(fname=str(sibling)).get_name() == family
        ):
            font_manager.fontManager.addfont(str(sibling))
    return KoreanFont(family=family, path=found, source=source)


def ensure_korean_font(
    cache_dir: Path | None = None, *, fetch: bool = True, required: bool = True
) -> KoreanFont | None:
    """Find (or fetch) a Hangul font, register it with matplotlib and make it the default
    sans-serif family (DejaVu Sans stays as the fallback for other symbols)."""
    import matplotlib

    font = find_korean_font(cache_dir, fetch=fetch)
    if font is None:
        if required:
            raise KoreanFontMissing(
                "no font with Hangul found; run `python -m pipelines.reporting.fonts` (it "
                "fetches Debian's fonts-nanum) or install a Korean font"
            )
        return None
    matplotlib.rcParams["font.family"] = "sans-serif"
    matplotlib.rcParams["font.sans-serif"] = [font.family, "DejaVu Sans"]
    matplotlib.rcParams["axes.unicode_minus"] = False  # Nanum has no U+2212
    return font


def main(argv: list[str] | None = None) -> int:
    """``python -m pipelines.reporting.fonts [--no-fetch]``: print the font used."""
    args = sys.argv[1:] if argv is None else argv
    try:
        font = find_korean_font(fetch="--no-fetch" not in args)
    except KoreanFontMissing as exc:
        print(f"fonts: {exc}", file=sys.stderr)
        return 1
    if font is None:
        print("fonts: no Hangul font (not fetched)", file=sys.stderr)
        return 1
    print(f"{font.family}\t{font.path}\t{font.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
