"""The configs shipped with crosskd (the published model-zoo configs, their bases, the demo's).

They live inside the package, `crosskd/configs/`, and are found through importlib.resources,
so a checkout (whose top-level `configs` is a link to that folder), an editable install and a
plain `pip install .` wheel all read the same files from any working folder.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from crosskd.config.files import load_config
from crosskd.errors import UserError

#: how the README and the original's command lines name a shipped config: configs/<file>.
PREFIX = "configs"


def config_dir() -> Path:
    """The folder of the shipped configs."""
    folder = Path(str(files("crosskd") / PREFIX))
    if not folder.is_dir():
        raise UserError(f"the configs shipped with crosskd are missing ({folder}); "
                        "reinstall it (pip install --force-reinstall crosskd)")
    return folder


def resolve_config(text: str | Path) -> Path:
    """`text` as given when that file exists; else `configs/<name>` read as a shipped config.

    So `--config configs/msrvtt-train-gpt2-xl-finetuned-mte-adam-cecap.json`, as the README
    writes it, works outside a checkout; any other path is returned unchanged for the loader
    to report.
    """
    path = Path(text)
    if path.is_file() or path.is_absolute() or not path.parts or path.parts[0] != PREFIX:
        return path
    shipped = config_dir().joinpath(*path.parts[1:])
    return shipped if shipped.is_file() else path


def experiment_configs() -> list[str]:
    """Every shipped config that is a whole experiment (names relative to `config_dir()`,
    e.g. `base/msrvtt.json`): all but the parents that name no dataset (`base/common.json`)."""
    folder = config_dir()
    names = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*.json"))
    return [name for name in names
            if (load_config(folder / name).get("data_loader") or {}).get("args", {})
            .get("dataset_name")]
