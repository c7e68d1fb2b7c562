"""Caller-ID branding plan for an outbound call: pure, from the callee's phone platform.

Android phones show a carrier's branded display (department name, office number, info text);
iPhones cannot, and for an unknown platform we cannot tell, so those callees also get a
KakaoTalk notice.  ``mode`` is what answer-rate reports group by.
"""

from __future__ import annotations

from dataclasses import dataclass

STREAM = "callerid"
DISPLAY, DISPLAY_KAKAO = "display", "display_kakao"
KAKAO_PLATFORMS = ("ios", "unknown")


@dataclass(frozen=True)
class BrandingPlan:
    mode: str
    branded_display: bool
    kakao: bool
    reason: str


def plan(platform: str) -> BrandingPlan:
    platform = platform if platform in ("android", "ios") else "unknown"
    if platform in KAKAO_PLATFORMS:
        return BrandingPlan(
            DISPLAY_KAKAO,
            True,
            True,
            f"callee platform {platform}: branded display may not show, KakaoTalk notice too",
        )
    return BrandingPlan(DISPLAY, True, False, "callee platform android: branded display")


def display_name(org_prefix: str, department_name: str) -> str:
    """``서울시`` + ``교통과`` → ``서울시 교통과`` (no doubled prefix)."""
    if not org_prefix or department_name.startswith(org_prefix):
        return department_name
    return f"{org_prefix} {department_name}"
