"""Launch screen: choose dataset, stage, preset (values editable), source run, device; start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Button, DataTable, Header, Label, Select, Static

from damtui import config as cfgmod
from damtui.store import runs
from damtui.errors import DamtuiError
from damtui.text import markup
from damtui.tui import messages as msg
from damtui.tui.heavy import HEAVY_IMPORTS
from damtui.tui.format import fit_path, num, short_run_id
# imported with the app, before Textual takes the terminal: textual-image asks it for its cell size
from damtui.tui.screens.dataset_view import DatasetScreen
from damtui.tui.screens.dialogs import ConfirmScreen
from damtui.tui.widgets.config_form import ConfigForm
from damtui.tui.widgets.key_footer import KeyFooter

STAGES = [("pretrain (CE)", "pretrain"), ("finetune (AUCM)", "finetune")]
STATE_STYLE = {"present": "green", "synthetic": "cyan", "missing": "dim", "corrupt": "bold red"}


def preset_choices(
    presets: dict[str, cfgmod.Preset], dataset: str, stage: str
) -> list[cfgmod.Preset]:
    """Presets for this dataset (or any dataset, '*') and stage, dataset-specific ones first."""
    hits = [
        p
        for p in presets.values()
        if p.config.stage == stage and p.config.dataset in (dataset, cfgmod.ANY_DATASET)
    ]
    return sorted(hits, key=lambda p: (p.config.dataset == cfgmod.ANY_DATASET, p.name))


def preset_label(preset: cfgmod.Preset, dataset: str, stage: str) -> str:
    """The name without the dataset and stage the pickers already show: 'report', 'tuned'."""
    name = preset.name
    for prefix, suffix in ((f"{dataset}-{stage}-", ""), (f"any-{stage}-", " (any dataset)")):
        if name.startswith(prefix) and len(name) > len(prefix):
            name = name[len(prefix) :] + suffix
            break
    return name + (" (user)" if preset.user else "")


def default_preset(choices: list[cfgmod.Preset], dataset: str, stage: str) -> str | None:
    short = cfgmod.default_preset_name(dataset)
    names = [p.name for p in choices]
    for cand in (f"{dataset}-{stage}-{short}", f"any-{stage}-{short}", short):
        if cand in names:
            return cand
    return names[0] if names else None


def fetch_command(st: Any) -> str:
    """The command that fetches a dataset into the folder it was looked for in."""
    return f"damtui datasets fetch {st.flag} --data-root {st.path.parent}"


def pretrain_runs(all_runs: list[runs.RunInfo], dataset: str) -> list[runs.RunInfo]:
    """Finished pretrain runs of `dataset`, newest first (the finetune stage starts from one)."""
    return [
        r
        for r in all_runs
        if r.stage == "pretrain" and r.dataset == dataset and r.status == runs.FINISHED
    ]


class Fetched(Message):
    """A dataset fetched in a worker: its new status, or why it could not be fetched."""

    def __init__(self, flag: str, status: Any, error: str = "") -> None:
        super().__init__()
        self.flag, self.status, self.error = flag, status, error


def source_label(info: runs.RunInfo) -> str:
    """A pretrain run in the From-run picker (newest first, 24 columns at 80): its name (else short
    id), seed and best val AUC."""
    best = info.best.val_auc if info.best else None
    return f"{info.notes.name or short_run_id(info.run_id)} · seed {info.seed} · {num(best, 3)}"


class LaunchScreen(Screen):
    """New run. The dataset table has the focus first; tab walks through the pickers and values."""

    TITLE = "damtui"
    SUB_TITLE = "new run"
    BINDINGS = [
        Binding("S", "start", "Start"),
        Binding("i", "browse", "Images"),
        Binding("F", "fetch", "Fetch data"),
        Binding("ctrl+r", "refresh", "Recheck data", show=False),
    ]
    data_folder: reactive[tuple[Path, bool] | None] = reactive(None)  # (data root, exists)

    def __init__(self) -> None:
        super().__init__()
        self.presets: dict[str, cfgmod.Preset] = {}
        self.preset_error = ""
        self.flags: list[str] = []
        self.status: dict[str, Any] = {}
        self.all_runs: list[runs.RunInfo] = []
        self.dataset: str | None = None
        self.picked_preset: str | None = None  # the user's own choice, kept across datasets

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        with Horizontal(id="launch-body"):
            with Vertical(id="datasets-pane"):
                yield Label("Dataset", classes="section")
                yield DataTable(id="datasets", cursor_type="row", zebra_stripes=False)
                yield Static("checking datasets…", id="dataset-detail")
                yield Static("", id="data-root")
            with Vertical(id="run-pane"):
                with Horizontal(classes="pick"):
                    yield Label("Stage")
                    yield Select(
                        STAGES, value="pretrain", allow_blank=False, compact=True, id="stage"
                    )
                with Horizontal(classes="pick"):
                    yield Label("Preset")
                    yield Select([], prompt="no preset", compact=True, id="preset")
                with Horizontal(classes="pick", id="from-row"):
                    yield Label("From run")
                    yield Select([], prompt="no finished pretrain run", compact=True, id="from-run")
                with Horizontal(classes="pick"):
                    yield Label("Device")
                    yield Select(
                        [("auto", "auto")],
                        value="auto",
                        allow_blank=False,
                        compact=True,
                        id="device",
                    )
                yield Static("", id="preset-info")
                yield ConfigForm(id="config-form")
                yield Static("", id="launch-error", classes="error-line")
                yield Button("Start ▶", id="start", variant="primary", compact=True)
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one("#datasets", DataTable)
        for key, label in (
            ("flag", "dataset"),
            ("state", "state"),
            ("dim", "dim"),
            ("pos", "y=1"),
            ("train", "train"),
        ):  # val/test sizes: in the detail below
            table.add_column(label, key=key)
        self.query_one("#from-row").display = False
        self._load_presets()
        app = self.app
        self.data_folder = app.data_folder
        if app.dataset_flags:
            self._set_flags(app.dataset_flags)
            for st in app.dataset_status.values():
                self._set_status(st)
        else:
            from damtui.data.datasets import REPORT_FLAGS, SYNTHETIC_SIZES

            self._set_flags([*SYNTHETIC_SIZES, *sorted(REPORT_FLAGS)])  # known without medmnist
            self._check_datasets()
        if app.devices:
            self._set_devices(app.devices)
        else:
            self._find_devices()
        self._list_runs()
        table.focus()

    def on_screen_resume(self) -> None:
        self._list_runs()

    # ------------------------------------------------------------------ background work
    @work(thread=True, exclusive=True, group="datasets")
    def _check_datasets(self) -> None:
        from damtui.data import datasets

        root = self.app.data_root
        try:  # no torch here (datasets reads medmnist's info.py alone): no wait for the devices' import
            folder = datasets.data_root(root)
            self.post_message(msg.DataRootChecked(folder, folder.is_dir()))
            flags = datasets.all_flags()
        except Exception as err:  # medmnist missing or broken: still offer nothing, say why
            self.post_message(msg.DatasetFlags([], f"cannot list datasets: {err}"))
            return
        self.post_message(msg.DatasetFlags(flags))
        for flag in flags:
            try:
                self.post_message(msg.DatasetStatusReady(datasets.status(flag, root)))
            except DamtuiError:
                continue

    @work(thread=True, exclusive=True, group="devices")
    def _find_devices(self) -> None:
        try:
            found = self.app.find_devices()
        except Exception as err:
            self.post_message(msg.DevicesReady([("auto", "auto"), ("cpu", "cpu")], str(err)))
            return
        self.post_message(msg.DevicesReady(found))

    @work(thread=True, exclusive=True, group="runs")
    def _list_runs(self) -> None:
        self.post_message(msg.list_runs(self.app.runs_dir))

    # ------------------------------------------------------------------ results of the work
    def on_data_root_checked(self, message: msg.DataRootChecked) -> None:
        self.app.data_folder = self.data_folder = (message.root, message.exists)

    def watch_data_folder(self, folder: tuple[Path, bool] | None) -> None:
        text = "" if folder is None else f"data root: {markup(folder[0])}"
        if folder is not None and not folder[1]:
            text += " (no such folder)"
        self.query_one("#data-root", Static).update(text)

    def on_dataset_flags(self, message: msg.DatasetFlags) -> None:
        self.app.dataset_flags = list(message.flags)
        if message.error:
            self.query_one("#dataset-detail", Static).update(f"✗ {markup(message.error)}")
        self._set_flags(message.flags)

    def on_dataset_status_ready(self, message: msg.DatasetStatusReady) -> None:
        self.app.dataset_status[message.status.flag] = message.status
        self._set_status(message.status)

    def on_devices_ready(self, message: msg.DevicesReady) -> None:
        self.app.devices = list(message.devices)
        self._set_devices(message.devices)

    def on_runs_listed(self, message: msg.RunsListed) -> None:
        self.all_runs = list(message.runs)
        self._sync_from_runs()

    def _set_flags(self, flags: list[str]) -> None:
        table = self.query_one("#datasets", DataTable)
        for flag in flags:
            if flag not in self.flags:
                self.flags.append(flag)
                table.add_row(flag, Text("…", style="dim"), "", "", "", key=flag)
        if flags and self.dataset is None:
            self._select_dataset(flags[0])

    def _set_status(self, st: Any) -> None:
        self.status[st.flag] = st
        table = self.query_one("#datasets", DataTable)
        if st.flag not in self.flags:
            return
        share = "-" if st.positive_share is None else f"{st.positive_share * 100:.0f}%"
        cells = {
            "state": Text(st.state, style=STATE_STYLE.get(st.state, "")),
            "dim": "3D" if st.is_3d else "2D",
            "pos": share,
            "train": str(st.sizes.get("train", "-")),
        }
        for key, value in cells.items():
            table.update_cell(st.flag, key, value, update_width=True)
        if st.flag == self.dataset:
            self._show_detail()

    def _set_devices(self, devices: list[tuple[str, str]]) -> None:
        select = self.query_one("#device", Select)
        current = select.value
        select.set_options([(label, dev) for dev, label in devices])
        ids = [d for d, _ in devices]
        select.value = current if current in ids else ids[0]

    # ------------------------------------------------------------------ pickers
    def _load_presets(self) -> None:
        try:
            self.presets = cfgmod.list_presets()
            self.preset_error = ""
        except DamtuiError as err:
            self.presets, self.preset_error = {}, str(err)

    @property
    def stage(self) -> str:
        value = self.query_one("#stage", Select).value
        return value if isinstance(value, str) else "pretrain"

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "datasets" and event.row_key.value:
            self._select_dataset(event.row_key.value)

    def _select_dataset(self, flag: str) -> None:
        if flag == self.dataset:
            return
        self.dataset = flag
        self._show_detail()
        self._sync_presets()
        self._sync_from_runs()

    def _show_detail(self) -> None:
        st = self.status.get(self.dataset or "")
        box = self.query_one("#dataset-detail", Static)
        if st is None:
            box.update(f"{self.dataset}: checking…" if self.dataset else "")
            return
        kind = "multi-label" if st.multilabel else "binary"
        sizes = " / ".join(f"{k} {v}" for k, v in st.sizes.items())
        lines = [f"{st.flag}: {st.state}, {'3D' if st.is_3d else '2D'}, {kind}", sizes]
        if st.positive_share is not None:
            lines.append(f"label 1: {st.positive_share * 100:.1f}% of train")
        if st.state == "missing":  # the pane is 46 wide: no path broken mid-name, the key to fetch
            lines += [markup(f"not in {fit_path(st.path.parent, 36)}"), "F fetches it (MD5-checked)"]
        elif st.state == "synthetic" and st.positive_share is None:
            lines.append("generated on first use")
        elif st.state == "corrupt":
            lines.append(f"✗ {markup(st.error)}")
        elif st.md5 == "mismatch":
            lines.append("! MD5 differs from medmnist's")
        box.update("\n".join(lines))
        self.refresh_bindings()  # F and i follow the highlighted dataset's state

    @on(Select.Changed, "#stage")
    def _stage_changed(self) -> None:
        self.query_one("#from-row").display = self.stage == "finetune"
        edited = list(self.query_one(ConfigForm).edits)
        self._sync_presets(keep_edits=True)
        self._sync_from_runs()
        if edited:  # kept, and said so: a value the new stage refuses shows its error at the field
            self.notify(f"{self.stage}: kept your edits to {', '.join(edited)}", timeout=4)

    def _sync_presets(self, keep_edits: bool = False) -> None:
        """Offer the presets of the dataset and stage; keep the user's choice ('tuned') and their
        edits when that choice exists for the new dataset too and the stage is the same, or when
        `keep_edits` (a change of stage keeps width, epochs and the rest)."""
        select = self.query_one("#preset", Select)
        if self.dataset is None:
            return
        choices = preset_choices(self.presets, self.dataset, self.stage)
        names = [p.name for p in choices]
        current = select.value
        kept = self._same_choice(self.picked_preset, names)
        pick = kept or default_preset(choices, self.dataset, self.stage)
        # set programmatically: its Changed message would arrive later and reset the form
        with select.prevent(Select.Changed):
            select.set_options(
                [(markup(preset_label(p, self.dataset, self.stage)), p.name) for p in choices]  # user files
            )
            if pick is not None:
                select.value = pick
        same = isinstance(current, str) and self._same_choice(current, [pick or ""]) == pick
        self._show_preset(keep_edits=keep_edits or bool(same))

    def _same_choice(self, name: object, names: list[str]) -> str | None:
        """The preset in `names` that `name` stands for on this dataset ('report' for 'report'),
        if it is a preset of this stage."""
        if not isinstance(name, str) or name not in self.presets or self.dataset is None:
            return None
        old = self.presets[name].config
        if old.stage != self.stage:
            return None
        short = name
        for prefix in (f"{old.dataset}-{old.stage}-", f"any-{old.stage}-"):
            short = short.removeprefix(prefix)
        for cand in (f"{self.dataset}-{self.stage}-{short}", f"any-{self.stage}-{short}", name):
            if cand in names:
                return cand
        return None

    @on(Select.Changed, "#preset")
    def _preset_changed(self, event: Select.Changed) -> None:
        """Only the user's picks arrive here: programmatic ones are prevented."""
        self.picked_preset = event.value if isinstance(event.value, str) else None
        self._show_preset(keep_edits=False)

    def _base_config(self) -> cfgmod.Config | None:
        name = self.query_one("#preset", Select).value
        if not isinstance(name, str) or name not in self.presets or self.dataset is None:
            return None
        return self.presets[name].config.model_copy(update={"dataset": self.dataset})

    def _show_preset(self, keep_edits: bool) -> None:
        base = self._base_config()
        info = self.query_one("#preset-info", Static)
        if base is None:
            if self.preset_error:
                info.update(f"✗ {markup(self.preset_error)}")
            else:
                info.update(f"no {self.stage} preset for {self.dataset}; `damtui presets list`")
        else:
            text = base.description or base.source
            info.update(markup(text))  # a user preset's description is shown as written
        self.query_one(ConfigForm).set_base(base, keep_edits=keep_edits)

    def _sync_from_runs(self) -> None:
        select = self.query_one("#from-run", Select)
        if self.dataset is None:
            return
        found = pretrain_runs(self.all_runs, self.dataset)
        current = select.value
        with select.prevent(Select.Changed):
            # the blank first option is a prompt, never "none" while there are runs to choose
            select.prompt = "choose a pretrain run" if found else "no finished pretrain run"
            select.set_options([(markup(source_label(r)), str(r.path)) for r in found])
            paths = [str(r.path) for r in found]
            if current in paths:
                select.value = current
            elif paths:
                select.value = paths[0]

    def on_config_form_changed(self, event: ConfigForm.Changed) -> None:
        self._show_error(event.error)

    def on_config_form_submitted(self) -> None:
        self.action_start()

    def on_config_form_left(self) -> None:
        self.set_focus(self.query_one("#start", Button))  # at once, as the form's enter does

    def _show_error(self, text: str) -> None:
        box = self.query_one("#launch-error", Static)
        box.update(f"✗ {markup(text)}" if text else "")
        box.set_class(bool(text), "-shown")

    # ------------------------------------------------------------------ start
    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """`F` only for a dataset that is missing; `i` only for one that can be read."""
        st = self.status.get(self.dataset or "")
        if action == "fetch":
            return st is not None and st.state == "missing"
        if action == "browse":
            return st is not None and st.state in ("present", "synthetic")
        return True

    def action_browse(self) -> None:
        """The highlighted dataset's images (damtui.tui.screens.dataset_view)."""
        if self.dataset:
            self.app.push_screen(DatasetScreen(self.dataset))

    def action_fetch(self) -> None:
        """Download the highlighted missing dataset (medmnist's downloader, MD5 checked), after
        a dialog that says where it goes: `damtui datasets fetch FLAG` from the app."""
        st = self.status.get(self.dataset or "")
        if st is None or st.state != "missing":
            return
        flag, folder = st.flag, st.path.parent

        def answer(yes: bool | None) -> None:
            if yes:
                self.notify(markup(f"fetching {flag} into {folder}…"), timeout=4)
                self._fetch(flag)

        self.app.push_screen(ConfirmScreen(
            f"Fetch {flag}?", f"Downloads {st.path.name} from Zenodo (medmnist's source) into\n{markup(folder)}\n"
            "and checks its MD5. A file already there is never replaced.", yes="Fetch", no="Cancel",
            danger=False), answer)

    @work(thread=True, group="fetch", exit_on_error=False)
    def _fetch(self, flag: str) -> None:
        from damtui.data import datasets

        root = self.app.data_root
        try:
            with HEAVY_IMPORTS:
                datasets.fetch(flag, root)
                st = datasets.status(flag, root)
        except DamtuiError as err:
            self.post_message(Fetched(flag, None, str(err)))
        except Exception as err:  # a network error, medmnist's own
            self.post_message(Fetched(flag, None, f"{type(err).__name__}: {err}"))
        else:
            self.post_message(Fetched(flag, st))

    def on_fetched(self, message: Fetched) -> None:
        if message.error:
            self.notify(f"cannot fetch {message.flag}: {markup(message.error)}", severity="error", timeout=10)
            return
        self.app.dataset_status[message.flag] = message.status
        self._set_status(message.status)
        self.refresh_bindings()
        self.notify(f"{message.flag}: {message.status.state}", timeout=4)

    def action_refresh(self) -> None:
        self.app.dataset_flags, self.app.dataset_status = [], {}
        self._load_presets()
        self._check_datasets()
        self._sync_presets()
        self._list_runs()

    def action_start(self) -> None:
        if self.dataset is None:
            self._show_error("choose a dataset")
            return
        st = self.status.get(self.dataset)
        if st is not None and st.state in ("missing", "corrupt"):
            self._show_error(
                st.error
                if st.state == "corrupt"
                else f"{self.dataset} is missing from {st.path.parent}: `{fetch_command(st)}` first"
            )
            return
        try:
            config = self.query_one(ConfigForm).result()
        except DamtuiError as err:
            self._show_error(str(err))
            return
        from_run = None
        if config.stage == "finetune":
            value = self.query_one("#from-run", Select).value
            from_run = Path(value) if isinstance(value, str) else None
            if from_run is None:
                self._show_error(
                    f"a finetune starts from a finished pretrain run of {self.dataset}:"
                    " train one first (stage pretrain)"
                )
                return
        device = self.query_one("#device", Select).value
        self._show_error("")
        self.app.start_training(
            config, device=device if isinstance(device, str) else "auto", from_run=from_run
        )
