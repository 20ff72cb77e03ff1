"""The CrossKD model zoo: eight trained checkpoints, their configs, published numbers; fetch and evaluate.

No checksums are published for the checkpoints, so each download records the sha256 of what
arrived in `manifest.json` beside `trained_model.pth`, and the file must load as a checkpoint
before it is kept. The Drive URL base follows $CROSSKD_DOWNLOAD_BASE_URL (tests, mirrors).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from crosskd.config import load_config, set_key, with_eval_settings
from crosskd.datasets import DATASETS
from crosskd.download.drive import DRIVE_BASE_URL, drive_download_url, resolve_download
from crosskd.download.features import BASE_URL_ENV, TARBALLS
from crosskd.download.http import build_opener, download, file_digests
from crosskd.download.required import published_config_name
from crosskd.errors import UserError

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "trained_model.pth"
MANIFEST_NAME = "manifest.json"
METRICS = ("R1", "R5", "R10", "R50", "MedR")

Metrics = Mapping[str, Any]
Evaluate = Callable[[Mapping[str, Any], Path], Metrics]


@dataclass(frozen=True)
class ZooEntry:
    """One published model: dataset, method variant, Drive file id and its published t2v numbers."""

    dataset: str
    variant: str
    method: str
    drive_id: str
    published: tuple[float, float, float, float, float]

    @property
    def folder(self) -> str:
        """The dataset's folder name under the data root (as in the tarball)."""
        return TARBALLS[self.dataset].folder

    @property
    def name(self) -> str:
        """The name users type, e.g. `msrvtt-cecap`."""
        return f"{self.folder.lower()}-{self.variant}"

    @property
    def config_name(self) -> str:
        """The config file (in configs/) the model was trained with."""
        return published_config_name(self.folder, self.variant)

    def published_t2v(self) -> dict[str, float]:
        """The paper's t2v numbers under our metric keys."""
        return dict(zip(METRICS, self.published))


#: the published models of every dataset (crosskd.datasets), in the catalogue's order.
ZOO: tuple[ZooEntry, ...] = tuple(
    ZooEntry(name, model.variant, model.method, model.drive_id, model.published)
    for name, spec in DATASETS.items() for model in spec.models)


def find_entry(name: str) -> ZooEntry:
    """A zoo entry by name, case-insensitive: `msrvtt-cecap`, `activity-net-ttcap` or `activitynet-ttcap`."""
    for entry in ZOO:
        if name.lower() in (entry.name, f"{entry.dataset.lower()}-{entry.variant}"):
            return entry
    raise UserError(f"unknown model {name!r}: choose one of {', '.join(e.name for e in ZOO)} "
                    "(see `crosskd zoo list`)")


def entry_url(entry: ZooEntry, base: str | None = None) -> str:
    """The Drive download URL of an entry (base: argument, else $CROSSKD_DOWNLOAD_BASE_URL, else Drive)."""
    return drive_download_url(entry.drive_id, base or os.environ.get(BASE_URL_ENV) or DRIVE_BASE_URL)


def model_dir(entry: ZooEntry, zoo_root: str | Path) -> Path:
    """Where an entry's checkpoint and manifest live."""
    return Path(zoo_root) / entry.name


