"""One module per ``bnnzoo`` subcommand, each with ``add_arguments(parser)`` and ``run(args) -> int``.

``bnnzoo.cli.COMMANDS`` lists them; a module is imported only when its command runs (or its
``--help`` is shown), so ``bnnzoo list`` never imports TensorFlow.
"""
