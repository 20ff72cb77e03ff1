"""Before `crosskd extract` decodes anything: locate every model the text encoder and the
experts load (local files, the Hugging Face cache, open_clip's cache, else a download from a
server that answers) and check the text encoder's options against its model's config, so
that a machine without network hears about every missing model in one message, in seconds,
instead of one model at a time after a minute of retries each, or after every video."""

from __future__ import annotations

from typing import Any, Mapping

from crosskd.errors import UserError
from crosskd.extract.option_values import typed_options
from crosskd.extract.requirements import Location, Network, Requirement
from crosskd.extract.text_encoders import encoder_options, parse_choice
from crosskd.extract.video_experts import EXPERTS, expert_names


def check_models(experts: str, expert_options: Mapping[str, Mapping[str, Any]],
                 text_encoder: str) -> None:
    """Refuse, in one message, every model that cannot be had and every problem found."""
    network = Network()
    encoder, options = encoder_options(*parse_choice(text_encoder))
    missing, problems = _locate(encoder.requirements(options), network)
    if not missing and not problems:  # its model's config can be read
        try:
            encoder.check_options(options)
        except UserError as err:
            problems.append(str(err))
    expert_needs = [need for name in expert_names(experts)
                    for need in _expert_requirements(name, expert_options)]
    more_missing, more_problems = _locate(expert_needs, network)
    missing, problems = missing + more_missing, problems + more_problems
    if missing or problems:
        raise UserError(_message(missing, problems, network))


def _locate(needs: list[Requirement], network: Network) -> tuple[list[Requirement], list[str]]:
    """The requirements nothing can supply, and the refusals of those that cannot be used."""
    missing, problems = [], []
    for need in needs:
        try:
            if need.locate(network) is Location.MISSING:
                missing.append(need)
        except UserError as err:
            problems.append(str(err))
    return missing, problems


def _expert_requirements(name: str, options: Mapping[str, Mapping[str, Any]]
                         ) -> list[Requirement]:
    """What expert `name` loads with its `--expert-option`s (its backend's, for whisper)."""
    cls, given = EXPERTS[name].variant(dict(options.get(name, {})))
    return cls.requirements(typed_options(cls, given, f"expert {name!r}"))


def _message(missing: list[Requirement], problems: list[str], network: Network) -> str:
    """One message: each missing model with the option that supplies it, then the problems."""
    lines = []
    if missing:
        why = ("HF_HUB_OFFLINE is set, so nothing is downloaded" if network.offline else
               f"the Hugging Face hub ({network.endpoint}) cannot be reached; set "
               "HF_HUB_OFFLINE=1 on a machine without network")
        lines.append(f"{len(missing)} model(s) are neither on this machine nor downloadable "
                     f"({why}); give each a local copy, or fill the cache once online:")
        lines += [f"  {need.what}: {need.option}" for need in missing]
    lines += [f"  {problem}" if missing else problem for problem in problems]
    return "\n".join(lines)
