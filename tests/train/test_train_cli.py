"""train then test through their command lines on tiny synthetic datasets of every layout."""

from __future__ import annotations

import csv
import json
import os
import runpy
import sys
from pathlib import Path

import pytest
import torch

from crosskd.checkpoint.run_state import BEST_NAME, LAST_NAME, load_run_state
from crosskd.cli import main
from crosskd.data.synth import SynthSpec, example_config, write_synthetic
from crosskd.train.trainer import NonFiniteLossError
from nested_equality import same_nested
from trainers import trainer_for

pytestmark = pytest.mark.usefixtures("one_thread")

REPO_ROOT = Path(__file__).resolve().parents[2]
# dataset -> (training split, final-test split), as in the published configs
PROTOCOLS = {"MSRVTT": ("full-val", "full-test"), "MSVD": ("dev", "official"),
             "DiDeMo": ("val", "test"), "ActivityNet": ("val1", "val1")}


def tiny_config(dataset: str, data_dir: Path, save_dir: Path) -> dict:
    """A 2-epoch CE+ config with caption distillation (and TeachText on MSRVTT)."""
    spec = _spec(dataset)
    train_split, test_split = PROTOCOLS[dataset]
    config = example_config(spec, data_dir, split_name=train_split, max_text_tokens=6)
    config["data_loader"]["args"]["batch_size"] = 8
    config["arch"]["args"].update({"use_mish": 1, "use_bn_reason": 1, "num_g_layers": 3,
                                   "num_h_layers": 0, "include_self": 1,
                                   "test_caption_mode": "indep"})
    config.update({
        "seed": 0,
        "optimizer": {"type": "RAdam", "args": {"lr": 0.01, "weight_decay": 1e-5}},
        "lr_scheduler": {"type": "StepLR", "args": {"step_size": 1, "gamma": 0.95}},
        "loss": {"type": "MaxMarginRankingLoss", "args": {"margin": 0.1, "fix_norm": True}},
        "trainer": {"epochs": 2, "save_dir": str(save_dir), "val_freq": 1,
                    "monitor": "max val_t2v_metrics_geometric_mean_R1-R5-R10",
                    "tensorboard": dataset == "MSRVTT"},
        "eval_settings": {"data_loader": {"args": {"split_name": test_split}}},
        "ranking_loss": True,
        "ranking_params": {"cap_w": 1.0, "cap_t": 5.0, "vid_w": 0.0, "vid_t": 5.0},
        "distil_loss": dataset == "MSRVTT",
    })
    return config


def _spec(dataset: str) -> SynthSpec:
    return SynthSpec(dataset=dataset, videos=40, captions_per_video=4,
                     caption_tokens=(2, 6), max_expert_tokens=4,
                     visual_dims={name: 12 for name in SynthSpec().visual_dims})


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    return {name: write_synthetic(_spec(name), root / name).parents[1] for name in PROTOCOLS}


def _write_config(path: Path, config: dict) -> Path:
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def _run_dir(save_dir: Path, experiment: str) -> Path:
    (run_dir,) = sorted((save_dir / experiment).iterdir())
    return run_dir


