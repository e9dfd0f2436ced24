"""Typed cameras in training change no bit: the losses of two steps of each method equal the numbers of the label
code they replaced (recorded at bd9dd42, CPU, one thread)."""

from __future__ import annotations

import pytest
import torch

from gan3dkit.cameras import Cameras, get_prior
from gan3dkit.methods.pof3d import flip_cameras
from gan3dkit.train.config import train_preset
from gan3dkit.train.loop import _build_runtime
from gan3dkit.utils.config import apply_overrides

PHASES = ("Gmain", "Greg", "Dmain", "Dreg")


def _fingerprint(method: str) -> list[float]:
    """Stats and gradient sums of every phase of two steps on batch 4 (fake cameras drawn by the method)."""
    cfg = apply_overrides(train_preset("tiny", method), ["generator.rendering.depth_resolution=6",
                                                          "generator.rendering.depth_resolution_importance=6",
                                                          "loss.density_reg_points=64"])
    cfg.validate()
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(5)
    labels = get_prior("synthetic_heads").sample(8, gen).to_label().float() if cfg.spec.needs_labels else None
    cams = None if labels is None else Cameras.from_label(labels)
    rt = _build_runtime(cfg, cams, get_prior("synthetic_heads").to_dict(), torch.device("cpu"))
    out: list[float] = []
    for _ in range(2):
        real = rt.loss.real_images(torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8), rt.loss.step_state(0))
        real_c = labels[:4] if labels is not None else torch.zeros(4, 25)
        for phase in PHASES:
            rt.G.zero_grad(set_to_none=True)
            rt.D.zero_grad(set_to_none=True)
            stats = rt.loss.accumulate_gradients(phase, real, real_c, torch.randn(4, rt.G.z_dim),
                                                 rt.fake_cameras(4), 1.0, rt.loss.step_state(0))
            out += [stats[k] for k in sorted(stats)]
            out += [float(sum(p.grad.double().abs().sum() for p in m.parameters() if p.grad is not None))
                    for m in (rt.G, rt.D)]
    return out


