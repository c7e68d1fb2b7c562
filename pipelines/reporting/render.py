"""The monthly report as files: self-contained HTML (inline PNG figures) and a multi-page PDF.

matplotlib draws every figure once; the PNG goes into the HTML, the figure itself onto a PDF
page (``PdfPages``: figures and tables; glyphs embedded as Type 3 fonts with a Unicode map, so
the Korean text stays searchable, and 6× faster to write than Type 42 for a CJK font).  A
Hangul font is registered first (:mod:`pipelines.reporting.fonts`); matplotlib's "Glyph ...
missing" warnings are collected and returned, so a caller (and the tests) can refuse a report
with empty boxes instead of Korean.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.reporting.fonts import KoreanFont, ensure_korean_font
from pipelines.reporting.monthly import (
    ACTION_NAMES,
    CATEGORY_NAMES,
    FIGURE_LABELS,
    MonthlyData,
    Section,
    exposure_distribution,
    format_figure,
)

TITLE = "CallGuard 월간 악성 민원 보고서"
SUBTITLE = "Monthly abuse report"
A4_PORTRAIT = (8.27, 11.69)
BOLD = 600  # NanumGothicBold.ttf; "bold" (700) would log a fallback warning
COLORS = ("#2f6db5", "#e0803a", "#c0392b", "#5a9e4b", "#8e6bb8", "#7f8c8d")


@dataclass
class ReportFiles:
    html: Path
    pdf: Path
    data: Path
    font: KoreanFont | None
    missing_glyphs: list[str] = field(default_factory=list)
    pages: int = 0


@dataclass
class _Chart:
    section: str
    title: str
    draw: Callable[[Any], None]


def _dept(names: dict[str, str], code: Any) -> str:
    code = str(code)
    return names.get(code, code)


def _category(code: Any) -> str:
    code = str(code)
    return f"{CATEGORY_NAMES.get(code, code)}\n{code}" if code in CATEGORY_NAMES else code


def _bars(ax: Any, labels: Sequence[str], series: dict[str, Sequence[float]],
          horizontal: bool = False) -> None:
    n = max(1, len(series))
    width = 0.8 / n
    positions = range(len(labels))
    for i, (name, values) in enumerate(series.items()):
        offsets = [p - 0.4 + width * (i + 0.5) for p in positions]
        if horizontal:
            bars = ax.barh(offsets, values, height=width, label=name, color=COLORS[i % 6])
        else:
            bars = ax.bar(offsets, values, width=width, label=name, color=COLORS[i % 6])
        ax.bar_label(bars, fmt="%g", fontsize=7, padding=2)
    from matplotlib.ticker import MaxNLocator

    if horizontal:
        ax.set_yticks(list(positions), labels)
        ax.invert_yaxis()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        ax.set_xticks(list(positions), labels)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if len(series) > 1:
        ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)


def _bar_chart(
    labels: Sequence[str], series: dict[str, Sequence[float]]
) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        _bars(ax, labels, series)

    return draw


def _charts(data: MonthlyData, names: dict[str, str]) -> list[_Chart]:
    s = data.sections
    charts: list[_Chart] = []

    def col(section: Section, index: int) -> list[float]:
        return [float(r[index] or 0) for r in section.rows]

    if s["by_category"].available and s["by_category"].rows:
        sec = s["by_category"]
        charts.append(_Chart("by_category", sec.title, _bar_chart(
            [_category(r[0]) for r in sec.rows], {"사건 incidents": col(sec, 1)})))
    if s["by_department"].available and s["by_department"].rows:
        sec = s["by_department"]
        charts.append(_Chart("by_department", sec.title, _bar_chart(
            [_dept(names, r[0]) for r in sec.rows],
            {f"{ACTION_NAMES['log']} log": col(sec, 2),
             f"{ACTION_NAMES['warn']} warn": col(sec, 3),
             f"{ACTION_NAMES['end']} end": col(sec, 4)})))
    if s["by_day"].available:
        sec = s["by_day"]

        def per_day(ax: Any, sec: Section = sec) -> None:
            x = list(range(len(sec.rows)))
            ax.bar(x, col(sec, 1), color=COLORS[0], label="사건 incidents")
            ax.plot(x, col(sec, 2), color=COLORS[1], marker="o", ms=3, label="경고 warnings")
            ax.set_xticks(x, [str(r[0])[-2:] for r in sec.rows])
            ax.set_xlabel(f"{data.month.label} 일 (day, Seoul)")
            ax.tick_params(axis="x", labelsize=7)
            ax.legend(fontsize=8, frameon=False)
            ax.spines[["top", "right"]].set_visible(False)

        charts.append(_Chart("by_day", sec.title, per_day))
    # per-department bar charts: section → {series label: column}
    per_department = {
        "terminations": {"경고 abuse warnings": 1, "폭언 종료 abuse terminations": 2,
                         "20분 종료 20-minute terminations": 3},
        "consent": {"고지 누락 consent missing": 2, "녹음 지연 recording late": 3,
                    "녹음 누락 recording missing": 4},
        "recordings_purged": {"파기 purged": 1, "열람 accessed": 2, "열람 거부 refused": 3},
    }
    for key, columns in per_department.items():
        sec = s[key]
        if sec.available and sec.rows:
            charts.append(_Chart(key, sec.title, _bar_chart(
                [_dept(names, r[0]) for r in sec.rows],
                {label: col(sec, i) for label, i in columns.items()})))
    if s["feedback"].available and s["feedback"].rows:
        sec = s["feedback"]

        def false_alarms(ax: Any, sec: Section = sec) -> None:
            rates = [100 * float(r[3]) / float(r[1]) if r[1] else 0.0 for r in sec.rows]
            _bars(ax, [_category(r[0]) for r in sec.rows], {"오탐률 false-alarm rate %": rates})

        charts.append(_Chart("feedback", sec.title, false_alarms))
    if s["staff_exposure"].available and s["staff_exposure"].rows:
        sec = s["staff_exposure"]

        def exposure(ax: Any, sec: Section = sec) -> None:
            buckets = exposure_distribution(sec)
            _bars(ax, [b[0] for b in buckets], {"직원 수 staff": [b[1] for b in buckets]})
            ax.set_xlabel("직원 1명이 겪은 사건 수 (incidents per staff member)")

        charts.append(_Chart("staff_exposure", sec.title, exposure))
    if s["situations"].available and s["situations"].rows:
        sec = s["situations"]
        charts.append(_Chart("situations", sec.title, _bar_chart(
            [_dept(names, r[0]) for r in sec.rows],
            {"업무시간 business hours": col(sec, 1), "점심 lunch": col(sec, 2),
             "업무시간 외 after hours": col(sec, 3), "주말·공휴일 weekend/holiday": col(sec, 4)})))
    return charts


def _display_rows(section: Section, names: dict[str, str]) -> list[list[str]]:
    out = []
    for row in section.rows:
        cells = []
        for column, value in zip(section.columns, row, strict=True):
            if column == "department":
                cells.append(_dept(names, value))
            elif column == "category":
                cells.append(_category(value).replace("\n", " "))
            elif isinstance(value, float):
                cells.append(f"{value:g}")
            else:
                cells.append(str(value))
        out.append(cells)
    return out


def _table(ax: Any, columns: list[str], cells: list[list[str]], max_rows: int) -> int:
    """Draw ``cells`` as a table on ``ax``; column widths follow the text.  Rows drawn."""
    ax.axis("off")
    shown = cells[:max_rows]
    if not shown:
        return 0
    widths = [
        max(len(str(c)) for c in [column, *(row[i] for row in shown)]) + 2
        for i, column in enumerate(columns)
    ]
    total = sum(widths)
    table = ax.table(cellText=shown, colLabels=columns, loc="upper center", cellLoc="right",
                     colWidths=[w / total for w in widths])
    table.auto_set_font_size(False)
    table.set_fontsize(6 if len(shown) > 20 or len(columns) > 6 else 7.5)
    for (row, col), cell in table.get_celld().items():
        if col == 0 or row == 0:
            cell.set_text_props(ha="left" if row else "center")
        if row == 0:
            cell.set_facecolor("#eef2f7")
    return len(shown)


def _figure_png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _html(data: MonthlyData, names: dict[str, str], images: dict[str, str]) -> str:
    e = html.escape
    month = data.month.label
    parts = [
        "<!DOCTYPE html>",
        '<html lang="ko"><head><meta charset="utf-8">',
        f"<title>{e(TITLE)} {month}</title>",
        "<style>body{font-family:'NanumGothic','Noto Sans KR','Malgun Gothic',sans-serif;"
        "max-width:960px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em}"
        "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
        "td:first-child,th:first-child{text-align:left}"
        ".note{color:#8a5a00;background:#fff6e0;padding:.5em;border-left:4px solid #e0a030}"
        "img{max-width:100%}</style></head><body>",
        f"<h1>{e(TITLE)} — {month}</h1>",
        f"<p>{e(SUBTITLE)}, {e(data.month.start.date().isoformat())} – "
        f"{e((data.month.end.date()).isoformat())} (Asia/Seoul, end exclusive). "
        f"생성 generated {e(data.generated_at.isoformat(timespec='seconds'))}.</p>",
        "<h2>주요 지표 — key figures</h2>",
        '<table class="figures"><tr><th>지표</th><th>metric</th><th>값 value</th></tr>',
    ]
    for key, (korean, english) in FIGURE_LABELS.items():
        if key not in data.figures:
            continue
        value = data.figures[key]
        raw = "" if value is None else str(value)
        parts.append(
            f'<tr><td>{e(korean)}</td><td>{e(english)}</td>'
            f'<td data-metric="{e(key)}" data-value="{e(raw)}">{e(format_figure(key, value))}'
            "</td></tr>"
        )
    parts.append("</table>")
    parts.append(
        "<p>직원은 이름이나 내선 번호 없이 순위로만 표시합니다 "
        "(staff appear only as anonymous ranks).</p>"
    )
    for key, section in data.sections.items():
        parts.append(f'<section id="{e(key)}"><h2>{e(section.title)}</h2>')
        if not section.available:
            parts.append(f'<p class="note">{e(section.note)}</p></section>')
            continue
        if key in images:
            parts.append(f'<img alt="{e(section.title)}" src="data:image/png;base64,'
                         f'{images[key]}">')
        if not section.rows:
            parts.append('<p class="note">이 달에는 데이터가 없습니다 (no rows this month).</p>')
        else:
            parts.append(f'<table data-section="{e(key)}"><tr>'
                         + "".join(f"<th>{e(c)}</th>" for c in section.columns) + "</tr>")
            for cells in _display_rows(section, names):
                parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
            parts.append("</table>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _table_page(pdf: Any, plt: Any, title: str, columns: list[str],
                rows: list[list[str]], note: str = "") -> None:
    fig = plt.figure(figsize=A4_PORTRAIT)
    fig.text(0.07, 0.95, title, fontsize=14, weight=BOLD, va="top")
    if note:
        fig.text(0.07, 0.90, note, fontsize=9, va="top", wrap=True, color="#8a5a00")
    if rows:
        shown = _table(fig.add_axes((0.07, 0.05, 0.86, 0.83)), columns, rows, 45)
        if len(rows) > shown:
            fig.text(0.07, 0.03, f"… {len(rows) - shown} more rows in the HTML report",
                     fontsize=8)
    pdf.savefig(fig)
    plt.close(fig)


def render(data: MonthlyData, out_dir: Path, department_names: dict[str, str],
           *, font_cache: Path | None = None, fetch_font: bool = True) -> ReportFiles:
    """Write ``callguard-abuse-report-<month>.{html,pdf,json}`` into ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    # fontTools lists every TrueType table it cannot subset while embedding the font
    logging.getLogger("fontTools.subset").setLevel(logging.ERROR)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"callguard-abuse-report-{data.month.label}"
    names = dict(department_names)
    font = ensure_korean_font(font_cache, fetch=fetch_font)
    matplotlib.rcParams["pdf.fonttype"] = 3  # see the module docstring
    images: dict[str, str] = {}
    pages = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with PdfPages(stem.with_suffix(".pdf")) as pdf:
            # page 1: title and key figures
            fig = plt.figure(figsize=A4_PORTRAIT)
            fig.text(0.07, 0.95, TITLE, fontsize=20, weight=BOLD, va="top")
            fig.text(0.07, 0.91, f"{data.month.label} — {SUBTITLE}", fontsize=13, va="top")
            fig.text(0.07, 0.885, "Asia/Seoul · 생성 "
                     + data.generated_at.isoformat(timespec="seconds"), fontsize=8, va="top")
            rows = [
                [korean, english, format_figure(key, data.figures[key])]
                for key, (korean, english) in FIGURE_LABELS.items()
                if key in data.figures
            ]
            ax = fig.add_axes((0.07, 0.25, 0.86, 0.6))
            ax.axis("off")
            table = ax.table(cellText=rows, colLabels=["지표", "metric", "값 value"],
                             loc="upper center", cellLoc="left", colWidths=[0.38, 0.44, 0.18])
            table.auto_set_font_size(False)
            table.set_fontsize(10)
            table.scale(1, 1.6)
            fig.text(0.07, 0.2, "— : 해당 테이블이 아직 없음 (table not available yet; see its "
                     "section).\n직원은 이름이나 내선 번호 없이 순위로만 표시합니다.\n"
                     "Staff appear only as anonymous ranks; evidence text is not included.",
                     fontsize=9, va="top", linespacing=1.6)
            pdf.savefig(fig)
            plt.close(fig)
            pages += 1
            charts = {c.section: c for c in _charts(data, names)}
            for key, section in data.sections.items():
                chart = charts.get(key)
                if chart is not None:
                    fig = plt.figure(figsize=A4_PORTRAIT)
                    fig.text(0.07, 0.95, section.title, fontsize=14, weight=BOLD, va="top")
                    ax = fig.add_axes((0.1, 0.52, 0.85, 0.38))
                    chart.draw(ax)
                    if section.rows:
                        cells = _display_rows(section, names)
                        shown = _table(fig.add_axes((0.07, 0.04, 0.86, 0.42)),
                                       section.columns, cells, 31)
                        if len(cells) > shown:
                            fig.text(0.07, 0.02, f"… {len(cells) - shown} more rows in the "
                                     "HTML report", fontsize=8)
                    # the HTML gets the chart alone
                    small = plt.figure(figsize=(8, 4))
                    chart.draw(small.add_subplot())
                    small.suptitle(section.title, fontsize=11)
                    images[key] = _figure_png(small)
                    plt.close(small)
                    pdf.savefig(fig)
                    plt.close(fig)
                else:
                    _table_page(pdf, plt, section.title, section.columns,
                                _display_rows(section, names),
                                section.note if not section.available
                                else ("" if section.rows else "no rows this month"))
                pages += 1
            info = pdf.infodict()
            info["Title"] = f"{TITLE} {data.month.label}"
            info["Author"] = "CallGuard"
    missing = sorted({str(w.message) for w in caught if "missing from font" in str(w.message)})
    stem.with_suffix(".html").write_text(_html(data, names, images), encoding="utf-8")
    stem.with_suffix(".json").write_text(
        json.dumps(
            {
                "month": data.month.label,
                "generated_at": data.generated_at.isoformat(),
                "figures": data.figures,
                "sections": {
                    k: {"columns": s.columns, "rows": s.rows, "available": s.available,
                        "note": s.note}
                    for k, s in data.sections.items()
                },
            },
            ensure_ascii=False, indent=2, default=str,
        ) + "\n",
        encoding="utf-8",
    )
    return ReportFiles(
        html=stem.with_suffix(".html"), pdf=stem.with_suffix(".pdf"),
        data=stem.with_suffix(".json"), font=font, missing_glyphs=missing, pages=pages,
    )
