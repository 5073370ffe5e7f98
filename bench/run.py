"""Runs benchmark suites: python -m bench.run --suite all|elementwise|conv|... [suite options]"""
from __future__ import annotations

import argparse
import importlib
import sys

SUITES = ["elementwise", "conv", "batch_norm", "optim", "conv_lstm", "autoencoder_step", "linear", "classify_ops",
          "classifier", "distributed"]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--suite", default="all", help="all or one of " + ", ".join(SUITES))
    args, rest = parser.parse_known_args()
    names = SUITES if args.suite == "all" else [args.suite]
    for name in names:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as e:
            print(f"skipping {name}: {e}", file=sys.stderr)
            continue
        module.main(rest)


if __name__ == "__main__":
    main()
