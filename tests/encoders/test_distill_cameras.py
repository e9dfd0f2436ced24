"""Typed cameras in distillation change no bit: the stats of a few LP3D and TriPlaneNet steps (every stage and
phase: reference and multiview renders, D with R1, v2's mirror renders, validation) equal the numbers of the label
code they replaced (recorded at ec2f070, CPU, one thread, pure-PyTorch ops)."""

from __future__ import annotations

import json

import pytest
from encoder_helpers import micro_distill

from gan3dkit.encoders.distill import distill

RUNS = {
    "lp3d": ("lp3d-lt", {"run__steps": 3, "lp3d__stage1_steps": 2, "optim__r1_interval": 2}),
    "triplanenet": (
        "triplanenet-v2",
        {"run__steps": 3, "triplanenet__offset_start": 1, "triplanenet__adv_start": 2, "optim__r1_interval": 2},
    ),
}


def _fingerprint(name: str, gen, out) -> list[dict[str, float]]:
    arch, kw = RUNS[name]
    distill(micro_distill(arch, gen, out, **kw), resume=False, device="cpu")
    recs = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k.startswith(("Loss/", "val/"))} for r in recs]


#: `_fingerprint` of each run at the label code (ec2f070: bd9dd42 plus the unsup3d ConfNet and TriPlaneNet's exact
#: Ranger, which change the TriPlaneNet numbers by design; the Cameras code gave these same bits before the merge).
RECORDED: dict[str, list[dict[str, float]]] = {
    "lp3d": [
        {
            "val/l1_input": 1.8444620370864868,
            "val/psnr_input": -1.510568210086087,
            "val/psnr_novel": -1.5191679987489826,
            "val/triplane_l1": 0.9792423248291016,
            "Loss/triplane": 1.1499682664871216,
            "Loss/mv_color": 1.3181166648864746,
            "Loss/mv_lpips": 0.10987186431884766,
            "Loss/mv_feature": 0.012118328362703323,
            "Loss/ref_color": 1.3188109397888184,
            "Loss/ref_lpips": 0.11024250090122223,
            "Loss/ref_feature": 0.011288014240562916,
            "Loss/E": 4.030416488647461
        },
        {
            "val/l1_input": 1.8443163633346558,
            "val/psnr_input": -1.5105645538201806,
            "val/psnr_novel": -1.5191647146194005,
            "val/triplane_l1": 0.9704163074493408,
            "Loss/triplane": 0.7260191440582275,
            "Loss/mv_color": 1.7100070714950562,
            "Loss/mv_lpips": 0.16538105905056,
            "Loss/mv_feature": 0.0085360798984766,
            "Loss/E": 2.609943389892578
        },
        {
            "val/l1_input": 1.8439593315124512,
            "val/psnr_input": -1.5106903275990604,
            "val/psnr_novel": -1.5192869555463657,
            "val/triplane_l1": 0.9624589085578918,
            "Loss/triplane": 0.8361737132072449,
            "Loss/mv_color": 1.802482008934021,
            "Loss/mv_lpips": 0.0937977060675621,
            "Loss/mv_feature": 0.0,
            "Loss/mv_adv": 0.014711305499076843,
            "Loss/ref_color": 1.8028267621994019,
            "Loss/ref_lpips": 0.09365637600421906,
            "Loss/ref_feature": 0.0,
            "Loss/ref_adv": 0.05546700954437256,
            "Loss/E": 3.9465584754943848,
            "Loss/D": 1.946279764175415,
            "Loss/r1": 0.01801423542201519
        }
    ],
    "triplanenet": [
        {
            "val/l1_input": 1.829490303993225,
            "val/psnr_input": -1.5077783157085984,
            "val/psnr_novel": -1.516127291292778,
            "val/triplane_l1": 0.9247835278511047,
            "val/pose_err_deg": 17.884684709591017,
            "Loss/psp_pix": 2.420665740966797,
            "Loss/psp_lpips": 0.11383223533630371,
            "Loss/psp_symm": 2.6070241928100586,
            "Loss/pose": 0.08539065718650818,
            "Loss/E": 2.892301321029663
        },
        {
            "val/l1_input": 1.804316520690918,
            "val/psnr_input": -1.5009958058587138,
            "val/psnr_novel": -1.5091032635329698,
            "val/triplane_l1": 0.9222835898399353,
            "val/pose_err_deg": 17.99584262323839,
            "Loss/psp_pix": 3.5444304943084717,
            "Loss/psp_lpips": 0.1642916202545166,
            "Loss/psp_symm": 2.1970949172973633,
            "Loss/pose": 0.17304636538028717,
            "Loss/offsets_pix": 1.187450885772705,
            "Loss/offsets_lpips": 0.1642916202545166,
            "Loss/offsets_symm": 2.1970949172973633,
            "Loss/E": 5.705962181091309
        },
        {
            "val/l1_input": 1.7862423658370972,
            "val/psnr_input": -1.4958164831350236,
            "val/psnr_novel": -1.5038911286421612,
            "val/triplane_l1": 0.9218359589576721,
            "val/pose_err_deg": 17.970772413889858,
            "Loss/psp_pix": 4.780947208404541,
            "Loss/psp_lpips": 0.09883689880371094,
            "Loss/psp_symm": 2.2995612621307373,
            "Loss/pose": 0.04604032263159752,
            "Loss/offsets_pix": 1.4021906852722168,
            "Loss/offsets_lpips": 0.09884786605834961,
            "Loss/offsets_symm": 2.2995898723602295,
            "Loss/E": 6.909280300140381,
            "Loss/D": 0.9216097593307495,
            "Loss/r1": 0.024671852588653564
        }
    ]
}


@pytest.mark.parametrize("name", list(RUNS))
def test_distillation_steps_are_bit_identical_to_the_label_code(name, micro_gen, tmp_path):
    assert _fingerprint(name, micro_gen, tmp_path / name) == RECORDED[name]
