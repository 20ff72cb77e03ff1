"""Evaluate with the original command line:
python3 test.py --config <config.json> --resume <trained_model.pth> --eval_from_training_config
"""

import sys

from crosskd.cli import main

if __name__ == "__main__":
    sys.exit(main(["test", *sys.argv[1:]]))
