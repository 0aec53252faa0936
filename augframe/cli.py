"""The `augframe` command line (also `python -m augframe`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from augframe import demo

    result = demo.run(workdir=args.workdir, epochs=args.epochs, seed=args.seed)
    return 0 if result.epochs_run > 0 else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="augframe",
        description="Class-balanced, augmented in-RAM frames for Keras.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example:\n  augframe demo --epochs 6",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="train a small CNN on a generated, imbalanced image set",
        description=(
            "Writes an imbalanced 3-class image set (1000/200/20 JPEGs), builds a "
            "balanced augframe.FrameSequence with a control file and example "
            "images, and trains a small CNN on the CPU (about 2 minutes)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example:\n  augframe demo --workdir /tmp/augframe-demo --epochs 6",
    )
    demo.add_argument("--workdir", default="augframe-demo", help="folder for data, control file and examples")
    demo.add_argument("--epochs", type=int, default=12, help="training epochs (default 12)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
