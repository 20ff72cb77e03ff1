"""The video-expert registry: `--experts a,b,...` names entries (or a set such as `demo`),
`--expert-option NAME:key=value` passes an option (a local weights folder, a model name)."""

from __future__ import annotations

from typing import Any, Mapping

from crosskd.errors import UserError
from crosskd.extract.audio_experts import ASTAudio, WhisperSpeech
from crosskd.extract.demo_experts import AudioBands, ColourStatistics, MotionEnergy
from crosskd.extract.expert import Expert
from crosskd.extract.image_experts import ClipImage, ResNetImage
from crosskd.extract.ocr_expert import RapidOCRText
from crosskd.extract.open_clip_expert import OpenClipImage
from crosskd.extract.option_values import typed_options
from crosskd.extract.video_model_expert import VideoMAEClips

#: every video expert by its registry name.
EXPERTS: dict[str, type[Expert]] = {
    cls.name: cls for cls in (ColourStatistics, MotionEnergy, AudioBands, ClipImage, ResNetImage,
                              VideoMAEClips, ASTAudio, WhisperSpeech, OpenClipImage,
                              RapidOCRText)}

#: names that select several experts.
EXPERT_SETS: dict[str, tuple[str, ...]] = {
    "demo": ("demo-colour", "demo-motion", "demo-audio"),
    "default": ("clip", "resnet", "videomae", "ast", "whisper"),
}


def expert_names(choice: str) -> list[str]:
    """Registry names from a comma-separated list of names and sets, in order, once each."""
    names: list[str] = []
    for item in filter(None, (part.strip() for part in choice.split(","))):
        for name in EXPERT_SETS.get(item, (item,)):
            if name not in EXPERTS:
                known = ", ".join([*EXPERT_SETS, *EXPERTS])
                raise UserError(f"--experts: unknown expert {name!r}; use names or sets of {known}")
            if name not in names:
                names.append(name)
    if not names:
        raise UserError("--experts names no expert; use e.g. demo or default")
    return names


def build_experts(choice: str, options: Mapping[str, Mapping[str, Any]] | None = None,
                  **common: Any) -> list[Expert]:
    """The experts `choice` names, each built with its options (and `common` ones it takes)."""
    options = options or {}
    unknown = set(options) - set(expert_names(choice))
    if unknown:
        raise UserError(f"--expert-option names {sorted(unknown)}, which --experts does not use")
    _refuse_clashes([(name, getattr(EXPERTS[name], "modality", None))
                     for name in expert_names(choice)])
    experts = []
    for name in expert_names(choice):
        cls, given = EXPERTS[name].variant(dict(options.get(name, {})))
        kwargs = {**{k: v for k, v in common.items() if k in getattr(cls, "common_options", ())},
                  **typed_options(cls, given, f"expert {name!r}")}
        try:
            expert = cls(**kwargs)
        except TypeError as err:
            raise UserError(f"expert {name!r}: bad options {dict(options.get(name, {}))} "
                            f"({err})") from None
        expert.check()
        experts.append(expert)
    _refuse_clashes([(expert.name, expert.modality) for expert in experts])
    return experts


def _refuse_clashes(stored: list[tuple[str, str | None]]) -> None:
    """Two experts stored under one name (both "audio", say) would overwrite each other."""
    taken: dict[str, str] = {}
    for name, modality in stored:
        if modality is None:
            continue
        if modality in taken:
            raise UserError(f"experts {taken[modality]!r} and {name!r} are both stored as "
                            f"{modality!r}; choose one of them")
        taken[modality] = name
