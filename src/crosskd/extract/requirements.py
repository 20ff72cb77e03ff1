"""What a model needs before extraction starts, and where it comes from: a local file or
folder, a cache already filled (the Hugging Face cache, open_clip's), or a download.

Experts and text encoders declare their requirements (`requirements(options)`); the
preflight (`crosskd.extract.preflight`) locates all of them before anything is decoded, so
that a machine without network hears about every missing model at once, in seconds.
"""

from __future__ import annotations

import enum
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from crosskd.errors import UserError
from crosskd.extract.hub import import_transformers

#: how long one probe of a download server may take (no retries: the answer is yes or no).
PROBE_SECONDS = 5.0
#: the files whose presence makes a transformers model's weights: one of them is enough.
TRANSFORMERS_WEIGHTS = ("model.safetensors", "model.safetensors.index.json",
                        "pytorch_model.bin", "pytorch_model.bin.index.json")


class Location(enum.Enum):
    """Where a model's weights will come from."""

    LOCAL = "a local file or folder"
    CACHED = "a cache on this machine"
    DOWNLOAD = "a download"
    MISSING = "nowhere: not here, and the server cannot be reached"


class Network:
    """Whether downloads can happen: the Hugging Face hub's offline switch (HF_HUB_OFFLINE)
    and endpoint (HF_ENDPOINT), and, asked once per server, whether a server answers."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], bool] = {}

    @property
    def offline(self) -> bool:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)

    @property
    def endpoint(self) -> str:
        from huggingface_hub import constants

        return constants.ENDPOINT

    def reachable(self, url: str) -> bool:
        """Whether `url`'s server answers a HEAD request (any status below 500) in
        PROBE_SECONDS; False in offline mode without asking."""
        if self.offline:
            return False
        server = urllib.parse.urlsplit(url)[:2]
        if server not in self._answers:
            self._answers[server] = _answers(url)
        return self._answers[server]

    def hub_location(self) -> Location:
        """DOWNLOAD when the hub answers, else MISSING."""
        return Location.DOWNLOAD if self.reachable(self.endpoint) else Location.MISSING


def _answers(url: str) -> bool:
    """One HEAD request: a status below 500 (even 401 or 404) means the server is there."""
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=PROBE_SECONDS):  # noqa: S310 (http[s] only)
            return True
    except urllib.error.HTTPError as err:
        return err.code < 500
    except (OSError, ValueError):  # refused, unresolvable, timed out, not a URL
        return False


def in_hub_cache(repo: str, filename: str) -> bool | None:
    """True when the Hugging Face cache holds `repo`'s `filename`, False when it records
    that the repository has no such file, None when it knows nothing."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo, filename)
    except ValueError:  # not a repository id (HFValidationError)
        return None
    return None if found is None else isinstance(found, str)  # a path, or "known absent"


@dataclass(frozen=True)
class Requirement(ABC):
    """One model an expert or a text encoder loads, and the option that supplies it."""

    #: who needs it, as messages name it: "expert clip (model=openai/clip-vit-base-patch32)".
    what: str
    #: the option that points at a local copy: "--expert-option clip:weights=DIR".
    option: str

    @abstractmethod
    def locate(self, network: Network) -> Location:
        """Where the weights come from; a UserError for a local path that cannot be used."""


@dataclass(frozen=True)
class HubModel(Requirement):
    """A transformers model: a `save_pretrained` folder, or a hub name and its cache."""

    model: str
    folder: str | None = None
    #: further files it reads (a tokenizer's, a feature extractor's): cached, or recorded
    #: by the cache as absent from the repository.
    files: tuple[str, ...] = field(default=())

    def locate(self, network: Network) -> Location:
        import_transformers(self.what)
        if self.folder is not None:
            if not (Path(self.folder) / "config.json").is_file():
                raise UserError(f"{self.what}: {self.folder} is not a folder written by "
                                "transformers' save_pretrained (no config.json in it); give "
                                f"one as {self.option}")
            return Location.LOCAL
        if Path(self.model).is_dir():
            return Location.LOCAL
        if self.cached():
            return Location.CACHED
        return network.hub_location()

    def cached(self) -> bool:
        """Whether the hub cache has the config, the weights and every further file."""
        return (in_hub_cache(self.model, "config.json") is True
                and any(in_hub_cache(self.model, name) is True for name in TRANSFORMERS_WEIGHTS)
                and all(in_hub_cache(self.model, name) is not None for name in self.files))


@dataclass(frozen=True)
class LocalFile(Requirement):
    """A file the user names (a checkpoint, a word-vector file): there, or refused."""

    path: str
    kind: str  # what the file must be, for the message: "an open_clip checkpoint (.pt)"

    def locate(self, network: Network) -> Location:
        if not Path(self.path).is_file():
            raise UserError(f"{self.what}: {self.path} is not a file; give {self.kind} as "
                            f"{self.option}")
        return Location.LOCAL
