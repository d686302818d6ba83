"""Help: the keys of every screen and the few ideas needed to use damtui."""

from __future__ import annotations

from rich.markdown import Markdown
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """\
# damtui help

Deep AUC Maximization on MedMNIST: **pretrain** with cross-entropy, then **finetune** with
the AUC-margin loss (AUCM + PESG) starting from a finished pretrain run.

## Everywhere
- `n` new run (launch screen) · `r` runs · `m` monitor of the run being trained
- `?` or `f1` this help · `ctrl+p` command palette · `escape` back
- `L` results: per dataset the best seed group (chosen on validation AUC) vs MedMNIST v2
- `ctrl+q` quit: with a run training it asks: leave it running (it is its own process and trains
  on; `damtui` shows it again), stop it (after its batch, cancelled, resumable) or stay

## New run
`tab` moves between the dataset table, stage, preset, source run, device and the preset's
values. Edited values are checked at once; the problem shows under the field. In a value,
`enter` moves to the next one (on the last it starts) and `escape` leaves the values for Start.
`s` (or the Start button) starts training. `ctrl+r` checks the datasets again.

## Monitor
`x` cancels the run (asks first); once it stopped, `R` resumes it. `g` or `1`-`6` switch the
chart (AUC, ACC, loss with validation CE, lr, DAM health, AUCM a/b/alpha); a wide terminal shows
three side by side. `b` shows or hides the MedMNIST v2 benchmark lines on AUC/ACC (test numbers
of the paper; also in a run's view and in compare). A fine-tune warns when its saturated scores
climb. On a GPU a line shows its memory and utilisation (utilisation needs
`nvidia-ml-py`). The starred epoch is the best validation AUC; test numbers are read there.

## Runs
`enter` opens a run (a run that is still being written is followed live), `space` selects or
unselects the highlighted run, `home` / `end` go to the first / last run, `c` compares the
selected runs, `w` shows runs grouped by sweep, `/` filters (words match dataset, stage, status,
preset or the run id; `status:running` matches one column), `s` / `S` change the sort column /
order,
`a` selects all shown runs, `u` clears the selection. `g` folds runs that differ only by seed
into one group row (mean ± std over one run per seed, the newest finished; repeats of a seed are
counted apart; the group is named by what differs from the others): `enter` opens or closes it,
`space` on it selects its runs. `R`, in the list or a run's view, resumes
a cancelled, crashed or failed run in this app, or extends a finished one (it asks for the new
number of epochs), like `damtui train --resume RUN [--epochs N]`. `X` stops a run that is
training (here or in another process) like Ctrl+C: cancelled, resumable.
`d` deletes the highlighted run: after a dialog (which names the fine-tunes using it as their
source) it moves to `runs/.trash/`, from where it can be moved back; a run being written is
refused. `e` renames it (the name shown in lists and exports; the folder keeps its name), `t`
edits its tags and notes (`tag:WORD` filters by tag). On a run's page `l` shows its log, the
lines its training printed, followed live while it trains.

## Compare
Pick the metric to overlay; the table lists the config keys that differ and the summary,
best value marked with `*`. Runs that differ only by seed are summarised as mean ± std.
`e` exports CSV and Markdown.

Runs started here keep training when the app closes or the SSH session ends. Headless training
works too: `nohup damtui train DATASET --preset NAME &`, then watch it here with `r`.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(Markdown(HELP), id="help-text")  # one widget: opens fast

    def on_mount(self) -> None:
        self.query_one("#help-box").focus()

    def action_close(self) -> None:
        self.dismiss(None)
