import torch
from torch import nn
from torchvision.models import resnet18

from damtui.train.models import ResNet18, transplant_binary_head


def _n(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_width_64_equals_torchvision_resnet18_28px():
    tv = resnet18(num_classes=2)
    tv.conv1 = nn.Conv2d(1, 64, 3, 1, 1, bias=False)
    tv.maxpool = nn.Identity()
    ours = ResNet18(1, 2, is_3d=False, width=64)
    assert _n(ours) == _n(tv)
    assert ours(torch.zeros(2, 1, 28, 28)).shape == (2, 2)


def test_3d_model_and_tiny_width():
    m = ResNet18(1, 1, is_3d=True, width=4, dropout=0.5)
    assert m(torch.zeros(2, 1, 28, 28, 28)).shape == (2, 1)
    assert _n(ResNet18(1, 2, is_3d=True, width=64)) > 30e6  # 3x3x3 kernels: about 33M


def test_head_transplant_ranks_exactly_like_the_ce_model():
    torch.manual_seed(0)
    m = ResNet18(1, 2, width=4).eval()
    x = torch.randn(16, 1, 28, 28)
    with torch.no_grad():
        z = m(x)
        p1 = torch.softmax(z, 1)[:, 1]
        m.fc = transplant_binary_head(m.fc)
        s = m(x)[:, 0]
    assert torch.allclose(s, z[:, 1] - z[:, 0], atol=1e-5)
    assert torch.equal(torch.argsort(s), torch.argsort(p1))
