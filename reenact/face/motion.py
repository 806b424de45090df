"""Motion transfer: the source's face with the driver's head motion and expression (DESIGN §2.2).

The built-in backend does not separate identity from expression, so expression always moves as
*offsets*: the driver's canonical (pose-free) shape at frame t minus its shape at the reference
frame, added to the source's canonical shape.

* relative (default): rotation, scale and translation also change relative to the reference frame,
  applied on top of the source's own placement:
      R = R_d(t) R_d(ref)^T R_s,   s = s_s · s_d(t) / s_d(ref),   T = T_s + (T_d(t) - T_d(ref)) · s_s / s_d(ref)
* absolute: the driver's own rotation, scale and translation are used as they are (the authors'
  demo copies the driver's pose and camera); expression still moves as offsets.

Driver fits are expected in one fixed frame for the whole clip (``drive`` uses the crop of the
driver's reference frame), so translation and scale changes are head motion, not crop motion.
"""

from __future__ import annotations

import numpy as np

from reenact.face.fit import FaceFit


def transfer(source: FaceFit, driver: FaceFit, reference: FaceFit, relative: bool = True) -> FaceFit:
    """The source face posed and animated by ``driver``; ``reference`` is the driver's reference frame."""
    canonical = source.canonical + (driver.canonical - reference.canonical)
    if relative:
        rotation = driver.rotation @ reference.rotation.T @ source.rotation
        scale = source.scale * driver.scale / reference.scale
        translation = source.translation + (driver.translation - reference.translation) * source.scale / reference.scale
    else:
        rotation, scale, translation = driver.rotation, driver.scale, driver.translation
    out = source.with_geometry(canonical, rotation, scale, translation)
    return _with_driver_codes(out, driver)


def _with_driver_codes(fit: FaceFit, driver: FaceFit) -> FaceFit:
    from dataclasses import replace

    return replace(fit, expression=driver.expression, pose=driver.pose)


class FitSmoother:
    """One-Euro smoothing of a stream of fits: canonical shape, rotation, scale, translation, codes.

    Rotations are filtered element-wise and projected back onto SO(3) (SVD), which is accurate for
    the small frame-to-frame changes of a head.
    """

    def __init__(self, min_cutoff: float = 0.5, beta: float = 0.0):
        from reenact.face.smoothing import OneEuro

        self._filter = OneEuro(min_cutoff, beta)

    def __call__(self, fit: FaceFit, t: float) -> FaceFit:
        from dataclasses import replace

        n = fit.canonical.size
        flat = np.concatenate([fit.canonical.ravel(), fit.rotation.ravel(), [fit.scale], fit.translation,
                               fit.expression, fit.pose])
        sm = self._filter(flat, t)
        canonical = sm[:n].reshape(fit.canonical.shape)
        rotation = _project_rotation(sm[n:n + 9].reshape(3, 3))
        scale, translation = sm[n + 9], sm[n + 10:n + 13]
        e = len(fit.expression)
        out = fit.with_geometry(canonical, rotation, scale, translation)
        return replace(out, expression=sm[n + 13:n + 13 + e].astype(np.float32), pose=sm[n + 13 + e:])


def _project_rotation(m: np.ndarray) -> np.ndarray:
    """The rotation nearest to ``m`` (SVD), for blended or filtered rotation matrices."""
    u, _, vt = np.linalg.svd(m)
    return u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt


def blend(a: FaceFit, b: FaceFit, w: float) -> FaceFit:
    """(1 - w)·a + w·b: shape, placement and codes interpolated; the rotation is the blend projected
    onto SO(3), which is close to a slerp for the head turns a driver makes between two fits."""
    from dataclasses import replace

    if w <= 0.0:
        return a
    if w >= 1.0:
        return b
    lerp = lambda x, y: (1.0 - w) * np.asarray(x, np.float64) + w * np.asarray(y, np.float64)  # noqa: E731
    out = a.with_geometry(lerp(a.canonical, b.canonical), _project_rotation(lerp(a.rotation, b.rotation)),
                          float(lerp(a.scale, b.scale)), lerp(a.translation, b.translation))
    return replace(out, expression=lerp(a.expression, b.expression).astype(np.float32), pose=lerp(a.pose, b.pose))
