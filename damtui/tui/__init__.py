"""The Textual front end; `damtui.tui.app.run_app` starts it. The engine never imports it."""
