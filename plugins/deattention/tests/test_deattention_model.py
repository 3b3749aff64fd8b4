"""The de-attention module and SE against re-computations from their own tensors, the mask's
cancellation (methods.md C.2), frozen leftovers and bad inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vpr_bench.errors import ConfigError
from vpr_bench_deattention.config import DeAttentionConfig
from vpr_bench_deattention.model import DeAttentionNetVLAD, build_deattention_netvlad
from vpr_bench_deattention.modules import DeAttention, SEAttention
from vpr_bench_netvlad import vlad_to_descriptor


def _model(**options: object) -> DeAttentionNetVLAD:
    cfg = DeAttentionConfig(
        backbone="tiny", num_clusters=8, pretrained=None, train_layers="full", **options
    )
    return build_deattention_netvlad(cfg).double().eval()


def _randomise_bn(module: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for bn in module.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            n = bn.num_features
            bn.running_mean.copy_(torch.randn(n, generator=gen, dtype=torch.float64) * 0.3)
            bn.running_var.copy_(torch.rand(n, generator=gen, dtype=torch.float64) + 0.5)
            bn.weight.data.copy_(torch.randn(n, generator=gen, dtype=torch.float64))
            bn.bias.data.copy_(torch.randn(n, generator=gen, dtype=torch.float64))


def _conv_relu_bn(x: torch.Tensor, seq: torch.nn.Sequential, pad: int) -> torch.Tensor:
    conv, bn = seq[0], seq[2]
    if pad:
        x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    y = F.conv2d(x, conv.weight, conv.bias).clamp(min=0)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return (y - bn.running_mean[:, None, None]) * scale[:, None, None] + bn.bias[:, None, None]


def test_deattention_matches_its_recomputation() -> None:
    torch.manual_seed(0)
    module = DeAttention(12).double().eval()
    _randomise_bn(module, 1)
    feats = torch.randn(2, 12, 6, 7, dtype=torch.float64)
    out, mask = module(feats)
    x = feats / feats.norm(dim=1, keepdim=True)
    ctx = torch.cat(
        [
            _conv_relu_bn(x, module.crn_conv1, 1),
            _conv_relu_bn(x, module.crn_conv2, 2),
            _conv_relu_bn(x, module.crn_conv3, 3),
        ],
        dim=1,
    )
    assert ctx.shape[1] == 84
    expected = torch.sigmoid(_conv_relu_bn(ctx, module.crn_conv4, 0))
    torch.testing.assert_close(mask, expected, rtol=1e-8, atol=1e-9)
    torch.testing.assert_close(out, feats * expected, rtol=1e-8, atol=1e-9)
    assert mask.shape == (2, 1, 6, 7)


def test_se_matches_its_recomputation() -> None:
    torch.manual_seed(0)
    se = SEAttention(32, 16).double()
    feats = torch.randn(3, 32, 5, 4, dtype=torch.float64)
    w1, w2 = se.fc[0].weight, se.fc[2].weight
    assert w1.shape == (2, 32) and se.fc[0].bias is None and se.fc[2].bias is None
    squeeze = feats.mean(dim=(2, 3))
    scale = torch.sigmoid(torch.relu(squeeze @ w1.T) @ w2.T)
    torch.testing.assert_close(se(feats), feats * scale[:, :, None, None], rtol=1e-8, atol=1e-9)


def test_model_matches_its_pipeline() -> None:
    model = _model()
    _randomise_bn(model.deattention, 2)  # type: ignore[arg-type]
    images = torch.randn(2, 3, 48, 64, dtype=torch.float64)
    feats = model.trunk(images)
    masked, mask = model.deattention(feats)  # type: ignore[misc]
    expected = vlad_to_descriptor(model.net_vlad(model.senet_attention(masked)))  # type: ignore[misc]
    torch.testing.assert_close(model(images), expected, rtol=1e-8, atol=1e-9)
    torch.testing.assert_close(model.last_mask, mask, rtol=0, atol=0)


def test_without_se_the_mask_never_changes_the_descriptor() -> None:
    model = _model(se=False)
    images = torch.randn(2, 3, 48, 64, dtype=torch.float64)
    before = model(images)
    torch.testing.assert_close(before, model.plain_descriptor(images), rtol=1e-8, atol=1e-9)
    _randomise_bn(model.deattention, 3)  # type: ignore[arg-type]
    with torch.no_grad():
        for p in model.deattention.parameters():  # type: ignore[union-attr]
            p.add_(torch.randn_like(p))
    mask = model.deattention.mask(model.trunk(images)).detach()  # type: ignore[union-attr]
    assert float(mask.max() - mask.min()) > 0.05  # the mask does vary over the map
    torch.testing.assert_close(model(images), before, rtol=1e-8, atol=1e-9)
    model.train()
    model(images).sum().backward()
    grads = [p.grad for p in model.deattention.parameters() if p.grad is not None]  # type: ignore[union-attr]
    assert max(float(g.abs().max()) for g in grads) < 1e-9


def test_with_se_the_mask_acts_only_through_the_squeeze() -> None:
    model = _model()
    _randomise_bn(model.deattention, 4)  # type: ignore[arg-type]
    images = torch.randn(2, 3, 48, 64, dtype=torch.float64)
    feats = model.trunk(images)
    mask = model.deattention.mask(feats)  # type: ignore[union-attr]
    se = model.senet_attention
    scale = se.fc((feats * mask).mean(dim=(2, 3)))  # type: ignore[union-attr]
    # Unmasked F scaled by the masked squeeze gives the same descriptor ...
    via_squeeze = vlad_to_descriptor(model.net_vlad(feats * scale[:, :, None, None]))
    torch.testing.assert_close(model(images), via_squeeze, rtol=1e-8, atol=1e-9)
    # ... and the mask does move the descriptor (unlike without SE).
    unmasked_scale = se.fc(feats.mean(dim=(2, 3)))  # type: ignore[union-attr]
    plain_se = vlad_to_descriptor(model.net_vlad(feats * unmasked_scale[:, :, None, None]))
    assert float((model(images) - plain_se).detach().abs().max()) > 1e-6


def test_unused_blocks_are_kept_and_frozen() -> None:
    model = _model()
    keys = model.state_dict().keys()
    assert "deattention.crn_downsample.0.weight" in keys
    assert "deattention.crn_upsample.2.running_var" in keys
    assert "senet_attention.fc.0.weight" in keys and "senet_attention.fc.2.weight" in keys
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all("crn_downsample" in n or "crn_upsample" in n for n in frozen)


def test_options_drop_the_blocks() -> None:
    model = _model(deattention=False, se=False)
    assert model.deattention is None and model.senet_attention is None
    images = torch.randn(1, 3, 48, 64, dtype=torch.float64)
    torch.testing.assert_close(model(images), model.plain_descriptor(images))
    assert model.last_mask is None


def test_a_map_under_4x4_names_the_least_input_size() -> None:
    model = _model()
    with pytest.raises(ConfigError, match=r"3x3 feature map.*at least 32x32 pixels") as info:
        model(torch.randn(1, 3, 24, 24, dtype=torch.float64))
    assert "\n" not in str(info.value)


def test_unknown_category_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        DeAttentionConfig(deatt_categories=("human", "cars"))
    message = str(info.value)
    assert "model.deatt_categories" in message and "'cars'" in message
    assert "flat, construction, object, nature, sky, human, vehicle" in message
    assert "\n" not in message


def test_regions_are_refused() -> None:
    with pytest.raises(ConfigError, match="no region descriptors"):
        _model()(torch.randn(1, 3, 48, 64, dtype=torch.float64), regions=True)


def test_prepare_refuses_a_small_map_before_any_training() -> None:
    from vpr_bench_deattention.prepare import prepare_deattention

    model = build_deattention_netvlad(
        DeAttentionConfig(backbone="tiny", num_clusters=8, pretrained=None, train_layers="full")
    )
    with pytest.raises(ConfigError, match="at least 32x32 pixels"):
        prepare_deattention(model, model.config, iter([torch.randn(2, 3, 24, 24)]), seed=0)


def test_prepare_runs_netvlads_kmeans() -> None:
    from vpr_bench_deattention.prepare import prepare_deattention

    cfg = DeAttentionConfig(
        backbone="tiny", num_clusters=4, pretrained=None, train_layers="full", init_per_image=8
    )
    model = build_deattention_netvlad(cfg)
    before = model.net_vlad.centroids.detach().clone()
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randn(4, 3, 48, 64, generator=gen) for _ in range(2)]
    prepare_deattention(model, cfg, iter(batches), seed=0)
    assert not torch.equal(model.net_vlad.centroids, before)
