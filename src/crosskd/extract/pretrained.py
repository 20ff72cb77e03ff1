"""What the pretrained experts share: a transformers model loaded from the hub cache or a
local `save_pretrained` folder (`weights=DIR`), the device it runs on, image preprocessing
done in torch (transformers' fast image processors would import torchvision), and a fixed
projection for token experts whose model width differs from the published token width."""

from __future__ import annotations

from typing import Any

import numpy as np

from crosskd.extract.expert import Expert
from crosskd.extract.hub import from_pretrained, import_transformers, weights_tag
from crosskd.extract.requirements import HubModel, Requirement

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CLIP_MEAN, CLIP_STD = (0.4815, 0.4578, 0.4082), (0.2686, 0.2613, 0.2758)


def model_tag(model: str) -> str:
    """A model name as the middle part of `<type>.<model>.0` (no dots or slashes)."""
    return model.rsplit("/", 1)[-1].replace(".", "_")


def fixed_projection(in_dim: int, out_dim: int, seed: int = 0) -> np.ndarray:
    """`[in_dim, out_dim]` with orthonormal columns (or rows): a recorded, seeded map from a
    model's width to the published token width that keeps inner products roughly."""
    matrix = np.random.default_rng(seed).standard_normal((max(in_dim, out_dim),
                                                          min(in_dim, out_dim)))
    q, _ = np.linalg.qr(matrix)
    return (q if in_dim >= out_dim else q.T).astype(np.float32)


class TransformersExpert(Expert):
    """An expert whose model comes through transformers; subclasses name the loader class."""

    common_options = ("device",)
    loader: str
    default_model: str
    #: files it reads from the hub besides the config and the weights.
    hub_files: tuple[str, ...] = ()

    @classmethod
    def requirements(cls, options: dict[str, Any]) -> list[Requirement]:
        model = options.get("model") or cls.default_model
        return [HubModel(f"expert {cls.name} (model={model})",
                         f"--expert-option {cls.name}:weights=DIR", model,
                         options.get("weights"), cls.hub_files)]

    def __init__(self, model: str | None = None, weights: str | None = None,
                 device: str = "cpu", batch: int = 16) -> None:
        self.transformers = import_transformers(f"expert {self.name}")
        self.model_name, self.weights_dir = model or self.default_model, weights
        self.device, self.batch = device, int(batch)
        self.model = self.load(getattr(self.transformers, self.loader))
        self.model.eval().to(device)
        self._tag = weights_tag(self.model_name, weights, self.model)

    def load(self, loader: Any) -> Any:
        """`loader.from_pretrained` of the weights folder or the hub name (one-line errors)."""
        return from_pretrained(loader, self.model_name, self.weights_dir,
                               f"expert {self.name} (model={self.model_name})",
                               f"--expert-option {self.name}:weights")

    def options(self) -> dict[str, Any]:
        return {"model": self.model_name, "weights": self.weights_dir}

    def weights(self) -> str:
        return self._tag

    def versions(self) -> dict[str, str]:
        import torch

        return {**super().versions(), "torch": torch.__version__,
                "transformers": self.transformers.__version__}

    def autocast(self) -> Any:
        """bf16 autocast on a GPU, nothing on the CPU."""
        import contextlib

        import torch

        if self.device.startswith("cuda"):
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


def image_batch(frames: np.ndarray, size: int, mean: tuple, std: tuple, device: str) -> Any:
    """`[N, H, W, 3]` uint8 -> `[N, 3, size, size]` normalised: short side to `size`, centre crop."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float() / 255
    height, width = x.shape[-2:]
    scale = size / min(height, width)
    x = F.interpolate(x, size=(max(size, round(height * scale)), max(size, round(width * scale))),
                      mode="bilinear", antialias=True, align_corners=False)
    top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
    x = x[..., top:top + size, left:left + size]
    return (x - torch.tensor(mean, device=device).view(1, 3, 1, 1)) / torch.tensor(
        std, device=device).view(1, 3, 1, 1)
