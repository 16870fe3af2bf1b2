"""Tests of rawdev.models.ignatov2020: PyNET / PyNET-CA sizes, shapes, training step, statistics replay."""

from __future__ import annotations

import pytest
import torch

from rawdev.models.ignatov2020 import PyNET, _GlobalStatModule
from rawdev.models.ignatov2020 import make_pynet as pynet
from rawdev.models.ignatov2020 import make_pynet_ca as pynet_ca

torch.set_num_threads(1)


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.fixture(scope="module")
def full_pynet() -> PyNET:
    torch.manual_seed(0)
    return pynet()


@pytest.fixture(scope="module")
def full_pynet_ca() -> PyNET:
    torch.manual_seed(0)
    return pynet_ca()


def small_nets() -> list[PyNET]:
    """Reduced configurations with every global-statistics layer kind (IN in both positions, CA)."""
    torch.manual_seed(1)
    return [pynet(width=8, kernels="cap5"), pynet_ca(width=8, kernels="dilated")]


# ---------------------------------------------------------------------------------------------- sizes

def test_param_count_pynet(full_pynet):
    # exact: learned_backends.md 2.4 counted 47,554,738 for aiff22/PyNET-PyTorch (instance_norm_level_1=True)
    assert n_params(full_pynet) == 47_554_738


def test_param_count_pynet_ca(full_pynet_ca):
    # exact: learned_backends.md 3 counted 51,303,515 for egyptdj/skyb-aim2020-public (hidden_channels=16)
    assert n_params(full_pynet_ca) == 51_303_515


def test_param_count_reduced():
    # learned_backends.md 7.2 B: PyNET-CA w8 dilated, 2.55 M (our exact count 2,547,179)
    assert n_params(pynet_ca(width=8, kernels="dilated")) == 2_547_179


# --------------------------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("level", range(6))
def test_output_shape_every_level(level):
    x = torch.rand(1, 4, 32, 32)
    size = 64 if level == 0 else 32 // 2 ** (level - 1)
    with torch.no_grad():
        for net in small_nets():
            assert net(x, level=level).shape == (1, 3, size, size)


def test_non_square_and_batch():
    net = pynet_ca(width=8, kernels="dilated")
    with torch.no_grad():
        assert net(torch.rand(2, 4, 32, 48)).shape == (2, 3, 64, 96)


def test_coarse_level_skips_finer_levels():
    net = pynet_ca(width=8, kernels="dilated")
    net(torch.rand(1, 4, 32, 32), level=3).abs().mean().backward()
    assert net.l3_out.weight.grad is not None and net.l3_d3.branches[0][0].weight.grad is not None
    for name in ("l2_d3", "l1_d3", "l1_d14", "l1_out", "l0_out", "l4_out"):
        assert all(p.grad is None for p in getattr(net, name).parameters()), name


@pytest.mark.parametrize("shape", [(1, 4, 40, 40), (1, 4, 32, 24), (1, 4, 16, 16), (1, 3, 32, 32)])
def test_bad_size_raises(shape):
    net = pynet(width=8, kernels="dilated")
    with pytest.raises(ValueError):
        net(torch.rand(shape))


def test_bad_level_and_options_raise():
    net = pynet(width=8, kernels="dilated")
    with pytest.raises(ValueError):
        net(torch.rand(1, 4, 32, 32), level=6)
    with pytest.raises(ValueError):
        PyNET(width=8, kernels="huge")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PyNET(width=8, head="deconv")  # type: ignore[arg-type]


def test_dilated_keeps_receptive_field():
    """A 3x3 conv with dilation (k-1)/2 spans k pixels: same padding as the k x k conv."""
    full, dil = pynet(width=8), pynet(width=8, kernels="dilated")
    c_full, c_dil = full.l1_d6.branches[3][0], dil.l1_d6.branches[3][0]
    assert c_full.kernel_size == (9, 9) and c_dil.kernel_size == (3, 3) and c_dil.dilation == (4, 4)
    assert c_full.padding == c_dil.padding == (4, 4)


# ----------------------------------------------------------------------------------- training step

