"""Weight-free experts for the demo and the tests: colour statistics per frame, motion from
frame differences per clip, band energies of the soundtrack. They need no download and see
what the synthetic videos vary (colours, shape, direction, pitch)."""

from __future__ import annotations

import numpy as np

from crosskd.extract.decode import AUDIO_RATE, Decoded
from crosskd.extract.expert import Expert, Result, clips

_BINS = 4  # per colour channel: a 4x4x4 colour histogram
_GRID = 4  # motion energy on a 4x4 grid


def _foreground(frame: np.ndarray) -> np.ndarray:
    """Pixels far from the frame's median colour (the background)."""
    background = np.median(frame.reshape(-1, 3), axis=0)
    return np.abs(frame.astype(np.float32) - background).sum(axis=-1) > 60


def _colour_row(frame: np.ndarray) -> np.ndarray:
    pixels = frame.reshape(-1, 3)
    bins = (pixels // (256 // _BINS)).astype(np.int64)
    histogram = np.bincount((bins[:, 0] * _BINS + bins[:, 1]) * _BINS + bins[:, 2],
                            minlength=_BINS**3) / len(pixels)
    mask = _foreground(frame)
    background = np.median(pixels, axis=0) / 255
    area = mask.mean()
    foreground = frame[mask].mean(axis=0) / 255 if mask.any() else np.zeros(3)
    ys, xs = np.nonzero(mask)
    box = (np.ptp(ys) + 1) * (np.ptp(xs) + 1) if mask.any() else 1
    fill = mask.sum() / box
    return np.concatenate([np.sqrt(histogram), background, foreground, [area * 4, fill]])


class ColourStatistics(Expert):
    """Per frame: a colour histogram, background and foreground colour, the foreground's
    area and how much of its bounding box it fills (a shape cue); averaged over frames."""

    name = "demo-colour"
    input_kind, output_kind = "frames", "fixed"
    modality = "appearance.demo-colour.0"
    dim = _BINS**3 + 3 + 3 + 2
    rate, pixel_dim = 4.0, 64

    def compute(self, video: Decoded) -> Result:
        rows = [_colour_row(frame) for frame in video.frames[self.rate]]
        return Result(np.mean(rows, axis=0).astype(np.float32))


def _centroid(mask: np.ndarray) -> np.ndarray | None:
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return np.array([xs.mean() / mask.shape[1], ys.mean() / mask.shape[0]])


def _motion_row(clip: np.ndarray) -> np.ndarray:
    grey = clip.astype(np.float32).mean(axis=-1)
    diff = np.abs(np.diff(grey, axis=0)).mean(axis=0) / 255 if len(clip) > 1 else grey[0] * 0
    h, w = diff.shape
    energy = diff[:h - h % _GRID, :w - w % _GRID].reshape(_GRID, h // _GRID, _GRID, -1)
    energy = energy.mean(axis=(1, 3)).reshape(-1)
    centres = [c for c in (_centroid(_foreground(frame)) for frame in clip) if c is not None]
    step = (centres[-1] - centres[0]) * 4 if len(centres) > 1 else np.zeros(2)
    directions = np.zeros(8)
    if np.linalg.norm(step) > 1e-3:
        directions[int(round(np.arctan2(step[1], step[0]) / (np.pi / 4))) % 8] = 1.0
    return np.concatenate([energy * 10, step, directions])


class MotionEnergy(Expert):
    """Per clip: frame-difference energy on a grid, the foreground's displacement and its
    direction (one of eight); averaged over clips."""

    name = "demo-motion"
    input_kind, output_kind = "clips", "fixed"
    modality = "motion.demo-motion.0"
    dim = _GRID * _GRID + 2 + 8
    rate, clip_len, pixel_dim = 8.0, 4, 64

    def compute(self, video: Decoded) -> Result:
        rows = [_motion_row(clip) for clip in clips(video.frames[self.rate], self.clip_len)]
        return Result(np.mean(rows, axis=0).astype(np.float32))


class AudioBands(Expert):
    """Log energies of 128 frequency bands per quarter second of the soundtrack (tokens);
    missing without an audio track."""

    name = "demo-audio"
    input_kind, output_kind = "audio", "tokens"
    modality = "audio"
    dim = 128
    rate, pixel_dim = 0.0, 0
    window_seconds = 0.25

    def compute(self, video: Decoded) -> Result:
        if video.audio is None or not len(video.audio):
            return Result(None)
        window = int(AUDIO_RATE * self.window_seconds)
        count = max(1, len(video.audio) // window)
        samples = np.resize(video.audio, count * window).reshape(count, window)
        spectrum = np.abs(np.fft.rfft(samples * np.hanning(window), axis=1)) ** 2
        edges = np.unique(np.geomspace(1, spectrum.shape[1], self.dim + 1).astype(int))
        bands = np.add.reduceat(spectrum, edges[:-1], axis=1)
        bands = np.pad(bands, ((0, 0), (0, self.dim - bands.shape[1])))
        return Result((np.log1p(bands) / 10).astype(np.float32))
