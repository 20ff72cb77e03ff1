"""Helpers of the reliability tests: tiny datasets and configs, workspaces, CLI results."""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from crosskd.data.pickles import load_small_pickle
from crosskd.data.synth import SynthSpec, example_config

#: the plain-dict expert file every data row damages (MSRVTT layout).
SCENE_FILE = "aggregated_scene_25fps_256px_stride1_offset0/densenet161-avg.pickle"
TEXT_FILE = "aggregated_text_feats/w2v.pkl"


def tiny_spec() -> SynthSpec:
    """An MSRVTT-layout dataset small enough to train an epoch in well under a second."""
    return SynthSpec(dataset="MSRVTT", videos=24, captions_per_video=3, caption_tokens=(2, 5),
                     max_expert_tokens=4, visual_dims={n: 6 for n in SynthSpec().visual_dims})


def tiny_config(data_dir: Path, save_dir: Path, epochs: int = 2) -> dict[str, Any]:
    """A CE+ config with caption distillation (cap_t, as in the published CrossKD configs)."""
    config = example_config(tiny_spec(), data_dir, split_name="full-val", max_text_tokens=5)
    config["data_loader"]["args"]["batch_size"] = 8
    config.update({
        "seed": 0,
        "optimizer": {"type": "RAdam", "args": {"lr": 0.01, "weight_decay": 1e-5}},
        "lr_scheduler": {"type": "StepLR", "args": {"step_size": 1, "gamma": 0.95}},
        "loss": {"type": "MaxMarginRankingLoss", "args": {"margin": 0.1, "fix_norm": True}},
        "trainer": {"epochs": epochs, "save_dir": str(save_dir), "val_freq": 1,
                    "monitor": "max val_t2v_metrics_geometric_mean_R1-R5-R10",
                    "tensorboard": False},
        "eval_settings": {"data_loader": {"args": {"split_name": "full-test"}}},
        "ranking_loss": True,
        "ranking_params": {"cap_w": 1.0, "cap_t": 5.0, "vid_w": 0.0, "vid_t": 5.0},
    })
    return config


@dataclass
class Workspace:
    """A private copy of the dataset, a save_dir and a config file for one test."""

    data_dir: Path
    save_dir: Path
    config_path: Path
    config: dict[str, Any]

    @property
    def feature_root(self) -> Path:
        """<data_dir>/high-quality/structured-symlinks, where the feature files live."""
        return self.data_dir / "high-quality" / "structured-symlinks"

    def write_config(self, config: dict[str, Any] | None = None, name: str = "tiny.json") -> Path:
        """Write `config` (default: this workspace's) and make it the config in use."""
        self.config = config if config is not None else self.config
        self.config_path = self.config_path.with_name(name)
        self.config_path.write_text(json.dumps(self.config), encoding="utf-8")
        return self.config_path

    def rewrite_pickle(self, relative: str, change: Callable[[Any], Any]) -> Path:
        """Load a dataset pickle, apply `change`, and write the result back (plain pickle)."""
        path = self.feature_root / relative
        data = change(load_small_pickle(path))
        path.write_bytes(pickle.dumps(data, protocol=4))
        return path

    def run_dirs(self) -> list[Path]:
        """Run folders that training created under save_dir."""
        return sorted(p for p in self.save_dir.glob("*/*") if p.is_dir())


@dataclass
class CliResult:
    """Exit status and stderr of one in-process `crosskd` call."""

    status: int
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        """The `crosskd <cmd>: error: ...` lines (exactly one is expected for a user error)."""
        return [line for line in self.stderr.splitlines() if ": error: " in line]


def assert_one_line_error(result: CliResult, *fragments: str) -> str:
    """Exit status 2, no traceback and exactly one error line that holds every fragment."""
    assert result.status == 2, f"exit status {result.status}; stderr:\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    (line,) = result.error_lines
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in the error line: {line}"
    print(line)  # shown with `pytest -s`: the catalogue's "what the user sees" column
    return line


def digest(path: Path) -> str:
    """The sha256 of a file, to show that a failure left it untouched."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digest(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file below `folder`."""
    return {str(p.relative_to(folder)): digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}
