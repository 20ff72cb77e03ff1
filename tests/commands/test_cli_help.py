"""The CLI explains itself: each command's own usage on a mistake, every option described
with its default, both spellings of every multi-word flag, --version, python -m crosskd, a
quiet end on a closed pipe, and `zoo list` without torch."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crosskd import __version__
from crosskd.cli import HelpFormatter, _parsers, build_parser

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}


def run(*argv: str, cwd: Path = REPO, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=120, **kwargs)


def _options():
    for parser in _parsers(build_parser()):
        for action in parser._actions:
            if action.option_strings and not isinstance(
                    action, (argparse._HelpAction, argparse._VersionAction)):
                yield parser.prog, action


def test_a_mistyped_flag_shows_the_commands_own_usage():
    result = run("train.py", "--cfg", "x")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: crosskd train ")
    assert "crosskd train: error: unrecognized arguments: --cfg x" in result.stderr


def test_a_mistyped_flag_of_a_nested_command_shows_its_usage():
    result = run("-m", "crosskd", "zoo", "list", "--zoo-dri", "x")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: crosskd zoo list ")


def test_every_option_has_a_description_and_says_its_default_or_that_it_is_required():
    for prog, action in _options():
        assert action.help, f"{prog} {action.option_strings[0]} has no help"
        if action.nargs != 0 and not action.required:  # flags are off unless given
            shown = HelpFormatter(prog)._get_help_string(action)
            assert "default" in shown, f"{prog} {action.option_strings[0]}: no default in help"


def test_every_multi_word_flag_takes_dashes_and_underscores():
    for prog, action in _options():
        for flag in (f for f in action.option_strings if f.startswith("--")):  # not -k
            name = flag[2:]
            for other in (name.replace("_", "-"), name.replace("-", "_")):
                assert f"--{other}" in action.option_strings, f"{prog} {flag}: no --{other}"


@pytest.mark.parametrize(("command", "flag"), [("train", "--output"), ("test", "--output"),
                                               ("zoo eval", "--out")])
def test_out_and_output_both_name_the_metrics_file(command, flag):
    parser = build_parser()
    argv = [*command.split(), flag, "m.json"] + (["msrvtt-cecap"] if "zoo" in command else [])
    args = parser.parse_args(argv)
    assert str(getattr(args, "out", None) or getattr(args, "output")) == "m.json"


def test_version_and_python_dash_m():
    result = run("-m", "crosskd", "--version")
    assert result.returncode == 0 and result.stdout.strip() == f"crosskd {__version__}"
    assert "usage: crosskd" in run("-m", "crosskd", "--help").stdout


def test_a_closed_pipe_ends_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "crosskd", "zoo", "list"], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line is written
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 141
    assert b"Traceback" not in stderr and b"BrokenPipeError" not in stderr


def test_zoo_list_does_not_load_torch():
    probe = ("import sys; from crosskd.cli import main; main(['zoo', 'list']); "
             "print('torch loaded' if 'torch' in sys.modules else 'no torch')")
    result = run("-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "no torch"
    assert "msrvtt-cecap" in result.stdout


def test_a_shipped_config_is_found_from_any_folder(tmp_path):
    result = run("-m", "crosskd", "inspect", "--config", "configs/demo/msrvtt-demo-ce.json",
                 "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"modalities"' in result.stdout