#: `_fingerprint` of each method at the label code (bd9dd42), CPU, one thread.
RECORDED = {
    'eg3d': [
        0.7626160383224487, -0.12638357281684875, 5666.848972195889, 293.81508197914474, 0.0007277796976268291,
        19.99128388512529, 0.0, 1.3981417417526245, 0.006985299289226532, 0.0, 277.8390953753654,
        0.000805803167168051, 0.0, 0.11507653554817343, 0.7447962760925293, -0.09479376673698425, 7109.414030556048,
        306.5873827641571, 0.0007846297812648118, 18.76552387620002, 0.0, 1.3821382522583008, 0.005968522280454636,
        0.0, 323.24286704432757, 0.0008351145079359412, 0.0, 0.12341563965764271,
    ],
    'hyperpose': [
        0.5289869904518127, 0.10357770323753357, 1.3154728412628174, 0.37113988399505615, 2.0, 57126.65852515544,
        341.2376708847886, 0.0007806861540302634, 19.963322191366636, 0.0, 1.9059423208236694, 0.008295178413391113,
        1.0984059572219849, 0.03222145885229111, 2.0, 0.0, 708.5842543544023, 0.0011367747792974114, 0.0,
        0.13481374878010283, 0.334907591342926, 0.10095539689064026, 1.2494182586669922, 0.960616946220398, 2.0,
        32676.093534713887, 358.1360438072411, 0.0007525645778514445, 21.023400369907186, 0.0, 2.2154452800750732,
        0.01727849245071411, 1.1151578426361084, 0.03139244019985199, 2.0, 0.0, 830.2324539885915,
        0.0012985370121896267, 0.0, 0.19641227113161444,
    ],
    'eg3d-posereg': [
        0.26356613636016846, 0.9827290773391724, 1.2150465250015259, 1.3083338737487793, 0.41022223234176636,
        21981.444890627412, 1447.009896292339, 0.0010008285753428936, 17.64566190561902, 0.0, 1.9800735712051392,
        0.6163532137870789, 0.027281545102596283, 0.9639104604721069, 0.40671563148498535, 0.0, 1213.2559767605987,
        0.0014865468256175518, 0.0, 0.1815108154000677, 0.47457101941108704, 0.39304521679878235,
        0.5312466025352478, 0.7835683822631836, 0.2343808114528656, 12334.913098494544, 637.7186293401403,
        0.0007630898617208004, 26.614552097461704, 0.0, 1.9208264350891113, 0.6141496300697327, 0.0321219302713871,
        1.0553818941116333, 0.18617208302021027, 0.0, 1415.024820572305, 0.001284178113564849, 0.0,
        0.168335769351635,
    ],
    'pof3d': [
        0.49595192074775696, 0.48802649974823, 5.348546981811523, 0.5604095458984375, 2.298874855041504,
        0.5754565596580505, 3.1305956840515137, 57.28827611752381, 232.05509058393585, 0.0007583513506688178,
        0.24207655912358808, 0.0, 4.769241809844971, 0.8231443762779236, 1.4870942831039429, 0.05434262007474899,
        2.394394874572754, 0.3031100630760193, 2.4270009994506836, 0.0, 2610.1848901687254, 0.0015100608579814434,
        0.0, 0.24892060644619401, 0.5474690794944763, 0.5521283149719238, 4.216821193695068, 0.334436297416687,
        2.250657558441162, 0.32773855328559875, 2.3896543979644775, 94.8320985899621, 341.15730000966585,
        0.0008464343845844269, 0.2900517682142069, 0.0, 4.867950916290283, 1.218367576599121, 1.877134084701538,
        0.04978352040052414, 2.311434507369995, 1.2181092500686646, 3.1254663467407227, 0.0, 3484.3040259659565,
        0.001638983958400786, 0.0, 0.2527233079527603,
    ],
    'hyperpose+pof3d': [
        0.7360813021659851, 0.15656036138534546, 2.665663480758667, 1.911440134048462, -0.08349459618330002, 2.0,
        2.5729336738586426, 0.9105028510093689, 1.792456865310669, 130.37869096756813, 585.3987417159359,
        0.0009451441583223641, 0.4013794882719194, 0.0, 3.781442165374756, 1.3519587516784668, 1.1400490999221802,
        1.8149889707565308, -0.023005295544862747, 2.0, 2.251199722290039, 1.11732017993927, 2.197923183441162, 0.0,
        1879.7406790849816, 0.002126894658431411, 0.0, 0.33356635207937446, 1.0256249904632568, 0.46429550647735596,
        6.068191051483154, 1.2067161798477173, -0.5498775243759155, 2.0, 1.1132513284683228, 0.32229846715927124,
        2.9219603538513184, 65.48358269932746, 396.2385967128883, 0.0008062295964919031, 0.25869332163583353, 0.0,
        6.864156246185303, 1.3695387840270996, 1.2039263248443604, 2.2738423347473145, -0.018510114401578903, 2.0,
        2.3630032539367676, 0.34915459156036377, 3.120633363723755, 0.0, 4318.46754718259, 0.002589905634522438,
        0.0, 0.39507251813526784,
    ],
    'eg3d-posereg+pof3d': [
        0.48802649974823, 1.3386304378509521, 1.3386304378509521, 0.5604095458984375, 1.4198074340820312,
        0.6751474142074585, 2.298874855041504, 0.5754565596580505, 3.1305956840515137, 130.67404917440803,
        769.382657366259, 0.0005915485671721399, 0.19282260247514105, 0.0, 1.5266764163970947, 1.0663105249404907,
        0.05434262007474899, 1.253975749015808, 0.4710925817489624, 2.0402026176452637, 0.3761667311191559,
        2.8101983070373535, 0.0, 532.1281095316656, 0.0015100608579814434, 0.0, 0.24892060644619401,
        0.6414330005645752, 1.7163509130477905, 1.7163509130477905, 0.12534165382385254, 1.274202585220337,
        0.9872360229492188, 1.6572904586791992, 0.7884268760681152, 2.7199881076812744, 223.88965813840187,
        778.1928244236645, 0.0007703779265284538, 0.23001053368043647, 0.0, 1.6217702627182007, 0.7682454586029053,
        0.04613113775849342, 0.8084750175476074, 0.6353974342346191, 3.0068771839141846, 0.5495911240577698,
        2.2518651485443115, 0.0, 398.8638470500107, 0.0018628377001732588, 0.0, 0.28171731029354363,
    ],
}


@pytest.mark.parametrize("method", list(RECORDED))
def test_two_steps_are_bit_identical_to_the_label_code(method):
    with torch.random.fork_rng():
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            assert _fingerprint(method) == RECORDED[method]
        finally:
            torch.set_num_threads(threads)


def _old_flip(c: torch.Tensor, entries) -> torch.Tensor:
    """The label arithmetic `flip_cameras` was before typed cameras (bd9dd42)."""
    sign = torch.ones(4, 4, dtype=c.dtype)
    for i, j in entries:
        sign[i, j] = -1.0
    return torch.cat([(c[:, :16].reshape(-1, 4, 4) * sign).reshape(-1, 16), c[:, 16:]], dim=1)


@pytest.mark.parametrize(("kind", "flip_type", "entries"), [
    ("yaw", "flip_both", ((2, 0), (0, 1), (0, 2), (0, 3))),
    ("yaw", "flip_both_shapenet", ((0, 0), (2, 1), (2, 2), (2, 3))),
    ("pitch", "flip_both", ((2, 1), (0, 1), (1, 0), (1, 2), (1, 3))),
])
def test_pof3d_flip_is_a_cameras_operation_equal_to_the_label_arithmetic(kind, flip_type, entries):
    labels = get_prior("synthetic_heads").sample(5, torch.Generator().manual_seed(1)).to_label().float()
    flipped = flip_cameras(Cameras.from_label(labels), kind, flip_type)
    assert isinstance(flipped, Cameras)
    assert torch.equal(flipped.to_label(), _old_flip(labels, entries))
    assert torch.equal(flip_cameras(labels, kind, flip_type), _old_flip(labels, entries))  # labels give labels


if __name__ == "__main__":  # prints the numbers pinned below
    torch.set_num_threads(1)
    for m in ("eg3d", "hyperpose", "eg3d-posereg", "pof3d", "hyperpose+pof3d", "eg3d-posereg+pof3d"):
        print(repr(m), _fingerprint(m))
