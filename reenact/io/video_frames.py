"""Decoded video frames to upright 8-bit BT.709 RGB, as a player shows them on an ordinary (SDR) screen.

**Geometry.** FFmpeg's filters work on the decoded YUV frame, before the RGB conversion:

- **Rotation** (phones' portrait video) is its ``transpose``: numpy's rotation of a 4K RGB frame took
  114 ms, and held a portrait 4K driver at 9 frames/s.
- **Non-square pixels** (DV, HDV and broadcast video store 1440 × 1080 for 16:9, or 720 × 576 for
  either shape) are scaled to square ones, as players show them. Read as stored, a face is squeezed
  or stretched: a driver of pixel aspect 4:3 read as stored gave a narrower face and mouth.
- **Interlaced frames** (camcorders' 1080i, DV, broadcast) are deinterlaced by ``bwdif``, one frame
  out per frame in, at the time of its first field. Read as stored, a moving head shows two combed
  faces, 1/50 s apart: the eyes twice.

**Colour.** Two cases need more than FFmpeg's default conversion, which uses BT.601's matrix for
any untagged frame and ignores the transfer function:

- **Untagged HD video** is converted with BT.709's matrix, as players and browsers take it (mpv's
  rule: 1280 wide or more, or taller than 576 rows). Standard-definition video keeps BT.601's.
- **HDR video** (iPhones film HLG by default; many Android phones HDR10, which is PQ) is tone-mapped
  to SDR. Read as plain numbers, its frames look grey and flat: an HLG clip of lp_d18 came out
  15.6 levels from the SDR original on average, a PQ one 29.2.

The HDR mapping (:func:`sdr_from_hdr`) is the display-light conversion of ITU-R BT.2408 §5: SDR's
reference white is HDR's 203 cd/m², and a 1000 cd/m² HLG display is assumed. FFmpeg applies it,
baked into a 33³ cube (its ``lut3d`` filter, tetrahedral interpolation), to 16-bit RGB frames: a
1080p frame costs about 17 ms more than an SDR one (``bench/bench_phone_video.py``), where the same
arithmetic in numpy took a third of a second.
"""

from __future__ import annotations

import functools
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

HLG, PQ = 18, 16  # AVCOL_TRC_ARIB_STD_B67 and AVCOL_TRC_SMPTE2084: FFmpeg's codes for the HDR transfers
UNSPECIFIED = 2  # AVCOL_SPC_UNSPECIFIED
REFERENCE_WHITE = 203.0  # cd/m²: SDR's white in HDR (BT.2408)
HLG_PEAK = 1000.0  # cd/m²: the HLG display assumed (BT.2100's nominal; its system gamma is 1.2)
KNEE = 0.9  # linear light, 1 = SDR white: highlights above roll off smoothly towards 1 (white shows as 250)
CUBE_SIZE = 33  # against the exact formula on real HLG and PQ frames: 0.07-0.2 levels mean (65³: 0.03-0.1)


def rgb_to_xyz(primaries: tuple[tuple[float, float], ...], white=(0.3127, 0.3290)) -> np.ndarray:
    """The 3 × 3 matrix from linear RGB with these xy ``primaries`` (red, green, blue) to CIE XYZ."""
    xyz = np.array([[x / y, 1.0, (1 - x - y) / y] for x, y in primaries]).T  # columns: R, G, B
    w = np.array([white[0] / white[1], 1.0, (1 - white[0] - white[1]) / white[1]])
    return xyz * np.linalg.solve(xyz, w)


BT709_PRIMARIES = ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060))
BT2020_PRIMARIES = ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046))
BT2020_TO_709 = np.linalg.solve(rgb_to_xyz(BT709_PRIMARIES), rgb_to_xyz(BT2020_PRIMARIES))
BT709 = 1  # AVCOL_PRI_BT709: a few cameras film HLG in BT.709's primaries; any other code is taken as BT.2020


def hdr_transfer(frame) -> int | None:
    """:data:`HLG` or :data:`PQ` when ``frame`` (a PyAV video frame) is HDR, else None."""
    trc = frame.color_trc
    return trc if trc in (HLG, PQ) else None


