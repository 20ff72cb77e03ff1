"""Training on several processes under torchrun: the process group and the global batch.

`batch_size` is the global batch. Each rank embeds its share of every batch; the embeddings
(and the batch-norm inputs, and the TeachText teacher tensors) are gathered from every rank,
with gradients, before anything that mixes rows, so every loss is computed over the global
batch exactly as one process computes it. Gradients: every rank computes the same full loss
L; the gather's backward sums each rank's gradient of L with respect to the gathered rows
(an all-reduce), so a rank's parameter gradient is N times its share of dL/dtheta, and
DistributedDataParallel's mean over the N ranks gives sum over ranks of the shares: the
single-process gradient. docs/DISTRIBUTED.md has the launch commands and the costs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.constants import default_pg_timeout
from torch import nn

from crosskd.data.batch import Batch
from crosskd.errors import ConfigError
from crosskd.models.embeddings import VideoEmbedding
from crosskd.process import ProcessContext, TorchrunJob
from crosskd.tree import map_leaves

log = logging.getLogger(__name__)


def check_global_batch(batch_size: int, job: TorchrunJob) -> None:
    """The global batch must split evenly over the ranks."""
    if batch_size % job.world_size:
        raise ConfigError(f"config key data_loader.args.batch_size: {batch_size} (the "
                          f"global batch) does not divide by the {job.world_size} "
                          "processes; use a multiple of the process count")


def attempt_store(environ: Mapping[str, str] = os.environ) -> dist.Store | None:
    """The agent's store under a prefix of this start of the job (None: torch's default).

    torchrun keeps one store for every restart of a job, and the process group's keys of
    the failed start are still in it: restarted gloo workers read them and try to connect
    to the dead workers (torch 2.13). A prefix per restart keeps the starts apart.
    """
    if environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    client = dist.TCPStore(environ["MASTER_ADDR"], int(environ["MASTER_PORT"]),
                           is_master=False, timeout=default_pg_timeout)
    return dist.PrefixStore(f"crosskd/start-{environ.get('TORCHELASTIC_RESTART_COUNT', '0')}",
                            client)


def join_process_group(context: ProcessContext) -> None:
    """Under torchrun, join the job's process group (nccl on CUDA, gloo on the CPU) once per
    process; ranks other than 0 then log warnings only: rank 0 speaks for the job."""
    job = context.job
    if job is None or dist.is_initialized():
        return
    backend = "nccl" if context.device.type == "cuda" else "gloo"
    if context.device.type == "cuda":
        torch.cuda.set_device(context.device)
    dist.init_process_group(backend, rank=job.rank, world_size=job.world_size,
                            store=attempt_store())
    log.info("rank %d of %d joined the %s process group", job.rank, job.world_size, backend)
    if not context.writes_files:
        logging.getLogger("crosskd").setLevel(logging.WARNING)


class _GatherRows(torch.autograd.Function):
    """Concatenate every rank's rows; backward sums the gradient over ranks, keeps ours."""

    @staticmethod
    def forward(ctx: Any, rows: torch.Tensor, sizes: tuple[int, ...], rank: int
                ) -> torch.Tensor:
        ctx.sizes, ctx.rank = sizes, rank
        widest = max(sizes)
        padded = rows.contiguous()
        if rows.shape[0] < widest:
            padded = torch.cat([padded, padded.new_zeros(widest - rows.shape[0],
                                                         *rows.shape[1:])])
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)
        return torch.cat([part[:size] for part, size in zip(parts, sizes)])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        summed = grad.contiguous().clone()
        dist.all_reduce(summed)
        begin = sum(ctx.sizes[:ctx.rank])
        return summed[begin:begin + ctx.sizes[ctx.rank]], None, None


