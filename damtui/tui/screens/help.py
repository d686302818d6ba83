"""Help: the keymap's one rule, every screen's keys (read from the bindings: damtui.tui.keymap) and
the few ideas needed to use damtui."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from damtui.tui import keymap
from damtui.tui.widgets.key_footer import KeyFooter

INTRO = """\
Deep AUC Maximization on MedMNIST: **pretrain** with cross-entropy, then **finetune** with the
AUC-margin loss (AUCM + PESG) starting from a finished pretrain run.
"""

IDEAS = """\
## Ideas
Every run is chosen on
**validation** AUC; test numbers are read at that epoch (the starred row, the marked epoch). A
fine-tune's answer is the best validation epoch of both stages: its page draws the pretrain and
the fine-tune as one curve, the answer marked where it is.

A run started here trains in its own process: it keeps training when the app closes or the SSH
session ends (`ctrl+q` asks: leave it running, stop it, or stay), and `damtui` shows it again.
Headless training works too: `nohup damtui train DATASET --preset NAME &`, then watch it with `r`;
a run another process writes is followed live, and `X` stops it like Ctrl+C (cancelled, resumable).
`R` resumes a cancelled, crashed or failed run, or extends a finished one, like `damtui train
--resume RUN [--epochs N]`.

On the runs list, runs that differ only by seed fold into one row (`g`) with mean ± std over one
run per seed (the newest finished; repeats of a seed are counted apart), named by what differs
from the other groups. The filter takes words (`breastmnist finetune`), `key:word`
(`status:running`) and `#tag`. A deleted run moves to `runs/.trash/`; Trash in the palette
(`ctrl+p`) restores it. `w` lists the sweeps; enter opens a sweep's live trials.

Charts: `[` `]` or `1`-`6` pick AUC, ACC, loss, lr, DAM health, AUCM; `y` a log y-axis; `+` `-`
smoothing (an exponential moving average, as in TensorBoard); `b` the MedMNIST v2 benchmark lines
(real MedMNIST sets only). On a GPU the monitor shows its memory and utilisation (utilisation needs
`nvidia-ml-py`) beside the CPU and RAM of the training process. A fine-tune warns when its
saturated scores climb.
"""


def sections(app_class: type) -> keymap.Sections:
    """Every screen (and the widgets with keys of their own) in the order a user meets them. The
    screens are imported when help opens, not when the app starts."""
    from damtui.tui.screens import (compare, curves, dataset_view, dialogs, launch, log_view, manage,
                                    mistakes, monitor, results, run_view, runs, sweep_page, sweeps, trash)
    from damtui.tui.widgets.config_form import ConfigForm

    return [
        ("Everywhere", [app_class]),
        ("New run (n)", [launch.LaunchScreen, ConfigForm]),
        ("Dataset images (i on New run)", [dataset_view.DatasetScreen]),
        ("Monitor (m)", [monitor.MonitorScreen]),
        ("Runs (r)", [runs.RunsScreen, runs.RunsTable]),
        ("A run's page (enter on a run)", [run_view.RunViewScreen]),
        ("Its log (o)", [log_view.LogScreen]),
        ("Its ROC/PR curves (p)", [curves.CurvesScreen]),
        ("Its mistakes (x)", [mistakes.MistakesScreen]),
        ("Compare (c on the runs)", [compare.CompareScreen, compare.CompareTable]),
        ("Results (L)", [results.ResultsScreen]),
        ("Sweeps (w on the runs)", [sweeps.SweepsScreen]),
        ("A sweep's page (enter on a sweep)", [sweep_page.SweepPage]),
        ("Trash (ctrl+p Trash)", [trash.TrashScreen]),
        ("Dialogs", [dialogs.ConfirmScreen, dialogs.QuitScreen, dialogs.PromptScreen, manage.NotesScreen,
                     dialogs.ColumnsScreen, HelpScreen]),
    ]


def help_text(app) -> str:
    """The help page: the rule, the keys of every screen, the ideas."""
    palette = app.get_key_display(Binding(app.COMMAND_PALETTE_BINDING, "command_palette"))
    keys = keymap.markdown(sections(type(app)), app.get_key_display, palette)
    return f"# damtui help\n\n{INTRO}\n{keymap.RULE}\n\n## Keys\n{keys}\n\n{IDEAS}"


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def compose(self) -> ComposeResult:
        from rich.markdown import Markdown  # pygments and all: when help opens, not at the app's start

        with VerticalScroll(id="help-box"):
            yield Static(Markdown(help_text(self.app)), id="help-text")  # one widget: opens fast
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#help-box").focus()

    def action_close(self) -> None:
        self.dismiss(None)
