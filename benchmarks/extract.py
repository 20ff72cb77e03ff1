"""Extraction throughput of the default pretrained expert set at the real architecture sizes
(random weights time the same as trained ones), decoding alone, and peak memory.

    python3 benchmarks/extract.py --work /tmp/bench-extract                 # 3 and 6 videos
    python3 benchmarks/extract.py --work /tmp/bench-extract --device cuda --videos 16 32

Writes synthetic 320x240 videos of --seconds at 25 frames/s with a tone, saves each default
expert's architecture (CLIP ViT-B/32 image tower, ResNet-50, VideoMAE-base 16x224, AST-base,
Whisper-tiny with a small vocabulary) and GPT-2 small as the text encoder with random
weights, then prints: decoding alone (videos/s, decoded frames/s), the whole extraction
(videos/s, sampled frames/s), each expert's and decoding's share of the time, and the peak
RSS of a fresh process extracting each --videos count (flat when memory is bounded).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


from crosskd.extract.decode import decode
from crosskd.extract.run import Extraction, decode_spec
from crosskd.extract.synthetic_videos import frames, scenes, soundtrack, write_video
from _machine import cpu_description

FPS, SIZE = 25, (320, 240)


def _videos(folder: Path, count: int, seconds: float) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for scene in scenes(count, seed=1):
        path = folder / f"{scene.video_id}.mp4"
        if not path.exists():
            write_video(path, frames(scene, *SIZE, int(seconds * FPS)), FPS,
                        soundtrack(scene, seconds))
        out[scene.video_id] = path
    return out


def _save_models(folder: Path) -> dict[str, str]:
    """Random-weight models of the real sizes, as save_pretrained folders."""
    import transformers as t
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["[UNK]", "[PAD]", *(f"w{i}" for i in range(254))]
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = t.PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]")
    built = {
        "clip": t.CLIPVisionModelWithProjection(t.CLIPVisionConfig()),
        "resnet": t.ResNetModel(t.ResNetConfig()),
        "videomae": t.VideoMAEModel(t.VideoMAEConfig()),
        "ast": t.ASTModel(t.ASTConfig()),
        "whisper": t.WhisperForConditionalGeneration(t.WhisperConfig(
            vocab_size=len(words), pad_token_id=1, bos_token_id=0, eos_token_id=1,
            decoder_start_token_id=0, suppress_tokens=[], begin_suppress_tokens=[])),
        "gpt2": t.GPT2Model(t.GPT2Config(vocab_size=len(words))),
    }
    paths = {}
    for name, model in built.items():
        paths[name] = str(folder / name)
        if not (folder / name / "config.json").exists():
            model.save_pretrained(paths[name])
            if name in ("whisper", "gpt2"):
                fast.save_pretrained(paths[name])
            if name == "ast":
                t.ASTFeatureExtractor().save_pretrained(paths[name])
            if name == "whisper":
                t.WhisperFeatureExtractor().save_pretrained(paths[name])
    return paths


def _build(paths: dict[str, str], device: str):
    from crosskd.extract.text_encoders import build_text_encoder
    from crosskd.extract.video_experts import EXPERT_SETS, build_experts

    text = build_text_encoder("transformers", {"model": "gpt2", "weights": paths["gpt2"],
                                                "device": device})
    names = EXPERT_SETS["default"]
    return build_experts(",".join(names), {n: {"weights": paths[n]} for n in names},
                         device=device, text_encoder=text)


class _Timed:
    """An expert's compute with its time added up."""

    def __init__(self, expert, totals: dict[str, float]) -> None:
        self.expert, self.totals = expert, totals
        totals[expert.name] = 0.0

    def __getattr__(self, name):
        return getattr(self.expert, name)

    def compute(self, video):
        start = time.perf_counter()
        result = self.expert.compute(video)
        self.totals[self.expert.name] += time.perf_counter() - start
        return result


def measure(work: Path, count: int, seconds: float, device: str) -> dict[str, float]:
    """One extraction of `count` videos in this process (what the RSS child runs)."""
    from crosskd.extract.cache import ResultCache

    videos = _videos(work / "videos", count, seconds)
    experts = _build(_save_models(work / "models"), device)
    spec = decode_spec(experts)
    totals: dict[str, float] = {}
    timed = [_Timed(e, totals) for e in experts]
    cache = ResultCache(work / f"cache-{time.time_ns()}", {"bench": count})
    job = Extraction(videos, timed, cache, work / "out", spec, workers=2)
    start = time.perf_counter()
    job.run(sorted(videos))
    elapsed = time.perf_counter() - start
    sampled = sum(len(decode(p, spec).frames[r]) for p in list(videos.values())[:1]
                  for r in spec.rates) * count
    return {"videos": count, "seconds": elapsed, "videos_per_s": count / elapsed,
            "sampled_frames_per_s": sampled / elapsed, **{f"model_{k}": v for k, v in totals.items()},
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def decoding_alone(videos: dict[str, Path], spec) -> tuple[float, float]:
    start = time.perf_counter()
    for path in videos.values():
        decode(path, spec)
    elapsed = time.perf_counter() - start
    return len(videos) / elapsed, len(videos) * FPS * _seconds(videos) / elapsed


def _seconds(videos: dict[str, Path]) -> float:
    import av

    with av.open(str(next(iter(videos.values())))) as container:
        return container.duration / 1e6


def main() -> None:
    print(f"CPU: {cpu_description()}", flush=True)
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--videos", type=int, nargs="+", default=[3, 6])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.work, args.child, args.seconds, args.device)))
        return
    import torch

    videos = _videos(args.work / "videos", max(args.videos), args.seconds)
    spec = decode_spec(_build(_save_models(args.work / "models"), args.device))
    per_s, frames_per_s = decoding_alone(videos, spec)
    print(f"machine: {torch.get_num_threads()} torch threads, device {args.device}")
    print(f"videos: {SIZE[0]}x{SIZE[1]}, {args.seconds:.0f} s at {FPS} fps; sampled at "
          f"{', '.join(f'{r:g}' for r in spec.rates)} frames/s, {spec.pixel_dim} px short side")
    print(f"decoding alone: {per_s:.2f} videos/s, {frames_per_s:.0f} decoded frames/s")
    for count in args.videos:
        out = subprocess.run([sys.executable, __file__, "--work", str(args.work), "--child",
                              str(count), "--seconds", str(args.seconds), "--device",
                              args.device], capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        models = {k[6:]: v for k, v in row.items() if k.startswith("model_")}
        shares = ", ".join(f"{k} {100 * v / row['seconds']:.0f}%" for k, v in models.items())
        rest = 100 * (1 - sum(models.values()) / row["seconds"])
        print(f"{count} videos: {row['videos_per_s']:.3f} videos/s, "
              f"{row['sampled_frames_per_s']:.1f} sampled frames/s; time in {shares}, "
              f"decoding + writing (not overlapped) {rest:.0f}%; peak RSS "
              f"{row['peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
