"""Console scripts.

Every module in this package except :mod:`main` is one subcommand of
``nova-hypervisors``.  It defines ``COMMAND`` (the subcommand name), ``HELP``
(one line), ``add_arguments(parser)`` and ``run(args) -> int``.
"""
