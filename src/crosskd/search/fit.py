"""Whether a model reads a dataset's features: its experts (each from the file and at the
width the model was trained with) and its caption features, checked against what the
dataset's extraction record says it holds before anything is embedded.

A model trained on one collection indexes another made with the same experts and text
encoder (a collection extracted without captions, say); a model of other experts is
refused in one line naming every difference, not by a missing file or a shape error
halfway through the data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from crosskd.data import layouts
from crosskd.data.spec import DataSpec
from crosskd.errors import UserError
from crosskd.untrusted import terminal_safe


def check_fit(spec: DataSpec, record: Mapping[str, Any]) -> None:
    """Refuse, naming what differs, a model (its data part `spec`) that does not read the
    features the record lists; a dataset without such a record (published features) is
    checked as its files are read."""
    experts = record.get("experts")
    if not isinstance(experts, list):
        return
    held = {e["modality"]: e for e in experts if isinstance(e, dict)
            and isinstance(e.get("modality"), str)}
    differences = [d for m in spec.modalities for d in _expert_differences(spec, m, held.get(m))]
    differences += _text_differences(spec, record.get("text_encoder"))
    if differences:
        raise UserError(terminal_safe(
            f"the model does not read the features of {Path(spec.data_dir) / 'extraction.json'}"
            f": {'; '.join(differences)}; index it with a model trained on its experts and "
            "text encoder, or extract its videos again with the model's (crosskd extract "
            "--experts, --text-encoder)"))


def _expert_differences(spec: DataSpec, modality: str, held: Mapping[str, Any] | None
                        ) -> list[str]:
    """How the dataset's expert `modality` differs from what the model reads of it."""
    if held is None:
        return [f"it reads expert {modality!r}, which the dataset does not have"]
    found = []
    width, dim = spec.raw_input_dims.get(modality), held.get("dim")
    if isinstance(dim, int) and width is not None and dim != width:
        found.append(f"expert {modality!r} is {width}-d in the model, {dim}-d in the dataset")
    files = layouts.expert_paths(layouts.get_layout(spec.dataset_name), modality,
                                 spec.aggregation, spec.split_name)
    if isinstance(held.get("file"), str) and held["file"] not in files:
        found.append(f"expert {modality!r} is read from {', '.join(files)}, the dataset has "
                     f"it in {held['file']} (extracted at other settings)")
    return found


def _text_differences(spec: DataSpec, encoder: Any) -> list[str]:
    """How the dataset's caption features differ from the model's."""
    if not isinstance(encoder, dict):
        return []
    found = []
    text_feat, dim = encoder.get("text_feat"), encoder.get("dim")
    if isinstance(text_feat, str) and text_feat != spec.text_feat:
        found.append(f"its caption features are {spec.text_feat}, the dataset's {text_feat}")
    elif isinstance(dim, int) and dim != spec.text_dim:
        found.append(f"its caption features are {spec.text_dim}-d, the dataset's {dim}-d")
    return found
