"""The gain curve of a review campaign (transferable found against results read) as an inline SVG, drawn on the
server: no chart library and no script, so it renders under the pages' Content-Security-Policy as it is."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

from recommender.review.stopping import knee_point

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD = 520, 240, 44, 30, 12


def _ticks(top: int, count: int = 4) -> list[int]:
    step = max(1, -(-top // count))
    ticks = list(range(0, top + 1, step))
    if top - ticks[-1] >= step / 2:  # the top itself, unless a tick is close by
        ticks.append(top)
    return ticks


def gain_svg(gains: Sequence[int], pool: int) -> Markup:
    """The curve over the whole pool (x: reads 0..pool, y: found), the diagonal a random order would follow to the
    same count, and the knee point the stopping rule looks at."""
    pool = max(pool, 1)
    found = gains[-1] if gains else 0
    top = max(found, 1)
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD, HEIGHT - PAD_BOTTOM - PAD

    def x(reads: float) -> float:
        return PAD_LEFT + plot_w * reads / pool

    def y(value: float) -> float:
        return PAD + plot_h * (1 - value / top)

    parts = [f'<svg class="gain-curve" data-testid="gain-curve" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="增益曲线：已读 {len(gains)} 条，找到 {found} 条可转化成果" xmlns="http://www.w3.org/2000/svg">']
    for value in _ticks(top):
        parts.append(f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                     f'stroke="#e5e9f0"/><text x="{PAD_LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end" '
                     f'font-size="11" fill="#667">{value}</text>')
    for value in _ticks(pool, 5):
        parts.append(f'<text x="{x(value):.1f}" y="{HEIGHT - PAD_BOTTOM + 16}" text-anchor="middle" font-size="11" '
                     f'fill="#667">{value}</text>')
    parts.append(f'<line x1="{PAD_LEFT}" y1="{PAD}" x2="{PAD_LEFT}" y2="{HEIGHT - PAD_BOTTOM}" stroke="#99a"/>'
                 f'<line x1="{PAD_LEFT}" y1="{HEIGHT - PAD_BOTTOM}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD_BOTTOM}" '
                 f'stroke="#99a"/>')
    parts.append(f'<text x="{WIDTH - PAD}" y="{HEIGHT - 2}" text-anchor="end" font-size="11" fill="#445">'
                 '已读（条）</text>'
                 f'<text x="4" y="{PAD - 2}" font-size="11" fill="#445">可转化</text>')
    if gains:
        parts.append(f'<line class="random" x1="{x(0):.1f}" y1="{y(0):.1f}" x2="{x(len(gains)):.1f}" '
                     f'y2="{y(found):.1f}" stroke="#c0c6d0" stroke-dasharray="4 3"/>')
        step = max(1, len(gains) // 400)  # at most ~400 points, the last one always
        points = [(0, 0)] + [(i + 1, gains[i]) for i in range(0, len(gains), step)]
        if points[-1][0] != len(gains):
            points.append((len(gains), found))
        path = " ".join(f"{x(r):.1f},{y(g):.1f}" for r, g in points)
        parts.append(f'<polyline class="found" points="{path}" fill="none" stroke="#2563eb" stroke-width="2"/>')
        knee = knee_point(gains)
        if knee:
            parts.append(f'<circle cx="{x(knee):.1f}" cy="{y(gains[knee - 1]):.1f}" r="4" fill="#f59e0b">'
                         f'<title>拐点：第 {knee} 条</title></circle>')
    parts.append("</svg>")
    return Markup("".join(parts))
