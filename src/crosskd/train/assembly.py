"""A run's parts, built once from the typed config and the process context.

    context = detect(resolve_device(args.device), experiment.runtime.amp)   # the command
    trainer = Trainer(build_training(experiment, context), run_dir)

`build_training` is the one place that puts a run together: the data and its splits (on the
device when the runtime holds them there), the model, optimizer and scheduler, the runtime
options decided for them, the objective and the task (its forward data-parallel under
torchrun), the sampler, the background checkpoint writer and the step runner. The trainer
only uses what it is given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from crosskd.checkpoint.background import BackgroundWriter
from crosskd.config import ExperimentConfig
from crosskd.data.retrieval import RetrievalData
from crosskd.data.sampling import EpochSampler, EvalBatches, ShardedSampler, TrainBatches
from crosskd.losses import build_objective
from crosskd.models import build_model
from crosskd.optim import build_optimizer, build_scheduler
from crosskd.process import ProcessContext
from crosskd.train.distributed import check_global_batch, data_parallel
from crosskd.train.resident import (ResidentEvalSplit, ResidentTrainSplit, resident_bytes,
                                    resident_supported)
from crosskd.train.runners import StepRunner, build_runner
from crosskd.train.runtime import Runtime, resolve_runtime
from crosskd.train.seeds import seed_everything
from crosskd.train.task import RetrievalTask


@dataclass(frozen=True)
class TrainingParts:
    """Everything one run trains with; `experiment.raw` is what its files store."""

    experiment: ExperimentConfig
    context: ProcessContext
    runtime: Runtime
    train_batches: TrainBatches
    eval_batches: EvalBatches
    sampler: EpochSampler | ShardedSampler
    #: drives every draw of the sampler; its state goes into each resumable checkpoint
    data_rng: np.random.Generator
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    task: RetrievalTask
    runner: StepRunner
    writer: BackgroundWriter | None


def build_training(experiment: ExperimentConfig, context: ProcessContext,
                   data: RetrievalData | None = None) -> TrainingParts:
    """Build a run's parts in a fixed order (the RNGs are seeded first, so the same config
    and seed give the same weights); `data` is loaded from the config when not given."""
    settings = experiment.trainer
    if context.job is not None:
        check_global_batch(settings.batch_size, context.job)
    data_rng = seed_everything(experiment.seed)
    data = data if data is not None else RetrievalData.load(experiment.data)
    model = build_model(experiment.model).to(context.device)
    optimizer = build_optimizer(settings.optimizer, model.parameters())
    runtime = resolve_runtime(
        experiment.runtime, context, optimizer, model,
        resident_supported=resident_supported(data.train),
        resident_bytes=lambda tokens: resident_bytes(data.train, tokens))
    runtime.apply_process_settings()
    train_batches, eval_batches = _splits(data, runtime)
    sampler = EpochSampler.for_split(train_batches, settings.batch_size)
    writer = BackgroundWriter() if runtime.background_checkpoints else None
    objective = build_objective(experiment.objective).to(context.device)
    if context.job is None:
        task = RetrievalTask(model, objective, forward=runtime.compiled(model))
    else:
        sampler = ShardedSampler(sampler, context.job.rank, context.job.world_size)
        forward, global_batch = data_parallel(model, context.job, context.device)
        task = RetrievalTask(model, objective, forward, global_batch)
    runner = build_runner(runtime, task, optimizer,
                          before_capture=writer.wait if writer else _nothing)
    scheduler = build_scheduler(settings.lr_scheduler, optimizer)
    return TrainingParts(experiment, context, runtime, train_batches, eval_batches, sampler,
                         data_rng, model, optimizer, scheduler, task, runner, writer)


def _splits(data: RetrievalData, runtime: Runtime) -> tuple[TrainBatches, EvalBatches]:
    """The training and validation splits, held on the device when the runtime says so."""
    if not runtime.resident_data:
        return data.train, data.eval
    tokens = runtime.precision.token_dtype
    return (ResidentTrainSplit(data.train, runtime.device, tokens),
            ResidentEvalSplit(data.eval, runtime.device, tokens))


def _nothing() -> None:
    """Nothing to wait for before a CUDA graph capture."""
