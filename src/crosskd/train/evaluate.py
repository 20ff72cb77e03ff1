"""Retrieval evaluation: the metrics of a model (or a checkpoint) on an evaluation split.

The model is loaded and the similarity matrix scored by crosskd.inference (videos embedded
once, captions streamed in chunks); with QB-Norm (`qbnorm_beta`), the t2v metrics are those
of the matrix normalised by the training captions' query bank (crosskd.inference.querybank,
crosskd.qbnorm). A segmented split (its items are segments of longer videos, from the
dataset's segments.json) also gets the same metrics at the level of its source videos, a
video scored by its best segment, under "video_level".
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crosskd.config import ExperimentConfig
from crosskd.data.retrieval import RetrievalData
from crosskd.data.sampling import EvalBatches
from crosskd.data.segments import SegmentVideos
from crosskd.inference import (Precision, SplitShards, load_model, score_split,
                               scores_and_querybank)
from crosskd.metrics import t2v_metrics, v2t_metrics, video_t2v_metrics, video_v2t_metrics
from crosskd.models import CENet
from crosskd.process import ProcessContext
from crosskd.inference.linear_library import resolve_cpu_matmul
from crosskd.train.runtime import Runtime, cpu_threads_for

log = logging.getLogger(__name__)


def protocol_of(eval_split: EvalBatches) -> dict[str, Any]:
    """Dataset, split, caption slots per video and number of real queries of a split."""
    masks = np.asarray(eval_split.query_masks)
    reported = eval_split.protocol
    if dataclasses.is_dataclass(reported):
        reported = dataclasses.asdict(reported)
    protocol = dict(reported or {})
    protocol.setdefault("captions_per_video", int(masks.shape[1]))
    protocol["num_queries"] = int(masks.sum())
    protocol["num_videos"] = int(masks.shape[0])
    return protocol


def _metrics(sims: np.ndarray, eval_split: EvalBatches) -> dict[str, Any]:
    """t2v and v2t metrics of a split's similarity matrix, with the protocol used (and the
    video-level ones of a segmented split)."""
    masks = np.asarray(eval_split.query_masks)
    metrics = {"t2v": t2v_metrics(sims, masks), "v2t": v2t_metrics(sims, masks),
               "protocol": protocol_of(eval_split)}
    videos = eval_split.segment_videos
    if videos is not None:
        metrics["video_level"] = _video_level(sims, masks, videos, metrics["protocol"])
    return metrics


def _video_level(sims: np.ndarray, masks: np.ndarray, videos: SegmentVideos,
                 protocol: dict[str, Any]) -> dict[str, Any]:
    """The metrics of a segmented split's source videos, a video scored by its best segment:
    a caption's right video is its segment's, a video's captions (v2t) all its segments'."""
    return {"t2v": video_t2v_metrics(sims, videos.of_item, masks),
            "v2t": video_v2t_metrics(sims, videos.of_item, masks),
            "protocol": {**protocol, "num_videos": len(videos.video_ids),
                         "num_segments": protocol["num_videos"]}}


def evaluate(model: torch.nn.Module, eval_split: EvalBatches, device: torch.device,
             caption_chunk: int | None = None, precision: Precision = Precision(),
             shards: SplitShards | None = None) -> dict[str, Any]:
    """t2v and v2t metrics of `model` on an evaluation split, with the protocol used (the
    same on every rank with `shards`)."""
    return _metrics(score_split(model, eval_split, device, caption_chunk, precision, shards),
                    eval_split)


def evaluate_with_qbnorm(model: torch.nn.Module, data: RetrievalData, device: torch.device,
                         beta: float, caption_chunk: int | None = None,
                         precision: Precision = Precision()) -> dict[str, Any]:
    """`evaluate`'s metrics with t2v after QB-Norm (every training caption in the bank), plus
    a "qbnorm" object: beta, k, the bank's size, the active videos, the queries normalised and
    the t2v metrics before. v2t stays on the raw scores: QB-Norm rescales each query's row
    on its own, so a column mixes scales. Video-level t2v is that of the normalised scores
    too, its t2v before under video_level.qbnorm.t2v_before."""
    sims, bank = scores_and_querybank(model, data, device, beta, caption_chunk, precision)
    metrics = _metrics(sims, data.eval)
    valid = np.asarray(data.eval.query_masks).reshape(-1) > 0
    normalised = bank.normalise_in_place(sims)
    before, metrics["t2v"] = metrics["t2v"], t2v_metrics(sims, data.eval.query_masks)
    metrics["qbnorm"] = {**bank.summary(), "normalised_queries": int(normalised[valid].sum()),
                         "t2v_before": before}
    _log_qbnorm("t2v", before, metrics["t2v"])
    videos = data.eval.segment_videos
    if videos is not None:
        video_level = metrics["video_level"]
        before = video_level["t2v"]
        video_level["t2v"] = video_t2v_metrics(sims, videos.of_item, data.eval.query_masks)
        video_level["qbnorm"] = {"t2v_before": before}
        _log_qbnorm("video-level t2v", before, video_level["t2v"])
    return metrics


def _log_qbnorm(what: str, before: dict[str, float], after: dict[str, float]) -> None:
    """One log line each for the metrics before and after QB-Norm."""
    for when, t2v in (("before", before), ("after", after)):
        log.info("%s %s QB-Norm: R@1 %.1f, R@5 %.1f, R@10 %.1f, R@50 %.1f, MdR %g, MnR %.1f",
                 what, when, t2v["R1"], t2v["R5"], t2v["R10"], t2v["R50"], t2v["MedR"],
                 t2v["MeanR"])


def evaluate_checkpoint(experiment: ExperimentConfig, checkpoint_path: str | Path,
                        context: ProcessContext, cache_dir: str | Path | None = None,
                        qbnorm_beta: float | None = None) -> dict[str, Any]:
    """Build the model `experiment` describes, load a checkpoint (ours or the original's) and
    test it in this process (`crosskd test`: its runtime options are decided here).

    `experiment` is used as given: take `ExperimentConfig.evaluation()` (eval_settings merged)
    for the published test protocol. `cache_dir` keeps the packed features between calls.
    QB-Norm runs when `qbnorm_beta` or the config's `qbnorm` key asks for it (the argument wins).
    """
    model = load_model(experiment.model, checkpoint_path, context.device)
    return evaluate_loaded(model, experiment, evaluation_runtime(experiment, model, context),
                           cache_dir, qbnorm_beta)


def evaluate_loaded(model: CENet, experiment: ExperimentConfig, runtime: Runtime,
                    cache_dir: str | Path | None = None, qbnorm_beta: float | None = None
                    ) -> dict[str, Any]:
    """The metrics of a loaded model on `experiment`'s evaluation split, on `runtime`'s device
    and precision (a training's own runtime, for its final test), with its linear layers."""
    runtime.prepare_model(model)
    data = RetrievalData.load(experiment.data, cache_dir=cache_dir)
    beta = qbnorm_beta if qbnorm_beta is not None else experiment.qbnorm_beta
    if beta is None:
        return evaluate(model, data.eval, runtime.device, precision=runtime.precision)
    return evaluate_with_qbnorm(model, data, runtime.device, beta, precision=runtime.precision)


def evaluation_runtime(experiment: ExperimentConfig, model: CENet, context: ProcessContext
                       ) -> Runtime:
    """The runtime options evaluation uses (the context's device and precision, CPU threads,
    the CPU linear-layer library), decided by training's own resolvers and applied to this
    process."""
    device = context.device
    runtime = Runtime(device, context.precision, cpu_threads=cpu_threads_for(model, device),
                      cpu_matmul=resolve_cpu_matmul(experiment.runtime.cpu_matmul))
    runtime.apply_process_settings()
    return runtime
