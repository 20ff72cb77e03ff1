"""A Kinetics video model on clips (VideoMAE), its mean token per clip averaged over the
video's clips: the motion/action expert."""

from __future__ import annotations

import numpy as np

from crosskd.extract.decode import Decoded
from crosskd.extract.expert import Result, clips
from crosskd.extract.pretrained import (IMAGENET_MEAN, IMAGENET_STD, TransformersExpert,
                                        image_batch, model_tag)


class VideoMAEClips(TransformersExpert):
    """VideoMAE (fine-tuned on Kinetics-400): `num_frames`-frame clips at 8 frames/s."""

    name = "videomae"
    input_kind, output_kind = "clips", "fixed"
    loader, default_model = "VideoMAEModel", "MCG-NJU/videomae-base-finetuned-kinetics"
    rate, pixel_dim = 8.0, 224

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        config = self.model.config
        self.modality = f"motion.{model_tag(self.model_name)}.0"
        self.clip_len, self.size, self.dim = int(config.num_frames), int(config.image_size), int(
            config.hidden_size)

    def compute(self, video: Decoded) -> Result:
        import torch

        batches = clips(video.frames[self.rate], self.clip_len)
        rows = []
        for clip in batches:
            pixels = image_batch(clip, self.size, IMAGENET_MEAN, IMAGENET_STD, self.device)
            with torch.inference_mode(), self.autocast():
                hidden = self.model(pixel_values=pixels.unsqueeze(0)).last_hidden_state
            rows.append(hidden.float().mean(dim=1).cpu().numpy()[0])
        return Result(np.mean(rows, axis=0).astype(np.float32))
