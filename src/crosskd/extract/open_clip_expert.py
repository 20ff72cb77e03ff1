"""open_clip's image towers as an appearance expert (`--experts open-clip`): any open_clip
architecture with a pretrained tag (`pretrained=`) or a local checkpoint file (`weights=`).

open_clip imports torchvision, which must match the installed torch; where it cannot be
imported the expert says so in one line instead of failing inside the import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crosskd.data.fingerprint import content_digest
from crosskd.errors import UserError
from crosskd.extract.decode import Decoded
from crosskd.extract.expert import Expert, Result
from crosskd.extract.pretrained import CLIP_MEAN, CLIP_STD, image_batch, model_tag
from crosskd.extract.requirements import (LocalFile, Location, Network, Requirement,
                                          in_hub_cache)


def import_open_clip() -> Any:
    """open_clip, or one line naming the fix (it needs a torchvision built for this torch)."""
    try:
        import open_clip
    except Exception as err:  # ImportError, or torchvision's operator errors at import
        raise UserError(f"expert open-clip cannot import open_clip ({type(err).__name__}: "
                        f"{str(err).splitlines()[0][:120] if str(err) else ''}); install "
                        "open_clip_torch and the torchvision release built for your torch, "
                        "or use --experts clip (transformers)") from None
    return open_clip


#: where open_clip keeps checkpoints it downloads from a URL (its default cache_dir).
URL_CACHE = Path("~/.cache/clip")
#: the checkpoint names open_clip looks for in a hub repository named without a file.
HUB_CHECKPOINTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


@dataclass(frozen=True)
class OpenClipCheckpoint(Requirement):
    """open_clip's checkpoint of an architecture and pretrained tag: on the hub or at a URL,
    kept in the Hugging Face cache or open_clip's URL_CACHE."""

    arch: str
    tag: str

    def locate(self, network: Network) -> Location:
        open_clip = import_open_clip()
        if Path(self.tag).is_file():
            return Location.LOCAL
        config = open_clip.get_pretrained_cfg(self.arch, self.tag)
        if not config:
            raise UserError(f"{self.what}: pretrained={self.tag} is not one of open_clip's tags "
                            f"for {self.arch} (open_clip.list_pretrained() lists them)")
        repo, filename = os.path.split(config.get("hf_hub", ""))
        url = config.get("url", "")
        if (repo and any(in_hub_cache(repo, name) for name in ((filename,) if filename
                                                                else HUB_CHECKPOINTS))) or (
                url and (URL_CACHE.expanduser() / os.path.basename(url)).is_file()):
            return Location.CACHED
        if repo:
            return network.hub_location()
        return Location.DOWNLOAD if network.reachable(url) else Location.MISSING


class OpenClipImage(Expert):
    """An open_clip image embedding per frame, averaged (per-frame features kept too)."""

    name = "open-clip"
    input_kind, output_kind = "frames", "fixed"
    keeps_frames = True
    common_options = ("device",)
    rate, pixel_dim = 2.0, 224

    default_model, default_pretrained = "ViT-B-32", "laion2b_s34b_b79k"

    @classmethod
    def requirements(cls, options: dict[str, Any]) -> list[Requirement]:
        model = options.get("model") or cls.default_model
        tag = options.get("pretrained", cls.default_pretrained)
        if options.get("weights") is not None:
            return [LocalFile(f"expert open-clip (model={model})",
                              "--expert-option open-clip:weights=FILE", options["weights"],
                              "an open_clip checkpoint (.pt or .safetensors)")]
        if not tag:  # random weights
            return []
        return [OpenClipCheckpoint(f"expert open-clip (model={model}, pretrained={tag})",
                                   "--expert-option open-clip:weights=FILE", model, tag)]

    def __init__(self, model: str = default_model, pretrained: str | None = default_pretrained,
                 weights: str | None = None, device: str = "cpu", batch: int = 16) -> None:
        open_clip = import_open_clip()
        if weights is not None and not Path(weights).is_file():
            raise UserError(f"expert open-clip: weights={weights} is not a file; give an "
                            "open_clip checkpoint (.pt or .safetensors)")
        self.arch, self.tag, self.weights_file = model, pretrained, weights
        self.device, self.batch = device, int(batch)
        try:
            self.model = open_clip.create_model(model, pretrained=weights or pretrained or None,
                                                device=device)
        except (RuntimeError, OSError, ValueError) as err:
            raise UserError(f"expert open-clip: cannot load {model} ({str(err)[:120]}); "
                            "without network access pass a local checkpoint as "
                            "--expert-option open-clip:weights=FILE") from None
        self.model.eval()
        self._tag = (f"sha256:{content_digest(Path(weights))}" if weights
                     else f"open_clip:{model}/{pretrained}")
        self.modality = f"appearance.{model_tag(model).lower()}.0"
        size = self.model.visual.image_size
        self.size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.dim = int(self.embed(np.zeros((1, self.size, self.size, 3), np.uint8)).shape[1])

    def embed(self, frames: np.ndarray) -> np.ndarray:
        import torch

        rows = []
        for start in range(0, len(frames), self.batch):
            pixels = image_batch(frames[start:start + self.batch], self.size, CLIP_MEAN,
                                 CLIP_STD, self.device)
            with torch.inference_mode():
                rows.append(self.model.encode_image(pixels).float().cpu().numpy())
        return np.concatenate(rows)

    def compute(self, video: Decoded) -> Result:
        rows = self.embed(video.frames[self.rate])
        return Result(rows.mean(axis=0).astype(np.float32), frames=rows)

    def options(self) -> dict[str, Any]:
        return {"model": self.arch, "pretrained": self.tag, "weights": self.weights_file}

    def weights(self) -> str:
        return self._tag
