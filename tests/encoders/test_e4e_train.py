"""e4e's training of Ko et al.'s E: delta regulariser gradient, progressive schedule, latent D's R1, exact resume."""

from __future__ import annotations

import pytest
import torch
from encoder_helpers import ko_micro_ckpt as _micro_ckpt
from encoder_helpers import ko_small as _small

from gan3dkit.encoders.e4e_train import (
    E4EConfig,
    LatentCodesDiscriminator,
    LatentCodesPool,
    delta_loss,
    discriminator_step,
    encoder_terms,
    init_state,
    progressive_stage,
    r1_penalty,
    staged_codes,
)
from gan3dkit.encoders.ko_task import distill_ko
from gan3dkit.train.checkpoint import load_tensors

torch.set_num_threads(1)


def test_delta_regulariser_gradient_is_analytic():
    torch.manual_seed(0)
    w = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    cfg = E4EConfig(progressive_start=0, w_discriminator_lambda=0)
    loss, rec = encoder_terms(None, cfg, w, stage=3)
    loss.backward()
    d = (w[:, 1:4] - w[:, :1]).detach()  # deltas 1..3 on; 4 is off at stage 3
    unit = d / d.norm(dim=-1, keepdim=True) / w.shape[0]  # d/dw_i mean_b ||w_i - w_0||_2
    want = torch.zeros_like(w)
    want[:, 1:4] = cfg.delta_norm_lambda * unit
    want[:, 0] = -cfg.delta_norm_lambda * unit.sum(1)
    assert torch.allclose(w.grad, want, atol=1e-12)
    assert rec["delta"] == pytest.approx(float(d.norm(dim=-1).mean(0).sum()))
    assert float(delta_loss(w, 0, 2)) == 0.0  # stage 0: w_0 alone, nothing to regularise


def test_progressive_schedule_enables_style_i_at_its_step():
    cfg = E4EConfig(progressive_start=20000, progressive_step_every=2000)
    # e4e's progressive_steps = [0, 20000, 22000, ...]: delta i from 20000 + (i - 1) * 2000
    for i in range(1, 14):
        at = 20000 + (i - 1) * 2000
        assert progressive_stage(at - 1, cfg, 14) == i - 1 and progressive_stage(at, cfg, 14) == i
    assert progressive_stage(10**7, cfg, 14) == 13
    assert progressive_stage(0, E4EConfig(progressive_start=None), 14) == 13
    codes = torch.randn(2, 5, 4, requires_grad=True)
    out = staged_codes(codes, 2)
    assert torch.equal(out[:, :3], codes[:, :3]) and torch.equal(out[:, 3:], codes[:, :1].expand(-1, 2, -1))
    out.sum().backward()
    assert (codes.grad[:, 3:] == 0).all() and (codes.grad[:, 0] == 3).all()  # style 0 also feeds layers 3, 4


def test_latent_discriminator_r1_and_its_schedule():
    D = LatentCodesDiscriminator(8, 1)  # one Linear: D(w) = a.w + b, so grad_w D = a
    real = torch.randn(4, 8)
    r1 = r1_penalty(D, real)
    a = D.mlp[0].weight
    assert torch.allclose(r1, a.square().sum())
    (g,) = torch.autograd.grad(r1, a)
    assert torch.allclose(g, 2 * a)
    cfg = E4EConfig(w_pool_size=0, d_reg_every=4, r1=10.0)
    st = init_state(cfg, 8, torch.device("cpu"), 0)
    fake = torch.randn(4, 3, 8)
    rec0 = discriminator_step(st, cfg, 8, real, fake, stage=1)
    a0 = st.D.mlp[0].weight
    want = cfg.r1 / 2 * cfg.d_reg_every * r1_penalty(st.D, real).detach()
    assert "d_w_r1" in rec0 and "d_w_r1" not in discriminator_step(st, cfg, 9, real, fake, stage=1)
    assert rec0["d_w_r1"] > 0 and float(want) == pytest.approx(rec0["d_w_r1"], rel=0.05)  # one Adam step apart
    assert not a0.requires_grad  # D is frozen again for the encoder's step
    last_bias = st.D.mlp[-1].bias  # no R1 gradient, yet Adam steps it (zeroed, not None, as in e4e's torch 1.6)
    assert st.opt.state[last_bias]["step"] == 3 and st.opt.state[a0]["step"] == 3


def test_pool_fills_then_swaps_deterministically():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    p1, p2 = LatentCodesPool(3, 2), LatentCodesPool(3, 2)
    first = p1.query(torch.arange(8.0).view(4, 2), g1)
    assert torch.equal(first, torch.arange(8.0).view(4, 2)) and len(p1.ws) == 3  # not full: passes through
    p2.query(torch.arange(8.0).view(4, 2), g2)
    seen = torch.cat([torch.arange(8.0).view(4, 2), 100 + torch.arange(8.0).view(4, 2)])
    for _ in range(5):
        a, b = p1.query(100 + torch.arange(8.0).view(4, 2), g1), p2.query(100 + torch.arange(8.0).view(4, 2), g2)
        assert torch.equal(a, b) and all((row == seen).all(1).any() for row in a)
    picked = LatentCodesPool(1, 2).query(torch.arange(6.0).view(1, 3, 2), g1)  # one of an item's codes
    assert picked.shape == (1, 2) and (picked[0] == torch.arange(6.0).view(3, 2)).all(1).any()


