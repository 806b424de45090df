"""Frame producers for ``drive``: the geometric warp (no checkpoint) and the PWM generator.

Both take a batch of transferred driver fits and return output frames (B, H, W, 3) uint8: the
animated crop, or with ``paste_back`` the full source image with the face animated in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from reenact.errors import BadInputError
from reenact.face.crop import apply_affine, invert_affine, warp_crop
from reenact.face.fit import FaceFit
from reenact.face.mediapipe_backend import Detection
from reenact.face.mesh import MEDIAPIPE, topology
from reenact.face.regions import EYES, openings_mask
from reenact.render.layers import strips
from reenact.render.paste import crop_in_box, grown_affine, image_positions

EYE_WIDENED = 1.2  # an eye the driven mesh widens this much more than the other is stretched from an edge-on sliver


@dataclass
class Source:
    """The source image, its crop at the working size, the image->crop affine and its fit."""

    image: np.ndarray  # (H, W, 3) uint8, full resolution
    crop: np.ndarray  # (S, S, 3) uint8
    affine: np.ndarray  # image -> crop
    fit: FaceFit
    detection: Detection | None = None  # the face as found in the image (for --find-best-frame)
    person: np.ndarray | None = None  # (H, W) float32 person confidence of ``image``; None: all person
    others: np.ndarray | None = None  # (N, 3) the other faces' heads in ``image`` (Face.disc: x, y, height)


class _Engine:
    """Shared state: triangles, source vertices and the source image as a tensor on the device."""

    def __init__(self, source: Source, device: torch.device, paste_back: bool, like: "_Engine | None" = None):
        self.device, self.paste_back, self.source = device, paste_back, source
        self.faces = torch.as_tensor(topology(source.fit.topology), device=device)
        self.src_verts = torch.as_tensor(source.fit.vertices, device=device)[None]
        if self._shares_image(like):
            self.src = like.src
        else:
            self.src = _to_tensor(source.image if paste_back else source.crop, device)

    def _shares_image(self, like: "_Engine | None") -> bool:
        """Whether ``like`` (another face's engine, or None) works on this engine's image: the same
        full source image, both with paste-back."""
        return like is not None and self.paste_back and like.paste_back and like.source.image is self.source.image

    def _verts(self, fits: list[FaceFit]) -> torch.Tensor:
        return torch.as_tensor(np.stack([f.vertices for f in fits]), device=self.device)

    def _frames(self, region: torch.Tensor, box: tuple[int, int, int, int]) -> np.ndarray:
        """Full source frames with ``region`` written into ``box``; pixels outside stay untouched."""
        x0, y0, x1, y1 = box
        image = self.source.image
        frames = np.empty((region.shape[0], *image.shape), np.uint8)
        for rows, cols in (((0, y0), (0, None)), ((y1, None), (0, None)), ((y0, y1), (0, x0)), ((y0, y1), (x1, None))):
            frames[:, slice(*rows), slice(*cols)] = image[slice(*rows), slice(*cols)]  # the source around the box
        _to_uint8(region, torch.from_numpy(frames)[:, y0:y1, x0:x1])
        return frames


class GeometricWarp(_Engine):
    """No checkpoint: the whole-head geometric warp (:mod:`reenact.render.head`).

    The face follows the rendered 3D displacement; hair, ears and neck follow the head's rigid
    motion, decaying into the shoulders; the background stays, and what the head uncovers shows the
    background plate. With ``paste_back`` the flow is built for the whole image region the head's
    motion reaches, not only the crop.

    The flow is built at half the crop resolution and upsampled bilinearly (see :meth:`_head_flow`).
    """

    name = "geometric warp"

    def __init__(self, source: Source, device: torch.device, paste_back: bool, like: "GeometricWarp | None" = None):
        """``like``: the engine of another face of the same source image; with ``paste_back`` its
        image tensor and full-image layers are this face's too (1.3 s and 0.4 GB a face for a 3840 ×
        2658 photo, on 2 CPU cores)."""
        from reenact.render.layers import make_layers

        super().__init__(source, device, paste_back, like)
        size = source.crop.shape[0]
        # Without paste-back the engine's image is the crop grown by ``margin`` on each side: a head
        # moved inside the crop reads the photo beyond its edge, where it read the edge's pixels
        # repeated (streaks across the hair at the crop's corners, make_demo's source driven by lp_d11).
        self.margin = 0 if paste_back else size // 4
        grown = grown_affine(source.affine, self.margin)
        if not paste_back:
            self.src = _to_tensor(warp_crop(source.image, grown, size + 2 * self.margin), device)
        if self._shares_image(like):
            self.layers = like.layers
        else:
            person = None if source.person is None else torch.as_tensor(source.person, device=device)[None, None]
            if person is not None and not paste_back:
                person = _crop_layer(person, grown, size + 2 * self.margin)
            self.layers = make_layers(self.src, person)
        self.mouth = self.mirror = None
        if source.fit.topology == MEDIAPIPE:  # the mouth's contour is MediaPipe's
            from reenact.render.mouth import MouthFill

            self.mouth = MouthFill(self.src, self._in_image(source.fit.vertices[None])[0])
            from reenact.render.mirror import MirrorFill

            m = self.margin  # engine-image pixels to crop pixels:
            to_crop = torch.as_tensor(source.affine if paste_back else [[1.0, 0, -m], [0, 1.0, -m]],
                                      dtype=torch.float32, device=device)
            self.mirror = MirrorFill(source.fit.vertices, self.faces, size, self._in_image, self.src, to_crop)
        self.own_eyes = _eye_widths(source.fit.vertices)  # the source's eye widths, for _openings
        self.gaze = None
        if source.fit.topology == MEDIAPIPE and source.detection is not None and len(source.detection.points) >= 478:
            from reenact.render.eyes import Gaze

            pts = np.asarray(source.detection.points, np.float64)[:, :2]  # image pixels
            self.gaze = Gaze(pts if paste_back else apply_affine(grown, pts))

    def _in_image(self, verts: np.ndarray) -> np.ndarray:
        """Crop-pixel vertices (B, V, 2+) as pixels of the engine's image (the full source with paste-back,
        else the grown crop)."""
        xy = np.asarray(verts, np.float64)[..., :2]
        return apply_affine(invert_affine(self.source.affine), xy) if self.paste_back else xy + self.margin

    def _render(self, fits: list[FaceFit], drivers=None, frames: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, tuple[int, int, int, int], torch.Tensor]:
        """The warped target pixels (B, 3, h, w) of the target box, mouth and gaze included (``drivers``:
        the driver frames, :class:`~reenact.render.driver_frame.DriverFrame` or None each, or None),
        the box, and the moved person alpha (B, 1, h, w). With ``frames`` (B, 3, H, W), the person is
        read from them (``--face-index all``: the other faces already animated), only where it samples."""
        from reenact.render.layers import composite, reach

        pos, box, mirrored = self._positions(fits, drivers)
        layers, (x0, y0) = self.layers, (0, 0)
        if frames is not None:  # Layers.over on the whole frames, per face, was half of --face-index all's time
            x0, y0, x1, y1 = reach(pos, box, frames.shape[-2:])
            layers = self.layers.window(x0, y0, x1, y1).over(frames[:, :, y0:y1, x0:x1])
        shifted = (box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0)
        out, alpha = composite(layers, pos - pos.new_tensor([x0, y0]), shifted)
        out = self._fills(out, box, mirrored, fits, drivers)
        return out, box, alpha

    def _fills(self, out: torch.Tensor, box, mirrored, fits, drivers) -> torch.Tensor:
        """The fills over ``out``, the composited warp of ``box``: face the source hides, its mirror
        image (``mirrored``, the maps from :meth:`_positions`, or None: :meth:`MirrorFill.paint
        <reenact.render.mirror.MirrorFill.paint>`); the mouth, its interior."""
        if mirrored is not None:
            out = self.mirror.paint(out, mirrored, box)
        if self.mouth is not None:
            out = self.mouth(out, box, self._in_image(np.stack([f.vertices for f in fits])), drivers)
        return out

    @torch.no_grad()
    def __call__(self, fits: list[FaceFit], drivers=None) -> np.ndarray:
        """(B, H, W, 3) uint8 output frames for a batch of transferred fits (and their driver frames)."""
        out, box, _ = self._render(fits, drivers)
        return _to_uint8(out) if not self.paste_back else self._frames(out, box)

    def positions(self, fits: list[FaceFit], drivers=None) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        """Where each target pixel samples the source: (B, h, w, 2) pixel positions in the engine's
        image (the crop grown by ``margin``, or the full source with ``paste_back``) for the target box (x0, y0, x1, y1);
        with ``drivers``, the irises moved to the drivers' gaze (:mod:`reenact.render.eyes`)."""
        return self._positions(fits, drivers)[:2]

    def _positions(self, fits: list[FaceFit], drivers=None):
        """:meth:`positions`, and the self-occlusion fill's maps (:meth:`MirrorFill.maps
        <reenact.render.mirror.MirrorFill.maps>`, or None)."""
        size = self.source.crop.shape[0]
        head, flow, pad, mirrored = self._head_flow(fits, size)
        if not self.paste_back:
            from reenact.render.layers import pixel_grid

            inner, m = flow[:, :, pad:pad + size, pad:pad + size], self.margin
            pos = pixel_grid(size, size, flow.device, flow.dtype, m, m) + inner.permute(0, 2, 3, 1)
            box = (m, m, m + size, m + size)
        else:
            pos, box = image_positions(head, flow, pad, self.source.affine, self.src.shape[-2:])
        if self.gaze is not None:
            pos = self.gaze(pos, box, self._in_image(np.stack([f.vertices for f in fits])), drivers)
        return pos, box, mirrored

    def _head_flow(self, fits: list[FaceFit], size: int):
        """The driven head, and the backward flow in pixels (B, 2, S + 2 pad, S + 2 pad) on the crop
        grown by ``pad`` on each side: the face's rendered displacement, the head's rigid motion
        around it, the difference extended harmonically (zero only on the grown border, so a face
        reaching the crop's edge keeps its motion there) and, outside the mesh, smoothed (about σ = 2 px)
        to bound what is left of the jumps at the mesh's edges and openings; above the mouth the
        extension is screened (:meth:`~reenact.render.head.Head.screen`). All of it is computed at half
        resolution and upsampled: the result is smooth by construction. With ``paste_back`` the
        flow's non-rigid part is returned instead (the rigid part is evaluated over the image,
        :func:`~reenact.render.paste.image_positions`). Then the pad, and the self-occlusion fill's maps or None
        (:mod:`reenact.render.mirror`): what they paint is a hole the flow is extended over, as the
        eyes and mouth are."""
        from reenact.render.guidance import geom_disp
        from reenact.render.head import SCREEN_KAPPA, Head, rigid_field
        from reenact.render.layers import pixel_grid
        from reenact.render.rasterize import coverage
        from reenact.render.warp import extend_flow, fill_holes, smooth, unfold

        pad = size // 4 if self.paste_back else size // 8
        n = size + 2 * pad
        low, p = n // 2, pad // 2
        head = Head.of(self.source.fit, fits, self.device, self._others())
        # the mesh is rendered inside the crop only (at half resolution) and padded with "no mesh"
        verts = self._verts(fits)
        cov = coverage(verts * 0.5, self.faces, (size // 2, size // 2))
        flow, mask = geom_disp(self.src_verts.expand(len(fits), -1, -1) * 0.5, verts * 0.5, self.faces, size // 2, cov)
        mirrored = None if self.mirror is None else self.mirror.maps(verts, cov)
        known = mask if mirrored is None else mask * (mirrored[:, 2:3] < 0.5)  # what the source hides is filled
        flow, known = F.pad(flow * (size / 2.0), (p, p, p, p)), F.pad(known, (p, p, p, p))  # (B, 2, low, low) px
        base = F.interpolate(rigid_field(head, low // 2, -pad, 2 * n / low), size=(low, low), mode="bilinear",
                             align_corners=False)  # smooth: computed at a quarter of the resolution
        filled, closed = fill_holes(flow, known, round(0.15 * low))  # eyes, mouth, hidden face: from their rims
        q = (pixel_grid(low, low, flow.device, flow.dtype) * (n / low) - pad).expand(len(fits), -1, -1, -1)
        screen = head.screen(q)[:, None]  # (B, 1, low, low): the non-rigid rest stays off the hair
        flow = smooth(extend_flow(filled, closed, feather=4, base=base, screen=screen, kappa=SCREEN_KAPPA), inside=known)
        held, eyes = self._openings(fits, p, low)
        flow = unfold(flow, n / low, exclude=held, eyes=eyes)
        if self.paste_back:
            flow = flow - base
        return head, F.interpolate(flow, size=(n, n), mode="bilinear", align_corners=False), pad, mirrored

    def _others(self) -> np.ndarray | None:
        """The other faces' heads (N, 3) in crop pixels, or None."""
        others = self.source.others
        if others is None or not len(others):
            return None
        a = self.source.affine
        scale = float(np.sqrt(abs(np.linalg.det(a[:, :2]))))
        return np.column_stack([apply_affine(a, others[:, :2]), others[:, 2] * scale])

    def _openings(self, fits: list[FaceFit], p: int, low: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, 1, low, low) bool each (the second None where it would be empty), on the half-resolution grid grown by ``p``: where
        :func:`~reenact.render.warp.unfold` leaves the flow alone (the driven eyes and inner lips: a
        closing eye or mouth jumps from lid to lid by design, and one opening from shut has det(I + ∇f)
        near 0), and the part of it where it relaxes fold-overs still: the eyes the driven mesh shows
        ``EYE_WIDENED`` times wider than the source does, against the other eye. Such an eye is seen
        edge-on in the source (group_t1 face 1's far eye, behind its nose: 1.3-1.6×, folding at its
        inner corner, det down to -2.58); a blinking eye keeps its width (lp_d11's blink: about 1)."""
        verts = np.stack([f.vertices for f in fits])[..., :2]
        driven = _eye_widths(verts)
        k = {e: driven[e] / max(float(self.own_eyes[e]), 1e-6) for e in EYES}  # (B,) each: how much the mesh widens it
        widened = [[e for e in EYES if k[e][i] > EYE_WIDENED * min(k[o][i] for o in EYES if o != e)]
                   for i in range(len(fits))]
        pts = verts * 0.5 + p
        held = torch.as_tensor(np.stack([openings_mask(v, (low, low), 1) for v in pts]), device=self.device)[:, None]
        if not any(widened):  # the usual case: no eye of the batch is stretched from a sliver
            return held, None
        eyes = np.stack([openings_mask(v, (low, low), 1, eyes=w, lips=False) for v, w in zip(pts, widened)])
        return held, torch.as_tensor(eyes, device=self.device)[:, None]

    @torch.no_grad()
    def composite(self, fits: list[FaceFit], frames: torch.Tensor, drivers=None) -> torch.Tensor:
        """Animate this face inside ``frames`` (B, 3, H, W), in place of what is there (``--face-index all``)."""
        out, (x0, y0, x1, y1), _ = self._render(fits, drivers, frames)
        frames[:, :, y0:y1, x0:x1] = out
        return frames


def _eye_widths(verts: np.ndarray) -> dict[str, np.ndarray]:
    """Each eye's corner-to-corner width in the pixels of ``verts`` (..., V, 2+): (...) per eye."""
    v = np.asarray(verts, np.float64)
    return {e: np.linalg.norm(v[..., EYES[e]["corners"][0], :2] - v[..., EYES[e]["corners"][1], :2], axis=-1) for e in EYES}


def _crop_layer(layer: torch.Tensor, affine: np.ndarray, size: int) -> torch.Tensor:
    """A full-image layer (1, C, H, W) resampled into the crop of ``affine`` (image -> crop)."""
    from reenact.render.layers import pixel_grid, sample

    m = torch.as_tensor(invert_affine(affine), dtype=layer.dtype, device=layer.device)
    q = pixel_grid(size, size, layer.device, layer.dtype)
    return sample(layer, (q @ m[:, :2].T + m[:, 2])[None])


def _to_tensor(img: np.ndarray, device: torch.device) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float in [0, 1] on ``device``, a channel at a time: no
    full-size temporaries beside the result (the source array is read-only, so each channel is copied)."""
    out = torch.empty((1, 3, *img.shape[:2]), dtype=torch.float32, device=device)
    for c in range(3):
        out[0, c] = torch.from_numpy(np.ascontiguousarray(img[..., c]))
    return out.div_(255)


def _to_uint8(img: torch.Tensor, out: torch.Tensor | None = None) -> np.ndarray:
    """(B, 3, H, W) float in [0, 1] -> (B, H, W, 3) uint8, into ``out`` (a CPU uint8 tensor of that
    shape, a view of the frames to fill) if given: one conversion pass, no temporary full frames."""
    if out is None:
        out = torch.empty(img.permute(0, 2, 3, 1).shape, dtype=torch.uint8)
    for r0, r1 in strips(len(img) * img.shape[-1], img.shape[-2]):  # no full-size float temporaries
        scaled = (img[:, :, r0:r1] * 255).add_(0.5).clamp_(0, 255)  # rounded on conversion (truncation)
        out[:, r0:r1].copy_(scaled.permute(0, 2, 3, 1))
    return out.numpy()


class GeneratorEngine(_Engine):
    """A PWM checkpoint: the generator animates the source crop, guided by the rendered displacement.

    Only ``geom_disp`` checkpoints run on the built-in MediaPipe geometry; neural codes live on the
    vertices of the topology they were trained on (FLAME's 5023 for the official files).

    With ``paste_back`` the generated crop is blended into the whole-head geometric warp of the full
    frame (:class:`GeometricWarp`, same segmentation) through the crop's feathered square times the
    moved person mask: hair outside the crop moves with the head as inside it, and the background,
    inside the crop too, is the still background, so the crop leaves no seam.
    """

    name = "PWM generator"

    def __init__(self, source: Source, device: torch.device, paste_back: bool, ckpt, checkpoint_path: str,
                 like: "GeneratorEngine | None" = None):
        """``like``: the engine of another face of the same source and checkpoint, whose generator
        (and, with ``paste_back``, full-image layers) this face shares."""
        super().__init__(source, device, paste_back, like)
        guidance, topo = ckpt.model.guidance, ckpt.topology
        if guidance != "geom_disp" and topo != source.fit.topology:
            raise BadInputError(f"{checkpoint_path}: a {guidance} checkpoint carries per-vertex codes for the "
                                f"{topo} topology; run it with --face-model flame --flame-dir DIR")
        self.warning = None if topo == source.fit.topology else (
            f"{checkpoint_path} was trained on {topo} displacements; running it on the built-in "
            f"{source.fit.topology} geometry")
        self.gen = like.gen if like is not None else ckpt.build_generator(device)
        self.crop = self.src if not paste_back else _to_tensor(source.crop, device)
        self.head = GeometricWarp(source, device, True, like and like.head) if paste_back else None

    @torch.no_grad()
    def __call__(self, fits: list[FaceFit], drivers=None) -> np.ndarray:
        """Output frames; ``drivers`` is unused: the generator draws the mouth and eyes."""
        out = self._crops(fits)
        if not self.paste_back:
            return _to_uint8(out)
        return self._frames(*self._paste(out, fits))

    def _crops(self, fits: list[FaceFit]) -> torch.Tensor:
        from reenact.render.guidance import guidance_maps

        size = self.source.crop.shape[0]
        maps = guidance_maps(self.gen.guidance, self.gen.codes, self.src_verts.expand(len(fits), -1, -1),
                             self._verts(fits), self.faces, size)
        return self.gen(self.crop.expand(len(fits), -1, -1, -1), **maps).out_img

    def _paste(self, crops: torch.Tensor, fits: list[FaceFit],
               frames: torch.Tensor | None = None) -> tuple[torch.Tensor, tuple]:
        """``crops`` (B, 3, S, S) over the whole-head warp (of the source, or of ``frames``): the target
        box's pixels and the box."""
        geo, box, person = self.head._render(fits, frames=frames)
        fg = crop_in_box(crops, self.source.affine, box)  # (B, 4, h, w): RGB, feathered crop square
        alpha = fg[:, 3:] * person
        return geo + alpha * (fg[:, :3] - geo), box

    @torch.no_grad()
    def composite(self, fits: list[FaceFit], frames: torch.Tensor, drivers=None) -> torch.Tensor:
        """Blend this face's generated crops into ``frames`` (B, 3, H, W) (``--face-index all``)."""
        region, (x0, y0, x1, y1) = self._paste(self._crops(fits), fits, frames)
        frames[:, :, y0:y1, x0:x1] = region
        return frames


class EveryFace:
    """One engine per animated source face: the usual one, or every face of a group photo
    (``--face-index all``), each with its own crop, fit and warp, composited into the full image in
    turn, largest face first. Called with one batch of fits per face."""

    def __init__(self, engines: list):
        self.engines = engines
        self.name = engines[0].name
        self.warning = next((e.warning for e in engines if getattr(e, "warning", None)), None)

    @torch.no_grad()
    def __call__(self, fits_per_face: list[list[FaceFit]], drivers=None) -> np.ndarray:
        """(B, H, W, 3) uint8 frames, one per driver frame; ``fits_per_face[i]`` is face i's batch and
        ``drivers`` the driver frames (:class:`~reenact.render.driver_frame.DriverFrame` or None each)."""
        if len(self.engines) == 1:  # the face's own output: its crop, or the pasted-back frame
            return self.engines[0](fits_per_face[0], drivers)
        frames = self.engines[0].src.expand(len(fits_per_face[0]), -1, -1, -1).clone()  # (B, 3, H, W)
        for engine, fits in zip(self.engines, fits_per_face):
            frames = engine.composite(fits, frames, drivers)
        return _to_uint8(frames)
