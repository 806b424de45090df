"""CSIM: the offline dlib embedder on real faces, ArcFace loading and alignment, FAN and pytorch-fid loading.

The real ArcFace, FAN and pytorch-fid weights cannot be had here; their loading code is exercised with
small networks these tests build and save in the layouts the real files use.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import read_frames
from reenact.io import read_image
from reenact.metrics.identity import ARCFACE_TEMPLATE, align_arcface, five_points, similarity_2d


def _faces_and_landmarks(testdata, landmarker):
    """{identity: [(image, 68 landmarks)]}: three frames of each clip, and the single photos."""
    from reenact.face.landmarks68 import mediapipe_to_68

    groups = {}
    for name in ("single_face", "lp_d11", "lp_d18"):
        frames = read_frames(testdata / "videos" / f"{name}.mp4")
        groups[name] = [frames[i] for i in (0, len(frames) // 2, len(frames) - 1)]
    groups["landmarks_gt"] = [read_image(testdata / "landmarks_gt" / f"0000{i}.jpg") for i in (0, 2, 4)]
    for f in ("lp_s0.jpg", "lp_s6.jpg", "BWPictureHuman.jpg", "Image_with_alpha.png"):
        groups[f] = [read_image(testdata / "faces" / f)]
    out = {}
    for k, images in groups.items():
        out[k] = [(im, mediapipe_to_68(landmarker.detect(im)[0].points[:, :2])) for im in images]
    return out


def test_dlib_fallback_ranks_every_same_person_pair_above_every_different_person_pair(testdata, landmarker):
    pytest.importorskip("dlib", reason="dlib-bin not installed (pip install 'reenact[score]')")
    from reenact.metrics.identity import DlibEmbedder, cosine

    emb = DlibEmbedder()
    items = [(k, e) for k, faces in _faces_and_landmarks(testdata, landmarker).items()
             for e in emb([f for f, _ in faces], [lm for _, lm in faces])]
    same, diff = [], []
    for i, (a, ea) in enumerate(items):
        for b, eb in items[i + 1:]:
            (same if a == b else diff).append(float(cosine(ea[None], eb[None])[0]))
    print(f"dlib cosine: same person min {min(same):.3f} ({len(same)} pairs), different max {max(diff):.3f} ({len(diff)} pairs)")
    assert min(same) > max(diff)
    assert "fallback" in emb.label and "not ArcFace" in emb.label


def test_similarity_2d_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, (5, 2))
    angle, s, t = 0.3, 0.7, np.array([12.0, -5.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    m = similarity_2d(src, src @ (s * rot).T + t)
    assert np.allclose(m, np.concatenate([s * rot, t[:, None]], 1), atol=1e-9)


def test_arcface_alignment_puts_a_real_faces_five_points_on_the_template(testdata, landmarker):
    from reenact.face.landmarks68 import mediapipe_to_68

    image = read_image(testdata / "faces" / "Image_with_alpha.png")
    lm = mediapipe_to_68(landmarker.detect(image)[0].points[:, :2])
    m = similarity_2d(five_points(lm), ARCFACE_TEMPLATE)
    mapped = five_points(lm) @ m[:, :2].T + m[:, 2]
    err = np.linalg.norm(mapped - ARCFACE_TEMPLATE, axis=1).mean()
    crop = align_arcface(image, lm)
    assert crop.shape == (112, 112, 3) and err < 4.0, err  # 5 points, 4 free parameters: a small residual
    # the aligned crop's own landmarks sit where the template says (mouth below eyes, upright)
    again = mediapipe_to_68(landmarker.detect(np.ascontiguousarray(np.pad(crop, ((56, 56), (56, 56), (0, 0)))))[0].points[:, :2]) - 56
    assert np.linalg.norm(five_points(again) - ARCFACE_TEMPLATE, axis=1).mean() < 6.0


@pytest.mark.parametrize("layout", ["iresnet", "ir_se"])
def test_arcface_state_dicts_load_by_layout_and_depth(tmp_path, layout):
    from reenact.metrics.arcface import IRSE, IResNet
    from reenact.metrics.identity import ArcFaceEmbedder

    torch.manual_seed(0)
    net = (IResNet if layout == "iresnet" else IRSE)((1, 2, 1, 1)).eval()
    for m in net.modules():  # non-trivial running statistics, so a wrong mapping would show
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
            m.running_mean.uniform_(-0.1, 0.1), m.running_var.uniform_(0.5, 1.5)
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, tmp_path / "arcface_r100.pth")
    emb = ArcFaceEmbedder(torch.device("cpu"), weights_dir=tmp_path)
    assert layout in emb.label and "-1-2-1-1" in emb.label
    image = np.random.default_rng(0).integers(0, 255, (200, 180, 3), dtype=np.uint8)
    lm = np.random.default_rng(1).uniform(40, 140, (68, 2))
    got = emb([image], [lm])
    x = torch.as_tensor(align_arcface(image, lm)).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        want = net(x).double().numpy()
    assert got.shape == (1, 512) and np.allclose(got, want, atol=1e-5)


def test_arcface_refuses_a_pickled_model_and_an_unknown_layout(tmp_path):
    from reenact.errors import BadInputError
    from reenact.metrics.arcface import IResNet, load_arcface

    torch.save(IResNet((1, 1, 1, 1)), tmp_path / "whole.pth")  # a whole pickled module: weights_only refuses it
    with pytest.raises(BadInputError, match="state dict"):
        load_arcface(tmp_path / "whole.pth", torch.device("cpu"))
    torch.save({"foo.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(BadInputError, match="neither"):
        load_arcface(tmp_path / "other.pth", torch.device("cpu"))


class _BrightSpotFan(torch.nn.Module):
    """A stand-in FAN: every heatmap is the input's brightness pooled 4x4, so the peak is a bright dot."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hm = torch.nn.functional.avg_pool2d(x.mean(1, keepdim=True), 4)  # (B, 1, 64, 64)
        return hm.expand(-1, 68, -1, -1)


