"""Train with the original command line: python3 train.py --config <config.json> --device 0."""

import sys

from crosskd.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
