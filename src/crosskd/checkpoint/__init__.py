"""Checkpoints: the original `trained_model.pth` format (read safely, written back) and ours."""

from crosskd.checkpoint.original import (CheckpointError, OriginalCheckpoint,
                                         load_original_checkpoint, load_original_state_dict,
                                         original_state_dict, save_original_checkpoint)
from crosskd.checkpoint.refusal import UnsafeCheckpointError

__all__ = ["CheckpointError", "OriginalCheckpoint", "UnsafeCheckpointError",
           "load_original_checkpoint", "load_original_state_dict", "original_state_dict",
           "save_original_checkpoint"]
