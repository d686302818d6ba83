"""Widgets of the damtui app; they take data, never read files or train."""
