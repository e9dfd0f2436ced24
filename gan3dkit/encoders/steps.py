"""One distillation gradient step: LP3D's two-stage objective, TriPlaneNet's branch schedule and mirror loss."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..cameras.camera import Cameras
from ..train.distributed import sync_gradients
from .config import DistillConfig
from .losses import discriminator_loss, generator_adv_loss, r1_penalty, symmetry_loss
from .models import Student, Teacher
from .ranger import Ranger
from .realdata import RealMix
from .render import sample_cameras

if TYPE_CHECKING:
    from .lp3d import LP3DEncoder
    from .lp3d_release import LP3DReleaseEncoder
    from .triplanenet import TriPlaneNetEncoder


def _num(x: Tensor | float) -> float:
    return float(x.detach()) if isinstance(x, Tensor) else float(x)


def _opt(cfg: DistillConfig, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    o = cfg.optim
    if o.optimizer == "ranger":  # TriPlaneNet's Ranger: Lookahead and its slow weights live in the optimiser state
        return Ranger(groups, lr=o.lr, alpha=o.ranger_alpha, k=o.ranger_k, betas=(o.ranger_betas[0],
                      o.ranger_betas[1]), eps=o.ranger_eps, use_gc=o.ranger_gc)  # fmt: skip
    return torch.optim.Adam(groups, betas=cast("tuple[float, float]", tuple(o.betas)))


class _Base:
    def __init__(self, cfg: DistillConfig, teacher: Teacher, student: Student, dev: torch.device) -> None:
        self.cfg, self.t, self.s, self.dev = cfg, teacher, student, dev
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        if student.D is not None:
            self.optimizers["D"] = torch.optim.Adam(student.D.parameters(), lr=cfg.optim.dlr, betas=(0.0, 0.99))

    def _add(self, name: str, params: list[nn.Parameter], groups: list[dict[str, Any]] | None = None) -> None:
        if not params:
            return
        self.optimizers[name] = _opt(self.cfg, groups or [{"params": params, "lr": self.cfg.optim.lr}])

    def _apply(self, name: str, params: list[nn.Parameter], world: int) -> None:
        sync_gradients(params, world)
        self.optimizers[name].step()

    def _sample(self, bg: int) -> dict[str, Any]:
        """A fresh batch of teacher identities with per-sample reference (augmented) and multiview cameras."""
        t, cams, dev = self.t, self.cfg.cameras, self.dev
        z = torch.randn(bg, t.G.z_dim).to(dev)
        c_ref, pose = sample_cameras(cams, bg, t.cam.radius, t.cam.focal, t.cam.lookat, True)
        c_mv, _ = sample_cameras(cams, bg, t.cam.radius, t.cam.focal, t.cam.lookat, False)
        c_ref, c_mv, pose = c_ref.to(dev), c_mv.to(dev), pose.to(dev)
        det = self.cfg.run.deterministic_render
        with torch.no_grad():
            ws = t.mapping(z, c_ref, self.cfg.run)
            planes = t.G.synthesize_planes(ws)
            ref = t.G.render_planes(planes, c_ref, ws, neural_rendering_resolution=t.nrr, deterministic_render=det)
            mv = t.G.render_planes(planes, c_mv, ws, neural_rendering_resolution=t.nrr, deterministic_render=det)
        return {"ws": ws, "planes": planes, "c_ref": c_ref, "c_mv": c_mv, "pose": pose, "ref": ref, "mv": mv}

    def _d_step(self, pairs: list[tuple[dict, dict, Cameras]], step: int, world: int) -> dict[str, float]:
        """D on frozen-teacher renders (real) vs encoder renders (fake, detached), conditioned on the cameras' labels;
        lazy R1."""
        D, o = self.s.D, self.cfg.optim
        assert D is not None  # called only for a student with a D
        D.requires_grad_(True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        loss: Tensor | float = 0.0
        for fake, real, cams in pairs:
            fk = {"image": fake["image"].detach(), "image_raw": fake["image_raw"].detach()}
            c = cams.to_label()
            loss = loss + discriminator_loss(D(real, c), D(fk, c))
        assert isinstance(loss, Tensor)  # pairs is never empty
        stats = {"Loss/D": _num(loss)}
        if o.r1_gamma > 0 and step % o.r1_interval == 0:
            r1 = r1_penalty(D, pairs[0][1], pairs[0][2].to_label())
            loss = loss + r1 * (o.r1_gamma / 2) * o.r1_interval
            stats["Loss/r1"] = _num(r1)
        loss.backward()
        self._apply("D", list(D.parameters()), world)
        D.requires_grad_(False)
        return stats


class LP3DStep(_Base):
    """LP3D eq. 5 with the supplement's two-stage schedule (see ``LP3DSchedule``)."""

    def __init__(self, cfg: DistillConfig, teacher: Teacher, student: Student, dev: torch.device) -> None:
        super().__init__(cfg, teacher, student, dev)
        E, o = cast("LP3DEncoder | LP3DReleaseEncoder", student.encoder), cfg.optim
        vit = {id(p) for p in E.transformer_parameters()}
        rest = [p for p in E.parameters() if id(p) not in vit]
        groups = [{"params": rest, "lr": o.lr}, {"params": [p for p in E.parameters() if id(p) in vit],
                                                 "lr": o.lr_transformer}]  # fmt: skip
        self._add("E", list(E.parameters()), groups)
        R = student.renderer
        assert R is not None  # LP3D students always have the plane renderer
        self._add("R", list(R.parameters()), [{"params": list(R.parameters()), "lr": o.lr_renderer}])

    def stage(self, step: int) -> int:
        return 1 if step < self.cfg.lp3d.stage1_steps else 2

    def step(self, step: int, bg: int, world: int) -> dict[str, float]:
        cfg, L, S, s = self.cfg, self.cfg.loss, self.cfg.lp3d, self.s
        stage2 = self.stage(step) == 2
        every = 1 if step >= S.both_every_step_from else (S.stage2_ref_every if stage2 else S.stage1_ref_every)
        b = self._sample(bg)
        R = s.renderer
        assert R is not None  # LP3D students always have the plane renderer
        lpips = s.lpips
        assert lpips is not None  # built for training
        R.decoder.requires_grad_(stage2 and S.finetune_decoder)
        R.superresolution.requires_grad_(stage2 and S.finetune_superres)
        if R.const_w is not None:
            R.const_w.requires_grad_(stage2 and S.finetune_superres)
        use_adv = stage2 and s.D is not None
        out = s.encoder(b["ref"]["image"])
        w_tri = S.stage2_triplane if stage2 else L.triplane
        w_feat = S.stage2_feature if stage2 else L.feature
        l_tri = (out.planes - b["planes"]).abs().mean()
        loss = w_tri * l_tri
        stats = {"Loss/triplane": _num(l_tri)}
        if out.pose is not None and L.pose > 0:
            l_pose = F.mse_loss(out.pose, b["pose"])
            loss = loss + L.pose * l_pose
            stats["Loss/pose"] = _num(l_pose)
        views = [("mv", b["c_mv"], b["mv"], L.adv_mv)]
        if step % every == 0:
            views.append(("ref", b["c_ref"], b["ref"], L.adv_ref))
        pairs = []
        for name, c, tgt, adv_w in views:
            r = R(out.planes, c, self.t.nrr, deterministic=cfg.run.deterministic_render)
            terms = {
                "color": L.color_raw * (r["image_raw"] - tgt["image_raw"]).abs().mean()
                + L.color_sr * (r["image"] - tgt["image"]).abs().mean(),
                "lpips": L.lpips_raw * lpips(r["image_raw"], tgt["image_raw"])
                + L.lpips_sr * lpips(r["image"], tgt["image"]),
                "feature": w_feat * (r["feature_image"] - tgt["feature_image"]).abs().mean(),
            }
            if L.depth > 0:
                terms["depth"] = L.depth * (r["image_depth"] - tgt["image_depth"]).abs().mean()
            if use_adv and adv_w > 0:
                fake = {"image": r["image"], "image_raw": r["image_raw"]}
                assert s.D is not None  # use_adv
                terms["adv"] = adv_w * generator_adv_loss(s.D(fake, c.to_label()))
            if stage2 and s.identity is not None and L.identity > 0:
                terms["id"] = L.identity * s.identity(r["image"], tgt["image"])
            for k, v in terms.items():
                stats[f"Loss/{name}_{k}"] = _num(v)
            loss = loss + sum(terms.values())
            pairs.append((r, {"image": tgt["image"], "image_raw": tgt["image_raw"]}, c))
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        loss.backward()
        stats["Loss/E"] = _num(loss)
        self._apply("E", list(s.encoder.parameters()), world)
        if stage2 and (S.finetune_decoder or S.finetune_superres):
            self._apply("R", list(R.parameters()), world)
        if use_adv and S.finetune_discriminator:
            stats.update(self._d_step(pairs, step, world))
        return stats


