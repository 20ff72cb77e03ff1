"""Frames and videos with text drawn in them (DejaVu Sans, the TrueType font matplotlib
ships), for the OCR tests: what is drawn is what the expert must read."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crosskd.extract.synthetic_videos import write_video

SIZE = (1280, 720)  # the OCR expert's 720 px short side, so decoding does not rescale


def font(size: int):
    """DejaVu Sans Bold at `size` px from matplotlib's bundled fonts."""
    import matplotlib
    from PIL import ImageFont

    path = Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans-Bold.ttf"
    return ImageFont.truetype(str(path), size)


def text_frame(lines: list[str], size: tuple[int, int] = SIZE, height: int = 44,
               background: tuple[int, int, int] = (30, 60, 120)) -> np.ndarray:
    """`[H, W, 3]` uint8: white lines of text on a plain background, one under another."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        draw.text((30, 60 + row * int(height * 1.8)), line, font=font(height),
                  fill=(255, 255, 255))
    return np.asarray(image)


def text_video(path: Path, screens: list[list[str]], seconds_each: float = 2.0,
               fps: int = 5, background: tuple[int, int, int] = (30, 60, 120)) -> Path:
    """A video showing each screen's lines for `seconds_each`, one screen after another."""
    per_screen = int(seconds_each * fps)
    frames = np.stack([text_frame(lines, background=background) for lines in screens
                       for _ in range(per_screen)])
    return write_video(path, frames, fps)
