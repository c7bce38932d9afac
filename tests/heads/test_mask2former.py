"""vitadapter's plain-PyTorch Mask2Former (vitadapter.heads.mask2former) and its mmseg head.

* the core needs no mm* package (its imports are read);
* pure-torch checks in float64: point sampling, importance sampling, matching costs and the
  Hungarian assignment against brute force, gradcheck of the loss and of the head;
* where mmdet's models import (upstream stack: mmcv with compiled ops), mmseg's own
  ``Mask2FormerHead`` is the reference: state dicts load both ways with strict=True; the pixel
  decoder's outputs and every decoder layer's class and mask logits agree in float64; the matched
  assignment and the losses agree with the same random points;
* training through mmseg (ViTPyramid and ViTAdapter segmentors, every stack): every parameter
  receives a gradient and the loss decreases on a fixed batch.
"""
import itertools

import pytest
import torch

from conftest import rel_error, requires_mmseg
from vitadapter.heads.mask2former import (Mask2Former, Mask2FormerLoss, hungarian_match, match_cost,
                                          point_sample, semantic_inference, semantic_targets,
                                          sine_positional_encoding, uncertain_point_coords)

IN_CHANNELS = [32, 48, 64, 64]
C, HEADS, K, Q = 64, 4, 5, 10  # tiny head: 64 channels (GroupNorm 32), 4 heads, 5 classes, 10 queries
TINY = dict(feat_channels=C, out_channels=C, num_queries=Q, num_levels=3, encoder_layers=2,
            encoder_heads=HEADS, encoder_points=4, encoder_ffn=96, decoder_layers=3, decoder_heads=HEADS,
            decoder_ffn=80)
EPS64 = torch.finfo(torch.float64).eps
EPS32 = torch.finfo(torch.float32).eps


