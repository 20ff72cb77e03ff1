"""Where this process runs, decided once at the command boundary: its device, its place in a
torchrun job (so whether it writes files, and which shard of a collection it takes), and the
precision it computes in.

    context = detect(resolve_device(args.device), experiment.runtime.amp)

Below the commands nothing reads RANK / WORLD_SIZE / LOCAL_RANK or decides these again:
training, evaluation, extraction and indexing are handed the context, as Lightning Fabric's
connector settles the accelerator, the cluster environment and the precision plugin once and
the loop then asks the object it made. Joining the process group is training's
(crosskd.train.distributed.join_process_group).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Mapping

import torch

from crosskd.cpu import cpu_flags
from crosskd.errors import UserError
from crosskd.inference.precision import Precision
from crosskd.untrusted import ascii_int

log = logging.getLogger(__name__)

#: the most processes a job may have: a bound for a number read from the environment.
MAX_PROCESSES = 1 << 20
#: /proc/cpuinfo flags of CPUs with bfloat16 matmul instructions (x86 AVX-512 BF16 or AMX,
#: Arm's BF16 extension); without one, bf16 autocast on the CPU is emulated.
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
#: /proc/cpuinfo flags of CPUs whose bfloat16 products run several times their float32 rate
#: (AMX: ~4.8x on the Intel Xeon of docs/PERFORMANCE.md), where bf16 is worth suggesting
MATRIX_UNIT_FLAGS = frozenset({"amx_bf16"})


@dataclass(frozen=True)
class TorchrunJob:
    """This process's place in a torchrun job of more than one process."""

    rank: int
    world_size: int
    #: this rank's GPU on its machine (None: LOCAL_RANK unset, the device stays as asked)
    local_rank: int | None = None
    #: the job's id under torchrun's elastic agent (its rendezvous id), the same on restarts
    run_id: str | None = None
    #: how often torchrun has started the job's workers again after a failure
    restarts: int = 0


@dataclass(frozen=True)
class ProcessContext:
    """Where this process computes, its place in a job and its precision (the defaults: one
    process on the CPU in float32)."""

    device: torch.device = torch.device("cpu")
    job: TorchrunJob | None = None
    precision: Precision = Precision()

    @property
    def writes_files(self) -> bool:
        """Rank 0 of a job, or the only process, writes run folders, logs and results."""
        return self.job is None or self.job.rank == 0

    @property
    def processes(self) -> int:
        """How many processes run the job (1 outside torchrun)."""
        return self.job.world_size if self.job is not None else 1

    @property
    def shard(self) -> tuple[int, int]:
        """(this process's index, the number of processes): its part of a collection."""
        return (self.job.rank if self.job is not None else 0), self.processes


def torchrun_job(environ: Mapping[str, str] = os.environ) -> TorchrunJob | None:
    """The job torchrun started this process in (None outside torchrun, or for one process).

    The variables are read as ASCII whole numbers in range; a mistake is one line naming it.
    """
    if "RANK" not in environ or "WORLD_SIZE" not in environ:
        return None
    try:
        world_size = ascii_int(environ["WORLD_SIZE"], "environment variable WORLD_SIZE", 1,
                               MAX_PROCESSES)
        rank = ascii_int(environ["RANK"], "environment variable RANK", 0, world_size - 1)
        local = environ.get("LOCAL_RANK")
        local_rank = (None if local is None
                      else ascii_int(local, "environment variable LOCAL_RANK", 0))
        restarts = ascii_int(environ.get("TORCHELASTIC_RESTART_COUNT", "0"),
                             "environment variable TORCHELASTIC_RESTART_COUNT", 0)
    except ValueError as err:
        raise UserError(f"{err} (set by torchrun; unset RANK, WORLD_SIZE and LOCAL_RANK to run "
                        "one process)") from None
    if world_size == 1:
        return None
    return TorchrunJob(rank, world_size, local_rank, environ.get("TORCHELASTIC_RUN_ID") or None,
                       restarts)


def rank_device(device: torch.device, job: TorchrunJob | None) -> torch.device:
    """On CUDA, this rank's GPU (LOCAL_RANK); the CPU stays the CPU."""
    if job is None or job.local_rank is None or device.type != "cuda":
        return device
    return torch.device("cuda", job.local_rank)


def resolve_precision(amp: str | None, device: torch.device) -> Precision:
    """The precision of `trainer.amp` on `device`.

    bf16 on a CPU without bfloat16 matmul instructions still runs, emulated and slower than
    float32, so it is warned about rather than refused. On a CPU with matrix units and
    `trainer.amp` unset, bf16 is suggested in the log; float32 stays (bf16 is opt-in).
    """
    precision = Precision.from_amp(amp)
    if amp is None and device.type == "cpu" and MATRIX_UNIT_FLAGS & cpu_flags():
        log.info("this CPU has bfloat16 matrix units (%s): \"amp\": \"bf16\" under trainer "
                 "may run several times faster than float32, with metrics within the bf16 "
                 "tolerances of docs/PERFORMANCE.md; float32 stays the default",
                 ", ".join(sorted(MATRIX_UNIT_FLAGS & cpu_flags())))
    if (precision.dtype is torch.bfloat16 and device.type == "cpu"
            and not NATIVE_BF16_FLAGS & cpu_flags()):
        log.warning("trainer.amp is \"bf16\", but this CPU has no bfloat16 matmul "
                    "instructions (none of %s in /proc/cpuinfo): bf16 is emulated here and "
                    "slower than float32; set trainer.amp to null for exact float32",
                    ", ".join(sorted(NATIVE_BF16_FLAGS)))
    return precision


def detect(device: torch.device, amp: str | None = None,
           environ: Mapping[str, str] = os.environ) -> ProcessContext:
    """The context of this process: `device` (the `--device` asked for; this rank's GPU
    under torchrun), the torchrun job of `environ`, and the precision of `amp` (the config's
    `trainer.amp`; None where nothing runs a model in mixed precision) on that device."""
    job = torchrun_job(environ)
    device = rank_device(device, job)
    return ProcessContext(device, job, resolve_precision(amp, device))
