"""Decoding: frames on a fixed time grid whatever the frame rate, upright, scaled, bounded."""

from __future__ import annotations

import numpy as np
import pytest


from crosskd.extract.decode import DecodeError, DecodeSpec, decode  # noqa: E402
from videos import odd_videos  # noqa: E402


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    return odd_videos(tmp_path_factory.mktemp("videos"))


def test_frames_come_on_the_time_grid_with_the_soundtrack(videos):
    decoded = decode(videos["plain"], DecodeSpec(rates=(2.0, 8.0), pixel_dim=32))
    assert decoded.frames[2.0].shape == (4, 32, 43, 3)
    assert decoded.frames[8.0].shape[0] == 16
    np.testing.assert_allclose(decoded.times[2.0], [0.25, 0.75, 1.25, 1.75])
    assert decoded.audio is not None and abs(len(decoded.audio) / 16000 - 2.0) < 0.1
    assert abs(decoded.duration - 2.0) < 0.1


def test_variable_frame_rate_holds_the_frame_shown_at_each_time(videos):
    decoded = decode(videos["vfr"], DecodeSpec(rates=(4.0,), pixel_dim=48))
    vfr = decoded.frames[4.0]
    assert len(vfr) >= 6 and decoded.times[4.0][2] == 0.625
    # 0.125 s and 0.375 s both show the frame of 0.1 s; 0.625 s the one of 0.55 s
    np.testing.assert_array_equal(vfr[0], vfr[1])
    assert not np.array_equal(vfr[1], vfr[2])


def test_silent_portrait_tiny_videos(videos):
    silent = decode(videos["silent"], DecodeSpec(pixel_dim=24))
    assert silent.audio is None
    portrait = decode(videos["portrait"], DecodeSpec(pixel_dim=24)).frames[2.0]
    assert portrait.shape[1:] == (53, 24, 3)  # taller than wide, short side 24
    tiny = decode(videos["tiny"], DecodeSpec(pixel_dim=24)).frames[2.0]
    assert tiny.shape[1:] == (24, 40, 3)


def test_corrupt_file_is_a_decode_error(videos, tmp_path):
    with pytest.raises(DecodeError):
        decode(videos["corrupt"], DecodeSpec())
    with pytest.raises(DecodeError):
        decode(tmp_path / "absent.mp4", DecodeSpec())


def test_frames_per_video_are_bounded(videos):
    decoded = decode(videos["plain"], DecodeSpec(rates=(12.0,), pixel_dim=16, max_frames=5))
    assert len(decoded.frames[12.0]) == 5
    assert np.all(np.diff(decoded.times[12.0]) > 0)


class _RotatedFrame:
    """What PyAV gives for a phone video stored sideways: 40x20 pixels, display rotated."""

    width, height = 40, 20

    def __init__(self, rotation: int) -> None:
        self.rotation = rotation

    def to_ndarray(self, format: str, width: int, height: int) -> np.ndarray:
        image = np.zeros((height, width, 3), np.uint8)
        image[0, 0] = 255  # top-left corner marked
        return image


@pytest.mark.parametrize(("rotation", "corner"), [(0, (0, 0)), (90, (-1, 0)), (-90, (0, -1)),
                                                   (180, (-1, -1))])
def test_display_rotation_is_applied(rotation, corner):
    from crosskd.extract.decode import _rgb

    image = _rgb(_RotatedFrame(rotation), pixel_dim=10)
    assert image.shape[:2] == ((10, 20) if rotation in (0, 180) else (20, 10))
    assert image[corner].any()  # rot90 by the counter-clockwise display angle