@pytest.mark.parametrize("dataset", sorted(PROTOCOLS))
def test_train_then_test_reproduces_the_final_metrics(dataset, datasets, tmp_path):
    config = tiny_config(dataset, datasets[dataset], tmp_path / "saved")
    config["trainer"]["epochs"] = 2 if dataset == "MSRVTT" else 1
    config_path = _write_config(tmp_path / f"tiny-{dataset.lower()}.json", config)
    trained = tmp_path / "train.json"
    assert main(["train", "--config", str(config_path), "--device", "cpu",
                 "--out", str(trained)]) == 0
    run_dir = _run_dir(tmp_path / "saved", config_path.stem)
    assert {"config.json", BEST_NAME, LAST_NAME, "metrics.json", "metrics.csv",
            "test_metrics.json"} <= {p.name for p in run_dir.iterdir()}
    assert len(json.loads((run_dir / "metrics.json").read_text())) == config["trainer"]["epochs"]
    tested = tmp_path / "test.json"
    assert main(["test", "--config", str(config_path), "--resume", str(run_dir),
                 "--eval_from_training_config", "--out", str(tested)]) == 0
    train_metrics = json.loads(trained.read_text())
    assert json.loads(tested.read_text()) == train_metrics
    stored = tmp_path / "stored.json"  # without --config: the config saved in the checkpoint
    assert main(["test", "--resume", str(run_dir / BEST_NAME), "--eval_from_training_config",
                 "--out", str(stored)]) == 0
    assert json.loads(stored.read_text()) == train_metrics
    protocol = train_metrics["protocol"]
    assert (protocol["dataset"], protocol["split"]) == (dataset, PROTOCOLS[dataset][1])
    fused = dataset in ("DiDeMo", "ActivityNet")
    assert protocol["captions_per_video"] == (1 if fused else 4)


def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(datasets, tmp_path):
    config = tiny_config("MSRVTT", datasets["MSRVTT"], tmp_path / "saved")
    full = _write_config(tmp_path / "full.json", config)
    assert main(["train", "--config", str(full), "--out", str(tmp_path / "full.json.out")]) == 0
    short = _write_config(tmp_path / "short.json", config)
    assert main(["train", "--config", str(short), "--set", "trainer.epochs=1"]) == 0
    short_dir = _run_dir(tmp_path / "saved", "short")
    assert load_run_state(short_dir / LAST_NAME)["epoch"] == 1
    assert main(["train", "--resume", str(short_dir), "--set", "trainer.epochs=2",
                 "--out", str(tmp_path / "resumed.json.out")]) == 0
    full_dir = _run_dir(tmp_path / "saved", "full")
    for name in (LAST_NAME, BEST_NAME):
        a, b = load_run_state(full_dir / name), load_run_state(short_dir / name)
        assert a["epoch"] == b["epoch"]
        assert same_nested(a["state_dict"], b["state_dict"])
        assert same_nested(a["optimizer"], b["optimizer"])
    assert (json.loads((tmp_path / "full.json.out").read_text())
            == json.loads((tmp_path / "resumed.json.out").read_text()))
    assert (json.loads((full_dir / "metrics.json").read_text())
            == json.loads((short_dir / "metrics.json").read_text()))