def test_fan_torchscript_file_crop_and_decode_round_trip(tmp_path):
    from reenact.face.fan import FanLandmarks, crop_transform, decode_heatmaps

    torch.jit.save(torch.jit.script(_BrightSpotFan()), str(tmp_path / "2DFAN4-cd938726ad.zip"))
    fan = FanLandmarks(torch.device("cpu"), weights_dir=tmp_path)
    image = np.zeros((400, 500, 3), np.uint8)
    box = np.array([150.0, 80.0, 350.0, 300.0])
    spot = np.array([231.0, 187.0])
    image[186:189, 230:233] = 255
    got = fan([image], [box])[0]
    h = 200.0 * (200 + 220) / 195
    assert np.allclose(crop_transform(box, 64)[0, 0], 64 / h)
    cell = h / 64  # image pixels per heatmap cell
    assert got.shape == (68, 2) and np.abs(got - (spot + 0.5)).max() < cell, (got[0], spot)
    hm = np.zeros((1, 1, 64, 64))
    hm[0, 0, 20, 31], hm[0, 0, 20, 32] = 1.0, 0.5  # right neighbour higher: +0.25 in x
    assert np.allclose(decode_heatmaps(hm)[0, 0], [31 + 1 + 0.25 - 0.5, 20 + 1 - 0.5])


def test_pytorch_fid_file_gives_pytorch_fids_features(tmp_path, monkeypatch):
    inception = pytest.importorskip("pytorch_fid.inception")
    from reenact.metrics.fid import PytorchFidFeatures

    torch.manual_seed(0)
    random_weights = inception._inception_v3(num_classes=1008, aux_logits=False, weights=None).state_dict()
    monkeypatch.setattr(inception, "load_state_dict_from_url", lambda *a, **k: random_weights)  # no download
    torch.save(inception.fid_inception_v3().state_dict(), tmp_path / "pt_inception-2015-12-05-6726825d.pth")
    ours = PytorchFidFeatures("cpu", weights_dir=tmp_path)
    theirs = inception.InceptionV3([3]).eval()  # pytorch-fid's own wrapper, same weights
    images = np.random.default_rng(0).integers(0, 255, (2, 120, 100, 3), dtype=np.uint8)
    with torch.no_grad():
        want = theirs(torch.as_tensor(images).permute(0, 3, 1, 2).float() / 255)[0].flatten(1).double().numpy()
    assert "pytorch-fid" in ours.label
    assert np.allclose(ours(images), want, atol=1e-4)


def test_fan_decoding_matches_face_alignment(tmp_path):
    fa = pytest.importorskip("face_alignment.utils")
    from reenact.face.fan import CENTER_Y_OFFSET, REFERENCE_SCALE, crop_transform, decode_heatmaps

    hm = np.random.default_rng(0).random((2, 68, 64, 64)).astype(np.float32)
    box = np.array([150.0, 80.0, 350.0, 300.0])
    center = np.array([250.0, 190.0 - 220 * CENTER_Y_OFFSET])
    theirs, theirs_img, _ = fa.get_preds_fromhm(hm, center, (200 + 220) / REFERENCE_SCALE)
    ours = decode_heatmaps(hm)
    inv = np.linalg.inv(crop_transform(box, 64))
    ours_img = ours @ inv[:2, :2].T + inv[:2, 2]
    assert np.allclose(ours, theirs)
    assert (np.abs(ours_img - theirs_img) < 1.0).all()  # face-alignment truncates to integers; we do not
