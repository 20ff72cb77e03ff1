"""Load a trained model: our run checkpoint or run folder, or an original `trained_model.pth`.

Every file is read by crosskd.checkpoint's safe readers (torch's weights-only loader, or the
original format's allow-list), never by unpickling code.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from crosskd.checkpoint.original import load_original_state_dict
from crosskd.checkpoint.paging import release_weights_after_use
from crosskd.checkpoint.reader import read_checkpoint
from crosskd.models import CENet, build_model
from crosskd.models.spec import ModelSpec


def load_model(spec: ModelSpec, checkpoint_path: str | Path,
               device: torch.device | str = "cpu") -> CENet:
    """The model `spec` describes with a checkpoint's weights (ours or the original's), on
    `device`, in evaluation mode.

    The model is built without weights (meta device) and takes the checkpoint's tensors,
    which for our checkpoints are memory-mapped: on the CPU the weights are held once, not
    twice, and the large ones are unmapped again after each use (crosskd.checkpoint.paging).
    """
    state_dict, _ = read_checkpoint(checkpoint_path)
    with torch.device("meta"):
        model = build_model(spec)
    with warnings.catch_warnings():  # the checks load into meta tensors: a no-op by design
        warnings.filterwarnings("ignore", message=".*to a meta parameter.*")
        load_original_state_dict(model, state_dict, source=str(checkpoint_path))
    model.load_state_dict(state_dict, assign=True)
    device = torch.device(device)
    if device.type == "cpu":
        release_weights_after_use(model)
    return model.to(device).eval()