def test_several_seeds_report_mean_and_std(datasets, tmp_path, capsys):
    config = tiny_config("MSVD", datasets["MSVD"], tmp_path / "saved")
    config["trainer"]["epochs"] = 1
    path = _write_config(tmp_path / "seeds.json", config)
    out = tmp_path / "seeds.out.json"
    assert main(["train", "--config", str(path), "--seeds", "0,1", "--out", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert set(summary["runs"]) == {"0", "1"}
    r1 = [summary["runs"][s]["t2v"]["R1"] for s in ("0", "1")]
    assert summary["mean"]["t2v"]["R1"] == pytest.approx(sum(r1) / 2)
    assert summary["std"]["t2v"]["R1"] == pytest.approx(abs(r1[0] - r1[1]) / 2)
    assert summary["std_ddof"] == 0
    assert "mean (std, ddof=0) over 2 seeds" in capsys.readouterr().out
    experiment = tmp_path / "saved" / "seeds"
    assert len([p for p in experiment.iterdir() if p.is_dir()]) == 2
    assert json.loads((experiment / "summary.json").read_text()) == summary
    assert "ddof=0" in (experiment / "summary.md").read_text()


def test_a_run_folder_says_what_ran(datasets, tmp_path):
    config = tiny_config("MSVD", datasets["MSVD"], tmp_path / "saved")
    config["trainer"]["epochs"] = 2
    path = _write_config(tmp_path / "record.json", config)
    assert main(["train", "--config", str(path), "--device", "cpu",
                 "--set", "trainer.val_freq=1"]) == 0
    (run_dir,) = (tmp_path / "saved" / "record").iterdir()
    (record,) = json.loads((run_dir / "run.json").read_text())["invocations"]
    assert record["arguments"][:3] == ["train", "--config", str(path)]
    assert record["overrides"] == ["trainer.val_freq=1"]
    assert record["outcome"] == "finished" and record["ended"] >= record["started"]
    assert record["torch"] == torch.__version__ and record["device"] == "cpu"
    assert record["crosskd"] and "numpy" in record and "python" in record
    log_text = (run_dir / "train.log").read_text()
    assert "epoch 2:" in log_text and "final test of" in log_text
    for name in ("checkpoint_last.pth", "model_best.pth", "metrics.csv", "train.log"):
        mode = (run_dir / name).stat().st_mode & 0o777
        assert mode & 0o044 == 0o044 & ~_umask(), (name, oct(mode))  # group/others may read
    assert main(["train", "--resume", str(run_dir), "--device", "cpu",
                 "--set", "trainer.epochs=3"]) == 0
    records = json.loads((run_dir / "run.json").read_text())["invocations"]
    assert len(records) == 2 and records[1]["arguments"][:2] == ["train", "--resume"]
    with open(run_dir / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    assert all(float(row["videos_per_second"]) > 0 and float(row["epoch_seconds"])
               >= float(row["train_seconds"]) > 0 for row in rows)  # kept across the resume
    assert "train_seconds" not in (run_dir / "metrics.json").read_text()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(datasets, tmp_path,
                                                                   monkeypatch):
    config = tiny_config("MSRVTT", datasets["MSRVTT"], tmp_path / "saved")
    trainer = trainer_for(config, tmp_path / "run")
    real_terms = trainer.task.objective.terms
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        total, terms = real_terms(*args, **kwargs)
        calls["n"] += 1
        return (total * float("nan"), terms) if calls["n"] == per_epoch + 2 else (total, terms)

    per_epoch = len(trainer.sampler)
    monkeypatch.setattr(trainer.task.objective, "terms", poisoned)
    with pytest.raises(NonFiniteLossError, match="epoch 2, batch 2"):
        trainer.train()
    assert load_run_state(tmp_path / "run" / LAST_NAME)["epoch"] == 1


def test_root_train_py_keeps_the_original_command_line(datasets, tmp_path, monkeypatch):
    config = tiny_config("DiDeMo", datasets["DiDeMo"], tmp_path / "saved")
    config["trainer"]["epochs"] = 1
    path = _write_config(tmp_path / "root.json", config)
    monkeypatch.setattr(sys, "argv", ["train.py", "--config", str(path), "--device", "0",
                                      "--custom_args", "seed@3+trainer.val_freq@1"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO_ROOT / "train.py"), run_name="__main__")
    assert exit_info.value.code == 0
    assert "_seed3" in _run_dir(tmp_path / "saved", "root").name


def test_test_without_a_checkpoint_is_a_one_line_error(tmp_path, capsys):
    assert main(["test", "--config", str(tmp_path / "any.json")]) == 2
    assert "--resume" in capsys.readouterr().err


def test_tensorboard_holds_the_config_the_test_metrics_and_hparams(datasets, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    config = tiny_config("MSRVTT", datasets["MSRVTT"], tmp_path / "saved")
    config["trainer"]["epochs"] = 1
    path = _write_config(tmp_path / "board.json", config)
    assert main(["train", "--config", str(path), "--device", "cpu"]) == 0
    (run_dir,) = (tmp_path / "saved" / "board").iterdir()
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    assert "test/t2v_metrics_R1" in events.Tags()["scalars"]
    assert "train/loss" in events.Tags()["scalars"]
    assert any(tag.startswith("config") for tag in events.Tags()["tensors"])
    test = json.loads((run_dir / "test_metrics.json").read_text())
    (recorded,) = events.Scalars("test/t2v_metrics_R1")
    assert recorded.value == pytest.approx(test["t2v"]["R1"])
    assert (run_dir / "tensorboard" / "hparams").is_dir()
