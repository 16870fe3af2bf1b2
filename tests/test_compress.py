"""Compression of jdd-noise: the student network, distillation, sub-networks, int8 and sparsity."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch

from rawdev.cfa import bayer_masks, mosaic
from rawdev.errors import UsageError
from rawdev.models.li2020 import StudentJDD, macs_per_pixel, student_border
from rawdev.models.quantise import Int8Student, calibrate_ranges, magnitude_sparsify, sparsity
from rawdev.stages.demosaic import DemosaicMethod, demosaic


def _m3(n=2, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    rgb = torch.rand(n, 3, size // 8, size // 8, generator=g).repeat_interleave(8, -1).repeat_interleave(8, -2)
    return mosaic(rgb, "GRBG") * bayer_masks("GRBG", size, size), rgb


def _randomise(net: StudentJDD, seed=1) -> StudentJDD:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return net


def test_fresh_student_is_malvar():
    net = StudentJDD((8,) * 3, 4)
    m3, _ = _m3()
    out = net(m3, torch.tensor([0.0, 0.05]))
    b = student_border(3)
    ref = demosaic(m3.sum(1, keepdim=True), "GRBG", DemosaicMethod.MALVAR2004)[..., b:-b, b:-b]
    assert out.shape == (2, 3, 64 - 2 * b, 64 - 2 * b)
    assert torch.allclose(out, ref, atol=1e-5)


def test_fresh_student_on_menon_is_menon_and_starts_from_an_earlier_run(tmp_path):
    """A Menon-based student computes Menon2007 exactly at step 0 (its 10 px of context keep the
    base's mirrored edges out of the output), also when it starts from a run that corrected Malvar."""
    from rawdev.train.compress import init_student
    from rawdev.train.loop import CHECKPOINT_NAME

    with pytest.raises(ValueError):
        StudentJDD((8,) * 4, 4, base="menon")  # border 9 < the 10 px Menon needs
    g = torch.Generator().manual_seed(3)
    rgb = torch.rand(2, 3, 80, 80, generator=g)
    m3 = mosaic(rgb, "GRBG") * bayer_masks("GRBG", 80, 80)
    b = student_border(5)
    ref = demosaic(m3.sum(1, keepdim=True), "GRBG", DemosaicMethod.MENON2007)[..., b:-b, b:-b]
    net = StudentJDD((8,) * 5, 4, base="menon")
    assert torch.allclose(net(m3, torch.tensor([0.0, 0.05])), ref, atol=1e-5)
    old = _randomise(StudentJDD((8,) * 5, 4))  # a trained Malvar student stands in
    recipe = {"widths": [8] * 5, "post_width": 4, "slim_l1": 0.0}  # an older run's recipe: no "base"
    torch.save({"step": 7, "model": old.state_dict(), "extra": {"recipe": recipe}}, tmp_path / CHECKPOINT_NAME)
    assert init_student(net, tmp_path) == 7
    assert torch.equal(net.convs[0].weight, old.convs[0].weight)
    assert torch.allclose(net(m3, torch.tensor([0.0, 0.05])), ref, atol=1e-5)
    # a post layer that also sees the base: the earlier run's function, its new inputs at zero
    seen = StudentJDD((8,) * 5, 4, base="menon", base_input=True)
    init_student(seen, tmp_path)
    assert torch.equal(seen.post.weight[:, 6:], torch.zeros_like(seen.post.weight[:, 6:]))
    old.out.weight.data.normal_()
    torch.save({"step": 8, "model": old.state_dict(), "extra": {"recipe": dict(recipe, base="menon")}},
               tmp_path / CHECKPOINT_NAME)
    init_student(seen, tmp_path)
    old_menon = StudentJDD((8,) * 5, 4, base="menon")
    old_menon.load_state_dict(old.state_dict())
    assert torch.allclose(seen(m3, torch.tensor([0.0, 0.05])), old_menon(m3, torch.tensor([0.0, 0.05])), atol=1e-5)


def test_once_for_all_subnet_equals_the_sliced_network():
    net = _randomise(StudentJDD((12,) * 3, 4, gates=True))
    m3, _ = _m3()
    s = torch.tensor([0.01, 0.03])
    for w in (0.5, 1.0):
        sub = net.subnet(w)
        assert sub.gates is None and sub.widths == net.active_widths(w)
        assert torch.allclose(sub(m3, s), net(m3, s, width=w), atol=1e-5)


def test_prune_drops_zero_gates_exactly():
    net = _randomise(StudentJDD((12,) * 3, 4, gates=True))
    with torch.no_grad():
        net.gates[1][:5] = 0.0
    cut = net.prune(1e-6)
    assert cut.widths == (12, 7, 12)
    m3, _ = _m3()
    s = torch.tensor([0.0, 0.02])
    assert torch.allclose(cut(m3, s), net(m3, s), atol=1e-5)
    assert macs_per_pixel(cut.widths, 4) < macs_per_pixel(net.widths, 4)


def test_int8_trunk_tracks_float_and_sparsity_counts():
    net = _randomise(StudentJDD((16,) * 3, 8)).eval()
    m3, _ = _m3(size=96)
    s = torch.tensor([0.0, 0.04])
    q = Int8Student(net, calibrate_ranges(net, [(m3, s)]))
    with torch.no_grad():
        ref, got = net(m3, s), q(m3, s)
    mse = float((ref - got).square().mean())
    assert 10 * np.log10(float(ref.square().mean()) / mse) > 25  # int8 noise well below the signal
    with pytest.raises(ValueError):
        Int8Student(net, {})
    sp = magnitude_sparsify(net, 0.75)
    assert abs(sparsity(sp) - 0.75) < 0.01 and sparsity(net) == 0.0


def test_int8_built_from_stored_ranges_equals_fx_conversion():
    """The int8 trunk built directly from stored ranges computes exactly what FX's convert_fx makes of
    the calibrated trunk, and the stored min/max give the x86 HistogramObserver's own parameters (its
    search over an empty histogram), so loading needs neither FX nor that search."""
    from torch.ao.quantization.quantize_fx import convert_fx

    from rawdev.models.quantise import _observers, _prepare

    net = _randomise(StudentJDD((16,) * 3, 8)).eval()
    m3, _ = _m3(size=96)
    s = torch.tensor([0.0, 0.04])
    ranges = calibrate_ranges(net, [(m3, s)])
    x = net.features(m3, s)
    prepared = _prepare(net, x)
    obs = _observers(prepared)
    assert obs and all(type(o).__name__ == "HistogramObserver" for o in obs.values())
    for k, (name, o) in enumerate(obs.items()):
        o.min_val, o.max_val = ranges[f"{name}.min_val"].clone(), ranges[f"{name}.max_val"].clone()
        fast_scale, fast_zero = o._calculate_qparams(o.min_val, o.max_val)
        if k < 2:  # the histogram search costs about a second each
            slow_scale, slow_zero = o.calculate_qparams()
            assert torch.equal(slow_scale, fast_scale) and torch.equal(slow_zero, fast_zero)
        o.calculate_qparams = functools.partial(o._calculate_qparams, o.min_val, o.max_val)
    fx = convert_fx(prepared)
    q = Int8Student(net, ranges)
    with torch.no_grad():
        assert torch.equal(fx(x.contiguous()), q.qtrunk(x.contiguous()))
        assert torch.equal(q(m3, s), net.finish(m3, fx(x.contiguous())))


def test_distillation_runs_resumes_and_exports(tmp_path):
    from PIL import Image

    from rawdev.cli.compress import parse_widths
    from rawdev.train.compress import CompressRecipe, export_student, read_student, train_student
    from rawdev.train.loop import TrainConfig

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    recipe = CompressRecipe(widths=parse_widths("8x3"), post_width=4, ofa_widths=(0.5, 1.0), slim_l1=0.01,
                            patch=72, batch=2)
    teacher = lambda m3, sigma: m3[..., 31:-31, 31:-31].sum(1, keepdim=True).expand(-1, 3, -1, -1)  # noqa: E731
    run = tmp_path / "run"
    cfg = TrainConfig(steps=2, lr=1e-3, device="cpu", run_dir=run, log_every=1, checkpoint_every=1)
    res, net = train_student([photos], cfg, recipe, teacher=teacher)
    assert res.step == 2 and net.gates is not None
    cfg3 = TrainConfig(steps=3, lr=1e-3, device="cpu", run_dir=run, log_every=1, checkpoint_every=1, resume=True)
    res, net = train_student([photos], cfg3, recipe, teacher=teacher)
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert res.step == 3 and steps == [1, 2, 3]
    path = export_student(net.prune(0.5), tmp_path / "s.safetensors", {"teacher": "test"})
    back, meta = read_student(path)
    assert meta["teacher"] == "test" and back.widths == net.prune(0.5).widths
    with pytest.raises(UsageError):
        export_student(net, tmp_path / "gated.safetensors")
    with pytest.raises(UsageError):
        parse_widths("wide")


@pytest.mark.parametrize("base,base_input", [("malvar", False), ("menon", True)])
def test_student_runner_is_exact_under_tiling(base, base_input):
    from rawdev.backends.learned import student_runner

    net = _randomise(StudentJDD((8,) * 6, 4, base=base, base_input=base_input))
    runner = student_runner(net, device="cpu", tile=48, batch=1, workers=1)
    assert runner.spec.margin == 14
    x = torch.rand(1, 1, 101, 87)
    whole = student_runner(net, device="cpu", tile=512, batch=1, workers=1)
    for pattern in ("RGGB", "GBRG"):
        a = runner(x, pattern, noise=torch.tensor([0.02]))
        b = whole(x, pattern, noise=torch.tensor([0.02]))
        assert a.shape == (1, 3, 101, 87)
        assert torch.allclose(a, b, atol=1e-5)


def test_shipped_students_build_and_int8_tracks_float():
    from rawdev.backends.registry import get

    fp = get("jdd-fast").build(device="cpu", tile=64)
    q = get("jdd-fast-int8").build(device="cpu", tile=64)
    g = torch.Generator().manual_seed(3)
    x = torch.rand(1, 1, 70, 90, generator=g) * 0.8
    a = fp(x, "RGGB", noise=torch.tensor([0.02]))
    b = q(x, "RGGB", noise=torch.tensor([0.02]))
    assert a.shape == b.shape == (1, 3, 70, 90)
    mse = float((a - b).square().mean())
    assert 10 * np.log10(1.0 / mse) > 35


def test_int8_student_builds_and_runs_without_warnings():
    """PyTorch's deprecation warnings for its quantised modules printed on every int8 develop."""
    import warnings

    from rawdev.backends.registry import get

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        q = get("jdd-fast-int8").build(device="cpu", tile=64)
        q(torch.rand(1, 1, 40, 40) * 0.8, "RGGB", noise=torch.tensor([0.02]))
    assert [str(w.message) for w in caught] == []


def test_log_l2_weighs_each_sample_by_its_own_error():
    """log-l2 is the mean of ln(per-sample MSE + 1e-6): halving one sample's error moves it by the
    same amount whatever that error's size, where plain L2 hardly sees the small one."""
    from rawdev.train.compress import distill_loss

    class Same(torch.nn.Module):
        def forward(self, x, sigma, width=None):
            return x

    target = torch.zeros(2, 3, 4, 4)
    out = torch.stack([torch.full((3, 4, 4), 1e-2), torch.full((3, 4, 4), 1e-1)])
    batch = {"mosaic3": out, "sigma": torch.zeros(2), "target": target, "widths": []}
    got = float(distill_loss("log-l2")(Same(), batch))
    assert got == pytest.approx(float(np.mean(np.log([1e-4 + 1e-6, 1e-2 + 1e-6]))), rel=1e-5)
    assert float(distill_loss("l2")(Same(), batch)) == pytest.approx((1e-4 + 1e-2) / 2, rel=1e-5)
    with pytest.raises(UsageError):
        from rawdev.train.compress import CompressRecipe

        CompressRecipe(widths=(8,) * 3, loss="psnr").validate()


def test_colour_augmentation_recolours_the_distillation_photos():
    """``colour_aug`` (``--colour-aug``): the same draws give the same crops, recoloured; the teacher's
    target and the student's input both come from the recoloured photo."""
    from rawdev.train.compress import CompressRecipe, make_distill_batch
    from rawdev.train.data import PhotoPool

    g = torch.Generator().manual_seed(0)
    pool = PhotoPool([(torch.rand(3, 96, 96, generator=g) * 255).to(torch.uint8) for _ in range(2)])
    teacher = lambda m3, sigma: m3[..., 31:-31, 31:-31]  # noqa: E731
    plain, recoloured = (make_distill_batch(pool, CompressRecipe(widths=(8,) * 3, patch=72, batch=4, colour_aug=p),
                                            torch.Generator().manual_seed(1), teacher, student_border(3))
                         for p in (0.0, 1.0))
    assert not torch.equal(plain["rgb"], recoloured["rgb"])
    # a channel permutation and a saturation gain about the mean: the grey level of a pixel is kept
    # (until clipping), so the mean over channels barely moves
    assert (plain["rgb"].mean(1) - recoloured["rgb"].mean(1)).abs().mean() < 0.05
    with pytest.raises(UsageError):
        CompressRecipe(widths=(8,) * 3, colour_aug=1.5).validate()