def _e4e_small(steps: int, **kw):
    e4e = E4EConfig(progressive_start=1, progressive_step_every=1, d_reg_every=2, w_pool_size=3)
    return _small(steps=steps, batch=2, e4e=e4e, **kw)


def test_ko_latent_trains_progressively_and_resumes_bit_exactly(tmp_path):
    ckpt, G = _micro_ckpt(tmp_path, True)
    recs: list[dict] = []
    straight = distill_ko("ko-latent", ckpt, tmp_path / "a", _e4e_small(5), on_step=lambda s, n, r: recs.append(r))
    assert [r["stage"] for r in recs] == [0, 1, 2, 3, 4]
    assert "delta" in recs[2] and recs[2]["delta"] > 0 and "d_w_r1" in recs[0] and "d_w_r1" not in recs[1]
    assert "adv_w" in recs[0] and "adv" in recs[0]
    distill_ko("ko-latent", ckpt, tmp_path / "b", _e4e_small(2))
    resumed = distill_ko("ko-latent", ckpt, tmp_path / "b", _e4e_small(5))
    assert resumed["last"] == straight["last"] and resumed["first"] == straight["first"]
    for name in ("ko-latent.safetensors", "checkpoint.safetensors"):
        a, b = load_tensors(tmp_path / "a" / name), load_tensors(tmp_path / "b" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    state = load_tensors(tmp_path / "b" / "checkpoint.safetensors")
    assert any(k.startswith("Dw.") for k in state) and any(k.startswith("opt.Dw") for k in state)
    assert state["e4e.fake_pool"].shape == (3, G.w_dim)
    with pytest.raises(ValueError, match="another config"):
        distill_ko("ko-latent", ckpt, tmp_path / "b", _e4e_small(6, lr=1e-3))


def test_cli_resumes_ko_latent_and_restart_starts_over(tmp_path):
    import json

    from typer.testing import CliRunner

    from gan3dkit.cli.main import app
    from gan3dkit.train.checkpoint import read_header

    ckpt, _ = _micro_ckpt(tmp_path, False)
    sets = ["batch=2", "pairs=2", "resolution=32", "irse_widths=[8, 12, 16, 24]", "irse_units=[1, 1, 2, 1]",
            "e4e_styles=6", "e4e.progressive_start=1", "e4e.w_pool_size=2"]
    base = ["distill-encoder", "--arch", "ko-latent", "--ckpt", str(ckpt), "--out", str(tmp_path / "o"),
            "--random-init", "--json", *(a for s in sets for a in ("--set", s))]

    def run(*extra):
        res = CliRunner().invoke(app, [*base, *extra])
        assert res.exit_code == 0, res.output
        return json.loads(res.output[res.output.index("{"):])

    state = tmp_path / "o" / "checkpoint.safetensors"
    first = run("--steps", "1")
    assert read_header(state)["progress"]["step"] == 1
    more = run("--steps", "2")  # resumes: step 0's record is kept, one more step is trained
    assert more["first"] == first["first"] and more["last"]["step"] == 1 and more["last"]["stage"] == 1
    assert read_header(state)["progress"]["step"] == 2
    again = run("--steps", "1", "--restart")
    assert again["first"] == first["first"] and read_header(state)["progress"]["step"] == 1


def test_styles_not_yet_enabled_get_no_gradient():
    from gan3dkit.encoders.e4e_train import drop_inactive_grads
    from gan3dkit.encoders.ko_nets import KoLatentEncoder
    from gan3dkit.encoders.ranger import Ranger

    cfg = _small(e4e_styles=8)
    E = KoLatentEncoder(cfg, 16)
    for blk in E.encoder.styles:  # away from the zero init, so every style has a gradient path
        torch.nn.init.normal_(blk.linear.weight)
    opt = Ranger(E.parameters(), lr=1e-3)
    before = {k: v.clone() for k, v in E.state_dict().items()}
    staged_codes(E.wplus(torch.rand(2, 3, 32, 32) * 2 - 1), 4).square().sum().backward()
    drop_inactive_grads(E.encoder, 4)
    opt.step()
    styles = E.encoder.styles
    assert all(p.grad is not None for blk in styles[:5] for p in blk.parameters())
    assert all(p.grad is None for blk in styles[5:] for p in blk.parameters())
    assert E.encoder.latlayer1.weight.grad is not None and E.encoder.latlayer2.weight.grad is None  # p1 from style 7
    after = E.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items() if k.startswith(("encoder.styles.5",
                                                                                   "encoder.latlayer2")))
    assert not torch.equal(after["encoder.styles.4.linear.weight"], before["encoder.styles.4.linear.weight"])
