"""`python -m social_xlstm.cli`: the `social-xlstm` command, for scripts that hold only an interpreter path."""

from social_xlstm.cli import entry_point

entry_point()
