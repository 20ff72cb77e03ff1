"""Per-frame pretrained experts, averaged over a video's frames: an image-text model's image
tower (CLIP, appearance) and an ImageNet CNN (ResNet, scene/object)."""

from __future__ import annotations

import numpy as np

from crosskd.extract.decode import Decoded
from crosskd.extract.expert import Result
from crosskd.extract.pretrained import (CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD,
                                        TransformersExpert, image_batch, model_tag)


class _FrameExpert(TransformersExpert):
    input_kind, output_kind = "frames", "fixed"
    rate, pixel_dim = 2.0, 224
    mean: tuple
    std: tuple
    kind: str

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.modality = f"{self.kind}.{model_tag(self.model_name)}.0"
        self.size = self.image_size()
        self.dim = int(self.embed(np.zeros((1, self.size, self.size, 3), np.uint8)).shape[1])

    def image_size(self) -> int:
        return 224

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """`[N, H, W, 3]` uint8 -> `[N, dim]` float32."""
        import torch

        rows = []
        for start in range(0, len(frames), self.batch):
            pixels = image_batch(frames[start:start + self.batch], self.size, self.mean,
                                 self.std, self.device)
            with torch.inference_mode(), self.autocast():
                rows.append(self.forward(pixels).float().cpu().numpy())
        return np.concatenate(rows)

    def compute(self, video: Decoded) -> Result:
        rows = self.embed(video.frames[self.rate])
        return Result(rows.mean(axis=0).astype(np.float32),
                      frames=rows if self.keeps_frames else None)


class ClipImage(_FrameExpert):
    """CLIP's projected image embedding per frame (CLIPVisionModelWithProjection)."""

    name, kind = "clip", "appearance"
    keeps_frames = True
    loader, default_model = "CLIPVisionModelWithProjection", "openai/clip-vit-base-patch32"
    mean, std = CLIP_MEAN, CLIP_STD

    def image_size(self) -> int:
        return int(self.model.config.image_size)

    def forward(self, pixels):
        return self.model(pixel_values=pixels).image_embeds


class ResNetImage(_FrameExpert):
    """An ImageNet ResNet's pooled last stage per frame (ResNetModel)."""

    name, kind = "resnet", "scene"
    loader, default_model = "ResNetModel", "microsoft/resnet-50"
    mean, std = IMAGENET_MEAN, IMAGENET_STD

    def forward(self, pixels):
        return self.model(pixel_values=pixels).pooler_output.flatten(1)
