"""Run under torchrun by tests/reliability/test_distributed.py: `crosskd train` once per
config, then the trained model's test split evaluated sharded over the ranks.

One launch does every config, so the tests pay torchrun's and torch's start-up once. The
sharded metrics go to `<config>.sharded.json` beside each config (rank 0 writes them).
"""

import json
import sys
from pathlib import Path

import torch

from crosskd.cli import main
from crosskd.config import as_experiment, load_config
from crosskd.data.retrieval import RetrievalData
from crosskd.train.distributed import EvalShards, join_torchrun_job
from crosskd.train.evaluate import evaluate, load_model


def sharded_test(config_path: Path) -> None:
    """Evaluate the config's best model on its test split, each rank embedding its share."""
    experiment = as_experiment(load_config(config_path)).evaluation()
    (best,) = Path(experiment.raw["trainer"]["save_dir"]).glob(f"{config_path.stem}/*/model_best.pth")
    job, device = join_torchrun_job(torch.device("cpu"))
    model = load_model(experiment.model, best)
    metrics = evaluate(model, RetrievalData.load(experiment.data).eval, device,
                       shards=EvalShards(job))
    if job.writes_files:
        config_path.with_suffix(".sharded.json").write_text(json.dumps(metrics))


if __name__ == "__main__":
    for config in sys.argv[1:]:
        status = main(["train", "--config", config, "--device", "cpu"])
        if status:
            sys.exit(status)
        sharded_test(Path(config))
