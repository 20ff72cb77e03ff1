"""Extraction throughput of the default pretrained expert set at the real architecture sizes
(random weights time the same as trained ones), decoding alone, and peak memory.

    python3 benchmarks/extract.py --work /tmp/bench-extract                 # 3 and 6 videos
    python3 benchmarks/extract.py --work /tmp/bench-extract --device cuda --videos 16 32
    python3 benchmarks/extract.py --work /tmp/bench-readers --readers --seconds 60
    python3 benchmarks/extract.py --work /tmp/bench-segments --segmented --minutes 1 4
    python3 benchmarks/extract.py --work /tmp/bench-segments --segmented --minutes 1 --pretrained

With --segmented it measures segmented extraction instead: seconds of extraction per minute
of video, whole videos against `--segment 10` and `--segment shots`, on one synthetic long
video per --minutes of parts 20 s long (each on another background than the one before, so
shot detection finds every cut), 160x120 at 25 frames/s with a tone; the weight-free demo
experts by default (decoding, shot detection and writing dominate), the default pretrained
set with --pretrained; shot detection alone per minute; and the peak RSS of a fresh process
for each (flat over --minutes when decoding streams the segments).

With --readers it measures instead the experts that read and listen (ocr, and the speech
expert's transformers and faster-whisper backends): CPU seconds per minute of video
(random weights for the speech backends: they never say "end of text", so the speech figures
are what the most talkative speech costs; the OCR expert runs its real shipped weights).

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
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


import numpy as np

from crosskd.extract.decode import decode
from crosskd.extract.run import Extraction, decode_spec
from crosskd.extract.synthetic_parts import part_scenes, write_parts_video
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


# the experts that read and listen (--readers)

#: 1280x720 at 2 frames/s: the OCR expert reads 1/s at 720 px, so nothing is lost
TEXT_SIZE, TEXT_FPS, SCREEN_SECONDS = (1280, 720), 2, 5
LINES = ["Quarterly results beat forecasts", "Interest rates unchanged at four percent",
         "Heavy rain expected tomorrow", "Lecture seven: graph algorithms",
         "Breaking news from the coast", "Markets close higher today"]
SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>",
            "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>",
            "<|notimestamps|>"]
WHISPER_TINY_VOCAB = 51865


def _screen(lines: list[str]) -> np.ndarray:
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(Path(matplotlib.get_data_path()) /
                                  "fonts/ttf/DejaVuSans.ttf"), 40)
    image = Image.new("RGB", TEXT_SIZE, (20, 40, 80))
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        draw.text((60, 420 + row * 70), line, font=font, fill=(255, 255, 255))
    return np.asarray(image)


def text_video(path: Path, seconds: float, changing: bool) -> Path:
    """Two subtitle-sized lines, new ones every SCREEN_SECONDS (or the same throughout),
    over a tone."""
    if not path.exists():
        count = int(seconds // SCREEN_SECONDS)
        screens = [_screen([LINES[(2 * n) % len(LINES)], LINES[(2 * n + 1) % len(LINES)]]
                           if changing else LINES[:2]) for n in range(count)]
        shown = np.stack([screen for screen in screens for _ in range(SCREEN_SECONDS * TEXT_FPS)])
        write_video(path, shown, TEXT_FPS, soundtrack(scenes(1, seed=1)[0], seconds))
    return path


def save_whisper_tiny(folder: Path) -> tuple[Path, Path]:
    """Whisper-tiny's architecture and vocabulary size with random weights, as a
    save_pretrained folder and its CTranslate2 int8 conversion."""
    import ctranslate2
    import transformers as t
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    source, converted = folder / "whisper-tiny", folder / "whisper-tiny-ct2"
    if (converted / "model.bin").exists():
        return source, converted
    stamps = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    plain = WHISPER_TINY_VOCAB - len(SPECIALS) - len(stamps)
    vocab = {w: i for i, w in enumerate(["[UNK]", *(f"w{i}" for i in range(plain - 1)),
                                          *SPECIALS, *stamps])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.add_special_tokens(SPECIALS + stamps)
    end, start = vocab["<|endoftext|>"], vocab["<|startoftranscript|>"]
    config = t.WhisperConfig(vocab_size=WHISPER_TINY_VOCAB, d_model=384, encoder_layers=4,
                             decoder_layers=4, encoder_attention_heads=6,
                             decoder_attention_heads=6, encoder_ffn_dim=1536,
                             decoder_ffn_dim=1536, pad_token_id=end, bos_token_id=end,
                             eos_token_id=end, decoder_start_token_id=start,
                             suppress_tokens=[], begin_suppress_tokens=[])
    t.WhisperForConditionalGeneration(config).save_pretrained(source)
    t.PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]").save_pretrained(source)
    t.WhisperFeatureExtractor().save_pretrained(source)
    ctranslate2.converters.TransformersConverter(
        str(source), copy_files=["tokenizer.json", "preprocessor_config.json"]).convert(
        str(converted), quantization="int8")
    return source, converted


def _cost(name: str, options: dict, video: Path, minutes: float) -> str:
    """One expert's compute on one decoded video, per minute of video."""
    from crosskd.extract.text_encoders import build_text_encoder
    from crosskd.extract.video_experts import build_experts

    (expert,) = build_experts(name, {name: options}, text_encoder=build_text_encoder("demo"))
    decoded = decode(video, decode_spec([expert]))
    wall, cpu = time.perf_counter(), time.process_time()
    result = expert.compute(decoded)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    said = "" if result.text is None else f"; {len(result.text.split())} words"
    return (f"{wall / minutes:6.1f} s wall, {cpu / minutes:6.1f} s CPU per minute of video"
            f"{said}")