@pytest.mark.parametrize("which", ["full_pynet", "full_pynet_ca"])
def test_training_step_full(which, request):
    net: PyNET = request.getfixturevalue(which)
    torch.manual_seed(2)
    x, target = torch.rand(1, 4, 32, 32), torch.rand(1, 3, 64, 64)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    out = net(x)
    assert out.shape == target.shape
    loss = torch.nn.functional.l1_loss(out, target)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    trained = {n for n, p in net.named_parameters() if p.grad is not None and p.grad.abs().max() > 0}
    # every conv weight on the level-0 path gets a gradient; only the level 1..5 heads get none
    assert {n for n, p in net.named_parameters() if p.grad is None} == {
        f"l{lv}_out.{t}" for lv in range(1, 6) for t in ("weight", "bias")
    }
    changed = {n for n, p in net.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert trained <= changed
    assert "l1_d1.branches.0.0.weight" in changed and "l0_out.weight" in changed
    net.zero_grad(set_to_none=True)


# ------------------------------------------------------------------------------- statistics replay

@pytest.mark.parametrize("idx", [0, 1])
def test_replay_equals_normal_forward(idx):
    net = small_nets()[idx]
    x = torch.rand(1, 4, 64, 64)
    with torch.no_grad():
        ref = net(x)
        with net.record_stats() as stats:
            rec = net(x)
        with net.replay_stats(stats):
            rep = net(x)
            rep2 = net(x)  # the list is read from its start at every pass
        again = net(x)  # outside the contexts the modules are back to normal
    n_in = sum(isinstance(s, tuple) for s in stats)
    n_ca = sum(isinstance(s, torch.Tensor) for s in stats)
    assert n_in > 0 and n_ca == (35 if net.channel_attention else 0)  # 35 multi-conv blocks, as in Kim2020
    mean, var = next(s for s in stats if isinstance(s, tuple))
    assert mean.shape == var.shape and mean.shape[0] == 1 and mean.shape[2:] == (1, 1)
    torch.testing.assert_close(rec, ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(rep, ref, rtol=1e-4, atol=1e-5)
    assert torch.equal(rep, rep2) and torch.equal(again, ref)


@pytest.mark.parametrize("idx", [0, 1, 2])
def test_pooled_record_treats_the_batch_as_one_image(idx):
    """``record_stats(pooled=True)``: one (1, C, 1, 1) statistic over the batch and the pixels
    together (the runner's full-resolution crops of a large image)."""
    # the third has channel attention without instance norm, so its first global layer is a gate
    net = (small_nets() + [pynet_ca(width=8, kernels="dilated", instance_norm=False)])[idx]
    torch.manual_seed(4)
    a = torch.rand(1, 4, 64, 64)
    b = 0.2 * torch.rand(1, 4, 64, 64)  # statistics clearly unlike a's
    first = next(m for m in net.modules() if isinstance(m, _GlobalStatModule))
    seen = []
    hook = first.register_forward_pre_hook(lambda _m, inp: seen.append(inp[0]))
    with torch.no_grad():
        with net.record_stats() as own:
            net(a)
        with net.record_stats(pooled=True) as twice:
            out2 = net(torch.cat([a, a]))
        with net.record_stats(pooled=True) as pooled:
            net(torch.cat([a, b]))
        hook.remove()
    # identical crops pool to the image's own statistics, and the output is the image's
    assert len(twice) == len(own)
    for s2, s1 in zip(twice, own):
        for t2, t1 in zip(s2 if isinstance(s2, tuple) else (s2,), s1 if isinstance(s1, tuple) else (s1,)):
            assert t2.shape == t1.shape
            torch.testing.assert_close(t2, t1, rtol=1e-4, atol=1e-5)  # float32 sums in another order
    torch.testing.assert_close(out2[1:], out2[:1])
    # the first global layer's input does not depend on earlier statistics: its pooled entry is the
    # statistic of that input over both samples
    x = seen[-1]
    if isinstance(pooled[0], tuple):
        var, mean = torch.var_mean(x, dim=(0, 2, 3), keepdim=True, correction=0)
        torch.testing.assert_close(pooled[0][0], mean)
        torch.testing.assert_close(pooled[0][1], var)
        assert not torch.allclose(pooled[0][0], own[0][0], atol=1e-3)
    else:
        assert pooled[0].shape == (1, x.shape[1], 1, 1)
        want = torch.sigmoid(first.excite(torch.relu(first.squeeze(x.mean(dim=(0, 2, 3), keepdim=True)))))
        torch.testing.assert_close(pooled[0], want)


def test_level0_stats_serve_coarser_levels():
    net = pynet_ca(width=8, kernels="dilated")
    x = torch.rand(1, 4, 64, 64)
    with torch.no_grad():
        with net.record_stats() as stats:
            net(x, level=0)
        with net.replay_stats(stats):
            rep = net(x, level=3)
        torch.testing.assert_close(rep, net(x, level=3), rtol=1e-4, atol=1e-5)


def test_replayed_stats_are_used_on_a_crop():
    torch.manual_seed(3)
    for net in small_nets():
        image = torch.rand(1, 4, 64, 96)
        image[..., :, 48:] *= 0.2  # the crop's statistics differ clearly from the image's
        crop = image[..., 16:48, 48:80]
        with torch.no_grad():
            with net.record_stats() as stats:
                net(image)
            with net.replay_stats(stats):
                replayed = net(crop)
            own = net(crop)
        assert replayed.shape == own.shape == (1, 3, 64, 64)
        assert (replayed - own).abs().max() > 1e-3


def test_replay_batch_rules_and_mismatch():
    net = pynet_ca(width=8, kernels="dilated")
    with torch.no_grad():
        with net.record_stats() as stats1:
            net(torch.rand(1, 4, 32, 32))
        with net.replay_stats(stats1):  # batch-1 statistics broadcast over a batch of tiles
            assert net(torch.rand(3, 4, 32, 32)).shape == (3, 3, 64, 64)
        with net.record_stats() as stats2:
            net(torch.rand(2, 4, 32, 32))
        with pytest.raises(ValueError, match="batch"):
            with net.replay_stats(stats2):
                net(torch.rand(3, 4, 32, 32))
        with net.record_stats() as coarse:
            net(torch.rand(1, 4, 32, 32), level=4)
        with pytest.raises(ValueError, match="ran out"):
            with net.replay_stats(coarse):
                net(torch.rand(1, 4, 32, 32), level=0)
        other = pynet(width=8, kernels="dilated")
        with pytest.raises(ValueError):
            with other.replay_stats(stats1):
                other(torch.rand(1, 4, 32, 32))
        with pytest.raises(RuntimeError):
            with net.record_stats(), net.replay_stats(stats1):
                pass
        # contexts always clean up, even after an error inside
        assert net._tape is None and all(getattr(m, "_tape", None) is None for m in net.modules())
