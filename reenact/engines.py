"""Frame producers for ``drive``: the geometric warp (no checkpoint) and the PWM generator.

Both take a batch of transferred driver fits and return output frames (B, H, W, 3) uint8: the
animated crop, or with ``paste_back`` the full source image with the face animated in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from reenact.errors import BadInputError
from reenact.face.fit import FaceFit
from reenact.face.mediapipe_backend import Detection
from reenact.face.mesh import topology


@dataclass
class Source:
    """The source image, its crop at the working size, the image->crop affine and its fit."""

    image: np.ndarray  # (H, W, 3) uint8, full resolution
    crop: np.ndarray  # (S, S, 3) uint8
    affine: np.ndarray  # image -> crop
    fit: FaceFit
    detection: Detection | None = None  # the face as found in the image (for --find-best-frame)


class _Engine:
    """Shared state: triangles, source vertices and the source image as a tensor on the device."""

    def __init__(self, source: Source, device: torch.device, paste_back: bool):
        self.device, self.paste_back, self.source = device, paste_back, source
        self.faces = torch.as_tensor(topology(source.fit.topology), device=device)
        self.src_verts = torch.as_tensor(source.fit.vertices, device=device)[None]
        self.src = _to_tensor(source.image if paste_back else source.crop, device)

    def _verts(self, fits: list[FaceFit]) -> torch.Tensor:
        return torch.as_tensor(np.stack([f.vertices for f in fits]), device=self.device)

    def _frames(self, region: torch.Tensor, box: tuple[int, int, int, int]) -> np.ndarray:
        """Full source frames with ``region`` written into ``box``; pixels outside stay untouched."""
        x0, y0, x1, y1 = box
        frames = np.repeat(self.source.image[None], region.shape[0], axis=0)
        frames[:, y0:y1, x0:x1] = _to_uint8(region)
        return frames


class GeometricWarp(_Engine):
    """No checkpoint: warp the source by the rendered 3D displacement, extended beyond the face.

    The displacement is rendered at half the crop resolution and upsampled bilinearly: it is affine
    on each triangle (about 8 px wide at 256²), so this changes it by hundredths of a pixel inside
    the face (``tests/test_warp.py``) and saves three quarters of the rasterization.
    """

    name = "geometric warp"
    render_scale = 0.5

    @torch.no_grad()
    def __call__(self, fits: list[FaceFit]) -> np.ndarray:
        """(B, H, W, 3) uint8 output frames for a batch of transferred fits."""
        from reenact.render.paste import warp_region
        from reenact.render.warp import backward_warp

        flow = self._flow(fits)
        if not self.paste_back:
            return _to_uint8(backward_warp(self.src.expand(len(fits), -1, -1, -1), flow))
        return self._frames(*warp_region(self.src, flow, self.source.affine))

    def _flow(self, fits: list[FaceFit]) -> torch.Tensor:
        from reenact.render.warp import extend_flow

        size = self.source.crop.shape[0]
        flow, mask = render_displacement(self.src_verts.expand(len(fits), -1, -1), self._verts(fits), self.faces, size,
                                         self.render_scale)
        return extend_flow(flow, mask)

    @torch.no_grad()
    def composite(self, fits: list[FaceFit], frames: torch.Tensor) -> torch.Tensor:
        """Animate this face inside ``frames`` (B, 3, H, W), in place of what is there (``--face-index all``)."""
        from reenact.render.paste import warp_region

        region, (x0, y0, x1, y1) = warp_region(frames, self._flow(fits), self.source.affine)
        frames[:, :, y0:y1, x0:x1] = region
        return frames


def _to_tensor(img: np.ndarray, device: torch.device) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float in [0, 1] on ``device`` (copied: the source array is read-only)."""
    return torch.from_numpy(np.array(img)).to(device).permute(2, 0, 1)[None].float() / 255


def _to_uint8(img: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) float in [0, 1] -> (B, H, W, 3) uint8."""
    return (img.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def render_displacement(src_verts: torch.Tensor, drv_verts: torch.Tensor, faces: torch.Tensor, size: int,
                        scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """geom_disp at ``scale`` x ``size``, upsampled to ``size`` (flow units do not depend on resolution)."""
    import torch.nn.functional as F

    from reenact.render.guidance import geom_disp

    low = round(size * scale)
    if low == size:
        return geom_disp(src_verts, drv_verts, faces, size)
    k = src_verts.new_tensor([scale, scale, scale])
    flow, mask = geom_disp(src_verts * k, drv_verts * k, faces, low)
    up = F.interpolate(torch.cat([flow * mask, mask], 1), size=(size, size), mode="bilinear", align_corners=False)
    m = up[:, 2:]
    return up[:, :2] / m.clamp(min=1e-6) * (m > 0.5), (m > 0.5).to(flow.dtype)


class GeneratorEngine(_Engine):
    """A PWM checkpoint: the generator animates the source crop, guided by the rendered displacement.

    Only ``geom_disp`` checkpoints run on the built-in MediaPipe geometry; neural codes live on the
    vertices of the topology they were trained on (FLAME's 5023 for the official files).
    """

    name = "PWM generator"

    def __init__(self, source: Source, device: torch.device, paste_back: bool, ckpt, checkpoint_path: str):
        super().__init__(source, device, paste_back)
        guidance, topo = ckpt.model.guidance, ckpt.topology
        if guidance != "geom_disp" and topo != source.fit.topology:
            raise BadInputError(f"{checkpoint_path}: a {guidance} checkpoint carries per-vertex codes for the "
                                f"{topo} topology; run it with --face-model flame --flame-dir DIR")
        self.warning = None if topo == source.fit.topology else (
            f"{checkpoint_path} was trained on {topo} displacements; running it on the built-in "
            f"{source.fit.topology} geometry")
        self.gen = ckpt.build_generator(device)
        self.crop = self.src if not paste_back else _to_tensor(source.crop, device)

    @torch.no_grad()
    def __call__(self, fits: list[FaceFit]) -> np.ndarray:
        from reenact.render.paste import paste_crop

        out = self._crops(fits)
        if not self.paste_back:
            return _to_uint8(out)
        return self._frames(*paste_crop(self.src, out, self.source.affine))

    def _crops(self, fits: list[FaceFit]) -> torch.Tensor:
        from reenact.render.guidance import guidance_maps

        size = self.source.crop.shape[0]
        maps = guidance_maps(self.gen.guidance, self.gen.codes, self.src_verts.expand(len(fits), -1, -1),
                             self._verts(fits), self.faces, size)
        return self.gen(self.crop.expand(len(fits), -1, -1, -1), **maps).out_img

    @torch.no_grad()
    def composite(self, fits: list[FaceFit], frames: torch.Tensor) -> torch.Tensor:
        """Blend this face's generated crops into ``frames`` (B, 3, H, W) (``--face-index all``)."""
        from reenact.render.paste import paste_crop

        region, (x0, y0, x1, y1) = paste_crop(frames, self._crops(fits), self.source.affine)
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
    def __call__(self, fits_per_face: list[list[FaceFit]]) -> np.ndarray:
        """(B, H, W, 3) uint8 frames, one per driver frame; ``fits_per_face[i]`` is face i's batch."""
        if len(self.engines) == 1:  # the face's own output: its crop, or the pasted-back frame
            return self.engines[0](fits_per_face[0])
        frames = self.engines[0].src.expand(len(fits_per_face[0]), -1, -1, -1).clone()  # (B, 3, H, W)
        for engine, fits in zip(self.engines, fits_per_face):
            frames = engine.composite(fits, frames)
        return _to_uint8(frames)