class TriPlaneNetStep(_Base):
    """TriPlaneNet v1/v2: W+ branch loss (L2), offset branch loss (smooth-L1), v2 mirror loss and adversarial stage."""

    def __init__(self, cfg: DistillConfig, teacher: Teacher, student: Student, dev: torch.device) -> None:
        super().__init__(cfg, teacher, student, dev)
        E = cast("TriPlaneNetEncoder", student.encoder)
        self.psp_params = list(E.psp.parameters()) + (list(E.pose.parameters()) if E.pose is not None else [])
        self.off_params = list(E.offsets.parameters())
        self._add("psp", self.psp_params)
        self._add("offsets", self.off_params)
        conf = student.conf
        self.train_conf = conf is not None and any(p.requires_grad for p in conf.parameters())
        if self.train_conf:
            assert conf is not None  # train_conf
            self._add("C", list(conf.parameters()))
        sch = cfg.triplanenet
        self.mix = RealMix(cfg.data, teacher, sch.real_fraction, sch.mirror_prob, dev) if cfg.data else None

    def stage(self, step: int) -> str:
        sch = self.cfg.triplanenet
        parts = [n for n, on in (("psp", step < sch.psp_stop), ("offsets", step >= sch.offset_start)) if on]
        return "+".join(parts) + ("+adv" if self._adv(step) else "")

    def _adv(self, step: int) -> bool:
        return self.s.D is not None and step >= self.cfg.triplanenet.adv_start

    def _small(self, img: Tensor) -> Tensor:
        """Area-downsample to `triplanenet.loss_resolution` (seed 004: losses at 256², identity excepted)."""
        res = self.cfg.triplanenet.loss_resolution
        return img if res is None or img.shape[-1] <= res else F.interpolate(img, size=(res, res), mode="area")

    def _branch_loss(self, x: Tensor, planes: Tensor, ws: Tensor, c: Cameras, smooth: bool, name: str, stats) -> Tensor:
        L, s, v2 = self.cfg.loss, self.s, cast("TriPlaneNetEncoder", self.s.encoder).cfg.version == 2
        lpips = s.lpips
        assert lpips is not None  # built for training
        y = self.t.G.render_planes(planes, c, ws, neural_rendering_resolution=self.t.nrr,
                                   deterministic_render=self.cfg.run.deterministic_render)["image"]
        ys, xs = self._small(y), self._small(x)
        pix = F.smooth_l1_loss(ys, xs) if smooth else F.mse_loss(ys, xs)
        loss = L.rec_l2 * pix + L.rec_lpips * lpips(ys, xs)
        stats[f"Loss/{name}_pix"], stats[f"Loss/{name}_lpips"] = _num(pix), _num(loss - L.rec_l2 * pix)
        if s.identity is not None and L.rec_id > 0:
            loss = loss + L.rec_id * s.identity(y, x)
        if v2 and L.mirror > 0:
            ym = self.t.G.render_planes(planes, c.mirror(), ws, neural_rendering_resolution=self.t.nrr,
                                        deterministic_render=self.cfg.run.deterministic_render)["image"]
            xm = x.flip(-1)
            yms, xms = self._small(ym), self._small(xm)
            sigma = s.conf(xms) if s.conf is not None else None
            symm = symmetry_loss(xms, yms, sigma, likelihood=self.train_conf, smooth=smooth)
            mirror = L.symm * symm + L.mirror_lpips * lpips(yms, xms)
            if s.identity is not None and L.mirror_id > 0:
                mirror = mirror + L.mirror_id * s.identity(ym, xm)
            stats[f"Loss/{name}_symm"] = _num(symm)
            loss = loss + L.mirror * mirror
        return loss

    def step(self, step: int, bg: int, world: int) -> dict[str, float]:
        sch, L, s = self.cfg.triplanenet, self.cfg.loss, self.s
        psp_on, off_on, adv_on = step < sch.psp_stop, step >= sch.offset_start, self._adv(step)
        E = cast("TriPlaneNetEncoder", s.encoder)
        E.psp.requires_grad_(psp_on)
        if E.pose is not None:
            E.pose.requires_grad_(psp_on)
        E.offsets.requires_grad_(off_on)
        b = self.mix.sample(bg, self.cfg.run, self.cfg.run.deterministic_render) if self.mix else self._sample(bg)
        x, c = b["ref"]["image"], b["c_ref"]
        out = E(x, c, use_offsets=off_on)
        stats: dict[str, float] = {"Data/real": float(b["real"].float().mean())} if "real" in b else {}
        loss = x.new_zeros(())
        if psp_on:
            loss = loss + self._branch_loss(x, out.base, out.ws, c, False, "psp", stats)
            if out.pose is not None and L.pose > 0:
                l_pose = F.mse_loss(out.pose, b["pose"])
                loss = loss + L.pose * l_pose
                stats["Loss/pose"] = _num(l_pose)
        pairs = []
        if off_on:
            loss = loss + self._branch_loss(x, out.planes, out.ws.detach(), c, True, "offsets", stats)
            if adv_on and L.adv_tpn > 0:
                r = self.t.G.render_planes(out.planes, c, out.ws.detach(), neural_rendering_resolution=self.t.nrr,
                                           deterministic_render=True)
                fake = {"image": r["image"], "image_raw": r["image_raw"]}
                assert s.D is not None  # adv_on
                loss = loss + L.adv_tpn * generator_adv_loss(s.D(fake, c.to_label()))
                pairs.append((r, {"image": x, "image_raw": b["ref"]["image_raw"]}, c))
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        if loss.requires_grad:
            loss.backward()
        stats["Loss/E"] = _num(loss)
        if psp_on:
            self._apply("psp", self.psp_params, world)
        if off_on:
            self._apply("offsets", self.off_params, world)
        if self.train_conf:
            assert s.conf is not None  # train_conf
            self._apply("C", list(s.conf.parameters()), world)
        if pairs:
            stats.update(self._d_step(pairs, step, world))
        return stats
