"""Derive reenact/face/data/canonical_mesh.npz from MediaPipe's face_landmarker_v2.task (run once).

The task file is a zip; its ``geometry_pipeline_metadata_landmarks.binarypb`` is a serialized
``GeometryPipelineMetadata`` protobuf (mediapipe/modules/face_geometry/protos):

    GeometryPipelineMetadata { Mesh3d canonical_mesh = 1;
                               repeated WeightedLandmarkRef procrustes_landmark_basis = 2;
                               InputSource input_source = 3; }
    Mesh3d { vertex_type = 1; primitive_type = 2;
             repeated float vertex_buffer = 3 [packed];   # x, y, z, u, v per vertex (cm, y up)
             repeated uint32 index_buffer = 4 [packed]; } # triangles
    WeightedLandmarkRef { uint32 landmark_id = 1; float weight = 2; }

We decode the wire format directly (no protobuf dependency). Triangles are re-wound so that a
front-facing triangle, in image coordinates (x right, y down), has a negative z-component of
(v1-v0)x(v2-v0): the convention of the authors' renderer (official_pwm.md §3a).

Usage: python tools/derive_canonical_mesh.py weights/face_landmarker_v2.task reenact/face/data/canonical_mesh.npz
"""

from __future__ import annotations

import struct
import sys
import zipfile

import numpy as np


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _fields(buf: bytes):
    """Yield (field_number, wire_type, value) for one protobuf message."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield field, wire, value


def _packed_varints(buf: bytes) -> list[int]:
    out, i = [], 0
    while i < len(buf):
        v, i = _varint(buf, i)
        out.append(v)
    return out


def parse(binarypb: bytes) -> dict[str, np.ndarray]:
    mesh = None
    basis_ids, basis_w = [], []
    for field, _, value in _fields(binarypb):
        if field == 1:
            mesh = value
        elif field == 2:
            ref = dict((f, v) for f, _, v in _fields(value))
            basis_ids.append(ref.get(1, 0))
            basis_w.append(struct.unpack("<f", ref[2])[0] if 2 in ref else 0.0)
    verts, idx = [], []
    for field, wire, value in _fields(mesh):
        if field == 3:
            verts.extend(struct.unpack(f"<{len(value) // 4}f", value) if wire == 2 else struct.unpack("<f", value))
        elif field == 4:
            idx.extend(_packed_varints(value) if wire == 2 else [value])
    vb = np.asarray(verts, np.float32).reshape(-1, 5)  # (V, 5): x, y, z, u, v
    tris = np.asarray(idx, np.int64).reshape(-1, 3)
    return {"vertices": vb[:, :3], "uv": vb[:, 3:], "triangles": tris,
            "procrustes_ids": np.asarray(basis_ids, np.int64), "procrustes_weights": np.asarray(basis_w, np.float32)}


def orient_front_negative(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Re-wind triangles so front faces have a negative z-cross in image coordinates (y down)."""
    img = vertices * np.array([1.0, -1.0, -1.0])  # canonical is y up, z toward the viewer
    a, b, c = (img[triangles[:, k], :2] for k in range(3))
    cross_z = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    if np.median(cross_z) > 0:
        triangles = triangles[:, [0, 2, 1]]
    return triangles


def main(task: str, out: str) -> None:
    with zipfile.ZipFile(task) as z:
        data = parse(z.read("geometry_pipeline_metadata_landmarks.binarypb"))
    data["triangles"] = orient_front_negative(data["vertices"], data["triangles"]).astype(np.int32)
    np.savez_compressed(out, **data)
    print(f"{out}: {len(data['vertices'])} vertices, {len(data['triangles'])} triangles, "
          f"{len(data['procrustes_ids'])} procrustes landmarks")


if __name__ == "__main__":
    main(*sys.argv[1:3])
