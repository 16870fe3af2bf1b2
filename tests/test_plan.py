"""The develop plan: every decision of a file made once, frozen, the route chosen from the spec."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rawdev import pipeline
from rawdev.backends import registry
from rawdev.errors import UsageError
from rawdev.io.raw import read_raw
from rawdev.pipeline import DevelopPlan, PipelineConfig, Route, plan_develop
from rawdev.synthetic import demo_scene, write_dng


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    path = write_dng(tmp_path_factory.mktemp("plan") / "p.dng", demo_scene(40, 58), pattern="GBRG",
                     shot=1e-3, read=1e-5)
    return read_raw(path)


def _route_of(spec) -> Route:
    if spec.input_domain == "raw_file":
        return Route.LIBRAW
    return Route.DISPLAY if spec.output_domain == "srgb_display" else Route.DEMOSAIC


def test_route_follows_the_spec(raw, monkeypatch):
    # no weights loaded: the plan's runner is whatever the spec builds, checked by identity below
    built = []
    monkeypatch.setattr(pipeline, "_runner", lambda spec, device, tile: built.append(spec.name) or spec.name)
    for spec in registry.list_backends():
        plan = plan_develop(raw, PipelineConfig(backend=spec.name, device="cpu"))
        assert plan.route is _route_of(spec) and plan.spec is spec, spec.name
        assert plan.backend == spec.name and plan.orientation == raw.meta.orientation
        if plan.route is Route.LIBRAW:
            assert plan.runner is None and plan.noise_model is None
        else:
            assert plan.runner == spec.name and np.array_equal(plan.matrix, raw.meta.rgb_cam)
            # a noise model: for noise-aware back-ends, and for the noise reduction where it runs
            assert (plan.noise_model is not None) == (spec.uses_noise or plan.denoise_sigma is not None)
            assert plan.denoise_sigma is None or (spec.kind == "classical" and spec.input_domain == "mosaic_srgb_wb")
            assert (plan.noise_coefficients is not None) == (plan.route is Route.DISPLAY)
    assert built == [s.name for s in registry.list_backends() if _route_of(s) is not Route.LIBRAW]


def test_plan_is_frozen_and_made_once_per_file(raw, monkeypatch):
    plan = plan_develop(raw, PipelineConfig(backend="malvar", auto_bright=True, exposure_ev=-4.0))
    assert isinstance(plan, DevelopPlan) and plan.exposure_ev > -4.0  # auto-brightening folded in
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.exposure_ev = 0.0
    calls = []
    real = pipeline.plan_develop
    monkeypatch.setattr(pipeline, "plan_develop", lambda *a, **k: calls.append(1) or real(*a, **k))
    res = pipeline.develop_raw(raw, PipelineConfig(backend="malvar", output_bits=16))
    assert calls == [1] and res.image.dtype == pipeline.output_dtype(16) == np.uint16


def test_sensor_the_spec_cannot_take_goes_to_libraw(raw):
    cell = np.array([[1, 2, 1, 0, 1, 0], [0, 1, 0, 1, 2, 1]] * 3)  # an X-Trans-like 6x6 layout
    xraw = dataclasses.replace(raw, meta=dataclasses.replace(raw.meta, cfa=dataclasses.replace(raw.meta.cfa, kind="xtrans", cell=cell)))
    plan = plan_develop(xraw, PipelineConfig(backend="malvar"))
    assert plan.route is Route.LIBRAW and plan.backend == registry.LIBRAW_FALLBACK
    assert any("handles bayer only" in n for n in plan.notices)


def test_isp_refuses_another_output_space_before_building(raw, monkeypatch):
    monkeypatch.setattr(pipeline, "_runner", lambda *a: pytest.fail("built a runner for a refused plan"))
    isp = next(s.name for s in registry.list_backends() if s.output_domain == "srgb_display")
    with pytest.raises(UsageError, match="display sRGB itself"):
        plan_develop(raw, PipelineConfig(backend=isp, colorspace="display-p3"))


def test_learned_isp_start_is_told_what_jdd_noise_is_told(raw, monkeypatch):
    """The learned ISPs start from jdd-noise; their start must get the figure `--backend jdd-noise`
    gets for the same file (the RMS of the per-pixel sigma, stages.noise.backend_sigma). Told the
    sigma at 18 % grey instead (9.30/255 against 15.11/255 on a noisy Kodak round trip) they fell
    0.5-1.5 dB behind jdd-noise on noisy input."""
    monkeypatch.setattr(pipeline, "_runner", lambda spec, device, tile: spec.name)
    for name in ("pynet", "pynet-ca", "cameranet"):
        isp = plan_develop(raw, PipelineConfig(backend=name, device="cpu"))
        jdd = plan_develop(raw, PipelineConfig(backend="jdd-noise", device="cpu"))
        assert isp.route is Route.DISPLAY and isp.sigma == pytest.approx(jdd.sigma, rel=1e-6), name
    # and a develop hands that figure to the start
    from rawdev.backends.isp import JDDNoiseStart

    told = []
    call = JDDNoiseStart.__call__
    monkeypatch.undo()  # the real runners from here on
    monkeypatch.setattr(JDDNoiseStart, "__call__", lambda self, m, n: told.append(self.sigma) or call(self, m, n))
    pipeline.develop_raw(raw, PipelineConfig(backend="cameranet", device="cpu"))
    assert told and all(t == pytest.approx(jdd.sigma, rel=1e-6) for t in told)
