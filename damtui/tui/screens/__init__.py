"""Screens of the damtui app: launch, monitor, runs, run view, compare, help and dialogs."""
