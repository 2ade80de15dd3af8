"""Checkpoints: weights in safetensors, everything needed to rebuild and use them in a JSON
beside it (backbone, task, outputs and units, preprocessing, target normalisation, data hash,
split, seed). The JSON is the source for the model cards that export writes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from neometer.errors import NeometerError
from neometer.models.regressor import TASK_OUTPUTS, build_regressor

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CHECKPOINT = REPO_ROOT / "models" / "demo" / "regressor.safetensors"


class WeightFromHeight(nn.Module):
    """The paper's strategy (i): W = alpha * H + beta appended to a height-only net, so the
    exported model still outputs [height_cm, weight_kg]."""

    def __init__(self, height_net: nn.Module, alpha: float, beta: float):
        super().__init__()
        self.height_net = height_net
        self.register_buffer("coef", torch.tensor([alpha, beta], dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.height_net(x)[:, :1]
        return torch.cat([h, h * self.coef[0] + self.coef[1]], dim=1)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def config_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def save_checkpoint(path: str | Path, model: nn.Module, config: dict, dtype: torch.dtype = torch.float32) -> Path:
    """Write `path` (.safetensors) and its `.json`; atomically, so a crash leaves no half file."""
    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    # The regression coefficients (alpha, beta) are two numbers that fp16 would round; keep them exact.
    state = {k: (v.to(dtype) if v.is_floating_point() and not k.endswith("coef") else v) for k, v in state.items()}
    tmp = path.with_suffix(".safetensors.tmp")
    save_file(state, str(tmp), metadata={"format": "pt"})
    tmp.replace(path)
    config = dict(config, weights_dtype=str(dtype).removeprefix("torch."), weights_sha256=sha256_file(path))
    tmp_json = path.with_suffix(".json.tmp")
    tmp_json.write_text(json.dumps(config, indent=2) + "\n")
    tmp_json.replace(config_path(path))
    return path


def resolve_checkpoint(path: str | Path | None) -> Path:
    """A checkpoint argument -> the .safetensors file: None means the committed demo model;
    a run directory means its best (or last) checkpoint."""
    if path is None:
        path = DEMO_CHECKPOINT
    path = Path(path)
    if path.is_dir():
        for name in ("model.safetensors", "regressor.safetensors", "best.safetensors", "last.safetensors"):
            if (path / name).is_file():
                return path / name
        raise NeometerError(f"{path}: no model.safetensors in this folder; pass the checkpoint file itself")
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    if not path.is_file():
        raise NeometerError(f"checkpoint {path} not found; train one with `python train.py` or omit --weights for the demo model")
    if not config_path(path).is_file():
        raise NeometerError(f"{config_path(path)} missing: a checkpoint is a .safetensors with its .json beside it")
    return path


def build_from_config(config: dict) -> nn.Module:
    """The architecture a checkpoint's JSON describes, untrained."""
    import warnings

    if config.get("role") == "segmenter":
        from neometer.models.segmenter import build_segmenter

        return build_segmenter(config)
    n_out = len(config.get("outputs") or TASK_OUTPUTS[config["task"]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # weights come from the checkpoint, not ImageNet
        if config.get("weight_from_height"):
            net = build_regressor(config["backbone"], 1, config.get("width_mult", 1.0))
            wfh = config["weight_from_height"]
            return WeightFromHeight(net, wfh["alpha"], wfh["beta"])
        return build_regressor(config["backbone"], config.get("n_logits", n_out), config.get("width_mult", 1.0))


def load_checkpoint(path: str | Path | None = None) -> tuple[nn.Module, dict]:
    """-> (float32 model in eval mode, its config). None loads the demo model."""
    path = resolve_checkpoint(path)
    config = json.loads(config_path(path).read_text())
    model = build_from_config(config)
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise NeometerError(f"{path}: weights do not fit the architecture in {config_path(path).name} "
                            f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    config["checkpoint_path"] = str(path)
    config["checkpoint_sha256"] = sha256_file(path)
    return model.eval(), config
