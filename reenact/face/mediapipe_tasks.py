"""The one place reenact imports MediaPipe (its Tasks API): :func:`tasks` and :func:`image`.

``import mediapipe`` (1.2.2) imports its drawing utilities, and they import ``matplotlib.pyplot`` at
module level. That is 0.33 s of every command's start on a 2-core CPU (``python -X importtime``,
with torch and OpenCV already imported), for plotting that reenact never does. While MediaPipe
imports, ``matplotlib`` and ``matplotlib.pyplot`` are therefore deferred stand-ins:

- Each one imports the real module the first time one of its attributes is read. Only MediaPipe's
  plotting helpers hold them, and those read them only when they plot.
- They are removed from ``sys.modules`` as soon as MediaPipe has imported. So any later
  ``import matplotlib``, by the user or a library, gets the real module.
- Where matplotlib is already imported, MediaPipe gets the real module, and nothing is deferred.
"""

from __future__ import annotations

import importlib
import sys
import threading
import types
from pathlib import Path

_DEFERRED = ("matplotlib", "matplotlib.pyplot")
_LOCK = threading.Lock()


class _Deferred(types.ModuleType):
    """A stand-in for a module that imports the real one on the first read of an attribute it lacks."""

    def __getattr__(self, attr: str):
        if attr.startswith("__"):  # the import machinery's probes (__path__, __file__, ...) import nothing
            raise AttributeError(attr)
        _withdraw()
        return getattr(importlib.import_module(self.__name__), attr)


def _withdraw() -> None:
    """Remove the stand-ins from ``sys.modules`` (a real module put there since is left alone)."""
    for name in _DEFERRED:
        if isinstance(sys.modules.get(name), _Deferred):
            del sys.modules[name]


def _import_mediapipe() -> None:
    if "mediapipe" in sys.modules:
        return
    with _LOCK:
        defer = not any(name in sys.modules for name in _DEFERRED)  # else matplotlib is there already
        if defer:
            pyplot, package = _Deferred("matplotlib.pyplot"), _Deferred("matplotlib")
            package.pyplot = pyplot  # what `import matplotlib.pyplot as plt` reads once both are in sys.modules
            sys.modules.update({"matplotlib": package, "matplotlib.pyplot": pyplot})
        try:
            importlib.import_module("mediapipe")
        finally:
            if defer:
                _withdraw()


def tasks():
    """``(BaseOptions, vision)`` of ``mediapipe.tasks.python``."""
    _import_mediapipe()
    from mediapipe.tasks.python import BaseOptions, vision

    return BaseOptions, vision


def model_options(model_path: str | Path):
    """``BaseOptions`` for the model file at ``model_path``, handed to MediaPipe as bytes, not as a
    path. On Windows MediaPipe joined an absolute model path onto its own site-packages folder
    ("Unable to open file at ...site-packages/C:\\...", errno 22: google-ai-edge/mediapipe#5343,
    #4983, where its maintainers advise the buffer) and failed on folders with non-ASCII names
    (#5400); reenact's models live in site-packages, under the user's home folder."""
    BaseOptions, _ = tasks()
    return BaseOptions(model_asset_buffer=Path(model_path).read_bytes())


def image(rgb):
    """``mediapipe.Image`` over an (H, W, 3) uint8 C-contiguous RGB array."""
    _import_mediapipe()
    import mediapipe as mp

    return mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
