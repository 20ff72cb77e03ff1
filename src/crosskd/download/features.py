"""The published "high-quality experts" tarballs: where they live, their sha1 sums, and fetching them.

`fetch_features("MSRVTT", root="data")` downloads (resumably) the tarball into
`<root>/MSRVTT/`, checks its sha1 against the published sums, unpacks it safely into
`<root>/MSRVTT/high-quality/structured-symlinks/...` and records what was installed.
The URL base can be redirected (for tests, or a mirror) with $CROSSKD_DOWNLOAD_BASE_URL
or the `base_url` argument; the sha1 table is the `tarballs` argument.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from crosskd.datasets import DATASETS, FeatureTarball
from crosskd.download.archive import safe_unpack
from crosskd.download.http import ChecksumError, Digests, Verifier, download, file_digests
from crosskd.errors import UserError

log = logging.getLogger(__name__)

BASE_URL_ENV = "CROSSKD_DOWNLOAD_BASE_URL"
DEFAULT_BASE_URL = "http://www.robots.ox.ac.uk/~vgg/research/teachtext/data-hq/high-quality"
MARKER = ".crosskd-features.json"


#: every published dataset's tarball by its `data_loader.args.dataset_name` (from crosskd.datasets).
TARBALLS: dict[str, FeatureTarball] = {name: spec.tarball for name, spec in DATASETS.items()
                                       if spec.tarball is not None}


@dataclass(frozen=True)
class InstalledFeatures:
    """What `fetch_features` left on disk."""

    dataset_dir: Path
    tarball: FeatureTarball
    sha1: str
    release: str
    downloaded: bool


def base_url(override: str | None = None) -> str:
    """The URL folder holding the tarballs: `override`, else $CROSSKD_DOWNLOAD_BASE_URL, else the VGG server."""
    return (override or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


def find_tarball(name: str, tarballs: Mapping[str, FeatureTarball] = TARBALLS) -> FeatureTarball:
    """Look a dataset up by its config name or folder name, ignoring case."""
    for tarball in tarballs.values():
        if name.lower() in (tarball.dataset.lower(), tarball.folder.lower()):
            return tarball
    known = ", ".join(tarballs)
    raise UserError(f"unknown dataset {name!r}: choose one of {known}")


def tarball_url(tarball: FeatureTarball, override: str | None = None) -> str:
    """The download URL of a dataset's tarball."""
    return f"{base_url(override)}/{tarball.archive_name}"


def sha1_verifier(tarball: FeatureTarball, url: str) -> Verifier:
    """A check that rejects bytes whose sha1 is not one of the tarball's published releases."""
    def verify(digests: Digests) -> None:
        if digests["sha1"] not in tarball.releases:
            expected = " or ".join(tarball.releases)
            raise ChecksumError(f"{tarball.archive_name} from {url} has sha1 {digests['sha1']}, "
                                f"expected {expected}; the corrupt copy was deleted: run the "
                                "command again, and report it if it fails twice")
    return verify


def installed(dataset_dir: Path, tarball: FeatureTarball) -> InstalledFeatures | None:
    """The record of a verified earlier install of this tarball, if any."""
    try:
        record = json.loads((dataset_dir / MARKER).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if record.get("sha1") not in tarball.releases:
        return None
    return InstalledFeatures(dataset_dir, tarball, record["sha1"], record["release"], downloaded=False)


def _obtain_archive(tarball: FeatureTarball, archive: Path, url: str, *, retries: int,
                    progress: bool) -> str:
    """Download the tarball (or re-check a complete one already there); return its sha1."""
    verify = sha1_verifier(tarball, url)
    if archive.is_file():
        log.info("found %s; checking its sha1", archive)
        digests = file_digests(archive, progress)
        try:
            verify(digests)
        except ChecksumError:
            raise ChecksumError(f"{archive} has sha1 {digests['sha1']}, which is not a published "
                                f"release of {tarball.dataset}: delete it and run the command "
                                "again") from None
        return digests["sha1"]
    return download(url, archive, verify=verify, retries=retries, progress=progress).digests["sha1"]


def fetch_features(name: str, root: str | Path = "data", *, base: str | None = None,
                   tarballs: Mapping[str, FeatureTarball] = TARBALLS, keep_archive: bool = False,
                   force: bool = False, retries: int = 3, progress: bool = True) -> InstalledFeatures:
    """Download, verify and unpack one dataset's features into `<root>/<folder>/high-quality/...`."""
    tarball = find_tarball(name, tarballs)
    dataset_dir = Path(root) / tarball.folder
    previous = None if force else installed(dataset_dir, tarball)
    if previous is not None:
        log.info("%s features already installed in %s (%s); use --force to fetch again",
                 tarball.dataset, dataset_dir, previous.release)
        return previous
    url = tarball_url(tarball, base)
    archive = dataset_dir / tarball.archive_name
    sha1 = _obtain_archive(tarball, archive, url, retries=retries, progress=progress)
    release = tarball.releases[sha1]
    log.info("%s: sha1 %s matches the %s", tarball.archive_name, sha1, release)
    files = safe_unpack(archive, dataset_dir, strip_prefix=f"data/{tarball.folder}",
                        progress=progress)
    record = {"dataset": tarball.dataset, "url": url, "sha1": sha1, "release": release,
              "files": len(files)}
    (dataset_dir / MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    if not keep_archive:
        archive.unlink()
    return InstalledFeatures(dataset_dir, tarball, sha1, release, downloaded=True)
