"""rawdev.train: photo pools and packs, the resumable loop, the jdd-noise recipe, ``rawdev train jdd``.

Everything runs on tiny photos and tiny networks in a few seconds on a CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rawdev.errors import InputError, UsageError
from rawdev.models.gharbi2016 import BayerDemosaicNet
from rawdev.train import data as tdata
from rawdev.train import jdd, loop


def _smooth(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR))


@pytest.fixture()
def photo_dir(tmp_path: Path) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    for i in range(3):
        Image.fromarray(_smooth(72, 96, i)).save(d / f"p{i}.png")
    Image.fromarray(_smooth(160, 176, 9)).save(d / "big.jpg", quality=95)
    (d / "LICENSE.txt").write_text("attribution")
    return d


@pytest.fixture()
def pack(tmp_path: Path) -> Path:
    tiles = [_smooth(80, 96, i) for i in range(6)]
    path = tmp_path / "pack.npz"
    tdata.write_pack(path, tiles, ["a", "a", "b", "b", "b", "a"], ["train"] * 4 + ["val"] * 2)
    return path


class TestData:
    def test_find_photos_skips_other_files(self, photo_dir):
        assert [p.name for p in tdata.find_photos(photo_dir)] == ["big.jpg", "p0.png", "p1.png", "p2.png"]

    def test_jpeg_downscaled_by_two(self, photo_dir):
        assert tuple(tdata.load_photo(photo_dir / "big.jpg").shape) == (3, 80, 88)
        assert tuple(tdata.load_photo(photo_dir / "big.jpg", jpeg_downscale=1).shape) == (3, 160, 176)
        assert tuple(tdata.load_photo(photo_dir / "p0.png").shape) == (3, 72, 96)

    def test_load_errors(self, tmp_path):
        with pytest.raises(InputError):
            tdata.load_photo(tmp_path / "missing.png")
        (tmp_path / "bad.png").write_text("not an image")
        with pytest.raises(InputError):
            tdata.load_photo(tmp_path / "bad.png")
        with pytest.raises(InputError):
            tdata.load_sources([tmp_path / "nothing_here"])

    def test_pack_round_trip_is_lossless(self, tmp_path):
        tiles = [_smooth(80, 96, i) for i in range(3)]
        path = tmp_path / "p.npz"
        tdata.write_pack(path, tiles, ["x"] * 3, ["train", "val", "train"])
        train, names = tdata.read_pack(path, "train")
        val, _ = tdata.read_pack(path, "val")
        assert len(train) == 2 and len(val) == 1
        assert np.array_equal(train[1].permute(1, 2, 0).numpy(), tiles[2])
        assert np.array_equal(val[0].permute(1, 2, 0).numpy(), tiles[1])
        assert names[0].endswith("x#0")
        raw = tmp_path / "raw.npz"
        tdata.write_pack(raw, tiles, ["x"] * 3, ["train"] * 3, lossless_webp=False)
        assert np.array_equal(tdata.read_pack(raw, "all")[0][2].permute(1, 2, 0).numpy(), tiles[2])

    def test_pack_rejects_mixed_sizes(self, tmp_path):
        with pytest.raises(UsageError):
            tdata.write_pack(tmp_path / "p.npz", [_smooth(80, 96, 0), _smooth(64, 96, 1)], ["a", "a"], ["train"] * 2)

    def test_load_sources_mixes_folders_and_packs(self, photo_dir, pack):
        pool = tdata.load_sources([photo_dir, pack])
        assert len(pool) == 4 + 4
        val = tdata.load_sources([photo_dir, pack], split="val")
        assert len(val) == 2

    @pytest.mark.parametrize("use_pack", [False, True])
    def test_sample_shapes_range_and_seed(self, photo_dir, pack, use_pack):
        pool = tdata.load_sources([pack] if use_pack else [photo_dir])
        a = pool.sample(5, 64, generator=torch.Generator().manual_seed(1))
        b = pool.sample(5, 64, generator=torch.Generator().manual_seed(1))
        c = pool.sample(5, 64, generator=torch.Generator().manual_seed(2))
        assert a.shape == (5, 3, 64, 64) and a.dtype == torch.float32
        assert 0 <= float(a.min()) and float(a.max()) <= 1
        assert torch.equal(a, b) and not torch.equal(a, c)
        with pytest.raises(UsageError):
            pool.sample(1, 200, generator=torch.Generator())

    def test_crops_come_from_the_photos(self):
        photo = torch.arange(3 * 8 * 10, dtype=torch.int64).reshape(3, 8, 10).remainder(251).to(torch.uint8)
        pool = tdata.PhotoPool([photo, photo.clone()])  # stacked fast path
        x = pool.sample(16, 4, generator=torch.Generator().manual_seed(0), augment=False)
        full = photo.float() / 255
        for crop in x:
            found = any(torch.equal(crop, full[:, t:t + 4, c:c + 4]) for t in range(0, 5, 2) for c in range(0, 7, 2))
            assert found

    def test_colour_augment(self):
        x = torch.rand(64, 3, 4, 4, generator=torch.Generator().manual_seed(0))
        assert torch.equal(tdata.colour_augment(x, generator=torch.Generator(), p=0.0), x)
        y = tdata.colour_augment(x, generator=torch.Generator().manual_seed(1), p=1.0, max_saturation=1.0)
        # saturation 1: a pure channel permutation of each image
        assert torch.allclose(y.sort(dim=1).values, x.sort(dim=1).values, atol=1e-6)
        z = tdata.colour_augment(x, generator=torch.Generator().manual_seed(1), p=1.0)
        assert 0 <= float(z.min()) and float(z.max()) <= 1
        spread = lambda t: (t.max(1).values - t.min(1).values).mean()  # noqa: E731
        assert float(spread(z)) > float(spread(x))

    def test_dihedral(self):
        x = torch.arange(2 * 1 * 3 * 3, dtype=torch.float32).reshape(2, 1, 3, 3)
        assert torch.equal(tdata.dihedral(x, torch.tensor([0, 0])), x)
        y = tdata.dihedral(x, torch.tensor([1, 6]))
        assert torch.equal(y[0], x[0].flip(-1))
        assert torch.equal(y[1], x[1].flip(-2).transpose(-1, -2))


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 1)

    def forward(self, x):
        return self.lin(x)


def _tiny_batch(step, g):
    x = torch.randn(8, 4, generator=g, device=g.device)
    return {"x": x, "y": x @ torch.tensor([1.0, -2.0, 0.5, 3.0], device=g.device)[:, None]}


def _tiny_loss(model, b):
    return (model(b["x"]) - b["y"]).square().mean()


def _run_tiny(run_dir, steps=12, resume=False, crash_at=None, **kw):
    torch.manual_seed(123)
    model = _Tiny()
    cfg = loop.TrainConfig(steps=steps, lr=0.2, device="cpu", run_dir=run_dir, resume=resume,
                           checkpoint_every=4, log_every=2, schedule="cosine", warmup_steps=2, **kw)

    class Crash(Exception):
        pass

    def on_step(step, loss):
        if crash_at is not None and step == crash_at:
            raise Crash

    try:
        res = loop.train(model, _tiny_batch, _tiny_loss, cfg, on_step=on_step,
                         val_fn=lambda m: {"w0": round(float(m.lin.weight[0, 0]), 6)})
    except Crash:
        res = None
    return model, res


class TestLoop:
    def test_resolve_device(self):
        assert loop.resolve_device("cpu").type == "cpu"
        assert loop.resolve_device("auto").type in ("cpu", "cuda")
        with pytest.raises(UsageError):
            loop.resolve_device("tpu")

    def test_lr_schedule(self):
        cfg = loop.TrainConfig(steps=100, schedule="cosine", warmup_steps=10, min_lr_ratio=0.0)
        assert loop.lr_factor(0, cfg) == pytest.approx(0.1)
        assert loop.lr_factor(10, cfg) == pytest.approx(1.0)
        assert loop.lr_factor(55, cfg) == pytest.approx(0.5)
        assert loop.lr_factor(100, cfg) == pytest.approx(0.0)
        assert loop.lr_factor(50, loop.TrainConfig(steps=100)) == 1.0

    def test_learns_and_logs(self, tmp_path):
        model, res = _run_tiny(tmp_path / "r", steps=60)
        assert res.completed and res.step == 60 and res.last_loss < 0.5
        records = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
        assert [r["step"] for r in records if "loss" in r] == list(range(2, 61, 2))
        assert [r["step"] for r in records if "val" in r] == [0, 60]
        ck = loop.load_checkpoint(tmp_path / "r")
        assert ck["step"] == 60 and set(ck) >= {"model", "optimizer", "rng", "config"}

    def test_resume_is_exact(self, tmp_path):
        whole, _ = _run_tiny(tmp_path / "a")
        _run_tiny(tmp_path / "b", crash_at=6)  # checkpoint at step 4, then a crash
        assert loop.load_checkpoint(tmp_path / "b")["step"] == 4
        resumed, res = _run_tiny(tmp_path / "b", resume=True)
        assert res.step == 12
        for p, q in zip(whole.state_dict().values(), resumed.state_dict().values()):
            assert torch.equal(p, q)
        assert (tmp_path / "a" / "log.jsonl").read_text() .count("loss") == \
            (tmp_path / "b" / "log.jsonl").read_text().count("loss")

    def test_resume_needs_a_checkpoint(self, tmp_path):
        with pytest.raises(UsageError):
            _run_tiny(tmp_path / "none", resume=True)

    def test_time_limit_stops_and_resumes(self, tmp_path):
        _, res = _run_tiny(tmp_path / "t", time_limit_s=0.0)
        assert not res.completed and res.step == 0
        _, res = _run_tiny(tmp_path / "t", resume=True)
        assert res.completed and res.step == 12


def _small_net():
    torch.manual_seed(0)
    return BayerDemosaicNet(depth=2, width=8, noise_input=True)


class TestJDD:
    def test_batch(self, pack):
        pool = tdata.load_sources([pack])
        recipe = jdd.JDDRecipe(patch=64, batch=6, p_clean=0.5, clip_prob=0.0, target="gt")
        b = jdd.make_jdd_batch(pool, recipe, torch.Generator().manual_seed(0), border=5)
        assert b["mosaic3"].shape == (6, 3, 64, 64) and b["sigma"].shape == (6,)
        assert b["target"].shape == (6, 3, 54, 54)
        # zero-filled GRBG: G at (0, 0), R at (0, 1), B at (1, 0)
        m = b["mosaic3"]
        assert float(m[:, 0, 0::2, 0::2].abs().max()) == 0 and float(m[:, 1, 0::2, 1::2].abs().max()) == 0
        assert float(m[:, 2, 0::2, :].abs().max()) == 0
        clean = b["sigma"] == 0
        assert clean.any() and (~clean).any()
        assert float(b["sigma"].max()) <= 20 / 255

    def test_clean_samples_are_exact_mosaics(self, pack):
        pool = tdata.load_sources([pack])
        recipe = jdd.JDDRecipe(patch=64, batch=4, p_clean=1.0, hetero_prob=0.5, target="gt")
        g = torch.Generator().manual_seed(3)
        b = jdd.make_jdd_batch(pool, recipe, g, border=5)
        rgb = pool.sample(4, 64, generator=torch.Generator().manual_seed(3))
        from rawdev.cfa import bayer_masks

        assert torch.equal(b["mosaic3"], rgb * bayer_masks("GRBG", 64, 64))
        assert torch.equal(b["target"], rgb[..., 5:-5, 5:-5])

    def test_teacher_targets(self, pack):
        torch.manual_seed(0)
        noise_free = BayerDemosaicNet(depth=2, width=8)
        net = BayerDemosaicNet.from_pretrained_noise_free(noise_free.state_dict(), depth=2, width=8)
        teacher = jdd._teacher_from(net)
        x = torch.rand(2, 3, 32, 32)
        with torch.no_grad():
            assert torch.equal(teacher(x), noise_free(x))
            assert torch.equal(net(x, torch.tensor([0.0, 0.05])), noise_free(x))  # zero-weight noise plane
        assert not any(p.requires_grad for p in teacher.parameters())
        pool = tdata.load_sources([pack])
        from rawdev.cfa import bayer_masks

        gen = lambda: torch.Generator().manual_seed(7)  # noqa: E731
        rgb = pool.sample(6, 64, generator=gen())
        with torch.no_grad():
            taught = teacher(rgb * bayer_masks("GRBG", 64, 64)).clamp(0, 1)
        b = jdd.make_jdd_batch(pool, jdd.JDDRecipe(patch=64, batch=6, target="teacher"), gen(), 5, teacher)
        assert torch.equal(b["target"], taught)
        b = jdd.make_jdd_batch(pool, jdd.JDDRecipe(patch=64, batch=6, p_clean=0.5, target="teacher-clean"),
                               gen(), 5, teacher)
        clean = b["sigma"] == 0
        assert clean.any() and (~clean).any()
        assert torch.equal(b["target"][clean], taught[clean])
        assert torch.equal(b["target"][~clean], rgb[~clean][..., 5:-5, 5:-5])
        with pytest.raises(UsageError):
            jdd.make_jdd_batch(pool, jdd.JDDRecipe(patch=64, batch=2), gen(), 5, None)

    def test_recipe_validation(self):
        with pytest.raises(UsageError):
            jdd.JDDRecipe(loss="ssim").validate()
        with pytest.raises(UsageError):
            jdd.JDDRecipe(p_clean=2).validate()
        with pytest.raises(UsageError):
            jdd.JDDRecipe(target="oracle").validate()

    def test_pretrained_start_equals_noise_free_model(self):
        try:
            path = jdd.locate_pretrained()
        except Exception:  # noqa: BLE001
            pytest.skip("demosaicnet's bayer.pth is not installed")
        net = jdd.build_model("pretrained").eval()
        ref = BayerDemosaicNet().eval()
        ref.load_state_dict(torch.load(path, weights_only=True))
        x = torch.rand(1, 3, 68, 68)
        with torch.no_grad():
            assert torch.equal(net(x, torch.tensor([0.05])), ref(x))

    def test_train_export_and_resume(self, pack, tmp_path):
        from safetensors.torch import load_file

        def go(steps, resume=False, crash=None):
            net = _small_net()
            cfg = loop.TrainConfig(steps=steps, device="cpu", run_dir=tmp_path / "run", resume=resume,
                                   checkpoint_every=2, log_every=1)

            def on_step(step, loss):
                if crash and step == crash:
                    raise KeyboardInterrupt

            try:
                res = jdd.train_jdd([pack], tmp_path / "w.safetensors", cfg, jdd.JDDRecipe(patch=64, batch=2),
                                    model=net, on_step=on_step)
            except KeyboardInterrupt:
                res = None
            return net, res

        whole, res = go(4)
        assert res.val is not None and set(res.val) == {"psnr_s0", "psnr_s10", "agree_s0"}
        sd = load_file(str(tmp_path / "w.safetensors"))
        assert all(v.dtype == torch.float32 for v in sd.values())
        again = BayerDemosaicNet(depth=2, width=8, noise_input=True)
        again.load_state_dict(sd, strict=True)
        (tmp_path / "w.safetensors").unlink()
        go(4, crash=3)
        resumed, res = go(4, resume=True)
        assert res.step == 4
        for p, q in zip(whole.state_dict().values(), resumed.state_dict().values()):
            assert torch.equal(p, q)


class TestCLI:
    def test_train_jdd_command(self, pack, tmp_path):
        from typer.testing import CliRunner

        from rawdev.cli.train import app

        out = tmp_path / "w.safetensors"
        args = ["jdd", "--data", str(pack), "--out", str(out), "--steps", "1", "--batch", "1", "--patch", "64",
                "--device", "cpu", "--run-dir", str(tmp_path / "run"), "--init", "none"]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
        assert out.is_file() and (tmp_path / "run" / "checkpoint.pt").is_file()
        res = CliRunner().invoke(app, args[:5] + ["--steps", "2"] + args[7:] + ["--resume"])
        assert res.exit_code == 0, res.output
        assert loop.load_checkpoint(tmp_path / "run")["step"] == 2

    def test_bad_data_exits_with_error(self, tmp_path):
        from typer.testing import CliRunner

        from rawdev.cli.train import app

        res = CliRunner().invoke(app, ["jdd", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "w"),
                                       "--steps", "1", "--device", "cpu", "--init", "none"])
        assert res.exit_code != 0


class TestISPTraining:
    """rawdev train pynet|pynet-ca|cameranet: stage by stage, exported weights load, resume continues."""

    def test_isp_batch_is_the_round_trip(self, pack):
        import torch

        from rawdev.train.isp import ISPRecipe, make_isp_batch

        pool = tdata.load_sources([pack])
        recipe = ISPRecipe(kind="cameranet", patch=64, batch=3, p_noise=0.0)
        b = make_isp_batch(pool, recipe, torch.Generator().manual_seed(0))
        assert b["mosaic"].shape == (3, 1, 64, 64) and b["target"].shape == (3, 3, 64, 64)
        assert float(b["noise"].abs().sum()) == 0.0
        # An untrained frame renders the bilinear demosaic of this mosaic through the inverse matrix:
        # close to the photo on these smooth tiles, which proves the synthesis and the matrix agree.
        from rawdev.backends.isp import make_isp

        net = make_isp("cameranet", width=8, padding_mode="zeros")
        with torch.no_grad():
            out = net(b["mosaic"], b["matrix"], b["noise"], level=0).clamp(0, 1)
        err = (out - b["target"])[..., 4:-4, 4:-4].abs().mean()
        assert float(err) < 0.02, float(err)

    def test_cameranet_joint_loss_keeps_the_restore_net_honest(self, pack):
        """The joint stage's loss is L1(final) + L1(Restore-Net output): each term is the one the
        separate stages see, so a Restore output that drifts from the image costs even when the
        Enhance-Net undoes the drift."""
        import torch

        from rawdev.backends.isp import make_isp
        from rawdev.train.isp import ISPRecipe, isp_loss, make_isp_batch

        pool = tdata.load_sources([pack])
        b = make_isp_batch(pool, ISPRecipe(kind="cameranet", patch=64, batch=2), torch.Generator().manual_seed(1))
        torch.manual_seed(0)
        net = make_isp("cameranet", width=8, padding_mode="zeros", base="menon-srgb")
        for m in net.modules():  # random output layers: the two terms differ
            if isinstance(m, torch.nn.Conv2d) and m.out_channels in (3, 12):
                torch.nn.init.normal_(m.weight, std=1e-3)
        with torch.no_grad():
            joint = float(isp_loss(0)(net, b))
            final = float((net(b["mosaic"], b["matrix"], b["noise"], level=0) - b["target"]).abs().mean())
            restore = float(isp_loss(1)(net, b))
        assert abs(joint - (final + restore)) < 1e-6 and abs(final - restore) > 1e-5

    def test_init_over_another_base_starts_at_that_base(self, pack, tmp_path):
        """--init with weights trained over bilinear, now over Menon: the output layer restarts at zero
        (the frame renders Menon exactly), the other trained layers are kept."""
        import torch
        from safetensors.torch import load_file

        from rawdev.train.isp import ISPRecipe, train_isp
        from rawdev.train.loop import TrainConfig

        first = tmp_path / "bilinear.safetensors"
        recipe = ISPRecipe(kind="cameranet", width=8, patch=64, batch=2, stage_steps={1: 3}, base="bilinear")
        assert train_isp([pack], first, TrainConfig(steps=1, run_dir=tmp_path / "r1", device="cpu", lr=1e-3),
                         recipe).completed
        second = tmp_path / "menon.safetensors"
        recipe2 = ISPRecipe(kind="cameranet", width=8, patch=64, batch=2, stage_steps={1: 1}, base="menon")
        # A vanishing learning rate: one Adam step moves every weight by about lr, i.e. not at all.
        cfg = TrainConfig(steps=1, run_dir=tmp_path / "r2", device="cpu", lr=1e-12)
        assert train_isp([pack], second, cfg, recipe2, init=first).completed
        a, b = load_file(first), load_file(second)
        heads = {k.rsplit(".", 1)[0] for k, v in a.items() if k.endswith("weight") and v.dim() == 4
                 and v.shape[0] in (3, 12)}
        assert heads
        for k in a:
            if k.rsplit(".", 1)[0] in heads:
                assert float(b[k].abs().max()) < 1e-9, k  # restarted at zero
            else:
                assert torch.allclose(a[k], b[k], atol=1e-9), k  # kept
        assert any(float(a[k + ".weight"].abs().max()) > 0 for k in heads)  # the first run had trained them

    @pytest.mark.parametrize("kind,steps", [("pynet", {1: 1, 0: 1}), ("cameranet", {1: 1, 0: 1})])
    def test_trains_over_the_jdd_noise_start(self, pack, tmp_path, kind, steps):
        """The jdd-noise start runs in inference mode inside a training step (a coarse PyNET level
        pools it, CameraNet's joint loss sees it twice); the step must still reach the network."""
        from safetensors.torch import load_file

        from rawdev.train.isp import ISPRecipe, train_isp
        from rawdev.train.loop import TrainConfig

        recipe = ISPRecipe(kind=kind, width=8, patch=64, batch=2, stage_steps=steps, base="jdd-noise", p_noise=0.5)
        out = tmp_path / "w.safetensors"
        res = train_isp([pack], out, TrainConfig(steps=1, run_dir=tmp_path / "run", device="cpu", lr=1e-3), recipe)
        assert res.completed and res.last_loss is not None and 0 < res.last_loss < 1
        heads = [v for k, v in load_file(out).items() if k.endswith("weight") and v.dim() == 4 and v.shape[0] in (3, 12)]
        # zero at the start (untrained frame = its start); one Adam step of lr 1e-3 moves them
        assert heads and any(float(v.abs().max()) > 1e-4 for v in heads)

    def test_teacher_target_is_the_teachers_render(self, pack):
        """Distillation (``--teacher``): the batch's target is the teacher's output on the batch's own
        input, not the photo; the teacher must be another learned ISP."""
        import torch

        from rawdev.errors import UsageError
        from rawdev.train.isp import ISPRecipe, make_isp_batch

        pool = tdata.load_sources([pack])
        recipe = ISPRecipe(kind="cameranet-fast", patch=64, batch=2, base="menon", teacher="cameranet")
        seen = []

        def teacher(batch):
            seen.append(batch["mosaic"])
            return torch.full_like(batch["target"], 0.25)

        b = make_isp_batch(pool, recipe, torch.Generator().manual_seed(0), teacher)
        photo = make_isp_batch(pool, recipe, torch.Generator().manual_seed(0))
        assert torch.equal(seen[0], b["mosaic"]) and torch.equal(b["mosaic"], photo["mosaic"])
        assert torch.all(b["target"] == 0.25) and not torch.equal(b["target"], photo["target"])
        recipe.validate()
        for bad in ("cameranet-fast", "menon", "jdd"):
            with pytest.raises(UsageError):
                ISPRecipe(kind="cameranet-fast", teacher=bad).validate()

    def test_cameranet_fast_command_defaults_to_its_compression(self):
        """``rawdev train cameranet-fast`` distils cameranet at half its width over the int8 student."""
        from rawdev.cli.train import ISP_STUDENT_TRAINING, ISP_TRAINING

        fast, teacher = ISP_STUDENT_TRAINING["cameranet-fast"], ISP_TRAINING["Liang2019"]
        assert (fast.teacher, fast.base, fast.width, fast.lr) == ("cameranet", "jdd-fast-int8", teacher.width // 2,
                                                                  teacher.lr)

    @pytest.mark.parametrize("kind", ["pynet-ca", "cameranet"])
    def test_stages_export_and_resume(self, pack, tmp_path, kind):
        import torch
        from safetensors.torch import load_file

        from rawdev.backends.isp import make_isp
        from rawdev.train.isp import ISPRecipe, train_isp
        from rawdev.train.loop import TrainConfig

        steps = {5: 2, 4: 2, 3: 2, 2: 2, 1: 2, 0: 2} if kind != "cameranet" else {1: 2, 0: 2}
        recipe = ISPRecipe(kind=kind, width=8, patch=64, batch=2, stage_steps=steps)
        out = tmp_path / "w.safetensors"
        cfg = TrainConfig(steps=1, run_dir=tmp_path / "run", device="cpu", checkpoint_every=1, log_every=1)
        res = train_isp([pack], out, cfg, recipe)
        assert res.completed and out.exists()
        net = make_isp(kind, width=8, kernels="dilated", padding_mode="zeros", instance_norm=False)
        net.load_state_dict(load_file(out))
        # every stage left its done marker; a resumed call finds all done and re-exports the same weights
        assert len(list((tmp_path / "run").glob("stage-*/done.pt"))) == len(steps)
        before = out.read_bytes()
        res2 = train_isp([pack], out, TrainConfig(steps=1, run_dir=tmp_path / "run", device="cpu", resume=True), recipe)
        assert res2.completed
        from safetensors.torch import load as load_bytes

        a, b = load_bytes(before), load_file(out)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
