"""The geometric warp's self-occlusion fill: face the source hides, painted from its mirror image;
face the head leaves behind, the background.

A backward warp reads, for each driven pixel, the source pixel where the same surface point lies.
Where that point is hidden in the source, behind the nose or round the far side of a turned face,
the source pixel there shows what hides it. So a three-quarter face turned towards the camera
stretched its nose across the far cheek and smeared its far eye, "Pinocchio" (group_t1 face 1, yaw
−47°, driven by lp_d11 frame 112, a 10° turn); and the head's flow beyond the mesh left the source's
nose standing in the background beside the face.

The canonical mesh is left/right symmetric (vertex v ↔ m(v), :func:`mirror_map`), and so, roughly,
is a face. Where a driven triangle's surface is hidden in the source or stretched from a sliver of
it, the face is painted from the mirrored surface point where the source shows that (:meth:`MirrorFill.paint`):
a colour blend over the warp's output, weighted per vertex and interpolated over the driven mesh.
Per vertex the weight is

    w(v) = hidden(v) · (1 − hidden'(m(v))) · seen(v),

hidden(v) = max(occluded(v), smoothstep((k(v) − ``STRETCH_FROM``) / (``STRETCH_FULL`` − ``STRETCH_FROM``))),

where occluded(v) says the source's depth buffer at v holds a surface nearer than v by more than
``DEPTH_TOL`` face widths (the nose in front of the far cheek), and k(v) is the largest area ratio,
driven over source, of the triangles round v that the driven mesh shows (a sliver seen edge-on in the
source and face-on in the output; slivers of the output do not count). hidden'(m(v)) is the same for
the mirror point, with the driven triangles' areas over their mirror images' in the source, and
seen(v) is 0 where the driven mesh hides v too. w is averaged ``SMOOTH`` times over the mesh and
remapped so that weights under ``FLOOR`` are 0 (a faint mirror is a shading change, not a fill).
Lips and eyes keep the warp (their vertices weigh 0): the mouth and gaze have their own fills.

The flow is not left alone: the engine extends it over the painted region from around it, as over
the eyes and mouth (engines.GeometricWarp._head_flow), which moved the found landmarks nearer the
driven mesh (0.030 face widths against 0.034 with the mesh's own flow there, tests/test_turned_face.py).

Beside the face, between the brow and the jaw, a target pixel well off the driven face that reads
the source well inside its face (and near the source's background, so not on hair or an ear) shows
the background plate instead (:meth:`MirrorFill.ghost`).

Known limits: the mirror copies the near side's lighting, so the far cheek comes out lit where it
was shaded (a light stroke along the far outline). On group_t1 the person mask takes in the wall
beside the source's nose tip (0.18 face widths from the background there), so the ghost leaves the
nose faintly beside the face: without that gate the plate showed there, a greenish patch more
visible than the nose, and lp_s0's ear came out bleached.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from reenact.face.mesh import canonical_vertices
from reenact.face.regions import CHIN, EYE_CONTOURS, FACE_OVAL, FOREHEAD, INNER_LIPS, OUTER_LIPS, polygon_mask
from reenact.ramps import smoothstep
from reenact.render.head import JAW
from reenact.render.layers import pixel_grid, sample
from reenact.render.rasterize import coverage, interpolate

STRETCH_FROM, STRETCH_FULL = 4.0, 8.0  # driven / source triangle area: the warp up to the first, the mirror from the second
AWAY_FROM, AWAY_FULL = 0.02, 0.04  # face widths off the driven face: a pixel this far off that reads the source's face ...
EDGE = 0.02  # ... or within this of its edge, shows face the head left behind ...
NECK = 0.1  # ... beside the face: from 0.1 face heights above the jaw's corners (below them the neck shows) ...
BROW = 0.15  # ... up to 2 × this below the mesh's top (above it the forehead and hair go on) ...
BACKGROUND = 0.05  # ... where the face it reads lies within this of the source's background (2 × this: none)
DEPTH_TOL = 0.03  # face widths: a vertex this much behind the source's nearest surface is hidden
SLIVER = 0.25  # a driven triangle under this share of the median one's area does not count as stretched
SMOOTH = 2  # passes of averaging the weights over the mesh
FLOOR = 0.25  # weights up to this are 0, from 1 - this 1
KEEP_RINGS = 1  # rings of triangles round the lips, eyes and outline that keep the warp


def mirror_map(vertices: np.ndarray | None = None) -> np.ndarray:
    """(V,) the vertex nearest each vertex mirrored across the canonical mesh's x = 0 (MediaPipe's
    canonical mesh is exactly symmetric: every vertex has its mirror image at distance 0)."""
    from scipy.spatial import cKDTree

    c = canonical_vertices() if vertices is None else vertices
    _, idx = cKDTree(c).query(c * np.array([-1.0, 1.0, 1.0]))
    return idx


def _kept(faces: np.ndarray, n: int) -> np.ndarray:
    """(V,) bool: the lips, eyes and face outline, grown by ``KEEP_RINGS`` rings of triangles."""
    keep = np.zeros(n, bool)
    keep[INNER_LIPS + OUTER_LIPS + EYE_CONTOURS["right"] + EYE_CONTOURS["left"]] = True
    for _ in range(KEEP_RINGS):
        touched = keep[faces].any(1)
        keep[faces[touched].ravel()] = True
    return keep


def _front_area(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(B, F) doubled triangle areas, positive for triangles facing the camera (the rasterizer's
    convention: a positive z of (v1 − v0) × (v2 − v0) in y-down pixels is a back face)."""
    t = verts[:, faces, :2]  # (B, F, 3, 2)
    e1, e2 = t[:, :, 1] - t[:, :, 0], t[:, :, 2] - t[:, :, 0]
    return -(e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0])


