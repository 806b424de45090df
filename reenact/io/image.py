"""Still-image reading: EXIF orientation honoured, RGBA and grayscale converted to RGB."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reenact.errors import BadInputError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff",  # what inputs may be
                            ".heic", ".heif", ".avif"})
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")  # HEVC-coded HEIF (phones)


def read_image(path: str | Path) -> np.ndarray:
    """Read ``path`` as an (H, W, 3) uint8 RGB array.

    EXIF orientation is applied. Grayscale and palette images become RGB; an alpha channel is
    composited over white (a transparent background reads as white, not black).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if path.is_dir():
        raise BadInputError(f"{path}: is a directory, not an image")
    if not path.is_file():
        raise BadInputError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise BadInputError(f"{path}: file is empty")
    if _is_heif(path):
        _open_heif(path)
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                im = Image.alpha_composite(canvas, rgba)
            rgb = np.asarray(im.convert("RGB"))
    except UnidentifiedImageError:
        raise BadInputError(f"{path}: not a readable image (unknown or damaged format)") from None
    except (OSError, ValueError) as exc:
        reason = str(exc).split(":")[0].strip().rstrip(".") or "damaged file"
        raise BadInputError(f"{path}: not a readable image ({reason[:80]})") from None
    if rgb.ndim != 3 or min(rgb.shape[:2]) < 16:
        raise BadInputError(f"{path}: image is too small ({rgb.shape[1]}x{rgb.shape[0]})")
    return np.ascontiguousarray(rgb)


def write_image(path: str | Path, rgb: np.ndarray, force: bool = False) -> Path:
    """Write an (H, W, 3) uint8 RGB array atomically (PNG or JPEG by suffix); an existing file needs ``force``."""
    from PIL import Image

    from reenact.io.video import atomic_output

    path = Path(path)
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise BadInputError(f"{path}: the image must be .png or .jpg")
    with atomic_output(path, force) as tmp:
        Image.fromarray(np.ascontiguousarray(rgb)).save(tmp, format="PNG" if path.suffix.lower() == ".png" else "JPEG",
                                                        **({} if path.suffix.lower() == ".png" else {"quality": 95}))
    return path


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
    register_heif_opener()
