"""Run under torchrun by tests/train/test_distributed.py: `crosskd train` once per config.

One launch trains every config, so the tests pay torchrun's and torch's start-up once.
"""

import sys

from crosskd.cli import main

if __name__ == "__main__":
    for config in sys.argv[1:]:
        status = main(["train", "--config", config, "--device", "cpu"])
        if status:
            sys.exit(status)