def sdr_from_hdr(signal: np.ndarray, transfer: int, primaries: int = 9) -> np.ndarray:
    """HDR signal (..., 3) in [0, 1], BT.2020 primaries (or BT.709's) → BT.709 SDR signal in [0, 1] (float64).

    1. Display light F in cd/m²:
       - PQ (SMPTE ST 2084): F = 10000 · (max(E'^(1/m₂) − c₁, 0) / (c₂ − c₃·E'^(1/m₂)))^(1/m₁);
       - HLG (BT.2100): scene light E = E'²/3 for E' ≤ ½, else (exp((E' − c)/a) + b)/12; then the
         OOTF F = 1000 · Yₛ^(γ−1) · E, with Yₛ the scene luminance and γ = 1.2.
    2. L = M₂₀₂₀→₇₀₉ · F / 203 (no matrix for BT.709 primaries): linear BT.709 light with SDR white
       at 1; colours outside BT.709 clip at 0.
    3. Highlights: with m = max(R, G, B) over the knee k = 0.9, the colour is scaled by
       m'/m, m' = k + (1 − k)·x/(1 + x), x = (m − k)/(1 − k): smooth, hue kept, never above 1.
    4. E'₇₀₉ = L^(1/2.4), the inverse of BT.1886's display curve.
    """
    e = np.clip(np.asarray(signal, np.float64), 0.0, 1.0)
    to_709 = np.eye(3) if primaries == BT709 else BT2020_TO_709
    luma = rgb_to_xyz(BT709_PRIMARIES if primaries == BT709 else BT2020_PRIMARIES)[1]  # BT.2020: (0.2627, 0.6780, 0.0593)
    if transfer == PQ:
        m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 4096 * 128, 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
        p = e ** (1 / m2)
        light = 10000.0 * (np.maximum(p - c1, 0.0) / (c2 - c3 * p)) ** (1 / m1)
    elif transfer == HLG:
        a, b, c = 0.17883277, 0.28466892, 0.55991073
        scene = np.where(e <= 0.5, e * e / 3, (np.exp((e - c) / a) + b) / 12)
        ys = scene @ luma
        light = HLG_PEAK * scene * (np.maximum(ys, 1e-12) ** 0.2)[..., None]
    else:
        raise ValueError(f"not an HDR transfer: {transfer}")
    lin = np.maximum(light / REFERENCE_WHITE @ to_709.T, 0.0)
    m = lin.max(axis=-1, keepdims=True)
    x = np.maximum(m - KNEE, 0.0) / (1 - KNEE)
    scale = np.where(m > KNEE, (KNEE + (1 - KNEE) * x / (1 + x)) / np.maximum(m, 1e-12), 1.0)
    return np.minimum(lin * scale, 1.0) ** (1 / 2.4)


@functools.lru_cache(maxsize=4)
def _cube(transfer: int, primaries: int) -> np.ndarray:
    """:func:`sdr_from_hdr` on a 33³ grid, red varying fastest (``.cube`` order), stored so that
    FFmpeg's 16-bit output keeps the rounded 8-bit value in its high byte: v₁₆ = 256·(255·E') + 128."""
    g = np.linspace(0.0, 1.0, CUBE_SIZE)
    b, gr, r = np.meshgrid(g, g, g, indexing="ij")  # (B, G, R) grid
    sdr = sdr_from_hdr(np.stack([r, gr, b], -1).reshape(-1, 3), transfer, primaries)
    return (sdr * 255 * 256 + 128) / 65535


def _write_cube(path: Path, table: np.ndarray) -> None:
    with open(path, "w") as f:
        f.write(f"LUT_3D_SIZE {CUBE_SIZE}\n")
        np.savetxt(f, table, fmt="%.7f")


_ROTATE = {90: (("transpose", {"dir": "cclock"}),), 270: (("transpose", {"dir": "clock"}),),
           180: (("hflip", {}), ("vflip", {}))}  # degrees counter-clockwise: the ffmpeg CLI's filters
_DEINTERLACE = (("bwdif", {"mode": "send_frame", "parity": "auto", "deint": "interlaced"}),)


def _chain(width: int, height: int, pix_fmt: str, filters):
    """A configured FFmpeg filter graph: a buffer of ``pix_fmt`` frames, ``filters`` in order, a sink."""
    import av.filter

    graph = av.filter.Graph()
    node = graph.add_buffer(width=width, height=height, format=pix_fmt, time_base=Fraction(1, 90000))
    for name, options in filters:
        nxt = graph.add(name, **options)
        node.link_to(nxt)
        node = nxt
    node.link_to(graph.add("buffersink"))
    graph.configure()
    return graph


def square_width(width: int, pixel_aspect: Fraction) -> int:
    """The width that shows ``width`` stored pixels of aspect ``pixel_aspect`` (SAR) as square pixels,
    the height kept, rounded to an even number (players' and ``scale=iw*sar:ih``'s rule)."""
    return max(2, int(round(width * pixel_aspect / 2)) * 2)


