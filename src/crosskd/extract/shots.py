"""Shot boundaries for `--segment shots`, found by PySceneDetect (`scenedetect`, BSD-3): its
ContentDetector (a cut where the frame-to-frame change of hue, saturation and lightness
passes a threshold) reading the file through its PyAV backend, the decoder the rest of
extraction uses. It is the maintained library for this (releases since 2014, the detector
the small open moment-search tools pair with transcripts), and it scores downscaled frames
in one pass of its own over the file.
"""

from __future__ import annotations

import logging
from pathlib import Path

from crosskd.errors import UserError
from crosskd.extract.decode import DecodeError

INSTALL = 'pip install "crosskd[shots]"'
#: PySceneDetect's logger, which says "Detecting scenes..." for every video at INFO.
_LIBRARY_LOG = "pyscenedetect"


def require_shot_detector() -> None:
    """Refuse `--segment shots` before any video is decoded when PySceneDetect (or the
    OpenCV it computes with) is not installed."""
    try:
        import scenedetect.backends.pyav  # noqa: F401 - imports OpenCV too
    except ImportError as err:
        raise UserError(f"--segment shots needs PySceneDetect and OpenCV ({err.name} is not "
                        f"installed): {INSTALL}") from None


def shot_cuts(path: Path, threshold: float, min_seconds: float) -> list[float]:
    """The times (seconds) at which a new shot starts, the video's start left out; a
    DecodeError when the file cannot be read."""
    import av
    from scenedetect import ContentDetector, SceneManager, VideoOpenFailure
    from scenedetect.backends.pyav import VideoStreamAv

    logging.getLogger(_LIBRARY_LOG).setLevel(logging.WARNING)
    manager = SceneManager()
    manager.add_detector(ContentDetector(threshold=threshold, min_scene_len=min_seconds))
    try:
        manager.detect_scenes(VideoStreamAv(str(path), suppress_output=True))
    except (VideoOpenFailure, av.FFmpegError, OSError, ValueError, RuntimeError) as err:
        raise DecodeError(f"shot detection: {type(err).__name__}: {str(err)[:200]}") from None
    return [float(start.seconds) for start, _ in manager.get_scene_list()[1:]]
