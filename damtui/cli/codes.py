"""The exit codes every command shares."""

EXIT_FAILED, EXIT_CANCELLED = 1, 130
