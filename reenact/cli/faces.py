"""`reenact faces IMAGE`: the faces found, numbered as `--face-index` uses them."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from reenact.cli._common import console, user_errors


def faces_command(
    image: Path = typer.Argument(..., help="A photo (jpg/png/...)."),
    annotate: Path = typer.Option(None, "--annotate", "-o", help="Also write a PNG/JPEG with every face boxed and numbered."),
    as_json: bool = typer.Option(False, "--json", help="Print the faces as JSON instead of a table."),
    weights_dir: Path = typer.Option(None, "--weights-dir", help="Extra folder to search for model files first."),
    force: bool = typer.Option(False, "--force", help="Overwrite the --annotate file if it exists."),
) -> None:
    """List the faces in IMAGE: index (for --face-index), box, size and head pose."""
    from rich.console import Console
    from rich.table import Table

    from reenact.face.pipeline import FacePipeline
    from reenact.io import write_image
    from reenact.io.inputs import check_distinct, read_source
    from reenact.io.outputs import check_output
    from reenact.render.annotate import annotate_faces

    with user_errors():
        picture = read_source(image)
        if annotate is not None:
            check_distinct(annotate, photo=image)
            check_output(annotate, force)
        with FacePipeline(weights_dir) as pipeline:
            faces, left_out = pipeline.find_faces(picture)
        rows = [{"index": f.index, "box": [round(float(v), 1) for v in f.box], "size": round(f.size, 1),
                 "yaw": round(float(f.pose[0]), 1), "pitch": round(float(f.pose[1]), 1),
                 "roll": round(float(f.pose[2]), 1),
                 "detector_score": None if f.score != f.score else round(f.score, 3)} for f in faces]
        if annotate is not None:
            write_image(annotate, annotate_faces(picture, [f.box for f in faces], [str(f.index) for f in faces]), force)
    out = Console()
    if as_json:
        out.print_json(json.dumps({"image": str(image), "faces": rows}))
    else:
        table = Table(title=f"{image}: {len(rows)} face(s)")
        for col in ("index", "box x0, y0, x1, y1", "size px", "yaw", "pitch", "roll", "detector"):
            table.add_column(col, justify="right")
        for r in rows:
            table.add_row(str(r["index"]), ", ".join(f"{v:.0f}" for v in r["box"]), f"{r['size']:.0f}",
                          f"{r['yaw']:+.0f}°", f"{r['pitch']:+.0f}°", f"{r['roll']:+.0f}°",
                          "-" if r["detector_score"] is None else f"{r['detector_score']:.2f}")
        out.print(table)
    if annotate is not None:
        console.print(f"wrote {annotate}", soft_wrap=True)
    if left_out:
        console.print(f"[yellow]note:[/] {len(left_out)} set(s) of face landmarks left out: the face detector sees no "
                      "face there (a face in profile, upside down or mostly hidden?)", soft_wrap=True)
    elif not rows:
        console.print("[yellow]note:[/] no face found", soft_wrap=True)
