"""Still-image reading: EXIF orientation honoured, RGBA and grayscale converted to RGB."""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np

from reenact.errors import BadInputError, file_not_found
from reenact.io.outputs import atomic_output

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff",  # what inputs may be
                            ".heic", ".heif", ".avif"})
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")  # HEVC-coded HEIF (phones)


def read_image(path: str | Path) -> np.ndarray:
    """Read ``path`` as an (H, W, 3) uint8 RGB array.

    EXIF orientation is applied. Grayscale and palette images become RGB; an alpha channel is
    composited over white (a transparent background reads as white, not black).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if path.is_dir():
        raise BadInputError(f"{path}: is a directory, not an image")
    if not path.is_file():
        raise file_not_found(path)
    if path.stat().st_size == 0:
        raise BadInputError(f"{path}: file is empty")
    if _is_heif(path):
        _open_heif(path)
    try:
        rgb = _decode(path)
    except Image.DecompressionBombError as exc:
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(pixels.group(1)) / 1e6:.0f} MP; " if pixels else ""
        raise BadInputError(f"{path}: image is too large ({size}reenact reads photos up to "
                            f"{2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} MP)") from None
    except UnidentifiedImageError:
        raise BadInputError(f"{path}: not a readable image (unknown or damaged format)") from None
    except (OSError, ValueError) as exc:
        reason = str(exc).split(":")[0].strip().rstrip(".") or "damaged file"
        raise BadInputError(f"{path}: not a readable image ({reason[:80]})") from None
    if rgb.ndim != 3 or min(rgb.shape[:2]) < 16:
        raise BadInputError(f"{path}: image is too small ({rgb.shape[1]}x{rgb.shape[0]})")
    return np.ascontiguousarray(rgb)


def image_files(folder: str | Path) -> list[Path]:
    """The image files directly in ``folder`` in frame order: names compared with their numbers as
    numbers ("2.png" before "10.png", as ``ffmpeg -i clip.mp4 %d.png`` numbers them; plain sorting put
    10 to 19 between 1 and 2). Hidden files are skipped (macOS's "._0001.png" beside each frame)."""
    return sorted((p for p in Path(folder).iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not is_hidden(p)), key=_natural_key)


def is_hidden(path: Path) -> bool:
    """A file or folder no one means as input: a dotfile, such as the "._clip.mp4" macOS writes beside
    every file it copies to a USB or network drive, .DS_Store, or a drive's .Trashes."""
    return path.name.startswith(".")


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def write_image(path: str | Path, rgb: np.ndarray, force: bool = False) -> Path:
    """Write an (H, W, 3) uint8 RGB array atomically (PNG or JPEG by suffix); an existing file needs ``force``."""
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise BadInputError(f"{path}: the image must be .png or .jpg")
    with atomic_output(path, force) as tmp:
        Image.fromarray(np.ascontiguousarray(rgb)).save(tmp, format="PNG" if path.suffix.lower() == ".png" else "JPEG",
                                                        **({} if path.suffix.lower() == ".png" else {"quality": 95}))
    return path


def fit_within(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` (H, W, C) scaled down (area averaging) so that its longest side is at most ``side``;
    as it is when it already fits."""
    import cv2

    k = side / max(image.shape[:2])
    if k >= 1:
        return image
    size = (max(1, round(image.shape[1] * k)), max(1, round(image.shape[0] * k)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _decode(path: Path) -> np.ndarray:
    """The (H, W, 3) uint8 pixels of the image file ``path``, upright, alpha over white (Pillow's errors pass)."""
    from PIL import Image, ImageOps

    with warnings.catch_warnings():  # 89 to 179 MP: the user's own large photo, not a decompression bomb
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            nclx = im.info.get("nclx_profile") if not im.info.get("icc_profile") else None  # HEIF's colour box
            rgb = pixels_of(im, im.info.get("icc_profile"))
    return _nclx_to_srgb(rgb, nclx) if isinstance(nclx, dict) else rgb


def pixels_of(im, icc: bytes | None = None) -> np.ndarray:
    """A Pillow image as (H, W, 3) uint8 sRGB: converted from its ICC profile ``icc``, high bit
    depths scaled to 8 bits, alpha composited over white."""
    from PIL import Image

    if icc:
        im = _to_srgb(im, icc)
    if im.mode.startswith("I") or im.mode == "F":
        im = _eight_bit(im)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(canvas, rgba)
    return np.asarray(im.convert("RGB"))


_SDR_TRANSFERS = {1, 2, 6, 13, 14, 15}  # BT.709, unspecified, BT.601, sRGB, BT.2020: shown with sRGB's curve


def _nclx_to_srgb(rgb: np.ndarray, nclx: dict) -> np.ndarray:
    """A HEIF photo whose colour is an nclx box, not an ICC profile (some Android phones), in sRGB.

    Display P3 (primaries 12) or BT.2020 (9) numbers are decoded with the sRGB curve, converted
    through XYZ to sRGB's primaries (both D65, so no adaptation), clipped and encoded again. BT.709 or
    unspecified primaries, HDR transfers and other white points leave the pixels as they are.
    """
    from reenact.io.video_frames import BT709_PRIMARIES, rgb_to_xyz

    keys = ("red", "green", "blue", "white")
    try:
        xy = [(float(nclx[f"color_primary_{k}_x"]), float(nclx[f"color_primary_{k}_y"])) for k in keys]
    except (KeyError, TypeError, ValueError):
        return rgb
    d65 = abs(xy[3][0] - 0.3127) < 0.002 and abs(xy[3][1] - 0.3290) < 0.002
    if nclx.get("color_primaries") in (1, 2, None) or nclx.get("transfer_characteristics") not in _SDR_TRANSFERS or not d65:
        return rgb
    to_srgb = np.linalg.solve(rgb_to_xyz(BT709_PRIMARIES), rgb_to_xyz(tuple(xy[:3])))
    e = np.arange(256) / 255.0
    decode = np.where(e <= 0.04045, e / 12.92, ((e + 0.055) / 1.055) ** 2.4).astype(np.float32)
    g = np.linspace(0.0, 1.0, 4096)
    encode = np.round(255 * np.where(g <= 0.0031308, 12.92 * g, 1.055 * g ** (1 / 2.4) - 0.055)).astype(np.uint8)
    out = np.empty_like(rgb)
    rows = max(1, 1_000_000 // rgb.shape[1])  # a million pixels at a time: a 48 MP photo stays small in float
    for y in range(0, rgb.shape[0], rows):
        lin = np.clip(decode[rgb[y:y + rows]] @ to_srgb.T.astype(np.float32), 0.0, 1.0)  # (h, W, 3) linear sRGB
        out[y:y + rows] = encode[np.round(lin * 4095).astype(np.int32)]
    return out


def _to_srgb(im, icc: bytes):
    """``im`` in sRGB, the colour space the output video is taken to be in, from its embedded ICC
    profile: phones embed Display P3 (a wider gamut: its numbers read as sRGB look duller), cameras
    often Adobe RGB, print files CMYK. An sRGB profile, an unreadable one, or a mode the profile does
    not describe leaves ``im`` as it is."""
    from PIL import Image, ImageCms

    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "srgb" in ImageCms.getProfileDescription(profile).lower().replace(" ", ""):
            return im
        alpha = im.getchannel("A") if im.mode in ("RGBA", "LA") else None
        base = im.convert({"RGBA": "RGB", "LA": "L"}.get(im.mode, im.mode))
        out = ImageCms.profileToProfile(base, profile, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except (OSError, ValueError, ImageCms.PyCMSError):
        return im
    if alpha is not None:
        out = Image.merge("RGBA", (*out.split(), alpha))
    return out


def _eight_bit(im):
    """A 16- or 32-bit grayscale image (Pillow modes I;16, I, F) as 8-bit L, its range scaled:
    Pillow's own conversion clips at 255, which turned a 16-bit scan white (no face found)."""
    from PIL import Image

    a = np.asarray(im, dtype=np.float64)
    peak = float(a.max()) if a.size else 0.0
    top = 1.0 if im.mode == "F" and peak <= 1.0 else 255.0 if peak <= 255 and not im.mode.startswith("I;16") else 65535.0
    return Image.fromarray(np.clip(np.round(a * (255.0 / top)), 0, 255).astype(np.uint8), "L")


def _is_heif(path: Path) -> bool:
    """Whether ``path`` is a HEIF photo whose image is HEVC-coded (iPhones save HEIC by default), by
    its ``ftyp`` box, whatever its name. AVIF, also HEIF, Pillow reads itself."""
    with open(path, "rb") as f:
        head = f.read(12)
    return head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS


def _open_heif(path: Path) -> None:
    """Let Pillow open HEIC through pillow-heif (registered once, on the first HEIC photo). Its
    rotation and mirroring are applied on opening and its EXIF orientation is then 1."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        raise BadInputError(f"{path}: a HEIC photo; reading it needs pillow-heif (pip install pillow-heif)") from None
    if not _HEIF_OPENER:
        register_heif_opener()
        _HEIF_OPENER.append(True)


_HEIF_OPENER: list[bool] = []  # non-empty once pillow-heif's opener is registered with Pillow
