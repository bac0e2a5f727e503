"""The ``bnnzoo`` command line: the top floor of the pipeline.

``bnnzoo.cli`` parses the command line and runs one module of ``bnnzoo.commands`` per
subcommand; the library below it (``zoo``, ``recipes``, ``converters``, ``eval``) never
imports this package.
"""
