"""The geometric warp's self-occlusion fill: face the source hides, painted from its mirror image.

A backward warp reads, for each driven pixel, the source pixel where the same surface point lies.
Where that point is hidden in the source, behind the nose or round the far side of a turned face,
the source pixel there shows what hides it. So a three-quarter face turned towards the camera
stretched its nose across the far cheek and smeared its far eye, "Pinocchio" (group_t1 face 1, yaw
−47°, driven by lp_d11 frame 112, a 10° turn).

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

The mirror copies the near side's light: a face lit hard from its near side came out with a white
crescent along its far outline (group_t1 face 4, lp_d11 frame 114). So the mirrored colour is scaled
per channel by the source's own contrast between the sides, exp(s(v)) (:meth:`MirrorFill._shading`):
log colour at v minus at m(v), averaged over the mesh, where the source shows both, and spread
harmonically over the rest. Tried and dropped: a per-frame gain fitted where the mirror starts (the
whole strip came out lighter); the gain from a blurred image rather than over the mesh (face 1's strip
took the blue of the wall behind its far outline); luminance only (face 4's crescent turned grey-blue);
leaving out vertices the person mask calls background (face 4's crescent came back in part).

By the hairline (the outline above the eyes, ``HAIRLINE_RINGS`` rings in: :func:`_hairline`) the
mirror may not paint much darker over lighter: the weight falls to 0 where the mirrored colour's luma
is under ``DARKER_FROM`` of the warped colour's (5-pixel means). The two sides' hairlines seldom mirror
each other, and what covers one temple is not face. Image_with_alpha.png's hand lies over his far
temple: as lp_d11 turned his head further, the near temple's hair was painted across the wrist, a
grey-brown streak 6 × 30 px and up to 86 levels off (tests/test_turned_face.py). Applied over the whole
face, the same rule also lightened face 1's mirrored far brow and moved its landmark error's worst
frame from 0.035 to 0.040 face widths. Leaving the hairline unpainted took face 1's far temple with it
(its worst frame 0.043 with one ring left unpainted, 0.047 with two).

Known limits: on face 1 the far outline still shows a stroke, now darker than the cheek, not
lighter. Beyond the mesh the head's flow still reads the source's nose tip, left faintly beside the
turned face. A "ghost" pass that showed the
background plate there (off the driven face, reading inside the source's face) had to stay off hair
and ears (lp_s0's ear came out bleached) and so off pixels the person mask calls person; on
group_t1 that mask takes in the wall beside the nose, and the pass cleared at most 32 pixels of any
frame on the pairs tried, for 0.6 ms a frame. It was removed.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from reenact.face.mesh import canonical_vertices, flip_map
from reenact.face.regions import EYE_CONTOURS, FACE_OVAL, INNER_LIPS, OUTER_LIPS
from reenact.ramps import smoothstep
from reenact.render.layers import luma, pixel_grid, sample
from reenact.render.rasterize import coverage, interpolate
from reenact.render.warp import box_mean

STRETCH_FROM, STRETCH_FULL = 4.0, 8.0  # driven / source triangle area: the warp up to the first, the mirror from the second
DEPTH_TOL = 0.05  # face widths: a vertex this much behind the source's nearest surface is hidden
SLIVER = 0.25  # a driven triangle under this share of the median one's area does not count as stretched
SMOOTH = 2  # passes of averaging the weights over the mesh
FLOOR = 0.25  # weights up to this are 0, from 1 - this 1
SHADE_PASSES = 2  # passes of averaging the source's colour over the mesh before the sides are compared
SHADE_RIM = 2  # rings of triangles round the outline whose colour is not compared
SHADE_SPREAD = 40  # passes of spreading the comparison into what the source hides
SHADE_MAX = 1.0  # its log at most: a gain within [1/e, e]
KEEP_RINGS = 1  # rings of triangles round the lips and eyes that keep the warp
HAIRLINE_RINGS = 2  # rings of triangles round the outline above the eyes where the mirror may not paint darker
DARKER_FROM, DARKER_FULL = 0.5, 0.7  # ... over lighter: mirrored / warped luma (5 px means), no paint up to the first


@functools.cache
def mirror_map() -> np.ndarray:
    """(V,) each MediaPipe vertex's mirror image across x = 0 (:func:`~reenact.face.mesh.flip_map`),
    computed once."""
    return flip_map(canonical_vertices())


@functools.cache
def _hairline() -> list[int]:
    """The outline's vertices above the eyes (canonical y grows downwards): the temples and the forehead's
    edge, where hair meets the face. The two sides' hairlines seldom mirror each other, and what lies
    over one temple, a hand or a lock of hair, is not face."""
    v = canonical_vertices()
    eyes = v[EYE_CONTOURS["right"] + EYE_CONTOURS["left"], 1].mean()
    return [i for i in FACE_OVAL if v[i, 1] < eyes]


def _grown(faces: np.ndarray, n: int, ids: list[int], rings: int) -> np.ndarray:
    """(V,) bool: the vertices ``ids`` grown by ``rings`` rings of triangles."""
    keep = np.zeros(n, bool)
    keep[ids] = True
    for _ in range(rings):
        keep[faces[keep[faces].any(1)].ravel()] = True
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
    xy = verts[..., :2].floor().long().clamp(0, size - 1)  # (B, V, 2)
    rows = torch.arange(len(verts), device=verts.device)[:, None]
    hit = face_id[rows, xy[..., 1], xy[..., 0]]  # (B, V) the triangle each vertex's pixel shows, or -1
    corners = faces[hit.clamp(min=0)]  # (B, V, 3): the depth there, only at the vertices' pixels
    weights = bary[rows, :, xy[..., 1], xy[..., 0]]  # (B, V, 3)
    near = (verts[..., 2].gather(1, corners.flatten(1)).view_as(corners) * weights).sum(-1)
    covered = hit >= 0
    width = (verts[..., 0].amax(1) - verts[..., 0].amin(1))[:, None]
    return (covered & (verts[..., 2] > near + DEPTH_TOL * width)).to(verts.dtype)


class MirrorFill:
    """Built once per source from its mesh (V, 3) in crop pixels and the engine's image (1, 3, H, W),
    the crop grown or the whole photo: ``to_image`` maps crop pixels (..., 2) to that image's,
    ``to_crop`` (2, 3) back."""

    def __init__(self, verts: np.ndarray, faces: torch.Tensor, size: int, to_image, image: torch.Tensor,
                 to_crop: torch.Tensor):
        v = torch.as_tensor(np.asarray(verts, np.float32), device=faces.device)[None]  # (1, V, 3)
        self.faces, self.size, self.image, self.to_crop = faces.long(), size, image, to_crop
        n = v.shape[1]
        self.mirror = torch.as_tensor(mirror_map(), device=faces.device)
        tri = self.faces.cpu().numpy()
        index = {frozenset(t): i for i, t in enumerate(tri.tolist())}
        m = self.mirror.cpu().numpy()
        self.tri_mirror = torch.as_tensor([index[frozenset(m[t].tolist())] for t in tri], device=faces.device)
        self.src_area = _front_area(v, self.faces)[0]  # (F,)
        self.occluded = self._occluded(v)  # (V,)
        # the lips and eyes keep the warp
        kept = _grown(tri, n, INNER_LIPS + OUTER_LIPS + EYE_CONTOURS["right"] + EYE_CONTOURS["left"], KEEP_RINGS)
        self.free = torch.as_tensor(~kept, dtype=v.dtype, device=v.device)  # (V,)
        self.rim = torch.as_tensor(_grown(tri, n, FACE_OVAL, SHADE_RIM), device=v.device)  # (V,) bool
        self.hairline = torch.as_tensor(_grown(tri, n, _hairline(), HAIRLINE_RINGS), dtype=v.dtype, device=v.device)
        at = torch.as_tensor(to_image(np.asarray(verts, np.float64)[:, :2]), dtype=v.dtype, device=v.device)  # (V, 2)
        self.mirror_pos = at[self.mirror]  # (V, 2) where each vertex's mirror is, in the engine image
        self.shading = self._shading(image, at)  # (V, 3)

    def _occluded(self, v: torch.Tensor) -> torch.Tensor:
        """(V,) 1 where the source's own depth buffer has a surface nearer than the vertex; on the grid
        the driven meshes are tested on (half the crop's), so that a still head finds the same."""
        low = self.size // 2
        return occluded(v * 0.5, self.faces, coverage(v * 0.5, self.faces, (low, low)))[0]

    def _shading(self, image: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
        """(V, 3) per vertex, the log of the gain from its mirror point's colour to its own side's light:
        log c(v) − log c(m(v)), with c the source's colour averaged over the vertex's shown neighbours
        (``SHADE_PASSES`` passes), where the source shows both sides (neither hidden, nor within
        ``SHADE_RIM`` rings of the outline, whose colour is partly background, nor eyes or lips);
        spread from there over the rest of the mesh (a harmonic fill). Without it a face lit from
        its near side came out with that side's light on its far cheek: a white crescent (group_t1
        face 4, lp_d11 frame 114)."""
        colour = sample(image, at[None, None]).clamp(min=1 / 255)[0, :, 0].log()  # (3, V)
        shown = (self.occluded == 0) & (self.free > 0) & ~self.rim
        count = self._smoothed(shown[None].to(colour.dtype), SHADE_PASSES)
        colour = self._smoothed(colour * shown, SHADE_PASSES) / count.clamp(min=1e-6)
        known = shown & shown[self.mirror]
        g = torch.where(known, colour - colour[:, self.mirror], torch.zeros_like(colour))
        for _ in range(SHADE_SPREAD):
            g = torch.where(known, g, self._smoothed(g, 1))
        return g.T.clamp(-SHADE_MAX, SHADE_MAX)

    def weights(self, verts: torch.Tensor, cov: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """(B, V) the mirror's weight per vertex of the driven meshes ``verts`` (B, V, 3) crop pixels,
        whose coverage ``cov`` is on a grid ``low`` / S of the crop's: 0 where the driven mesh hides the
        vertex too (a triangle straddling the nose's outline in both would take it in part)."""
        area = _front_area(verts, self.faces)  # (B, F)
        shown = area > 0
        own = self._hidden(area, shown, self.src_area, self.occluded)
        theirs = self._hidden(area, shown, self.src_area[self.tri_mirror], self.occluded[self.mirror])
        w = own * (1 - theirs)
        if float(w.max()) <= FLOOR:  # averaging and the rest only lower it: no weight passes the floor
            return torch.zeros_like(w)
        seen = 1 - occluded(verts * (cov[0].shape[-1] / self.size), self.faces, cov)
        w = self._smoothed(w * seen) * self.free
        return smoothstep((w - FLOOR) / (1 - 2 * FLOOR))  # a faint mirror is a shading change, not a fill

    def _smoothed(self, w: torch.Tensor, passes: int = SMOOTH) -> torch.Tensor:
        """(B, V) ``w`` averaged ``passes`` times over each vertex's triangles: for the weights
        (``SMOOTH``), no lone vertex, and a ramp a triangle or two wide where the mirror starts."""
        b, n = w.shape
        count = w.new_zeros(n).index_add_(0, self.faces.reshape(-1), w.new_ones(self.faces.numel()))
        for _ in range(passes):
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
        """(B, 7, h, w) on the grid of ``cov`` (the driven meshes' coverage, crop pixels scaled to its
        size): where each driven pixel's mirror point lies in the engine image, the mirror's weight,
        the log gain of :meth:`_shading` and how near the hairline it is (:func:`_hairline`; position, gain
        and hairline premultiplied by the weight); None where no frame needs the mirror."""
        w = self.weights(verts, cov)
        if not bool((w > 1e-3).any()):
            return None
        attrs = torch.cat([self.mirror_pos * w[..., None], w[..., None], self.shading * w[..., None],
                           (self.hairline * w)[..., None]], -1)  # (B, V, 7)
        # only round the triangles that weigh (zero elsewhere): a third of the cost of the whole grid
        corners = self.faces[(w[:, self.faces] > 1e-3).any(-1).any(0)].unique()
        xy = verts[:, corners, :2] * (cov[0].shape[-1] / self.size)
        n = cov[0].shape[-1]
        x0, y0 = (int(v) - 2 for v in xy.reshape(-1, 2).amin(0).clamp(min=2))
        x1, y1 = (int(v) + 3 for v in xy.reshape(-1, 2).amax(0).clamp(max=n - 3))
        part = interpolate(cov[0][:, y0:y1, x0:x1], cov[1][..., y0:y1, x0:x1], self.faces, attrs)  # (B, 7, h, w)
        # the mesh's outline on this grid is a staircase of its pixels: softened over one, it is not jagged
        part = F.avg_pool2d(part, 3, 1, 1, count_include_pad=False)
        return F.pad(part, (x0, n - x1, y0, n - y1))

    def sampled(self, maps: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
        """(B, 7, h, w) :meth:`maps` at the target pixels of ``box`` (engine-image pixels)."""
        x0, y0, x1, y1 = box
        q = pixel_grid(y1 - y0, x1 - x0, maps.device, maps.dtype, x0, y0)
        q = q @ self.to_crop[:, :2].T + self.to_crop[:, 2]  # (h, w, 2) crop pixels
        grid = (q / (self.size / 2.0) - 1)[None].expand(len(maps), -1, -1, -1)
        return F.grid_sample(maps, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def paint(self, out: torch.Tensor, maps: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
        """``out`` (B, 3, h, w), the warped pixels of ``box`` in the engine's image, with the mirror of :meth:`maps` painted in (its colour times the gain), only in the part of the
        box where it weighs. ``out`` is painted in place."""
        part = self._reach(maps, box)
        if part is None:
            return out
        i0, j0, i1, j1 = part  # (x0, y0, x1, y1) within the box
        at = self.sampled(maps, (box[0] + i0, box[1] + j0, box[0] + i1, box[1] + j1))
        weight, w = at[:, 2:3].clamp(0, 1), at[:, 2:3].clamp(min=1e-6)
        mirrored = sample(self.image, (at[:, :2] / w).permute(0, 2, 3, 1)) * (at[:, 3:6] / w).exp()
        warped = out[:, :, j0:j1, i0:i1]
        hairline = (at[:, 6:7] / w).clamp(0, 1)
        if bool((hairline > 0).any()):
            # by the hairline, not much darker over lighter: the mirror point shows hair there, or the warp
            # what covers the face (the near temple's hair was painted across a hand on the far one)
            darker = box_mean(luma(mirrored), 5) / box_mean(luma(warped), 5).clamp(min=1e-3)  # (B, 1, h, w)
            weight = weight * (1 - hairline * smoothstep((DARKER_FULL - darker) / (DARKER_FULL - DARKER_FROM)))
        warped += weight * (mirrored - warped)
        return out

    def _reach(self, maps: torch.Tensor, box) -> tuple[int, int, int, int] | None:
        """The part (x0, y0, x1, y1) of ``box`` in which any frame's mirror weighs, relative to the box's
        corner, or None."""
        ys, xs = torch.nonzero(maps[:, 2].amax(0) > 1e-3, as_tuple=True)
        if len(xs) == 0:
            return None
        scale = self.size / maps.shape[-1]  # crop pixels per grid cell; a cell's neighbours interpolate
        lo, hi = (float(xs.min()) - 1) * scale, (float(xs.max()) + 2) * scale
        top, bottom = (float(ys.min()) - 1) * scale, (float(ys.max()) + 2) * scale
        corners = torch.tensor([[lo, top], [hi, top], [lo, bottom], [hi, bottom]], dtype=maps.dtype, device=maps.device)
        a, t = self.to_crop[:, :2].to(maps.dtype), self.to_crop[:, 2].to(maps.dtype)
        image = (corners - t) @ torch.linalg.inv(a).T  # (4, 2) engine-image pixels
        x0, y0, x1, y1 = box
        i0, j0 = max(int(image[:, 0].min()) - x0, 0), max(int(image[:, 1].min()) - y0, 0)
        i1, j1 = min(int(image[:, 0].max()) + 2 - x0, x1 - x0), min(int(image[:, 1].max()) + 2 - y0, y1 - y0)
        return (i0, j0, i1, j1) if i1 > i0 and j1 > j0 else None
