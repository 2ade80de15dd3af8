"""The local ImageNet-weights path (`--weights FILE`, never a download) for the regressor and
the segmenter's encoder, and the checkpoint round trip of the regression coefficients."""

import pytest
import torch
from torchvision import models as tvm

from neometer.errors import NeometerError
from neometer.models.checkpoint import WeightFromHeight, load_checkpoint, save_checkpoint
from neometer.models.regressor import build_regressor
from neometer.models.segmenter import new_segmenter


@pytest.fixture(scope="module")
def imagenet_file(tmp_path_factory):
    """A torchvision-format MobileNetV2 state dict (random values stand in for ImageNet's)."""
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("w") / "mobilenet_v2.pth"
    torch.save(tvm.mobilenet_v2(weights=None, width_mult=0.35).state_dict(), path)
    return path


def test_regressor_takes_every_backbone_tensor_and_replaces_the_classifier(imagenet_file):
    state = torch.load(imagenet_file)
    model = build_regressor("mobilenet_v2", 2, 0.35, imagenet_weights=imagenet_file)
    own = model.state_dict()
    for key in ("features.0.0.weight", "features.18.1.running_var"):
        assert torch.equal(own[key], state[key])
    assert own["classifier.1.weight"].shape == (2, state["classifier.1.weight"].shape[1])


def test_weights_of_another_architecture_are_refused(imagenet_file, tmp_path):
    other = tmp_path / "alexnet.pth"
    torch.save(tvm.alexnet(weights=None).state_dict(), other)
    with pytest.raises(NeometerError, match="tensors match"):
        build_regressor("mobilenet_v2", 2, 0.35, imagenet_weights=other)
    with pytest.raises(NeometerError, match="no such file"):
        build_regressor("mobilenet_v2", 2, 0.35, imagenet_weights=tmp_path / "missing.pth")


def test_segmenter_encoder_loads_a_classification_file(tmp_path):
    torch.manual_seed(4)
    path = tmp_path / "mnv3.pth"
    state = tvm.mobilenet_v3_small(weights=None).state_dict()
    torch.save(state, path)
    seg = new_segmenter("lraspp_mobilenet_v3_small", 1.0, 64, weights=path)
    own = seg.encoder.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in own.items() if k.endswith("weight"))


def test_fp16_checkpoint_keeps_the_regression_coefficients_exact(tmp_path):
    net = build_regressor("mobilenet_v2", 1, 0.35)
    model = WeightFromHeight(net, alpha=0.16801234, beta=-5.15771234)
    config = {"backbone": "mobilenet_v2", "width_mult": 0.35, "task": "height+regression",
              "outputs": [{"name": "height_cm", "unit": "cm"}, {"name": "weight_kg", "unit": "kg"}],
              "weight_from_height": {"alpha": 0.16801234, "beta": -5.15771234}}
    path = save_checkpoint(tmp_path / "m.safetensors", model, config, dtype=torch.float16)
    loaded, _ = load_checkpoint(path)
    assert loaded.coef.tolist() == pytest.approx([0.16801234, -5.15771234], abs=1e-6)  # float32; fp16 would be ~4e-3 off
