"""ArcFace identity backbones for CSIM (supplementary §3), in plain torch.

Two state-dict layouts are accepted, both 112x112 RGB input scaled to [-1, 1], 512-d output:

* insightface ``arcface_torch`` **iresnet** (r18/r34/r50/r100): keys ``conv1``, ``layer1.0.bn1``, ...,
  ``fc``, ``features``;
* TreB1t ``InsightFace_Pytorch`` **IR-SE** (``model_ir_se50.pth``): keys ``input_layer``,
  ``body.N.res_layer``, ``body.N.shortcut_layer``, ``output_layer``.

The depth (units per stage) is read from the keys, so r50, r100 or a small test network all load
through the same code. Files are read with ``torch.load(weights_only=True)``; a pickled whole model is
refused.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from reenact.errors import BadInputError

WIDTHS = (64, 128, 256, 512)


class IBasicBlock(nn.Module):
    """iresnet unit: BN, 3x3 conv, BN, PReLU, 3x3 conv (stride), BN, plus the (projected) input."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5)
        self.prelu = nn.PReLU(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout, eps=1e-5)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout, eps=1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    """insightface iresnet; ``units`` per stage, e.g. (3, 13, 30, 3) for r100, (3, 4, 14, 3) for r50."""

    def __init__(self, units: tuple[int, int, int, int]):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        cin = 64
        for i, (n, cout) in enumerate(zip(units, WIDTHS)):
            blocks = [IBasicBlock(cin if j == 0 else cout, cout, 2 if j == 0 else 1) for j in range(n)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            cin = cout
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.fc = nn.Linear(512 * 7 * 7, 512)
        self.features = nn.BatchNorm1d(512, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.features(self.fc(self.bn2(x).flatten(1)))  # (B, 512*7*7) -> (B, 512)


class SEModule(nn.Module):
    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(w))))


class BottleneckIRSE(nn.Module):
    """IR-SE unit: BN, 3x3 conv, PReLU, 3x3 conv (stride), BN, SE; shortcut = subsample or 1x1 conv + BN."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        if cin == cout:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.PReLU(cout),
            nn.Conv2d(cout, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), SEModule(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class IRSE(nn.Module):
    """TreB1t IR-SE backbone; (3, 4, 14, 3) units for IR-SE50. Output L2-normalised as in the original."""

    def __init__(self, units: tuple[int, int, int, int]):
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        blocks, cin = [], 64
        for n, cout in zip(units, WIDTHS):
            blocks += [BottleneckIRSE(cin if j == 0 else cout, cout, 2 if j == 0 else 1) for j in range(n)]
            cin = cout
        self.body = nn.Sequential(*blocks)
        self.output_layer = nn.Sequential(nn.BatchNorm2d(512), nn.Dropout(0.0), nn.Flatten(),
                                          nn.Linear(512 * 7 * 7, 512), nn.BatchNorm1d(512))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.output_layer(self.body(self.input_layer(x))), dim=1)


def _units_iresnet(keys: list[str]) -> tuple[int, ...]:
    return tuple(len({m.group(1) for k in keys if (m := re.match(rf"layer{i}\.(\d+)\.", k))}) for i in range(1, 5))


def _units_irse(state: dict[str, torch.Tensor]) -> tuple[int, ...]:
    depths = [state[f"body.{i}.res_layer.1.weight"].shape[0]
              for i in range(len({k.split(".")[1] for k in state if k.startswith("body.")}))]
    return tuple(depths.count(w) for w in WIDTHS)


def build_from_state_dict(state: dict[str, torch.Tensor]) -> tuple[nn.Module, str]:
    """(network with ``state`` loaded, label such as 'iresnet100'); BadInputError if the layout is unknown."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if "conv1.weight" in state and "features.weight" in state:
        units = _units_iresnet(list(state))
        net, name = IResNet(units), f"iresnet{_depth_name(units)}"
    elif "input_layer.0.weight" in state:
        units = _units_irse(state)
        net, name = IRSE(units), f"ir_se{_depth_name(units)}"
    else:
        raise BadInputError("ArcFace file: neither an insightface iresnet nor an IR-SE state dict "
                            f"(first keys: {', '.join(list(state)[:3])})")
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or [k for k in unexpected if not k.endswith("num_batches_tracked")]:
        raise BadInputError(f"ArcFace file does not match {name}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return net.eval(), name


def _depth_name(units: tuple[int, ...]) -> str:
    """Conventional depth label: 2 convs per unit, plus stem and head (r50 = (3,4,14,3), r100 = (3,13,30,3))."""
    known = {(2, 2, 2, 2): "18", (3, 4, 6, 3): "34", (3, 4, 14, 3): "50", (3, 13, 30, 3): "100", (6, 26, 60, 6): "200"}
    return known.get(tuple(units), "-" + "-".join(map(str, units)))


def load_arcface(path: str | Path, device: torch.device) -> tuple[nn.Module, str]:
    """Load an ArcFace state dict safely (``weights_only=True``) and build the matching backbone."""
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # an unpickling refusal, a truncated zip, ...
        raise BadInputError(f"{path}: not a loadable ArcFace state dict ({exc.__class__.__name__}); "
                            "save the backbone's state_dict() rather than the whole model") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise BadInputError(f"{path}: expected a state dict, found {type(state).__name__}")
    net, name = build_from_state_dict(state)
    return net.to(device), name
