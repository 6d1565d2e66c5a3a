"""The ``kiln`` command line: parse options, call the public API, print a summary."""
