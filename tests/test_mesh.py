"""The canonical MediaPipe mesh stored as data is a proper triangle mesh, derived from the task file."""

from __future__ import annotations

import sys
from collections import Counter

import numpy as np

from conftest import ROOT, TASK
from reenact.face.mesh import canonical_vertices, topology


def test_mesh_sizes_and_references():
    tris, verts = topology(), canonical_vertices()
    assert verts.shape == (468, 3) and tris.shape == (898, 3)
    assert set(np.unique(tris)) == set(range(468)), "every vertex belongs to a triangle"
    assert all(len(set(t)) == 3 for t in tris.tolist()), "no triangle repeats a vertex"
    assert len({tuple(sorted(t)) for t in tris.tolist()}) == len(tris), "no duplicate triangles"


def test_mesh_is_an_oriented_manifold_with_boundary():
    tris = topology()
    directed = Counter((int(a), int(b)) for t in tris for a, b in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0])))
    assert max(directed.values()) == 1, "consistent winding: each directed edge used once"
    undirected = Counter(tuple(sorted(e)) for e in directed)
    assert max(undirected.values()) <= 2, "each edge shared by at most two triangles"
    boundary = [e for e, n in undirected.items() if n == 1]
    # Euler characteristic of a disc with holes (eyes, mouth): V - E + F = 1 - holes.
    chi = 468 - len(undirected) + len(tris)
    assert chi in (-2, -1, 0, 1), chi
    assert len(boundary) > 0


def test_front_faces_have_negative_cross_in_image_space():
    v, t = canonical_vertices(), topology()
    a, b, c = v[t[:, 0], :2], v[t[:, 1], :2], v[t[:, 2], :2]
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    assert (cross < 0).mean() > 0.95


def test_derivation_reproduces_stored_data(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    import derive_canonical_mesh

    out = tmp_path / "mesh.npz"
    derive_canonical_mesh.main(str(TASK), str(out))
    fresh = np.load(out)
    assert np.array_equal(fresh["triangles"], topology())
    assert np.allclose(fresh["vertices"] * [1, -1, -1], canonical_vertices())
