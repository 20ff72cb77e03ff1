"""One spec per dataset (layout, feature tarball, synthetic defaults, published models).

crosskd.data.layouts, crosskd.data.synth, crosskd.download.features and crosskd.download.zoo
read their tables from `DATASETS`, so a new dataset is one entry in
crosskd.datasets.catalogue. Imports nothing else of crosskd.
"""

from __future__ import annotations

from crosskd.datasets.catalogue import CATALOGUE
from crosskd.datasets.spec import (DatasetLayout, DatasetSpec, FeatureTarball, PublishedModel,
                                   SynthDefaults)

__all__ = ["DATASETS", "DatasetLayout", "DatasetSpec", "FeatureTarball", "PublishedModel",
           "SynthDefaults"]

#: every dataset by its `data_loader.args.dataset_name`.
DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in CATALOGUE}