def readers(work: Path, seconds: float) -> None:
    """Print each reader's cost per minute of video."""
    work.mkdir(parents=True, exist_ok=True)
    minutes = seconds / 60
    changing = text_video(work / f"text-changing-{seconds:g}s.mp4", seconds, True)
    static = text_video(work / f"text-static-{seconds:g}s.mp4", seconds, False)
    source, converted = save_whisper_tiny(work / "models")
    rows = {
        "ocr, text changing every 5 s": ("ocr", {}, changing),
        "ocr, the same text throughout": ("ocr", {}, static),
        "ocr pixel_dim=480, text changing": ("ocr", {"pixel_dim": "480"}, changing),
        "whisper transformers (fp32, greedy)": ("whisper", {"weights": str(source)}, changing),
        "whisper faster-whisper (int8, beam 1)": ("whisper", {
            "backend": "faster-whisper", "weights": str(converted), "language": "en",
            "beam": "1", "max_new_tokens": "96"}, changing),
        "whisper faster-whisper (int8, beam 5)": ("whisper", {
            "backend": "faster-whisper", "weights": str(converted), "language": "en",
            "max_new_tokens": "96"}, changing),
    }
    print(f"readers: one {seconds:g} s video, {TEXT_SIZE[0]}x{TEXT_SIZE[1]} at {TEXT_FPS} "
          "frames/s, two subtitle-sized lines (40 px) and a tone")
    for label, (name, options, video) in rows.items():
        print(f"{label:40s} {_cost(name, options, video, minutes)}", flush=True)


# segmented extraction (--segmented)

PART_SECONDS, LONG_SIZE = 20.0, (160, 120)
MODES = {"whole": None, "--segment 10": "10", "--segment shots": "shots"}


def long_video(work: Path, minutes: float) -> Path:
    """One synthetic video of `minutes`, parts of PART_SECONDS on alternating backgrounds."""
    path = work / f"long-{minutes:g}min.mp4"
    if not path.exists():
        work.mkdir(parents=True, exist_ok=True)
        parts = part_scenes(max(1, round(minutes * 60 / PART_SECONDS)), seed=5)
        write_parts_video(path, parts, PART_SECONDS, size=LONG_SIZE, fps=FPS)
    return path


def _experts(work: Path, pretrained: bool, device: str):
    from crosskd.extract.text_encoders import build_text_encoder
    from crosskd.extract.video_experts import build_experts

    if pretrained:
        return _build(_save_models(work / "models"), device)
    return build_experts("demo", {}, text_encoder=build_text_encoder("demo"))