def features(b=2, size=(64, 96), dtype=torch.float64):
    """Backbone maps at strides 4, 8, 16, 32 of an image of ``size``."""
    return [torch.randn(b, c, size[0] // s, size[1] // s, dtype=dtype)
            for c, s in zip(IN_CHANNELS, (4, 8, 16, 32))]


# ----------------------------------------------------------------------------------- pure torch

def test_point_sample_reads_pixel_centres_exactly():
    maps = torch.randn(3, 2, 5, 7, dtype=torch.float64)
    ij = torch.stack(torch.meshgrid(torch.arange(5), torch.arange(7), indexing='ij'), -1).view(-1, 2)
    ij = ij.double()
    points = torch.stack(((ij[:, 1] + 0.5) / 7, (ij[:, 0] + 0.5) / 5), -1)
    out = point_sample(maps, points.expand(3, -1, -1))
    # weights 1 and 0 up to the roundings of (x + 0.5) / w * 2 - 1 and its unnormalisation (a few eps)
    assert rel_error(out, maps.flatten(2)) <= 16 * EPS64


def test_uncertain_points_are_the_least_certain_candidates():
    logits = torch.randn(4, 9, 11, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    points = uncertain_point_coords(logits, 50, oversample_ratio=3.0, importance_sample_ratio=0.6,
                                    generator=g)
    g.manual_seed(3)
    candidates = torch.rand(4, 150, 2, dtype=torch.float64, generator=g)
    uncertainty = -point_sample(logits[:, None], candidates)[:, 0].abs()
    for n in range(4):
        best = candidates[n, uncertainty[n].argsort(descending=True)[:30]]
        assert torch.equal(points[n, :30], best)
    assert torch.equal(points[:, 30:], torch.rand(4, 20, 2, dtype=torch.float64, generator=g))


def test_match_cost_formula_and_hungarian_optimality():
    q, g, p = 6, 4, 30
    cls = torch.randn(q, K + 1, dtype=torch.float64)
    masks = torch.randn(q, p, dtype=torch.float64)
    labels = torch.tensor([0, 3, 3, 1])
    gts = torch.rand(g, p, dtype=torch.float64)
    cost = match_cost(cls, masks, labels, gts, 2.0, 5.0, 5.0)
    for i, j in itertools.product(range(q), range(g)):  # one pair at a time, from the definitions
        prob = cls[i].softmax(-1)[labels[j]]
        s = masks[i].sigmoid()
        bce = -(gts[j] * torch.log(s) + (1 - gts[j]) * torch.log(1 - s)).mean()
        dice = 1 - (2 * (s * gts[j]).sum() + 1) / (s.sum() + gts[j].sum() + 1)
        expected = -2 * prob + 5 * bce + 5 * dice
        assert abs(cost[i, j] - expected) <= 1e3 * EPS64 * (1 + abs(expected))
    rows, cols = hungarian_match(cost)
    best = min(itertools.permutations(range(q), g), key=lambda r: sum(cost[r[j], j] for j in range(g)))
    assert sorted(zip(rows.tolist(), cols.tolist())) == sorted((r, j) for j, r in enumerate(best))
    assert rows.tolist() == sorted(rows.tolist())


def test_semantic_targets_and_inference():
    seg = torch.tensor([[0, 0, 255], [4, 4, 0]])
    labels, masks = semantic_targets(seg)
    assert labels.tolist() == [0, 4] and masks.dtype == torch.bool
    assert masks[0].tolist() == [[True, True, False], [False, False, True]]
    cls = torch.randn(2, Q, K + 1, dtype=torch.float64)
    logits = torch.randn(2, Q, 4, 6, dtype=torch.float64)
    out = semantic_inference(cls, logits, (4, 6))  # same size: no resampling
    expected = (cls.softmax(-1)[..., :-1, None, None] * logits.sigmoid()[:, :, None]).sum(1)
    assert out.shape == (2, K, 4, 6) and rel_error(out, expected) <= 10 * Q * EPS64


@pytest.mark.slow
def test_loss_gradcheck():
    """The loss as a function of class and mask logits (matching held by the fixed points: a
    1e-6 step does not change an assignment unless two costs tie)."""
    torch.manual_seed(0)
    seg = torch.randint(0, K, (2, 16, 16))
    targets = [semantic_targets(s) for s in seg]

    def total(cls, masks):
        criterion = Mask2FormerLoss(K, num_points=40, importance_sample_ratio=0.0,
                                    generator=torch.Generator().manual_seed(0))
        return sum(criterion([cls], [masks], targets).values())

    cls = torch.randn(2, 6, K + 1, dtype=torch.float64, requires_grad=True)
    masks = torch.randn(2, 6, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(total, (cls, masks))


def test_head_gradcheck_and_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    head = Mask2Former([8, 8, 8, 8], 3, feat_channels=16, out_channels=16, num_queries=4,
                       encoder_layers=1, encoder_heads=2, encoder_ffn=16, decoder_layers=2,
                       decoder_heads=2, decoder_ffn=16, num_groups=4).double()
    # away from the initialisation, whose zero offset and attention-weight matrices stop the
    # gradient of what feeds them (the positional and level encodings) at the first step
    with torch.no_grad():
        for layer in head.pixel_decoder.encoder.layers:
            layer.self_attn.sampling_offsets.weight.normal_(std=0.1)
            layer.self_attn.attention_weights.weight.normal_(std=0.1)
    feats = [torch.randn(1, 8, 16 // s, 16 // s, dtype=torch.float64, requires_grad=True)
             for s in (1, 2, 4, 8)]

    def out(*x):
        cls, masks = head(list(x))
        return torch.cat([c.flatten() for c in cls] + [m.flatten() for m in masks])

    assert torch.autograd.gradcheck(out, tuple(feats), fast_mode=True)
    targets = [semantic_targets(torch.randint(0, 3, (64, 64)))]
    losses = head.loss([f.detach() for f in feats], targets, Mask2FormerLoss(3, num_points=64))
    sum(losses.values()).backward()
    missing = [n for n, p in head.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_bad_inputs_say_what_to_change():
    with pytest.raises(ValueError, match='num_groups=32'):
        Mask2Former(IN_CHANNELS, K, feat_channels=48, out_channels=48)
    with pytest.raises(ValueError, match='encoder levels'):
        Mask2Former(IN_CHANNELS[:2], K, num_levels=3)
    head = Mask2Former(IN_CHANNELS, K, **TINY)
    with pytest.raises(ValueError, match='built for 4 maps'):
        head(features(dtype=torch.float32)[:3])


# ------------------------------------------------------------------ against mmseg / mmdet (upstream)

def mmdet_or_skip():
    try:
        import mmdet.models  # noqa: F401  (fails where mmcv has no compiled ops: the onedl stack)
    except Exception as e:  # noqa: BLE001
        pytest.skip(f'mmdet.models does not import here ({type(e).__name__}): no reference')


def mmseg_head_cfg(num_points=200):
    ffn = dict(num_fcs=2, act_cfg=dict(type='ReLU', inplace=True))
    mha = dict(embed_dims=C, num_heads=HEADS, attn_drop=0.0, proj_drop=0.0, dropout_layer=None,
               batch_first=True)
    return dict(
        type='Mask2FormerHead', in_channels=IN_CHANNELS, strides=[4, 8, 16, 32], feat_channels=C,
        out_channels=C, num_classes=K, num_queries=Q, num_transformer_feat_level=3,
        pixel_decoder=dict(
            type='mmdet.MSDeformAttnPixelDecoder', num_outs=3, norm_cfg=dict(type='GN', num_groups=32),
            act_cfg=dict(type='ReLU'),
            encoder=dict(num_layers=2, layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=C, num_heads=HEADS, num_levels=3, num_points=4,
                                   dropout=0.0, batch_first=True),
                ffn_cfg=dict(embed_dims=C, feedforward_channels=96, ffn_drop=0.0, **ffn))),
            positional_encoding=dict(num_feats=C // 2, normalize=True)),
        positional_encoding=dict(num_feats=C // 2, normalize=True),
        transformer_decoder=dict(return_intermediate=True, num_layers=3, layer_cfg=dict(
            self_attn_cfg=mha, cross_attn_cfg=mha,
            ffn_cfg=dict(embed_dims=C, feedforward_channels=80, ffn_drop=0.0, add_identity=True, **ffn))),
        loss_cls=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0,
                      reduction='mean', class_weight=[1.0] * K + [0.1]),
        loss_mask=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, reduction='mean', loss_weight=5.0),
        loss_dice=dict(type='mmdet.DiceLoss', use_sigmoid=True, activate=True, reduction='mean',
                       naive_dice=True, eps=1.0, loss_weight=5.0),
        train_cfg=dict(num_points=num_points, oversample_ratio=3.0, importance_sample_ratio=0.75,
                       assigner=dict(type='mmdet.HungarianAssigner', match_costs=[
                           dict(type='mmdet.ClassificationCost', weight=2.0),
                           dict(type='mmdet.CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                           dict(type='mmdet.DiceCost', weight=5.0, pred_act=True, eps=1.0)]),
                       sampler=dict(type='mmdet.MaskPseudoSampler')))


@pytest.fixture
def heads():
    """(mmseg's Mask2FormerHead, ours) with the same weights, float64, eval."""
    mmdet_or_skip()
    from mmengine.config import ConfigDict
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    ref = MODELS.build(ConfigDict(mmseg_head_cfg()))
    ref.init_weights()
    ours = Mask2Former(IN_CHANNELS, K, **TINY)
    ours.load_state_dict(ref.state_dict(), strict=True)
    ref.load_state_dict(ours.state_dict(), strict=True)  # and back: the same key set
    return ref.double().eval(), ours.double().eval()


@requires_mmseg
def test_positional_encoding_is_mmdets_bit_for_bit():
    mmdet_or_skip()
    from mmdet.models.layers import SinePositionalEncoding
    ref = SinePositionalEncoding(num_feats=64, normalize=True)(torch.zeros(1, 5, 7, dtype=torch.bool))
    assert torch.equal(sine_positional_encoding(5, 7, 64), ref)


@requires_mmseg
def test_forward_equals_mmseg_mask2former_head(heads):
    """float64, same weights: each output within 1e-10 of its scale (the two differ only in the
    order of float64 sums: a few hundred roundings of 2^-53 at most)."""
    ref, ours = heads
    feats = features()
    with torch.no_grad():
        mask_ref, levels_ref = ref.pixel_decoder(feats)
        mask_ours, levels_ours = ours.pixel_decoder(feats)
        assert rel_error(mask_ours, mask_ref) <= 1e-10
        for a, b in zip(levels_ref, levels_ours):
            assert rel_error(b, a) <= 1e-10
        cls_ref, masks_ref = ref(feats, None)
        cls_ours, masks_ours = ours(feats)
    assert len(cls_ours) == len(masks_ours) == 3 + 1
    for a, b in zip(cls_ref + masks_ref, cls_ours + masks_ours):
        assert a.shape == b.shape and rel_error(b, a) <= 1e-10


@requires_mmseg
def test_assignment_equals_mmdet_hungarian_assigner(heads):
    from mmengine.structures import InstanceData
    ref, _ = heads
    torch.manual_seed(1)
    seg = torch.randint(0, K, (32, 48))
    labels, masks = semantic_targets(seg)
    cls = torch.randn(Q, K + 1, dtype=torch.float64)
    pred_points = torch.randn(Q, 200, dtype=torch.float64)
    gt_points = point_sample(masks[:, None], torch.rand(1, 200, 2, dtype=torch.float64)
                             .expand(len(labels), -1, -1))[:, 0]
    ours = hungarian_match(match_cost(cls, pred_points, labels, gt_points))
    # mmdet's costs run in float32 (CrossEntropyLossCost and DiceCost cast to it)
    result = ref.assigner.assign(InstanceData(scores=cls.float(), masks=pred_points.float()),
                                 InstanceData(labels=labels, masks=gt_points.float()))
    assigned = result.gt_inds
    assert torch.equal(assigned[ours[0]] - 1, ours[1])
    assert int((assigned > 0).sum()) == len(ours[0]) == len(labels)


@requires_mmseg
def test_losses_equal_mmseg_with_the_same_random_points(heads, monkeypatch):
    """Same predictions, same RNG state: mmdet draws the matching points per image, then the
    importance-sampled points, per layer; so does ours. mmdet matches in float32 (its costs cast
    to it; the assignment is then ours, compared via loss_cls, which depends on it only) and
    rounds the sampled mask targets to float32 in its BCE and dice (``target.float()``): a target
    t in [0, 1] moves by at most 2^-24, so the BCE mean (its derivative in t is -x) by at most
    max|x| 2^-24 and each dice term (a ratio of sums of p t and t) by at most 2 * 2^-24."""
    import mmdet.models.dense_heads.mask2former_head as mmdet_head
    import mmdet.models.utils.point_sample as mmdet_points
    from mmcv.ops import point_sample as mmcv_point_sample
    from mmengine.structures import InstanceData, PixelData
    from mmseg.structures import SegDataSample
    ref, _ = heads
    # mmdet samples float32 target masks at the points: let float64 points read them
    widen = lambda maps, points, **kw: mmcv_point_sample(maps.to(points.dtype), points, **kw)  # noqa: E731
    monkeypatch.setattr(mmdet_head, 'point_sample', widen)
    monkeypatch.setattr(mmdet_points, 'point_sample', widen)
    assign = ref.assigner.assign

    def assign32(pred_instances, gt_instances, img_meta=None):
        pred = InstanceData(scores=pred_instances.scores.float(), masks=pred_instances.masks.float())
        return assign(pred, gt_instances, img_meta)

    monkeypatch.setattr(ref.assigner, 'assign', assign32)
    torch.manual_seed(0)
    seg = torch.randint(0, K, (2, 64, 96))
    seg[0, :20] = 255
    seg[1, 10:30, 20:50] = 2
    samples = [SegDataSample(gt_sem_seg=PixelData(data=s[None]),
                             metainfo=dict(img_shape=(64, 96), pad_shape=(64, 96))) for s in seg]
    gt_instances, metas = ref._seg_data_to_instance_data(samples)
    with torch.no_grad():
        cls_preds, mask_preds = ref(features(), None)
    criterion = Mask2FormerLoss(K, num_points=200)
    torch.set_default_dtype(torch.float64)  # mmdet draws its points in the default dtype
    try:
        torch.manual_seed(5)
        expected = ref.loss_by_feat(cls_preds, mask_preds, gt_instances, metas)
        torch.manual_seed(5)
        got = criterion(cls_preds, mask_preds, [semantic_targets(s) for s in seg])
    finally:
        torch.set_default_dtype(torch.float32)
    assert set(got) == set(expected) and len(got) == 3 * 4
    logit_max = max(m.abs().max().item() for m in mask_preds)
    for key in expected:
        a, b = expected[key].item(), got[key].item()
        if key.endswith('loss_cls'):
            bound = 1e-12 * abs(a)
        elif key.endswith('loss_mask'):
            bound = 5.0 * logit_max * 2 ** -24 + 1e-12
        else:
            bound = 5.0 * 2 * 2 ** -24 + 1e-12
        assert abs(a - b) <= bound, (key, a, b, bound)


@requires_mmseg
def test_torch_head_config_takes_mmseg_checkpoints(heads):
    """TorchMask2FormerHead built from its short config has mmseg's keys and shapes."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    import vitadapter.engine  # noqa: F401
    ref, _ = heads
    init_default_scope('mmseg')
    ours = MODELS.build(dict(
        type='TorchMask2FormerHead', in_channels=IN_CHANNELS, num_classes=K, feat_channels=C,
        out_channels=C, num_queries=Q,
        pixel_decoder=dict(num_layers=2, num_heads=HEADS, feedforward_channels=96),
        transformer_decoder=dict(num_layers=3, num_heads=HEADS, feedforward_channels=80)))
    ours.load_state_dict(ref.state_dict(), strict=True)
    ref.load_state_dict(ours.double().state_dict(), strict=True)
    metas = [dict(img_shape=(64, 96), pad_shape=(64, 96))] * 2
    feats = features()
    with torch.no_grad():
        assert rel_error(ours.eval().predict(feats, metas, {}), ref.predict(feats, metas, {})) <= 1e-10


# ------------------------------------------------------------------------ training through mmseg

@requires_mmseg
def test_torch_head_config_errors_name_the_keys():
    import vitadapter.engine  # noqa: F401
    from vitadapter.engine.models.mask2former import TorchMask2FormerHead
    with pytest.raises(ValueError, match="unknown keys \\['layers'\\]"):
        TorchMask2FormerHead(IN_CHANNELS, K, pixel_decoder=dict(layers=3))
    with pytest.raises(ValueError, match="one value per"):
        TorchMask2FormerHead('auto', K)


@requires_mmseg
@pytest.mark.parametrize('backbone', ['ViTPyramid', 'ViTAdapter'])
def test_segmentor_trains_every_parameter(backbone):
    """A tiny segmentor through mmseg's train_step on one fixed batch: the loss decreases and every
    parameter of the head and the backbone gets a non-zero gradient (the pixel decoder's level
    encoding only from the second step: the initial offset and attention-weight matrices are zero)."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    import vitadapter.engine  # noqa: F401
    from test_mmseg_integration import fake_batch
    from mmengine.config import ConfigDict
    init_default_scope('mmseg')
    if backbone == 'ViTPyramid':
        backbone_cfg = dict(type='ViTPyramid', model_name='vit_tiny_patch16_224', pretrained=False,
                            img_size=64, depth=4, out_indices=(0, 1, 2, 3), embed_dim=64, num_heads=2)
    else:
        backbone_cfg = dict(type='ViTAdapter', arch='tiny', pretrained=False, img_size=64, depth=4,
                            interaction_indexes=None, drop_path_rate=0.0)
    model = MODELS.build(ConfigDict(
        type='ViTEncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True, size=(64, 64)),
        backbone=backbone_cfg,
        decode_head=dict(type='TorchMask2FormerHead', in_channels='auto', num_classes=K, feat_channels=32,
                         out_channels=32, num_queries=8,
                         pixel_decoder=dict(num_layers=1, num_heads=2, feedforward_channels=32),
                         transformer_decoder=dict(num_layers=2, num_heads=2, feedforward_channels=32),
                         train_cfg=dict(num_points=256)),
        train_cfg=dict(), test_cfg=dict(mode='whole')))
    model.init_weights()
    model.train()
    optim = build_optim_wrapper(model, dict(optimizer=dict(type='AdamW', lr=1e-3)))
    torch.manual_seed(0)
    batch = fake_batch(2, (64, 64), K)
    got_grad, totals = set(), []
    for _ in range(4):
        data = model.data_preprocessor(batch, True)
        losses = model(**data, mode='loss')
        total = sum(v for k, v in losses.items() if 'loss' in k)
        assert torch.isfinite(total)
        totals.append(total.item())
        optim.update_params(total)  # backward, step, zero_grad
    assert totals[-1] < totals[0]
    for _ in range(2):
        data = model.data_preprocessor(batch, True)
        losses = model(**data, mode='loss')
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        got_grad |= {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
        optim.step()
        optim.zero_grad()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and n not in got_grad]
    assert not missing, missing
    model.eval()
    with torch.no_grad():
        out = model.test_step(fake_batch(1, (64, 64), K))
    assert out[0].seg_logits.data.shape == (K, 64, 64)
