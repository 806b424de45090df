"""What `reenact evaluate` writes into EVAL/, each file atomically:

    results.json    {"same": {row: {fid, csim, akd, apd, aed, frames, excluded, ...}}, "cross": {...},
                     "models", "rows", "cache", "timing", "notes", ...}
    per_frame.csv   one line per protocol, row, pair and frame: the per-frame CSIM/AKD/APD/AED
    per_clip.csv    one line per protocol, row and pair: the masked means of those
    pairs.csv       the pairs (pair name, source clip, driver clip): the names ``--method`` folders use
    report.md       the tables in Markdown, with the models under them
    report.html     a self-contained page: tables, per-clip distributions, frame strips
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from reenact.errors import BadInputError
from reenact.metrics.per_frame import PAIRED, masked_mean

OWN = ("results.json", "cache", "report.md", "report.html", "per_frame.csv", "per_clip.csv", "pairs.csv")
COLUMNS = ("fid", "csim", "akd", "apd", "aed")
BETTER = {"fid": "↓", "csim": "↑", "akd": "↓", "apd": "↓", "aed": "↓"}
TITLES = {"same": "Same-identity reconstruction", "cross": "Cross-identity reenactment"}
FID_UNBIASED = 2048


def check_out_dir(out: str | Path) -> Path:
    """``out``, created if needed; refused when it holds files that an evaluation did not write."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out {out}: exists and is not a folder")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in OWN and not p.name.startswith("."))
        if foreign:
            raise BadInputError(f"--out {out}: holds files evaluate did not write ({', '.join(foreign[:3])}); "
                                "choose an empty or earlier evaluate folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_reports(out: Path, results: dict, summary: dict, pairs: dict, per_frame_rows: list[dict]) -> dict:
    """Write every output file; return the results as written to results.json."""
    from reenact.metrics.eval_html import render_html  # it imports this module's table helpers

    public = {p: {row: {k: v for k, v in r.items() if not k.startswith("_")} for row, r in table.items()}
              for p, table in results.items()}
    doc = {**public, **summary}
    _write(out / "results.json", json.dumps(_finite(doc), indent=2) + "\n")
    _write_csv(out / "per_frame.csv", ("protocol", "row", "pair", "frame", "generated_face", "reference_face", *PAIRED),
               per_frame_rows)
    _write_csv(out / "per_clip.csv", ("protocol", "row", "pair", "frames", *PAIRED), _per_clip(results))
    _write_csv(out / "pairs.csv", ("protocol", "pair", "source_clip", "driver_clip", "frames"),
               [{k: v for k, v in p.describe().items() if k != "driver_frame_indices"}
                for ps in pairs.values() for p in ps])
    _write(out / "report.md", markdown(doc))
    _write(out / "report.html", render_html(doc, results, pairs))
    return doc


def _per_clip(results: dict) -> list[dict]:
    rows = []
    for protocol, table in results.items():
        for row, r in table.items():
            for pair, values in r["_per_pair"].items():
                entry = {"protocol": protocol, "row": row, "pair": pair,
                         "frames": len(next(iter(values.values()))) if values else 0}
                entry.update({m: masked_mean(v)[0] for m, v in values.items()})
                rows.append(entry)
    return rows


def fmt(metric: str, v) -> str:
    if v is None:
        return "n/a"
    return f"{v:.3f}" if metric in ("csim", "aed") else f"{v:.2f}"


def markdown(doc: dict) -> str:
    lines = [f"# reenact evaluate: {doc['data']} ({doc['split']} split, {doc['clips']} clips, every {doc['every']}th frame)", ""]
    for protocol, title in TITLES.items():
        if protocol not in doc:
            continue
        lines += [f"## {title}", "", "| row | " + " | ".join(f"{m.upper()} {BETTER[m]}" for m in COLUMNS)
                  + " | frames | no face, excluded |", "|---" * (len(COLUMNS) + 3) + "|"]
        for row, r in doc[protocol].items():
            cells = [fmt(m, r[m]) if not (protocol == "cross" and m == "akd") else "–" for m in COLUMNS]
            lines.append(f"| {row} | " + " | ".join(cells) + f" | {r['frames']} | {r['excluded']} |")
        lines += ["", *against_lines(protocol, doc), ""]
    lines += ["## Models", "", *[f"- **{k}**: {v}" for k, v in doc["models"].items()], "",
              "## Rows", "", *[f"- **{k}**: {v['label']}" for k, v in doc["rows"].items()], ""]
    if doc["notes"]:
        lines += ["## Notes", "", *[f"- {n}" for n in doc["notes"]], ""]
    return "\n".join(lines)


def against_lines(protocol: str, doc: dict) -> list[str]:
    """What each column was compared with, and the FID caveat."""
    table = doc[protocol]
    n_ref = min((r.get("fid_reference_images", 0) for r in table.values()), default=0)
    n_gen = min((r["frames"] for r in table.values()), default=0)
    if protocol == "same":
        out = ["All metrics against the ground-truth frames of the same clip (source: its first frame)."]
    else:
        out = ["FID and CSIM against the source frames; APD and AED against the driving frames; "
               "AKD does not apply across identities (landmarks carry identity). The copy row is the source "
               "itself, so it bounds FID and CSIM from the good side; it is the floor on APD and AED."]
    if min(n_ref, n_gen) < FID_UNBIASED:
        out.append(f"FID from {n_gen} generated vs {n_ref} comparison images: below {FID_UNBIASED} the covariance "
                   "is rank-deficient and FID is biased upward; compare rows of this table with each other only.")
    return out


def _finite(v):
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_finite(x) for x in v]
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def _write(path: Path, text: str) -> None:
    from reenact.io import atomic_output

    with atomic_output(path, force=True) as tmp:
        tmp.write_text(text)


def _write_csv(path: Path, fields: tuple[str, ...], rows: list[dict]) -> None:
    from reenact.io import atomic_output

    with atomic_output(path, force=True) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for row in rows:
            w.writerow({k: _cell(row.get(k)) for k in fields})


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return repr(float(v)) if isinstance(v, float) else str(v)