class Shards:
    """The rows of the current step on every rank, and gathering along them."""

    def __init__(self, job: TorchrunJob) -> None:
        self.job = job
        self.sizes: tuple[int, ...] = ()

    def begin(self, local_rows: int) -> None:
        """A step starts with `local_rows` rows here: learn every rank's count."""
        counts = [torch.zeros(1, dtype=torch.int64) for _ in range(self.job.world_size)]
        dist.all_gather(counts, torch.tensor([local_rows], dtype=torch.int64))
        self.sizes = tuple(int(count) for count in counts)

    def _sizes(self, rows: int, total: bool = False) -> tuple[int, ...]:
        """Every rank's row count for a tensor of `rows` rows here (or over all ranks, with
        `total`): a whole number of rows per video (NetVLAD's batch norm sees every token)."""
        videos = sum(self.sizes) if total else self.sizes[self.job.rank]
        if rows % videos:
            raise ValueError(f"{rows} rows do not split into {videos} videos")
        return tuple(size * (rows // videos) for size in self.sizes)

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        """Every rank's rows of `rows`, in rank order (the global batch), with gradients."""
        sizes = self._sizes(rows.shape[0])
        if rows.requires_grad:
            return _GatherRows.apply(rows, sizes, self.job.rank)
        with torch.no_grad():
            return _GatherRows.apply(rows, sizes, self.job.rank)

    def local(self, rows: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global-batch tensor."""
        sizes = self._sizes(rows.shape[0], total=True)
        begin = sum(sizes[:self.job.rank])
        return rows[begin:begin + sizes[self.job.rank]]

    def across_ranks(self, function: Callable[[torch.Tensor], torch.Tensor],
                     rows: torch.Tensor) -> torch.Tensor:
        """`function` applied to the global batch of `rows`; this rank's rows of the result."""
        return self.local(function(self.gather(rows)))


class GlobalBatchNorm1d(nn.BatchNorm1d):
    """Batch norm whose training statistics are those of the global batch.

    The inputs of every rank are gathered and normalised together, so outputs, gradients and
    running statistics are the single process's (crosskd.ops.groupwise_batch_norm calls the
    module once per group in training, so its statistics are these too). State-dict keys are
    unchanged.
    """

    shards: Shards

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        return self.shards.across_ranks(super().forward, x)


def synchronise_batch_norms(model: nn.Module, shards: Shards) -> None:
    """Turn every BatchNorm1d of `model` into a GlobalBatchNorm1d (in place, same weights)."""
    for module in model.modules():
        if type(module) is nn.BatchNorm1d:
            module.__class__ = GlobalBatchNorm1d
            module.shards = shards


class GatheredForward(nn.Module):
    """The model's forward with the embeddings of every rank joined before the similarity
    matrices: what DistributedDataParallel wraps."""

    def __init__(self, model: nn.Module, shards: Shards) -> None:
        super().__init__()
        self.model = model
        self.shards = shards

    def forward(self, experts: Mapping[str, torch.Tensor], ind: Mapping[str, torch.Tensor],
                text: torch.Tensor) -> dict[str, Any]:
        self.shards.begin(text.shape[0])
        gather = self.shards.gather
        text_embedding = self.model.embed_text(text)
        video_embedding = self.model.embed_videos(experts, ind)
        text_embedding = dataclasses.replace(
            text_embedding, embeddings=gather(text_embedding.embeddings),
            weights=gather(text_embedding.weights))
        video_embedding = dataclasses.replace(
            video_embedding, embeddings=gather(video_embedding.embeddings),
            availability=gather(video_embedding.availability))
        return self.model.outputs(text_embedding, video_embedding)


class EvalShards:
    """An evaluation split cut into contiguous ranges of videos, one per rank, and the
    gathering of what each rank computes on its range (no gradients)."""

    def __init__(self, job: TorchrunJob) -> None:
        self.job = job
        self.sizes: tuple[int, ...] = ()

    def videos(self, total: int) -> range | None:
        """This rank's videos of a split of `total`; None (every rank evaluates the whole
        split) when there are fewer videos than ranks."""
        if total < self.job.world_size:
            return None
        self.sizes = tuple(len(part) for part in np.array_split(np.arange(total),
                                                                 self.job.world_size))
        begin = sum(self.sizes[:self.job.rank])
        return range(begin, begin + self.sizes[self.job.rank])

    def gather(self, rows: torch.Tensor, per_video: int = 1) -> torch.Tensor:
        """Every rank's `rows` (`per_video` rows for each of its videos), in rank order."""
        with torch.no_grad():
            return _GatherRows.apply(rows, tuple(size * per_video for size in self.sizes),
                                     self.job.rank)

    def gather_videos(self, video: VideoEmbedding) -> VideoEmbedding:
        """The embeddings of every rank's videos."""
        return dataclasses.replace(video, embeddings=self.gather(video.embeddings),
                                   availability=self.gather(video.availability))


def global_batch(shards: Shards) -> Callable[[Batch], Batch]:
    """What the objective reads of a batch, joined over ranks (the TeachText teachers)."""

    def join(batch: Batch) -> Batch:
        teachers = {name: map_leaves(shards.gather, getattr(batch, name))
                    for name in ("distil_video", "distil_text")}
        return dataclasses.replace(batch, **teachers)

    return join


def data_parallel(model: nn.Module, job: TorchrunJob, device: torch.device
                  ) -> tuple[nn.Module, Callable[[Batch], Batch]]:
    """The forward a distributed task runs and the view of the batch its objective reads.

    Batch norm is synchronised (so running statistics agree and need no broadcast).
    """
    shards = Shards(job)
    synchronise_batch_norms(model, shards)
    forward = nn.parallel.DistributedDataParallel(
        GatheredForward(model, shards), device_ids=[device] if device.type == "cuda" else None,
        forward_sync_buffers=False)
    return forward, global_batch(shards)


def any_rank(signum: int | None) -> int | None:
    """The stop signal any rank received (the largest number), so every rank stops at the
    same batch; None when none did."""
    flag = torch.tensor([signum or 0], dtype=torch.int64)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag) or None


def broadcast(value: Any, job: TorchrunJob | None) -> Any:
    """Rank 0's `value` on every rank (a picklable object; `value` as is for one process)."""
    if job is None:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]
