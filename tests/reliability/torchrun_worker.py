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
from crosskd.config import load_config, parse_experiment
from crosskd.data.retrieval import RetrievalData
from crosskd.inference import load_model
from crosskd.process import detect
from crosskd.train.distributed import EvalShards, join_process_group
from crosskd.train.evaluate import evaluate


def sharded_test(config_path: Path) -> None:
    """Evaluate the config's best model on its test split, each rank embedding its share."""
    experiment = parse_experiment(load_config(config_path)).evaluation()
    (best,) = Path(experiment.trainer.save_dir).glob(f"{config_path.stem}/*/model_best.pth")
    context = detect(torch.device("cpu"))
    join_process_group(context)
    model = load_model(experiment.model, best)
    metrics = evaluate(model, RetrievalData.load(experiment.data).eval, context.device,
                       shards=EvalShards(context.job))
    if context.writes_files:
        config_path.with_suffix(".sharded.json").write_text(json.dumps(metrics))


if __name__ == "__main__":
    for config in sys.argv[1:]:
        status = main(["train", "--config", config, "--device", "cpu"])
        if status:
            sys.exit(status)
        sharded_test(Path(config))
