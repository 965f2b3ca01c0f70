"""One module per `binaryvit` subcommand.

Each module defines ``NAME`` (the subcommand), ``HELP`` (one line), ``ORDER`` (position in
``--help``), ``add_arguments(parser)`` and ``run(args) -> int``. The CLI discovers them, so
adding a subcommand is adding a file here.
"""
