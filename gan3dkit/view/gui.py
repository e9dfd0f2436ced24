"""The viewer's control panel (viser widgets, shared by every tab) and the settings it stands for."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from .exports import EXPORTS
from .render import CONDITIONING, PANELS, VIEW_MODES, ViewSettings
from .sources import ViewSource

if TYPE_CHECKING:
    from viser import GuiMultiSliderHandle, GuiSliderHandle

_EXPORT_LABELS = {"png": "Picture (PNG)", "depth": "Depth (.npy)", "mesh": "Mesh (PLY)", "video": "Orbit video"}
_PANEL_LABELS = {"tuned": "after tuning", "projected": "before tuning", "both": "before | after"}


class Controls:
    """Seed, psi, conditioning camera, view mode, samples per ray, resolutions, GANSpace sliders, exports.

    `on_change()` runs after any setting changes; `on_export(kind, client)` and `on_camera(name, client)` after a
    button press (in viser's worker threads).
    """

    def __init__(self, server, source: ViewSource, ganspace=None, components: int = 8,
                 on_change: Callable[[], None] = lambda: None,
                 on_export: Callable[[str, object], None] = lambda kind, client: None,
                 on_camera: Callable[[str, object], None] = lambda name, client: None) -> None:  # fmt: skip
        gui = server.gui
        self.source = source
        self.on_change = on_change
        self.status = gui.add_markdown(describe(source))
        seeds = source.planes is None and source.ws is None
        with gui.add_folder("Latent", visible=seeds):
            self.seed = gui.add_number("Seed", 0, min=0, max=2**31 - 1, step=1)
            self.random = gui.add_button("Random seed")
            self.psi = gui.add_slider("Truncation ψ", min=0.0, max=1.5, step=0.05, initial_value=1.0)
            self.conditioning = gui.add_dropdown("Conditioning", CONDITIONING, initial_value="frontal",
                                                 hint="Camera the mapping sees: frontal, or the render camera "
                                                 "(EG3D's visualizer 'entangle'; re-synthesises every frame)")
        r = source.rendering
        with gui.add_folder("Render"):
            self.mode = gui.add_dropdown("View", VIEW_MODES, initial_value="rgb")
            self.panel = gui.add_dropdown("Generator", [_PANEL_LABELS[p] for p in PANELS],
                                          initial_value=_PANEL_LABELS["tuned"], visible=source.tuned is not None)
            self.samples = gui.add_slider("Samples per ray", min=4, max=max(4 * r.depth_resolution, 8), step=1,
                                          initial_value=r.depth_resolution,
                                          hint="Coarse samples (the importance samples scale alike)")
            top = max(source.nrr, source.img_resolution)
            self.preview_nrr = gui.add_slider("Resolution while moving", min=8, max=top, step=1,
                                              initial_value=max(8, min(source.nrr, max(16, source.nrr // 2) // 8 * 8)))
            self.refine_nrr = gui.add_slider("Resolution when still", min=8, max=top, step=1,
                                             initial_value=source.nrr)
        with gui.add_folder("Camera"):
            self.frontal = gui.add_button("Frontal view")
            self.estimated = gui.add_button("Estimated camera", visible=source.camera is not None)
        self.edits: list[tuple[GuiSliderHandle[float], GuiMultiSliderHandle[int]]] = []
        if ganspace is not None:
            num_ws = source.G.num_ws
            with gui.add_folder("GANSpace"):
                for k in range(min(components, ganspace.num_components)):
                    strength = gui.add_slider(f"PC{k} (σ)", min=-5.0, max=5.0, step=0.1, initial_value=0.0)
                    layers = gui.add_multi_slider(f"PC{k} layers", min=0, max=num_ws, step=1,
                                                  initial_value=(0, num_ws), min_range=1)
                    self.edits.append((strength, layers))
                self.reset_edits = gui.add_button("Reset edits")

                @self.reset_edits.on_click
                def _(_event) -> None:
                    for strength, _layers in self.edits:
                        # viser declares the setter apart from the getter, which mypy reads as read-only
                        strength.value = 0.0  # type: ignore[misc]

        with gui.add_folder("Export"):
            self.exports = {kind: gui.add_button(_EXPORT_LABELS[kind]) for kind in EXPORTS}
        for handle in [self.seed, self.psi, self.conditioning, self.mode, self.panel, self.samples, self.preview_nrr,
                       self.refine_nrr] + [h for pair in self.edits for h in pair]:  # fmt: skip
            handle.on_update(lambda _event: self.on_change())

        @self.random.on_click
        def _(_event) -> None:
            self.seed.value = random.randrange(100_000)

        for kind, button in self.exports.items():
            button.on_click(lambda event, kind=kind: on_export(kind, event.client))
        self.frontal.on_click(lambda event: on_camera("frontal", event.client))
        self.estimated.on_click(lambda event: on_camera("estimated", event.client))

    def settings(self) -> ViewSettings:
        panel = next(p for p, label in _PANEL_LABELS.items() if label == self.panel.value)
        edits = tuple((k, float(s.value), int(r.value[0]), int(r.value[1]))
                      for k, (s, r) in enumerate(self.edits) if float(s.value) != 0.0)  # fmt: skip
        samples = int(self.samples.value)
        return ViewSettings(seed=int(self.seed.value), psi=float(self.psi.value), conditioning=self.conditioning.value,
                            mode=self.mode.value, panel=panel, edits=edits,
                            samples=0 if samples == self.source.rendering.depth_resolution else samples)  # fmt: skip

    def resolutions(self) -> tuple[int, int]:
        """(neural rendering resolution while the camera moves, when it is still)."""
        return int(self.preview_nrr.value), int(self.refine_nrr.value)


def describe(source: ViewSource, note: str = "") -> str:
    """The panel's header: what is shown, and (for a followed run) its progress."""
    lines = [f"**{source.kind}**: `{source.path.name}`",
             f"{source.img_resolution}² output, rendered at {source.nrr}²"]  # fmt: skip
    if source.kind == "run" and source.progress:
        p = source.progress
        lines.append(f"kimg {p.get('nimg', 0) / 1000:.1f}, step {p.get('step', 0)} (follows the newest checkpoint)")
    if note:
        lines.append(note)
    return "  \n".join(lines)
