"""`python -m pipeline` runs the `vapipe` command line."""

from pipeline.apps.cli.main import entry

entry()
