"""Ko et al.'s initialisers as released: P (ResNet34 + fc 1000-128-k + tanh) and E (e4e's Encoder4Editing)."""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..cameras.camera import Cameras
from ..cameras.rotations import rotation_6d_to_matrix
from .psp import GradualStyleBlock, GradualStyleEncoder

ROT_DIMS = {"euler": 2, "quaternion": 4, "6d": 6}
#: tanh targets of the frontal camera (R = diag(1, -1, -1)); the scale drops out in the normalisations.
FRONTAL = {"euler": [0.0, 0.0], "quaternion": [0.0, 0.5, 0.0, 0.0], "6d": [0.5, 0.0, 0.0, 0.0, -0.5, 0.0]}


def ko_input(image: Tensor, res: int) -> Tensor:  # [B, 3, H, W] in [-1, 1] -> [B, 3, res, res] in [0, 255]
    """What Ko et al. feed P and E: (x + 1) / 2 * 255, area-downsampled to 256 (bilinear up for smaller inputs)."""
    x = (image + 1) / 2 * 255
    if x.shape[-1] > res:
        return F.interpolate(x, size=(res, res), mode="area")
    return F.interpolate(x, size=(res, res), mode="bilinear", align_corners=False) if x.shape[-1] < res else x


class BasicBlock(nn.Module):
    """torchvision's BasicBlock (names conv1, bn1, conv2, bn2, downsample.0/.1), so ImageNet weights load."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.downsample = None if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class KoPoseEstimator(nn.Module):
    """P (``scripts/resnet/resnet.py``): ResNet34 (BN) -> avgpool -> fc 1000 -> ReLU -> fc2 128 -> ReLU -> fc3 k ->
    tanh. k = 2 'euler' (theta, phi = pi/2 + outputs; no roll), 4 'quaternion' (w, x, y, z), 6 '6d' (AFHQ).
    The camera looks at the world origin from -radius R[:, :, 2] (the projector then optimises a translation)."""

    def __init__(self, cfg, radius: float, focal: float) -> None:
        super().__init__()
        self.cfg, self.radius, self.focal = cfg, radius, focal
        w = cfg.width
        self.conv1, self.bn1 = nn.Conv2d(3, w, 7, 2, 3, bias=False), nn.BatchNorm2d(w)
        cin = w
        for i, n in enumerate(cfg.blocks):
            cout = w * 2**i
            blocks = [BasicBlock(cin if j == 0 else cout, cout, 2 if (j == 0 and i > 0) else 1) for j in range(n)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            cin = cout
        self.fc, self.fc2 = nn.Linear(cin, 1000), nn.Linear(1000, 128)
        self.fc3 = nn.Linear(128, ROT_DIMS[cfg.representation])
        nn.init.zeros_(self.fc3.weight)  # gan3dkit: training starts at the frontal camera
        with torch.no_grad():
            self.fc3.bias.copy_(torch.atanh(torch.tensor(FRONTAL[cfg.representation])))

    def raw(self, image: Tensor) -> Tensor:  # [B, 3, H, W] in [-1, 1] -> tanh outputs [B, k]
        h = F.max_pool2d(F.relu(self.bn1(self.conv1(ko_input(image, self.cfg.resolution)))), 3, 2, 1)
        for i in range(len(self.cfg.blocks)):
            h = getattr(self, f"layer{i + 1}")(h)
        h = F.relu(self.fc2(F.relu(self.fc(h.mean(dim=(2, 3))))))
        return torch.tanh(self.fc3(h))

    def rotation(self, out: Tensor) -> Tensor:  # tanh outputs [B, k] -> cam2world rotation [B, 3, 3]
        from ..cameras.rotations import quaternion_to_matrix
        from ..invert.pose import euler_to_rotation

        rep = self.cfg.representation
        if rep == "euler":  # Ko's euler2rot(pi/2 + a, pi/2 + b) is the orbit camera at yaw a, pitch -b
            return euler_to_rotation(out[:, 0], -out[:, 1])
        if rep == "quaternion":
            return quaternion_to_matrix(out)
        return rotation_6d_to_matrix(out.reshape(-1, 2, 3).add(1e-4).flatten(1))  # Ko's rot6d_to_rotmat (+1e-4)

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:  # -> R [B, 3, 3], position [B, 3]
        rot = self.rotation(self.raw(image))
        return rot, -self.radius * rot[:, :, 2]

    def label(self, image: Tensor, intrinsics: Tensor | None = None) -> Tensor:  # -> [B, 25]
        rot, pos = self(image)
        c2w = torch.eye(4, device=rot.device).repeat(rot.shape[0], 1, 1)
        c2w = torch.cat([torch.cat([rot, pos[..., None]], 2), c2w[:, 3:]], 1)
        if intrinsics is None:
            return Cameras.from_matrices(c2w, self.focal).to_label()
        return Cameras(c2w, intrinsics.expand(rot.shape[0], 3, 3)).to_label()

    @torch.no_grad()
    def predict_label(self, image: Tensor, like: Tensor) -> Tensor:
        """Camera for `image` keeping the intrinsics of `like` [1, 25] (used by `invert --pose-encoder`)."""
        self.eval()
        return self.label(image, Cameras.from_label(like).intrinsics)


class KoLatentEncoder(nn.Module):
    """E: e4e's Encoder4Editing on IR-SE-50 (18 styles for a 1024² StyleGAN, as released). Ko et al. use w_0 only:
    w = w_avg + w_0, one w broadcast to every layer (seed 002 §A.1; ``pSp2.forward`` returns ``codes[:, 0]``).
    Training uses all of ``wplus`` as e4e does (`encoders/e4e_train.py`: progressive deltas)."""

    w_avg: torch.Tensor

    def __init__(self, cfg, w_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = GradualStyleEncoder(tuple(cfg.irse_widths), tuple(cfg.irse_units), cfg.e4e_styles, w_dim,
                                           cfg.resolution, e4e=True)  # fmt: skip
        for blk in self.encoder.styles:  # gan3dkit: training starts at w_avg (e4e starts from its own init)
            nn.init.zeros_(cast(GradualStyleBlock, blk).linear.weight)
        self.register_buffer("w_avg", torch.zeros(1, 1, w_dim))

    def wplus(self, image: Tensor) -> Tensor:  # -> e4e's codes [B, e4e_styles, w_dim] (without w_avg)
        return self.encoder(ko_input(image, self.cfg.resolution))[0]

    def forward(self, image: Tensor) -> Tensor:  # -> delta w [B, 1, w_dim]
        return self.wplus(image)[:, :1]

    @torch.no_grad()
    def predict_w(self, image: Tensor) -> Tensor:  # -> [B, 1, w_dim]
        self.eval()
        return self.w_avg + self(image)

