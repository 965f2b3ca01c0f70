"""The `binaryvit` command line: one subcommand per stage of the flow.

With no arguments it runs `binaryvit flow` on the embedded default data set.
Errors the project anticipates (:class:`binaryvit.errors.BinaryVitError`) print as one
line on stderr and exit with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import signal
import sys

from binaryvit import __version__, commands
from binaryvit.errors import BinaryVitError

DEFAULT_COMMAND = "flow"


def _command_modules() -> list:
    modules = [importlib.import_module(f"{commands.__name__}.{info.name}")
               for info in pkgutil.iter_modules(commands.__path__)]
    return sorted(modules, key=lambda m: (m.ORDER, m.NAME))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="binaryvit",
        description="Binary vision transformer to bit-exact FPGA hardware. "
                    f"With no subcommand, runs `binaryvit {DEFAULT_COMMAND}` on the embedded digits.")
    parser.add_argument("--version", action="version", version=f"binaryvit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.__doc__)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def _exit_on_sigterm(signum, frame) -> None:
    # Unwinds like Ctrl-C, so the atomic writers remove their temporary files and folders.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    parser = build_parser()
    if not argv:
        names = {m.NAME for m in _command_modules()}
        if DEFAULT_COMMAND in names:
            argv = [DEFAULT_COMMAND]
        else:
            parser.print_help()
            return 0
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.run(args) or 0)
    except BinaryVitError as exc:
        print(f"binaryvit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"binaryvit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
