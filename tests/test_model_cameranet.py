"""CameraNet (Liang2019) network definition: sizes, shapes, one training step, global FiLM, input checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rawdev.models.liang2019 import CameraNet, EnhanceNet, RestoreNet, UNet2, _max_pool_same
from rawdev.models.liang2019 import make_cameranet as cameranet


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts_full_and_reduced():
    net = cameranet()
    # learned_backends.md 4.3: 11.69 M + 13.26 M; our exact counts are 11,687,756 and 13,264,972.
    assert _count(net.restore) == pytest.approx(11.69e6, rel=0.02)
    assert _count(net.enhance) == pytest.approx(13.26e6, rel=0.02)
    assert _count(net.restore) == 11_687_756
    assert _count(net.enhance) == 13_264_972
    # learned_backends.md 7.2 A: CameraNet-S (width 16) 6.24 M; exact 6,242,264.
    assert _count(cameranet(width=16)) == pytest.approx(6.24e6, rel=0.02)


def test_output_shapes_width8():
    torch.manual_seed(0)
    net = cameranet(width=8, padding_mode="zeros").eval()
    x = torch.rand(1, 4, 32, 32)
    with torch.no_grad():
        restored, enhanced = net(x)
        assert restored.shape == (1, 3, 64, 64)
        assert enhanced.shape == (1, 3, 64, 64)
        assert net.enhance.film_vector(restored).shape == (1, 2 * 16 * 8)
        assert UNet2(5, 7, width=8).eval()(torch.rand(2, 5, 32, 48)).shape == (2, 7, 32, 48)
    # Reflect (paper) mode at its minimum sizes: packed 32 for Restore-Net, 288 for Enhance-Net.
    net_r = cameranet(width=8).eval()
    with torch.no_grad():
        assert net_r.restore(x).shape == (1, 3, 64, 64)
        assert net_r.enhance(torch.rand(1, 3, 288, 288)).shape == (1, 3, 288, 288)


def test_training_step_full_width_zeros():
    torch.manual_seed(0)
    net = CameraNet(width=32, padding_mode="zeros")
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.5, 0.999), eps=1e-4)
    x = torch.rand(1, 4, 32, 32)
    y_lin = torch.rand(1, 3, 64, 64)
    y_out = torch.rand(1, 3, 64, 64)
    before = {k: v.detach().clone() for k, v in net.state_dict().items()}
    restored, enhanced = net(x)
    loss = F.l1_loss(restored, y_lin) + F.l1_loss(enhanced, y_out)
    assert torch.isfinite(loss)
    loss.backward()
    opt.step()
    after = net.state_dict()
    for prefix in ("restore.", "enhance.", "enhance.unet.film_fc2."):
        changed = [k for k in before if k.startswith(prefix) and not torch.equal(before[k], after[k])]
        assert changed, f"no parameter under {prefix} changed"


def test_film_vector_equals_internal():
    torch.manual_seed(0)
    # Paper mode (reflect) at the smallest accepted size, and a zero-padded small one.
    for pad, size in (("reflect", 288), ("zeros", 64)):
        net = EnhanceNet(width=8, padding_mode=pad).eval()
        x = torch.rand(2, 3, size, size)
        with torch.no_grad():
            ref = net(x)
            v = net.film_vector(x)
            assert v.shape == (2, 256)
            torch.testing.assert_close(net(x, film=v), ref, rtol=1e-5, atol=1e-6)


def test_film_from_other_image_is_used():
    torch.manual_seed(0)
    net = EnhanceNet(width=8, padding_mode="zeros").eval()
    # The paper's init (transposed convs std 0.001) makes the bottleneck's share of the output
    # ~1e-12 before training; give the up-sampling path ordinary weights so the FiLM shows.
    for up in net.unet.up:
        torch.nn.init.kaiming_uniform_(up.weight, a=0.2)
    x = torch.rand(1, 3, 64, 64)
    other = torch.rand(1, 3, 64, 64) ** 3 * 4.0
    with torch.no_grad():
        v_other = net.film_vector(other)
        assert not torch.allclose(v_other, net.film_vector(x))
        out = net(x, film=v_other)
        assert (out - net(x)).abs().max() > 1e-4
        # One (1, C) vector broadcasts over a batch of tiles.
        tiles = torch.rand(3, 3, 64, 64)
        out_b = net(tiles, film=v_other)
        torch.testing.assert_close(out_b[1:2], net(tiles[1:2], film=v_other), rtol=1e-5, atol=1e-6)


def test_bad_sizes_raise():
    net = cameranet(width=8, padding_mode="zeros")
    with pytest.raises(ValueError, match="multiples of 16"):
        net.restore(torch.rand(1, 4, 40, 32))
    with pytest.raises(ValueError, match="multiples of 32"):
        net.enhance(torch.rand(1, 3, 64, 48))
    with pytest.raises(ValueError, match="multiples of 16"):
        UNet2(4, 12, width=8)(torch.rand(1, 4, 32, 24))
    # Reflect padding cannot mirror 8 px on a 2-px bottleneck: the message names the minimum.
    with pytest.raises(ValueError, match=r">= 288.*zeros"):
        EnhanceNet(width=8)(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r">= 288"):
        EnhanceNet(width=8).film_vector(torch.rand(1, 3, 256, 320))
    with pytest.raises(ValueError, match=r">= 32"):
        RestoreNet(width=8)(torch.rand(1, 4, 16, 32))
    with pytest.raises(ValueError):
        UNet2(4, 12, width=8, padding_mode="circular")
    with pytest.raises(ValueError):
        UNet2(4, 12, width=8)(torch.rand(1, 4, 32, 32), film=torch.zeros(1, 256))


def test_max_pool_matches_tf_same():
    # TF SAME for a 3x3/2 pool on an even size pads one -inf row/column at the bottom/right only.
    x = torch.randn(2, 3, 8, 12)
    ref = F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=float("-inf")), 3, stride=2)
    assert torch.equal(_max_pool_same(x), ref)