class _Stage:
    """One filter graph, built by ``build(*key)`` and rebuilt (after flushing what it holds) when the
    frames' ``key`` (size, format, ...) changes. A graph may hold frames back (the deinterlacer needs
    the next frame): :meth:`run` gives what comes out, :meth:`flush` the rest at the end."""

    def __init__(self, build):
        self.build, self.key, self.graph = build, None, None

    def run(self, key: tuple, frame) -> list:
        out = self.flush() if key != self.key else []
        if self.graph is None:
            self.key, self.graph = key, self.build(*key)
        self.graph.push(frame)
        return out + self._drain()

    def flush(self) -> list:
        if self.graph is None:
            return []
        self.graph.push(None)
        out = self._drain()
        self.key = self.graph = None
        return out

    def _drain(self) -> list:
        import av

        out = []
        while True:
            try:
                out.append(self.graph.pull())
            except (av.BlockingIOError, av.EOFError):
                return out


class FrameConverter:
    """Turn one stream's decoded frames into upright, square-pixel (H, W, 3) uint8 BT.709 RGB.

    ``rotation``: degrees counter-clockwise (0, 90, 180, 270), the stream's display matrix.
    ``pixel_aspect``: the stream's sample aspect ratio (SAR); other than 1 (DV, HDV, broadcast
    video), frames are scaled to :func:`square_width`. Interlaced frames are deinterlaced.

    Feed frames in decoding order to :meth:`convert`, which returns the images ready (the
    deinterlacer holds one frame back: it needs the next), then :meth:`flush` at the end. Images
    come out in the order their frames went in, one per frame.
    """

    def __init__(self, rotation: int = 0, pixel_aspect: Fraction = Fraction(1)):
        self.rotation, self.pixel_aspect = rotation % 360, Fraction(pixel_aspect)
        self._deinterlace = _Stage(lambda *key: _chain(*key, _DEINTERLACE))
        self._geometry = _Stage(lambda w, h, fmt: _chain(w, h, fmt, self._geometry_filters(w, h)))
        self._hdr = _Stage(_hdr_graph)

    def convert(self, frame) -> list[np.ndarray]:
        if frame.interlaced_frame or self._deinterlace.graph is not None:  # once on, stays on: keeps the order
            return [self._rgb(f) for f in self._deinterlace.run(_key(frame), frame)]
        return [self._rgb(frame)]

    def flush(self) -> list[np.ndarray]:
        return [self._rgb(f) for f in self._deinterlace.flush()]

    def _geometry_filters(self, width: int, height: int) -> list:
        scale = [("scale", {"w": str(square_width(width, self.pixel_aspect)), "h": str(height)})]
        return (scale if self.pixel_aspect != 1 else []) + list(_ROTATE.get(self.rotation, ()))

    def _rgb(self, frame) -> np.ndarray:
        import av

        untagged_hd = frame.colorspace == UNSPECIFIED and (frame.width >= 1280 or frame.height > 576)  # as stored
        if self.rotation or self.pixel_aspect != 1:
            (frame,) = self._geometry.run(_key(frame), frame)
        transfer = hdr_transfer(frame)
        if transfer is None:
            if untagged_hd:
                return frame.reformat(format="rgb24", src_colorspace=av.video.reformatter.Colorspace.ITU709).to_ndarray()
            return frame.to_ndarray(format="rgb24")
        planar = frame.reformat(format="gbrp16le")  # the frame's own matrix (BT.2020) and range
        key = (transfer, frame.color_primaries, planar.width, planar.height)
        (out,) = self._hdr.run(key, planar)
        return (out.to_ndarray() >> 8).astype(np.uint8)  # (H, W, 3) uint16, see _cube


def _key(frame) -> tuple:
    return frame.width, frame.height, frame.format.name


def _hdr_graph(transfer: int, primaries: int, width: int, height: int):
    """FFmpeg's lut3d (HDR to SDR, :func:`_cube`) over gbrp16le frames, giving rgb48le."""
    with tempfile.TemporaryDirectory(prefix="reenact-hdr-") as folder:
        cube = Path(folder) / "hdr_to_sdr.cube"
        _write_cube(cube, _cube(transfer, primaries))
        return _chain(width, height, "gbrp16le", [("lut3d", {"file": str(cube), "interp": "tetrahedral"}),
                                                   ("format", {"pix_fmts": "rgb48le"})])  # lut3d reads the file at once
