"""report.html of `reenact evaluate`: one self-contained page (inline CSS, SVG plots, JPEG data URIs)."""

from __future__ import annotations

import base64
import html

import numpy as np

from reenact.metrics.eval_report import BETTER as ARROW
from reenact.metrics.eval_report import COLUMNS, TITLES, against_lines, fmt
from reenact.metrics.per_frame import masked_mean

BEST = {m: max if ARROW[m] == "↑" else min for m in COLUMNS}
UNITS = {"fid": "", "csim": "cosine", "akd": "px at 256²", "apd": "degrees", "aed": "expression units"}
PALETTE = ("#7f7f7f", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table.metrics{border-collapse:collapse;margin:.6em 0}table.metrics td,table.metrics th{padding:.35em .8em;
border-bottom:1px solid #e4e4e4;text-align:right}table.metrics th:first-child,table.metrics td:first-child{text-align:left}
td.best{font-weight:700;background:#eaf4ea}.note{color:#555;font-size:.92em}.plots{display:flex;flex-wrap:wrap;gap:1em}
.strip{border-collapse:collapse;margin:.5em 0 1.2em}.strip td,.strip th{padding:2px;text-align:center;font-size:.85em}
.strip img{display:block;width:128px;height:128px}.key span{display:inline-block;margin-right:1em}
"""


def render_html(doc: dict, results: dict, pairs: dict) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>reenact evaluate</title><style>{CSS}</style>"
             "</head><body>",
             f"<h1>reenact evaluate</h1><p>{_e(doc['data'])}: {doc['split']} split, {doc['clips']} clips, "
             f"every {doc['every']}th frame, pairs seed {doc['pairs_seed']}.</p>"]
    for protocol in ("same", "cross"):
        if protocol in results:
            parts += _section(protocol, doc, results[protocol], pairs[protocol])
    parts.append("<h2>Models</h2><ul>" + "".join(f"<li><b>{_e(k)}</b>: {_e(v)}</li>" for k, v in doc["models"].items())
                 + "</ul><h2>Rows</h2><ul>"
                 + "".join(f"<li><b>{_e(k)}</b>: {_e(v['label'])}</li>" for k, v in doc["rows"].items()) + "</ul>")
    if doc["notes"]:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in doc["notes"]) + "</ul>")
    return "\n".join(parts) + "</body></html>\n"


def _section(protocol: str, doc: dict, table: dict, pairs: list) -> list[str]:
    metrics = [m for m in COLUMNS if not (protocol == "cross" and m == "akd")]
    out = [f"<h2>{TITLES[protocol]}</h2>", _table(metrics, doc[protocol]),
           *(f"<p class='note'>{_e(line)}</p>" for line in against_lines(protocol, doc)),
           "<h3>Per-clip distributions</h3>", _key(list(table)), "<div class='plots'>"]
    out += [_plot(m, table) for m in metrics if m != "fid"]
    out.append("</div><h3>Frames</h3>")
    by_name = {p.name: p for p in pairs}
    first_row = next(iter(table.values()))
    for name in first_row["_strips"]:
        out.append(_strip_table(by_name[name], table))
    return out


def _table(metrics: list[str], table: dict) -> str:
    head = "".join(f"<th>{m.upper()} {ARROW[m]}</th>" for m in metrics)
    best = {m: BEST[m](vals) for m in metrics if (vals := [r[m] for r in table.values() if r[m] is not None])}
    body = []
    for row, r in table.items():
        cells = "".join(f"<td class='{'best' if r[m] is not None and r[m] == best.get(m) else ''}'>{fmt(m, r[m])}</td>"
                        for m in metrics)
        body.append(f"<tr><td>{_e(row)}</td>{cells}<td>{r['frames']}</td><td>{r['excluded']}</td></tr>")
    return (f"<table class='metrics'><tr><th>row</th>{head}<th>frames</th><th>no face, excluded</th></tr>"
            + "".join(body) + "</table>")


def _key(rows: list[str]) -> str:
    return "<p class='key'>" + "".join(f"<span style='color:{PALETTE[i % len(PALETTE)]}'>● {_e(r)}</span>"
                                       for i, r in enumerate(rows)) + "</p>"


def _plot(metric: str, table: dict, width: int = 340, lane: int = 26) -> str:
    """One lane per row: a dot per clip (its masked mean) and a bar at the row's value."""
    lanes = [(row, [masked_mean(v[metric])[0] for v in r["_per_pair"].values() if metric in v], r[metric])
             for row, r in table.items()]
    values = [x for _, xs, _ in lanes for x in xs if np.isfinite(x)]
    if not values:
        return ""
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
    lo, hi = lo - pad, hi + pad
    x = lambda v: 70 + (v - lo) / (hi - lo) * (width - 90)  # noqa: E731
    h = lane * len(lanes) + 40
    svg = [f"<svg width='{width}' height='{h}' role='img' aria-label='{metric} per clip'>",
           f"<text x='{width / 2}' y='14' text-anchor='middle' font-size='13' font-weight='600'>{metric.upper()} "
           f"{ARROW[metric]} <tspan font-weight='400' fill='#666'>{UNITS[metric]}</tspan></text>"]
    for i, (row, xs, agg) in enumerate(lanes):
        y, color = 30 + i * lane + lane / 2, PALETTE[i % len(PALETTE)]
        svg.append(f"<text x='64' y='{y + 4}' text-anchor='end' font-size='12'>{_e(row)}</text>"
                   f"<line x1='70' x2='{width - 20}' y1='{y}' y2='{y}' stroke='#eee'/>")
        svg += [f"<circle cx='{x(v):.1f}' cy='{y}' r='4' fill='{color}' fill-opacity='.6'/>" for v in xs if np.isfinite(v)]
        if agg is not None:
            svg.append(f"<line x1='{x(agg):.1f}' x2='{x(agg):.1f}' y1='{y - 9}' y2='{y + 9}' stroke='{color}' stroke-width='3'/>")
    svg.append(f"<text x='70' y='{h - 4}' font-size='11' fill='#666'>{lo:.3g}</text>"
               f"<text x='{width - 20}' y='{h - 4}' font-size='11' fill='#666' text-anchor='end'>{hi:.3g}</text></svg>")
    return "".join(svg)


def _strip_table(pair, table: dict) -> str:
    """source | driver | each row's output, one line per sampled frame."""
    n = len(pair.indices)
    idx = np.linspace(0, n - 1, min(4, n)).round().astype(int)
    source = _thumb(pair.source.read([0])[0])
    drivers = [_thumb(f) for f in pair.driver.read(pair.indices[idx])]
    head = "<tr><th>source</th><th>driver</th>" + "".join(f"<th>{_e(r)}</th>" for r in table) + "</tr>"
    body = []
    for t, drv in enumerate(drivers):
        outs = "".join(f"<td>{_img(r['_strips'][pair.name][t])}</td>" if pair.name in r["_strips"] else
                       "<td class='note'>no output</td>" for r in table.values())
        body.append(f"<tr><td>{_img(source)}</td><td>{_img(drv)}</td>{outs}</tr>")
    return (f"<p><b>{_e(pair.name)}</b> (source {_e(pair.source.id)}, driver {_e(pair.driver.id)})</p>"
            f"<table class='strip'>{head}{''.join(body)}</table>")


def _thumb(img: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA)


def _img(img: np.ndarray) -> str:
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return f"<img alt='' src='data:image/jpeg;base64,{base64.b64encode(buf.tobytes()).decode()}'>"


def _e(text) -> str:
    return html.escape(str(text))
