"""Train with the original command line: python3 train.py --config <config.json> --device 0."""

import sys

try:
    from crosskd.cli import main
except KeyboardInterrupt:  # Ctrl-C before the command line is even read
    print("crosskd train: interrupted", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