def measure_segmented(work: Path, minutes: float, mode: str, pretrained: bool,
                      device: str) -> dict[str, float]:
    """One extraction of the long video in this process (what the RSS child runs)."""
    from crosskd.extract.cache import ResultCache
    from crosskd.extract.segmentation import parse_segmentation

    video = long_video(work, minutes)
    experts = _experts(work, pretrained, device)
    segmentation = parse_segmentation(MODES[mode]) if MODES[mode] else None
    cache = ResultCache(work / f"cache-{time.time_ns()}", {"bench": mode})
    job = Extraction({"long": video}, experts, cache, work / "out", decode_spec(experts),
                     workers=2, segmentation=segmentation)
    start, cpu = time.perf_counter(), _cpu_seconds()
    job.run(["long"])
    elapsed, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    segments = len((cache.meta("long") or {}).get("segments") or [None])
    return {"seconds": elapsed, "cpu_seconds": cpu, "segments": segments,
            "peak_rss_mib": _own_peak_rss_mib()}


def _cpu_seconds() -> float:
    """User and system CPU time of this process, every thread (steadier than wall time on a
    shared machine)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _own_peak_rss_mib() -> float:
    """This process's peak RSS since it started (VmHWM: ru_maxrss keeps, across the exec of
    a child, the RSS of the parent it was forked from)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def shot_detection_alone(video: Path) -> tuple[float, float]:
    """Wall and CPU seconds of PySceneDetect's pass over `video`."""
    from crosskd.extract.segmentation import MIN_SHOT_SECONDS, SHOT_THRESHOLD
    from crosskd.extract.shots import shot_cuts

    start, cpu = time.perf_counter(), _cpu_seconds()
    shot_cuts(video, SHOT_THRESHOLD, MIN_SHOT_SECONDS)
    return time.perf_counter() - start, _cpu_seconds() - cpu


def segmented(args: argparse.Namespace) -> None:
    """Print seconds of extraction per minute of video for each mode and video length."""
    experts = "default pretrained set (random weights)" if args.pretrained else "demo experts"
    print(f"load average {os.getloadavg()[0]:.1f}; segmented: one video of parts "
          f"{PART_SECONDS:g} s long, {LONG_SIZE[0]}x"
          f"{LONG_SIZE[1]} at {FPS} frames/s with a tone; {experts}; device {args.device}")
    for minutes in args.minutes:
        wall, cpu = shot_detection_alone(long_video(args.work, minutes))
        print(f"{minutes:g} min: shot detection alone {wall / minutes:.2f} s wall, "
              f"{cpu / minutes:.2f} s CPU per minute of video", flush=True)
        for mode in MODES:
            command = [sys.executable, __file__, "--work", str(args.work), "--segmented",
                       "--minutes", str(minutes), "--child-mode", mode, "--device",
                       args.device] + (["--pretrained"] if args.pretrained else [])
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{minutes:g} min, {mode:16s} {row['segments']:4d} segment(s): "
                  f"{row['seconds'] / minutes:7.2f} s wall, {row['cpu_seconds'] / minutes:7.2f} s "
                  f"CPU per minute of video; peak RSS "
                  f"{row['peak_rss_mib']:.0f} MiB", flush=True)


def main() -> None:
    print(f"CPU: {cpu_description()}", flush=True)
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--videos", type=int, nargs="+", default=[3, 6])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--readers", action="store_true",
                        help="measure ocr and both speech backends per minute of video")
    parser.add_argument("--segmented", action="store_true",
                        help="whole videos against --segment 10 and shots, per minute of video")
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 4.0])
    parser.add_argument("--pretrained", action="store_true",
                        help="--segmented with the default pretrained experts (random weights)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-mode", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_mode:
        print(json.dumps(measure_segmented(args.work, args.minutes[0], args.child_mode,
                                           args.pretrained, args.device)))
        return
    if args.segmented:
        segmented(args)
        return
    if args.readers:
        readers(args.work, args.seconds)
        return
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