def occluded(verts: torch.Tensor, faces: torch.Tensor, cov: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """(B, V) 1 where the depth buffer of the meshes ``verts`` (B, V, 3, pixels of ``cov``'s grid), whose
    coverage is ``cov``, holds a surface nearer than the vertex by ``DEPTH_TOL`` face widths."""
    face_id, bary = cov
    size = face_id.shape[-1]
    depth = interpolate(face_id, bary, faces, verts[..., 2:])[:, 0]  # (B, size, size)
    xy = verts[..., :2].floor().long().clamp(0, size - 1)  # (B, V, 2)
    rows = torch.arange(len(verts), device=verts.device)[:, None]
    near, covered = depth[rows, xy[..., 1], xy[..., 0]], face_id[rows, xy[..., 1], xy[..., 0]] >= 0
    width = (verts[..., 0].amax(1) - verts[..., 0].amin(1))[:, None]
    return (covered & (verts[..., 2] > near + DEPTH_TOL * width)).to(verts.dtype)


class MirrorFill:
    """Built once per source from its mesh (V, 3) in crop pixels; ``to_image`` maps crop pixels
    (..., 2) to the engine image's."""

    def __init__(self, verts: np.ndarray, faces: torch.Tensor, size: int, to_image, person: torch.Tensor):
        v = torch.as_tensor(np.asarray(verts, np.float32), device=faces.device)[None]  # (1, V, 3)
        self.faces, self.size = faces.long(), size
        n = v.shape[1]
        self.mirror = torch.as_tensor(mirror_map(), device=faces.device)
        tri = self.faces.cpu().numpy()
        index = {frozenset(t): i for i, t in enumerate(tri.tolist())}
        m = self.mirror.cpu().numpy()
        self.tri_mirror = torch.as_tensor([index[frozenset(m[t].tolist())] for t in tri], device=faces.device)
        self.src_area = _front_area(v, self.faces)[0]  # (F,)
        self.occluded = self._occluded(v)  # (V,)
        self.inside = self._inside(v)  # (1, 1, S/2, S/2)
        self.background = self._background(v, person, to_image)  # (1, 1, S/2, S/2)
        self.free = torch.as_tensor(~_kept(tri, n), dtype=v.dtype, device=v.device)  # (V,)
        self.mirror_pos = torch.as_tensor(to_image(np.asarray(verts, np.float64)[:, :2])[m],
                                          dtype=v.dtype, device=v.device)  # (V, 2) where each vertex's mirror is

    def _occluded(self, v: torch.Tensor) -> torch.Tensor:
        """(V,) 1 where the source's own depth buffer has a surface nearer than the vertex; on the grid
        the driven meshes are tested on (half the crop's), so that a still head finds the same."""
        low = self.size // 2
        return occluded(v * 0.5, self.faces, coverage(v * 0.5, self.faces, (low, low)))[0]

    def _inside(self, v: torch.Tensor) -> torch.Tensor:
        """(1, 1, S/2, S/2) how deep each half-crop pixel lies inside the source's face (mesh and openings), in face
        widths: a signed distance, negative outside."""
        import cv2

        low = self.size // 2  # the driven faces' grid (:meth:`ghost`): a still head finds the same outline
        face = self._face(v * 0.5, low)[0, 0].cpu().numpy().astype(np.uint8)
        depth = cv2.distanceTransform(face, cv2.DIST_L2, 5) - cv2.distanceTransform(1 - face, cv2.DIST_L2, 5)
        width = float(v[0, :, 0].max() - v[0, :, 0].min()) * 0.5
        return torch.as_tensor(depth / max(width, 1.0), dtype=v.dtype, device=v.device)[None, None]

    def _background(self, v: torch.Tensor, person: torch.Tensor, to_image) -> torch.Tensor:
        """(1, 1, S/2, S/2) each half-crop pixel's distance from the source's background (``person``
        (1, 1, H, W), the person alpha of the engine image, under 0.5), in face widths."""
        import cv2

        low = self.size // 2
        grid = pixel_grid(low, low, v.device, v.dtype).reshape(-1, 2).cpu().double().numpy() * 2.0
        at = torch.as_tensor(to_image(grid), dtype=v.dtype, device=v.device).view(1, low, low, 2)
        back = (sample(person, at)[0, 0] < 0.5).cpu().numpy().astype(np.uint8)
        dist = cv2.distanceTransform(1 - back, cv2.DIST_L2, 5)
        width = float(v[0, :, 0].max() - v[0, :, 0].min()) * 0.5
        return torch.as_tensor(dist / max(width, 1.0), dtype=v.dtype, device=v.device)[None, None]

    def _face(self, v: torch.Tensor, size: int, cov=None) -> torch.Tensor:
        """(B, 1, size, size) 1 on the meshes ``v`` (B, V, 3, pixels of that grid) and inside their outline."""
        if cov is None:
            cov = coverage(v, self.faces, (size, size))
        oval = np.stack([polygon_mask(x, FACE_OVAL, (size, size)) for x in v[..., :2].cpu().numpy()])
        return torch.maximum((cov[0] >= 0).to(v.dtype), torch.as_tensor(oval, dtype=v.dtype, device=v.device))[:, None]

    def ghost(self, pos: torch.Tensor, verts: torch.Tensor, cov, to_crop: torch.Tensor,
              box: tuple[int, int, int, int]) -> torch.Tensor:
        """(B, 1, h, w): 1 where a target pixel of ``box`` clearly off the driven face reads the source
        clearly inside its face (``pos`` (B, h, w, 2), engine-image pixels): face the head left behind."""
        import cv2

        x0, y0, x1, y1 = box
        low = cov[0].shape[-1]
        face = self._face(verts * (low / self.size), low, cov)[:, 0].cpu().numpy().astype(np.uint8)
        off = np.stack([cv2.distanceTransform(1 - f, cv2.DIST_L2, 5) for f in face]) * (self.size / low)
        width = (verts[:, :, 0].amax(1) - verts[:, :, 0].amin(1)).clamp(min=1.0).view(-1, 1, 1, 1)
        off = torch.as_tensor(off, dtype=pos.dtype, device=pos.device)[:, None] / width  # (B, 1, low, low) face widths
        q = pixel_grid(y1 - y0, x1 - x0, pos.device, pos.dtype, x0, y0) @ to_crop[:, :2].T + to_crop[:, 2]
        away = F.grid_sample(off, (q / (self.size / 2.0) - 1)[None].expand(len(pos), -1, -1, -1),
                             mode="bilinear", padding_mode="border", align_corners=False)
        src = pos @ to_crop[:, :2].T + to_crop[:, 2]  # (B, h, w, 2) crop pixels
        at = (src / (self.size / 2.0) - 1).to(pos.dtype)
        deep = F.grid_sample(self.inside.expand(len(pos), -1, -1, -1), at, mode="bilinear", padding_mode="border",
                             align_corners=False)
        near = 1 - smoothstep(F.grid_sample(self.background.expand(len(pos), -1, -1, -1), at, mode="bilinear",
                                            padding_mode="border", align_corners=False) / BACKGROUND - 1)
        xy = verts[..., :2]
        jaw, top, chin = (xy[:, JAW[0]] + xy[:, JAW[1]]) / 2, xy[:, FOREHEAD], xy[:, CHIN]  # (B, 2)
        height = (chin - top).norm(dim=-1, keepdim=True)
        down = ((chin - top) / height.clamp(min=1.0)).view(-1, 1, 1, 2)
        along = lambda p: ((q[None] - p.view(-1, 1, 1, 2)) * down).sum(-1)[:, None] / height.view(-1, 1, 1, 1)  # noqa: E731
        beside = smoothstep(along(top) / BROW - 1) * (1 - smoothstep(along(jaw) / NECK + 1))  # (B, 1, h, w)
        return smoothstep((away - AWAY_FROM) / (AWAY_FULL - AWAY_FROM)) * smoothstep((deep + EDGE) / EDGE) * beside * near

    def weights(self, verts: torch.Tensor, cov: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """(B, V) the mirror's weight per vertex of the driven meshes ``verts`` (B, V, 3) crop pixels,
        whose coverage ``cov`` is on a grid ``low`` / S of the crop's: 0 where the driven mesh hides the
        vertex too (a triangle straddling the nose's outline in both would take it in part)."""
        area = _front_area(verts, self.faces)  # (B, F)
        shown = area > 0
        own = self._hidden(area, shown, self.src_area, self.occluded)
        theirs = self._hidden(area, shown, self.src_area[self.tri_mirror], self.occluded[self.mirror])
        seen = 1 - occluded(verts * (cov[0].shape[-1] / self.size), self.faces, cov)
        w = self._smoothed(own * (1 - theirs) * seen) * self.free
        return smoothstep((w - FLOOR) / (1 - 2 * FLOOR))  # a faint mirror is a shading change, not a fill

    def _smoothed(self, w: torch.Tensor) -> torch.Tensor:
        """(B, V) ``w`` averaged ``SMOOTH`` times over each vertex's triangles: no lone vertex, and a
        ramp a triangle or two wide where the mirror starts."""
        b, n = w.shape
        count = w.new_zeros(n).index_add_(0, self.faces.reshape(-1), w.new_ones(self.faces.numel()))
        for _ in range(SMOOTH):
            tri = w[:, self.faces].mean(-1).repeat_interleave(3, 1)  # (B, 3F): each triangle's mean, per corner
            w = w.new_zeros(b, n).index_add_(1, self.faces.reshape(-1), tri) / count.clamp(min=1)
        return w

    def _hidden(self, area, shown, src_area, occluded) -> torch.Tensor:
        """(B, V) hidden(v) of the module docstring, for source triangle areas ``src_area`` (F,)."""
        ratio = torch.where(shown, area / src_area.clamp(min=1e-3), torch.zeros_like(area))  # (B, F)
        ratio = torch.where(shown & (src_area <= 1e-3), torch.full_like(area, 1e3), ratio)
        # a sliver in the output too (the far outline, seen edge-on in both) hardly shows: its ratio is noise
        typical = area.clamp(min=0).median(1, keepdim=True).values
        ratio = ratio * smoothstep(area / (SLIVER * typical).clamp(min=1e-6))
        b, n = area.shape[0], self.occluded.shape[0]
        k = area.new_zeros(b, n).scatter_reduce(1, self.faces.reshape(1, -1).expand(b, -1),
                                                 ratio.repeat_interleave(3, 1), "amax")  # (B, V)
        stretched = smoothstep((k - STRETCH_FROM) / (STRETCH_FULL - STRETCH_FROM))
        return torch.maximum(stretched, occluded.expand_as(stretched))

    def maps(self, verts: torch.Tensor, cov: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor | None:
        """(B, 3, h, w) on the grid of ``cov`` (the driven meshes' coverage, crop pixels scaled to its
        size): where each driven pixel's mirror point lies in the engine image, premultiplied by the
        mirror's weight, and the weight; None where no frame needs the mirror."""
        w = self.weights(verts, cov)
        if not bool((w > 1e-3).any()):
            return None
        attrs = torch.cat([self.mirror_pos * w[..., None], w[..., None]], -1)  # (B, V, 3): premultiplied
        # the mesh's outline on this grid is a staircase of its pixels: softened over one, it is not jagged
        return F.avg_pool2d(interpolate(*cov, self.faces, attrs), 3, 1, 1, count_include_pad=False)

    def sampled(self, maps: torch.Tensor, to_crop: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
        """(B, 3, h, w) :meth:`maps` at the target pixels of ``box`` (engine-image pixels; ``to_crop``
        (2, 3) maps them to crop pixels): premultiplied mirror positions and the weight."""
        x0, y0, x1, y1 = box
        q = pixel_grid(y1 - y0, x1 - x0, maps.device, maps.dtype, x0, y0)
        q = q @ to_crop[:, :2].T + to_crop[:, 2]  # (h, w, 2) crop pixels
        grid = (q / (self.size / 2.0) - 1)[None].expand(len(maps), -1, -1, -1)
        return F.grid_sample(maps, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def paint(self, out: torch.Tensor, image: torch.Tensor, maps: torch.Tensor, to_crop: torch.Tensor,
              box: tuple[int, int, int, int]) -> torch.Tensor:
        """``out`` (B, 3, h, w), the warped pixels of ``box`` in the engine image ``image`` (1, 3, H, W),
        with the mirror of :meth:`maps` painted in."""
        at = self.sampled(maps, to_crop, box)
        weight = at[:, 2:].clamp(0, 1)
        mirrored = sample(image, (at[:, :2] / at[:, 2:].clamp(min=1e-6)).permute(0, 2, 3, 1))
        return out + weight * (mirrored - out)
