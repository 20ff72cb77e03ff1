"""One small thumbnail per video (per segment of a segmented one) and the time in the video
it shows, for the search page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from crosskd.diskwrites import atomic_path, reported_write
from crosskd.extract.decode import Decoded

THUMBNAIL_SIDE = 160
FOLDER = "keyframes"


def save_keyframe(video: Decoded, item_id: str, out: Path) -> dict[str, Any]:
    """The frame at the middle of the densest sampled rate as `keyframes/<id>.jpg` (JPEG
    named explicitly: an id such as `a.b` must not be taken for a file suffix), `item_id` a
    video's or a segment's."""
    from PIL import Image

    rate = max(video.frames)
    index = len(video.frames[rate]) // 2
    image = Image.fromarray(np.ascontiguousarray(video.frames[rate][index]))
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    relative = f"{FOLDER}/{item_id}.jpg"
    path = out / relative
    with reported_write(path, "free disk space or choose another --out"):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            image.save(tmp, format="JPEG", quality=85)
    return {"file": relative, "time": round(float(video.start + video.times[rate][index]), 3)}
