"""Evaluate with the original command line:
python3 test.py --config <config.json> --resume <trained_model.pth> --eval_from_training_config
"""

import sys

try:
    from crosskd.cli import main
except KeyboardInterrupt:  # Ctrl-C before the command line is even read
    print("crosskd test: interrupted", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(main(["test", *sys.argv[1:]]))
