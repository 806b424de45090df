"""`reenact preprocess`: talking-head clips -> face crops, 68 landmarks and per-frame 3D geometry.

Per clip: track the face (MediaPipe, VIDEO mode); crop each face frame with the authors' box
constants, the box One-Euro-smoothed over time; store the crop (JPEG or PNG), the 68 landmarks (FAN
when its weights are present, else MediaPipe-68; recorded), the built-in mesh in crop pixels with pose
and blendshapes, and FLAME parameters and vertices with ``face_model="flame"``. Each clip is built in
``clips/.tmp-<host>-<pid>-*`` and renamed into place, so a killed run leaves no partial clip; a re-run
skips finished clips and clips already skipped (their reason is kept in ``skipped/``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from reenact.data import clips, layout
from reenact.data.extract import ClipExtractor, release_models
from reenact.data.sources import ClipJob, discover
from reenact.errors import BadInputError, ReenactError
from reenact.face.mesh import flip_map
from reenact.io import VideoReader
from reenact.io.video import TimedFrame


@dataclass
class PreprocessOptions:
    size: int = 256
    image_format: str = "jpg"  # jpg | png
    jpeg_quality: int = 95
    identity_from: str = "parent"  # parent | grandparent | none
    min_frames: int = 8  # clips with fewer face frames are skipped
    max_frames: int | None = None  # per clip, for quick runs
    test_fraction: float = 0.1
    split_csv: str | None = None
    landmarks: str = "auto"  # auto | fan | mediapipe
    face_model: str = "mediapipe"  # mediapipe | flame
    flame_dir: str | None = None
    weights_dir: str | None = None
    workers: int = 1
    shard: tuple[int, int] = (0, 1)
    retry_skipped: bool = False


@dataclass
class ClipResult:
    clip_id: str
    status: str  # done | exists | skipped | failed
    reason: str = ""
    frames: int = 0
    seconds: float = 0.0


@dataclass
class Summary:
    results: list[ClipResult] = field(default_factory=list)
    manifest: dict | None = None

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.results if r.status == "done")


def validate(opts: PreprocessOptions) -> None:
    if opts.image_format not in ("jpg", "png"):
        raise BadInputError(f"--format {opts.image_format}: expected jpg or png")
    if not 16 <= opts.size <= 2048:
        raise BadInputError(f"--size {opts.size}: expected 16..2048")
    if not 0.0 <= opts.test_fraction < 1.0:
        raise BadInputError("--test-fraction must be in [0, 1)")
    if opts.workers < 1:
        raise BadInputError("--workers must be at least 1")


def preprocess(inputs: list[str | Path], out: str | Path, opts: PreprocessOptions,
               progress: Callable[[ClipResult, int, int], None] | None = None) -> Summary:
    """Preprocess every clip of this shard into ``out`` and write the shard's manifest part. A run over the
    whole set (shard 0/1) then merges every part into ``manifest.json``; sharded runs leave that to
    :func:`finalize` (``reenact preprocess --finalize DATA``), so no shard scans the output tree."""
    validate(opts)
    root = Path(out)
    splits = layout.read_split_csv(opts.split_csv) if opts.split_csv else None
    _refuse_old_layout(root)
    jobs = discover(inputs, opts.identity_from, opts.shard)
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(root)
    summary, todo = Summary(), []
    for job in jobs:
        if layout.is_done(root, job.clip_id):
            summary.results.append(ClipResult(job.clip_id, "exists"))
        elif layout.skip_marker(root, job.clip_id).is_file() and not opts.retry_skipped:
            reason = json.loads(layout.skip_marker(root, job.clip_id).read_text())["reason"]
            summary.results.append(ClipResult(job.clip_id, "skipped", f"{reason} (recorded earlier)"))
        else:
            todo.append(job)
    report = progress or (lambda *_: None)
    for r in summary.results:
        report(r, len(summary.results), len(jobs))
    for result in _run(todo, root, opts):
        summary.results.append(result)
        if result.status == "skipped":
            layout.write_json(layout.skip_marker(root, result.clip_id), {"clip": result.clip_id, "reason": result.reason})
        report(result, len(summary.results), len(jobs))
    if summary.count("done") or summary.count("exists"):
        _write_topology(root, opts)
    _write_part(root, inputs, opts, splits, [r.clip_id for r in summary.results if r.status in ("done", "exists")])
    if opts.shard[1] == 1:
        summary.manifest = layout.merge_parts(root, opts.test_fraction, splits)
    return summary


def _refuse_old_layout(root: Path) -> None:
    """New clips are not mixed into a dataset of an older layout."""
    manifest = layout.manifest_file(root)
    if manifest is not None and manifest.get("version") != layout.VERSION:
        raise layout.DataError(layout.old_layout_message(root, manifest["version"], root))


def finalize(out: str | Path, test_fraction: float = 0.1, split_csv: str | None = None) -> dict:
    """Merge the manifest parts of every run and shard into ``manifest.json``: the split, and totals."""
    root = Path(out)
    if not root.is_dir():
        raise layout.DataError(f"{root}: data directory not found")
    splits = layout.read_split_csv(split_csv) if split_csv else None
    return layout.merge_parts(root, test_fraction, splits)


def run_key(inputs: list[str | Path], identity_from: str) -> str:
    """A short id of one preprocess invocation's inputs: its shards' parts share it."""
    text = "\n".join(sorted(str(Path(i).resolve()) for i in inputs)) + f"\n{identity_from}"
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _write_part(root: Path, inputs, opts: PreprocessOptions, splits, clip_ids: list[str]) -> None:
    """This shard's finished clips, read from their own meta.json files (O(this shard's clips))."""
    clips, settings = [], {}
    for cid in clip_ids:
        meta = json.loads((layout.clip_dir(root, cid) / "meta.json").read_text())
        ident = meta["identity"]
        split = layout.split_for(ident, splits, opts.test_fraction)
        clips.append({"id": cid, "identity": ident, "frames": meta["frames"], "split": split})
        settings = {k: meta[k] for k in layout.SETTINGS}
    layout.write_part(root, run_key(inputs, opts.identity_from), opts.shard, clips, settings)


def _write_topology(root: Path, opts: PreprocessOptions) -> None:
    """``topology.npz``: the mesh's name, triangles and left/right vertex flip map, so training needs
    no face-model files (FLAME's come from the user's model)."""
    path = root / layout.TOPOLOGY
    if path.is_file():
        return
    if opts.face_model == "flame":
        from reenact.face.flame_backend import FlameGeometry

        geo = FlameGeometry.from_dirs(opts.flame_dir, opts.weights_dir, opts.size)
        name, tris, template = geo.topology, geo.model.faces.cpu().numpy(), geo.model.v_template.cpu().numpy()
    else:
        from reenact.face.mesh import MEDIAPIPE, canonical_vertices, topology

        name, tris, template = MEDIAPIPE, topology(), canonical_vertices(MEDIAPIPE)
    from reenact.io import atomic_output

    with atomic_output(path, force=True) as tmp:
        np.savez(tmp, name=np.array(name), triangles=tris.astype(np.int64), flip=flip_map(np.asarray(template, np.float64)))


def _run(jobs: list[ClipJob], root: Path, opts: PreprocessOptions) -> Iterator[ClipResult]:
    """Results as clips finish: in this process, or in ``opts.workers`` spawned processes."""
    if opts.workers == 1 or len(jobs) <= 1:
        try:
            for job in jobs:
                yield process_clip(job, root, opts)
        finally:
            release_models()
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(min(opts.workers, len(jobs))) as pool:
        yield from pool.imap_unordered(_process_star, [(job, root, opts) for job in jobs])


def _process_star(args) -> ClipResult:
    return process_clip(*args)


def process_clip(job: ClipJob, root: Path, opts: PreprocessOptions) -> ClipResult:
    """Build one clip in a temp directory and rename it into place; never raises for a bad clip.

    A clip is *skipped* by policy (too few frames with a face) and *fails* when it cannot be processed: an
    unreadable video, a missing model file, or a crash. Failures make the run's exit code non-zero."""
    t0 = time.perf_counter()
    tmp = root / "clips" / f".tmp-{socket.gethostname()}-{os.getpid()}-{job.clip_id.replace('/', '__')}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        n = _build_clip(job, tmp, opts)
        if n < opts.min_frames:
            return ClipResult(job.clip_id, "skipped", f"only {n} frame(s) with a face (need {opts.min_frames})",
                              seconds=time.perf_counter() - t0)
        final = layout.clip_dir(root, job.clip_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(tmp, final)
        return ClipResult(job.clip_id, "done", frames=n, seconds=time.perf_counter() - t0)
    except ReenactError as exc:  # unreadable video, missing weights, ...
        return ClipResult(job.clip_id, "failed", str(exc), seconds=time.perf_counter() - t0)
    except Exception as exc:  # a crash on one clip: counted as failed, and the other clips go on
        return ClipResult(job.clip_id, "failed", f"crashed ({exc.__class__.__name__}: {exc})",
                          seconds=time.perf_counter() - t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _frames(source: Path) -> tuple[float, Iterator[TimedFrame], tuple[int, int] | None]:
    """(average fps, timed frames, (width, height), None for a folder of frames) of a video file or a
    folder of frames (:mod:`reenact.io.image_sequence`: 25 frames/s)."""
    reader = VideoReader(source)
    return reader.info.fps, reader.timed(), tuple(reader.info.size) if reader.info.kind == "video" else None


def _build_clip(job: ClipJob, tmp: Path, opts: PreprocessOptions) -> int:
    """Write the clip's files (:mod:`reenact.data.clips`) into ``tmp``; return the face-frame count."""
    fps, frames, frame_size = _frames(job.source)
    tmp.mkdir(parents=True)
    writer = clips.FrameWriter(tmp / clips.FRAMES)
    try:
        extractor = ClipExtractor(opts, writer)
        extractor.run(itertools.islice(frames, opts.max_frames), fps)
    finally:
        writer.close()
    if extractor.count < opts.min_frames:
        return extractor.count
    arrays, labels = extractor.finish()
    clips.write_arrays(tmp, arrays, labels["face_model"])
    layout.write_json(tmp / clips.META, {
        "id": job.clip_id, "identity": job.identity, "source": str(job.source.resolve()), "fps": fps,
        "frames": extractor.count, "source_frames": extractor.seen, "source_size": frame_size, "rejected_frames": extractor.rejected,
        "size": opts.size, "image_format": opts.image_format, **labels, "layout": clips.LAYOUT, "versions": _versions()})
    return extractor.count


def _remove_stale_temps(root: Path) -> None:
    """Temp clip dirs left by killed runs of this host (their process is gone)."""
    host = socket.gethostname()
    for d in (root / "clips").glob(f".tmp-{host}-*"):
        pid = d.name[len(f".tmp-{host}-"):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("reenact", "mediapipe", "torch", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out
