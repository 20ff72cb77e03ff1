"""Data errors a user can act on: each message names the file, the expert or video, and the fix."""

from __future__ import annotations

from crosskd.errors import UserError


class DataError(UserError):
    """A dataset on disk that cannot be used as the config describes."""


class MissingDataDirError(DataError):
    """The dataset folder (data_dir / root_feat_folder) does not exist."""


class MissingFileError(DataError):
    """A split list, expert, text or teacher file the config needs is absent."""


class MissingVideoError(DataError):
    """A video of a split list has no entry in a feature file."""


class FeatureDimError(DataError):
    """Feature widths in a file disagree with the config (or with each other)."""


class NonFiniteFeatureError(DataError):
    """NaN or inf inside an expert marked available (missing experts are a float NaN)."""


class NoCaptionsError(DataError):
    """A video of a split list has no caption."""


class SplitListError(DataError):
    """A split list that is empty, unreadable or names a video twice."""
