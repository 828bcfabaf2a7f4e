"""A campaign's report as one self-contained HTML page, pure: inline CSS, an inline SVG chart
of the deliveries that reached a final state over time per channel (cumulative), and a table
per channel and language. No script, no external resource: it can be mailed or archived."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from hub.campaigns.report import Line, Report

COLOURS = {"sms": "#1f77b4", "email": "#2ca02c", "voice": "#d62728"}
WIDTH, HEIGHT, PAD, LEFT = 720, 240, 40, 64  # LEFT: room for the largest count

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right;vertical-align:top}
th:first-child,td:first-child,td.l{text-align:left}.sim{background:#ffdd57;padding:.6em;font-weight:bold}
.reasons{font-size:.85em;color:#555;text-align:left}svg{border:1px solid #ddd}"""


def _time(at: str | datetime | None) -> str:
    if at is None:
        return "-"
    if isinstance(at, datetime):
        return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return at


def chart(series: Mapping[str, Sequence[tuple[int, int]]], bucket_seconds: int) -> str:
    """An SVG line chart: per channel, how many deliveries were final by each time."""
    points = [t for values in series.values() for t, _ in values]
    if not points:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="60" role="img">' \
               '<text x="10" y="35">No delivery has reached a final state yet.</text></svg>'
    start, end = min(points), max(points) + bucket_seconds
    totals = {c: sum(n for _, n in values) for c, values in series.items()}
    top = max(max(totals.values()), 1)
    span = max(end - start, 1)

    def x(t: int) -> float:
        return LEFT + (t - start) / span * (WIDTH - LEFT - PAD)

    def y(n: int) -> float:
        return HEIGHT - PAD - n / top * (HEIGHT - 2 * PAD)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
             f'aria-label="deliveries over time per channel">',
             f'<line x1="{LEFT}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>',
             f'<line x1="{LEFT}" y1="{PAD}" x2="{LEFT}" y2="{HEIGHT - PAD}" stroke="#999"/>',
             f'<text x="{LEFT}" y="{HEIGHT - 12}" font-size="11">{escape(_clock(start))}</text>',
             f'<text x="{WIDTH - PAD}" y="{HEIGHT - 12}" font-size="11" text-anchor="end">'
             f'{escape(_clock(end))}</text>',
             f'<text x="{LEFT - 4}" y="{PAD + 4}" font-size="11" text-anchor="end">{top}</text>',
             f'<text x="{LEFT - 4}" y="{HEIGHT - PAD + 4}" font-size="11" text-anchor="end">0</text>']
    for i, (channel, values) in enumerate(sorted(series.items())):
        total, coords = 0, [f"{x(start):.1f},{y(0):.1f}"]
        for t, n in sorted(values):
            total += n
            coords.append(f"{x(t + bucket_seconds):.1f},{y(total):.1f}")
        colour = COLOURS.get(channel, "#555")
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                     f'points="{" ".join(coords)}"/>')
        parts.append(f'<text x="{LEFT + 10 + 140 * i}" y="{PAD - 16}" font-size="12" fill="{colour}">'
                     f'{escape(channel)}: {total}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _clock(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S")


def _reasons(reasons: Mapping[str, int]) -> str:
    if not reasons:
        return ""
    items = "".join(f"<li>{escape(r)}: {n}</li>" for r, n in sorted(reasons.items(), key=lambda i: -i[1]))
    return f'<ul class="reasons">{items}</ul>'


def _row(line: Line, head: str) -> str:
    cells = [head, str(line.planned), str(line.sent), str(line.delivered),
             f"{line.failed}{_reasons(line.failed_reasons)}",
             f"{line.skipped}{_reasons(line.skipped_reasons)}",
             str(line.cancelled), str(line.awaiting), escape(_time(line.first_sent)),
             escape(_time(line.last_sent)), str(line.parts), f"{line.cost_eur:.3f}"]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


_HEAD = ("<tr><th>language</th><th>planned</th><th>sent</th><th>delivered</th><th>failed</th>"
         "<th>skipped</th><th>cancelled</th><th>awaiting</th><th>first sent</th><th>last sent</th>"
         "<th>SMS parts</th><th>cost (EUR)</th></tr>")


def render(report: Report, meta: Mapping[str, Any]) -> str:
    """The page. ``meta``: id, alert, state, simulation, createdAt, sentAt, endedAt, generatedAt."""
    title = f"Campaign {meta.get('id')} - alert {meta.get('alert') or '-'}"
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"]
    if meta.get("simulation"):
        out.append('<p class="sim">SIMULATION: nothing of this campaign was sent to anyone.</p>')
    out.append(f"<h1>{escape(title)}</h1>")
    facts = [("state", meta.get("state")), ("created", meta.get("createdAt")),
             ("sending ended", meta.get("sentAt")),
             ("ended", meta.get("endedAt")), ("report made", meta.get("generatedAt")),
             ("planned", report.total.planned), ("delivered", report.total.delivered),
             ("failed", report.total.failed), ("awaiting an outcome", report.total.awaiting),
             ("cost (EUR, excl. VAT)", f"{report.total.cost_eur:.3f}")]
    billing = meta.get("billing")
    if billing:
        facts += [("paid from prepaid (EUR)", f"{billing['prepaidEur']:.3f}"),
                  ("overdraft (EUR)", f"{billing['overdraftEur']:.3f}"),
                  ("when the balance runs out", billing["policy"])]
    out.append("<table>" + "".join(f'<tr><th>{escape(k)}</th><td class="l">{escape(str(v or "-"))}</td></tr>'
                                   for k, v in facts) + "</table>")
    out.append("<h2>Deliveries over time</h2>")
    out.append(chart(report.timeline, report.bucket_seconds))
    for channel in report.channels:
        out.append(f"<h2>{escape(channel.channel)}</h2><table>{_HEAD}")
        out.extend(_row(line, escape(line.language)) for line in report.lines
                   if line.channel == channel.channel)
        out.append(_row(channel, "<b>all</b>") + "</table>")
    out.append("</body></html>")
    return "\n".join(out)
