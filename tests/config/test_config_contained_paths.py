"""File names a config gives below data_dir (root_feat_folder, the teachers and their folder,
the names an expert's file is built from) stay below it: a downloaded config cannot point the
loader at files elsewhere; data_dir (and an absolute base_path, as published) are roots."""

from __future__ import annotations

import pytest

from crosskd.config import ConfigError, apply_overrides, data_spec
from crosskd.data.synth import SynthSpec, example_config

SCENE = 'data_loader.args.feat_aggregation."scene.densenet161.0"'


def _config(*changes):
    config = example_config(SynthSpec(), "/data")
    config["distil_loss"] = True
    return apply_overrides(config, changes)


@pytest.mark.parametrize("key, value, named", [
    ("data_loader.args.root_feat_folder", '"../../etc"', "data_loader.args.root_feat_folder"),
    ("data_loader.args.root_feat_folder", '"/etc"', "data_loader.args.root_feat_folder"),
    ("distil_params.teachers", '["../../../../home/me/.ssh/id_rsa"]', "distil_params.teachers"),
    ("distil_params.teachers", '["/etc/passwd"]', "distil_params.teachers"),
    ("distil_params.teachers", '[""]', "distil_params.teachers"),
    ("distil_params.base_path", '"../../.."', "distil_params.base_path"),
    (f"{SCENE}.fps", '"25/../../../../../.."', SCENE),
    (f"{SCENE}.stride", '"/../../../etc"', SCENE),
])
def test_a_path_below_data_dir_that_climbs_out_is_refused(key, value, named):
    with pytest.raises(ConfigError, match=rf"^config key {named.replace('.', '[.]')}"
                       r".*'\.\.'\)?$"):
        data_spec(_config((key, value)))


def test_published_paths_and_absolute_teacher_folders_are_accepted():
    spec = data_spec(_config(("distil_params.base_path",
                              '"/data/someone/MSRVTT/high-quality/structured-symlinks/teachers/"'),
                             ("data_loader.args.root_feat_folder", '"a/./b/"')))
    assert spec.teacher_base_path.startswith("/data/someone/")
    assert spec.root_feat_folder == "a/./b/"
    assert data_spec(_config()).teachers
