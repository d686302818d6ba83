"""A one-line footer of the keys that apply, drawn as text.

Textual's Footer rebuilds one widget per key whenever the bindings change (each screen switch,
each focus change); on a busy 2-core machine that alone took most of the ~50 ms between a key
press and its answer. This footer keeps one widget and only re-renders its line.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget


class KeyFooter(Widget):
    COMPONENT_CLASSES = {"key-footer--key", "key-footer--description"}
    DEFAULT_CSS = """
    KeyFooter {
        dock: bottom;
        height: 1;
        background: $footer-background;
        color: $footer-foreground;
    }
    KeyFooter > .key-footer--key {
        color: $footer-key-foreground;
        text-style: bold;
    }
    KeyFooter > .key-footer--description {
        color: $footer-description-foreground;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self._keys: list[tuple[str, str]] = []
        self._global: set[tuple[str, str]] = set()  # the app's own keys, dropped first when short of room
        self._palette: tuple[str, str] | None = None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: object) -> None:
        if screen is not self.screen:
            return
        app = self.app
        keys: list[tuple[str, str]] = []
        global_keys: set[tuple[str, str]] = set()
        seen: set[str] = set()
        palette = None
        for node, binding, enabled, _tooltip in self.screen.active_bindings.values():
            if binding.key == app.COMMAND_PALETTE_BINDING and app.ENABLE_COMMAND_PALETTE:
                palette = (app.get_key_display(binding), "palette")
                continue
            if not binding.show or not enabled or binding.action in seen:
                continue
            seen.add(binding.action)
            keys.append((app.get_key_display(binding), binding.description))
            if (node is app and binding.action != "help") or binding.key == "escape":
                global_keys.add(keys[-1])  # the app's keys and escape (always back): in ? Help
        if (keys, palette) != (self._keys, self._palette):
            self._keys, self._palette, self._global = keys, palette, global_keys
            self.refresh()

    def render(self) -> Text:
        """The keys in one line. When they do not fit, the app's global keys (quit, new run, runs,
        monitor) and escape (back, everywhere) go first, all listed by `? Help`, so the screen's own
        keys and Help stay whole."""
        key_style = self.get_component_rich_style("key-footer--key")
        text_style = self.get_component_rich_style("key-footer--description")

        def keys_line(keys: list[tuple[str, str]]) -> Text:
            line = Text(no_wrap=True, overflow="ellipsis")
            for key, description in keys:
                line.append(f" {key}", key_style)
                line.append(f" {description} ", text_style)
            return line

        width = max(self.size.width, 0)
        line = keys_line(self._keys)
        if line.cell_len > width:
            line = keys_line([k for k in self._keys if k not in self._global])
        if self._palette is not None:
            key, description = self._palette
            tail = Text.assemble((key, key_style), (f" {description} ", text_style))
            room = width - line.cell_len - tail.cell_len
            if room >= 1:
                line.append(" " * room)
                line.append_text(tail)
        line.truncate(width)
        return line