def read_manifest(entry: ZooEntry, zoo_root: str | Path) -> dict[str, Any] | None:
    """The manifest of a downloaded entry, if any."""
    try:
        return json.loads((model_dir(entry, zoo_root) / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _record(entry: ZooEntry, checkpoint: Path, source: str) -> dict[str, Any]:
    """Check that `checkpoint` loads, then write its manifest (sha256, size, source, config)."""
    from crosskd.checkpoint.reader import read_checkpoint  # torch: `zoo list` runs without it

    try:
        state_dict, _ = read_checkpoint(checkpoint)
    except UserError as err:
        raise UserError(f"{checkpoint} (from {source}) is not a loadable checkpoint: {err}") from None
    record = {"name": entry.name, "source": source, "config": entry.config_name,
              "sha256": file_digests(checkpoint)["sha256"], "size": checkpoint.stat().st_size,
              "tensors": len(state_dict), "published_t2v": entry.published_t2v()}
    (checkpoint.parent / MANIFEST_NAME).write_text(json.dumps(record, indent=2) + "\n",
                                                    encoding="utf-8")
    log.info("%s: %d tensors, sha256 %s", checkpoint, len(state_dict), record["sha256"])
    return record


def fetch_model(entry: ZooEntry, zoo_root: str | Path = "data/zoo", *, base: str | None = None,
                force: bool = False, retries: int = 3, progress: bool = True) -> Path:
    """Download an entry's checkpoint, check it loads, and record its sha256; return its path.

    A checkpoint already there is kept when it matches its manifest, or, without a manifest
    (placed by hand), when it loads.
    """
    checkpoint = model_dir(entry, zoo_root) / CHECKPOINT_NAME
    manifest = read_manifest(entry, zoo_root)
    if checkpoint.is_file() and not force:
        if manifest is None:
            _record(entry, checkpoint, "found on disk")
            return checkpoint
        if file_digests(checkpoint)["sha256"] == manifest.get("sha256"):
            log.info("%s already downloaded to %s", entry.name, checkpoint)
            return checkpoint
        log.warning("%s does not match its manifest; downloading again", checkpoint)
    checkpoint.unlink(missing_ok=True)
    opener = build_opener()
    url = entry_url(entry, base)
    download(resolve_download(url, opener), checkpoint, retries=retries, opener=opener,
             progress=progress)
    try:
        _record(entry, checkpoint, url)
    except UserError as err:
        checkpoint.unlink()
        raise UserError(f"{err}; the download was deleted: try again later, or save the file "
                        f"from a browser as {checkpoint}") from None
    return checkpoint


def eval_config(entry: ZooEntry, config_dir: str | Path, data_root: str | Path) -> dict[str, Any]:
    """The entry's test config (eval_settings merged), reading data from `<data_root>/<folder>`."""
    config = with_eval_settings(load_config(Path(config_dir) / entry.config_name))
    set_key(config, "data_loader.args.data_dir", str(Path(data_root) / entry.folder))
    return config


def compare(entry: ZooEntry, metrics: Metrics) -> list[tuple[str, float, float | None]]:
    """(metric, published, ours) rows for t2v R@1/5/10/50 and MdR."""
    ours = metrics.get("t2v", {})
    return [(key, published, ours.get(key)) for key, published in entry.published_t2v().items()]


def format_comparison(entry: ZooEntry, metrics: Metrics) -> str:
    """A small text table: our t2v numbers beside the published ones."""
    lines = [f"{entry.name} ({entry.dataset}, {entry.method}) t2v",
             f"{'metric':<6} {'published':>9} {'ours':>8} {'diff':>7}"]
    for key, published, ours in compare(entry, metrics):
        ours_text = f"{ours:8.1f}" if ours is not None else f"{'-':>8}"
        diff_text = f"{ours - published:+7.1f}" if ours is not None else f"{'-':>7}"
        lines.append(f"{key:<6} {published:9.1f} {ours_text} {diff_text}")
    return "\n".join(lines)


def evaluate_model(entry: ZooEntry, evaluate: Evaluate, *, zoo_root: str | Path = "data/zoo",
                   config_dir: str | Path, data_root: str | Path = "data") -> Metrics:
    """Run the test protocol `evaluate` ((config, checkpoint path) -> metrics) on a downloaded
    entry with its config and the data under `data_root`."""
    checkpoint = model_dir(entry, zoo_root) / CHECKPOINT_NAME
    if not checkpoint.is_file():
        raise UserError(f"{checkpoint} not found: run `crosskd zoo download {entry.name}` first")
    config = eval_config(entry, config_dir, data_root)
    return evaluate(config, checkpoint)
