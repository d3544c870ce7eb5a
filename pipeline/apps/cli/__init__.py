"""The `vapipe` command line: its parser, its commands and the progress display."""
