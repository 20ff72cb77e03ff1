"""`crosskd index` and `crosskd search` run in-process by the search tests."""

from __future__ import annotations

import json

from crosskd.cli import main


def search_json(capsys, *args) -> dict:
    """The JSON answer of `crosskd search ARGS --json` (which must succeed)."""
    assert main(["search", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def refused_index(capsys, tiny_collection, out, *args: str) -> str:
    """The last stderr line of `crosskd index` on the tiny collection with `args`, which must
    end with status 2 (argparse's refusals exit, ours return)."""
    folder, _, checkpoint, _ = tiny_collection
    command = ["index", "--checkpoint", str(checkpoint), "--config", str(folder / "config.json"),
               "--out", str(out), *args]
    try:
        status = main(command)
    except SystemExit as exit_:
        status = exit_.code
    assert status == 2
    return capsys.readouterr().err.strip().splitlines()[-1]
