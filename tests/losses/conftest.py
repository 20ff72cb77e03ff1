"""Golden train/eval batch outputs of the original model, as torch tensors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch


def _nested(arrays, prefix: str) -> dict[str, dict[str, torch.Tensor]]:
    """`prefix/<teacher>/<modality>` arrays as {teacher: {modality: tensor}}, file order kept."""
    nested: dict[str, dict[str, torch.Tensor]] = {}
    for name in arrays.files:
        if name.startswith(prefix + "/"):
            _, teacher, modality = name.split("/")
            nested.setdefault(teacher, {})[modality] = torch.from_numpy(arrays[name])
    return nested


@pytest.fixture(scope="module")
def losses_golden(conformance) -> dict:
    return json.loads((conformance / "losses_golden.json").read_text())


@pytest.fixture(scope="module")
def forward_golden(conformance) -> dict:
    """Train-mode output matrices, teacher tensors and the eval-batch matrix."""
    arrays = np.load(conformance / "forward_golden.npz")
    tensor = lambda name: torch.from_numpy(arrays[name])  # noqa: E731
    return {
        "output": {key: tensor(f"train_out_{key}") for key in
                   ("cross_view_conf_matrix", "cross_view_text_matrix", "cross_view_vid_matrix")},
        "distil_text": _nested(arrays, "train_in_distil_text"),
        "distil_video": _nested(arrays, "train_in_distil_video"),
        "teacher_sims": tensor("train_teacher_sims"),
        "eval_sims": tensor("eval_out_cross_view_conf_matrix"),
    }


@pytest.fixture(scope="module")
def golden_config(conformance):
    """Loader of the resolved conformance configs (cecap, ttcap, baseline)."""
    def load(name: str) -> dict:
        return json.loads((conformance / "configs" / f"msrvtt-mini-{name}.json").read_text())
    return load
