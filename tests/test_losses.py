"""Training losses: masked heatmap MSE and the vectorised associative-embedding ('exp') loss."""
from __future__ import annotations

import pytest
import torch

from litepose_nas.losses import PoseLoss, ae_loss, heatmap_loss, reference_ae_loss


def _joints(n: int, p: int, j: int, hw: int, g: torch.Generator) -> torch.Tensor:
    idx = torch.randint(0, hw, (n, p, j), generator=g) + torch.arange(j)[None, None, :] * hw
    vis = (torch.rand(n, p, j, generator=g) < 0.7).long()
    vis[0, 2:] = 0  # image 0: two people; image 1 may have any; the last one none
    vis[-1] = 0
    return torch.stack([idx * vis, vis], -1)


@pytest.mark.parametrize("kind", ["exp", "max"])
def test_ae_loss_matches_reference_loop(kind):
    g = torch.Generator().manual_seed(0)
    tags = torch.randn(4, 5, 8, 8, generator=g)
    joints = _joints(4, 6, 5, 64, g)
    joints[2, 1:, :, 1] = 0  # a single person: push 0
    push, pull = ae_loss(tags, joints, kind, 1.5)
    ref_push, ref_pull = reference_ae_loss(tags, joints, kind, 1.5)
    torch.testing.assert_close(push, ref_push)
    torch.testing.assert_close(pull, ref_pull)
    assert push[2] == 0 and push[3] == 0 and pull[3] == 0


def test_ae_loss_zero_for_perfect_tags_and_grows_when_tags_are_shared():
    j, h = 3, 4
    tags = torch.zeros(1, j, h, h)
    joints = torch.zeros(1, 3, j, 2, dtype=torch.long)
    for person, value in enumerate((0.0, 10.0, 20.0)):
        for k in range(j):
            pix = person * 5 + k
            tags.view(1, j, -1)[0, k, pix] = value
            joints[0, person, k] = torch.tensor([k * h * h + pix, 1])
    push, pull = ae_loss(tags, joints)
    assert pull.item() == 0 and push.item() < 1e-12
    shared = tags.clone()
    shared[shared == 10.0] = 0.0  # person 1 now has person 0's tag
    push2, pull2 = ae_loss(shared, joints)
    assert pull2.item() == 0
    assert push2.item() == pytest.approx(0.5 * 2 / 6)  # one equal pair of 6 ordered pairs, halved
    spread = tags.clone()
    spread.view(1, j, -1)[0, 0, 5] = 12.0  # one joint of person 1 strays
    assert ae_loss(spread, joints)[1].item() > 0


def test_heatmap_loss_respects_mask():
    pred = torch.zeros(2, 3, 4, 4)
    gt = torch.zeros(2, 3, 4, 4)
    gt[:, :, 0, 0] = 1.0
    mask = torch.ones(2, 4, 4)
    mask[1, 0, 0] = 0
    loss = heatmap_loss(pred, gt, mask)
    assert loss[0].item() == pytest.approx(1 / 16) and loss[1].item() == 0


def test_pose_loss_on_model_outputs_backpropagates():
    g = torch.Generator().manual_seed(1)
    n, j = 2, 14
    outputs = [torch.randn(n, 2 * j, 16, 16, generator=g, requires_grad=True), torch.randn(n, j, 32, 32, generator=g, requires_grad=True)]
    batch = {
        "heatmaps": [torch.rand(n, j, 16, 16, generator=g), torch.rand(n, j, 32, 32, generator=g)],
        "masks": [torch.ones(n, 16, 16), torch.ones(n, 32, 32)],
        "joints": _joints(n, 30, j, 256, g),
    }
    loss = PoseLoss(j)(outputs, batch)
    assert set(loss) >= {"total", "heatmap", "push", "pull"}
    torch.testing.assert_close(loss["total"], loss["heatmap"] + loss["push"] + loss["pull"])
    ref_push, ref_pull = reference_ae_loss(outputs[0][:, j:].detach(), batch["joints"])
    torch.testing.assert_close(loss["push"], ref_push.mean() * 0.001)
    torch.testing.assert_close(loss["pull"], ref_pull.mean() * 0.001)
    loss["total"].backward()
    assert outputs[0].grad[:, j:].abs().sum() > 0 and outputs[1].grad.abs().sum() > 0
    weighted = PoseLoss(j, heatmap_weights=(2.0, 0.0), push_factor=0.0, pull_factor=0.0)(outputs, batch)
    torch.testing.assert_close(weighted["total"], 2 * loss["heatmap_0"].detach(), check_dtype=False)
    with pytest.raises(ValueError, match="28 channels"):
        PoseLoss(j)([outputs[1], outputs[1]], batch)


def test_max_push_separates_coinciding_tags_where_exp_cannot():
    """The defect the 'max' push fixes: two people with equal mean tags get no gradient from 'exp'."""
    tags = torch.zeros(1, 1, 2, 2)
    tags.view(-1)[1] = 1e-4  # two people, tags almost equal
    joints = torch.tensor([[[[0, 1]], [[1, 1]]]])
    grads = {}
    for kind in ("exp", "max"):
        t = tags.clone().requires_grad_(True)
        ae_loss(t, joints, kind)[0].sum().backward()
        grads[kind] = t.grad.abs().max().item()
    assert grads["exp"] < 1e-3 and grads["max"] >= 0.25
    far = torch.tensor([0.0, 2.0, 0.0, 0.0]).view(1, 1, 2, 2)
    assert ae_loss(far, joints, "max", margin=1.0)[0].item() == 0  # beyond the margin: no push
    with pytest.raises(ValueError, match="allowed: exp, max"):
        ae_loss(far, joints, "hinge")
