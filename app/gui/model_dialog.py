"""The model dialog: source, dtype, device, diffusion parameters (the checkpoint's defaults), memory estimate.

It only collects choices and shows the estimate (from the config, no weights read); the window loads the model on
its worker thread. The estimate and the checkpoint's defaults are read on a background thread of their own (a hub
lookup can take tens of seconds offline): the dialog opens at once, the form stays usable, and a late answer for a
source no longer chosen is dropped.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.gui.worker import Job, run_detached
from inference.weights.choices import DEVICES, DTYPES, QUANT_CHOICES


@dataclass
class ModelChoice:
    source: str
    dtype: str
    device: str
    params: dict[str, Any]
    quant: str = "auto"  # none, nf4, or auto (NF4 when the plain weights do not fit and NF4 does)
    engine: str = "model"  # model: loaded here; remote: a server speaking the OpenAI chat API (dwb serve, vLLM)
    base_url: str = ""  # remote: e.g. http://127.0.0.1:8000/v1
    remote_model: str = ""  # remote: the model to ask for ("": the first the server lists)
    api_key_env: str = ""  # remote: the environment variable holding the bearer token ("": none)
    concurrency: int = 4  # remote: requests in flight


def checkpoint_defaults(source: str) -> dict[str, Any]:
    """The diffusion parameters a checkpoint ships with (its generation config), else the library's."""
    from inference.weights.sources import generation_defaults

    return generation_defaults(source).to_dict()


def memory_estimate_text(source: str, dtype: str, device: str, quant: str = "auto") -> str:
    from inference.errors import WorkbenchError
    from inference.weights.devices import resolve_device, resolve_dtype
    from inference.weights.sizing import choose_quant, count_parameters, estimate_memory
    from inference.weights.sources import load_config

    def size(n: int) -> str:
        return f"{n / 2**30:.2f} GiB" if n >= 0.1 * 2**30 else f"{n / 2**20:.1f} MiB"

    try:
        counts = count_parameters(load_config(source))
        resolved_device = resolve_device(device)
        plain_dtype = resolve_dtype(dtype, resolved_device)
        picked, why = choose_quant(counts, quant, plain_dtype, resolved_device)
        nf4_dtype = resolve_dtype(dtype, resolved_device, "nf4")
        plain = estimate_memory(counts, plain_dtype)
        nf4 = estimate_memory(counts, nf4_dtype, "nf4")
    except WorkbenchError as exc:
        return f"No estimate: {exc.user_message('window')}"
    except Exception as exc:  # noqa: BLE001 - the estimate is advisory; loading reports the real error
        return f"No estimate ({type(exc).__name__})."
    # the weights apart from the total: a fixed runtime reserve makes a 5 MB model "about 1.00 GiB" either way
    return (
        f"{counts.total:,} parameters ({counts.active:,} active per token); weights {size(plain.weights_bytes)} "
        f"in {plain_dtype}, {size(nf4.weights_bytes)} in 4-bit NF4; to load, about {size(plain.total_bytes)} and "
        f"{size(nf4.total_bytes)} with the runtime's reserve. Loads as: "
        f"{'NF4' if picked == 'nf4' else plain_dtype}" + (f" ({why})" if why else ".")
    )


def read_source(source: str, dtype: str, device: str, quant: str = "auto") -> tuple[str, dict[str, Any]]:
    """Background thread: the estimate's text and the checkpoint's diffusion defaults."""
    return memory_estimate_text(source, dtype, device, quant), checkpoint_defaults(source)


_READING = threading.Lock()


BUILTIN_SOURCES = ("tiny-trained", "tiny")


def source_problem(text: str) -> tuple[bool, str]:
    """Whether the Model dialog's Source can be loaded, and what to say under it: a built-in name, a local folder
    with a ``config.json``, or a Hugging Face id (``owner/name``, checked when loaded). Only local checks."""
    from pathlib import Path

    source = text.strip()
    if not source:
        return False, "Choose a model: tiny-trained, a Hugging Face id (owner/name) or a local folder (Browse\u2026)."
    if source in BUILTIN_SOURCES:
        return True, "Built in: no download."
    path = Path(source).expanduser()
    if path.is_absolute() or source.startswith((".", "~")) or path.exists():
        if not path.exists():
            return False, f"No such folder: {path}"
        if not path.is_dir():
            return False, f"{path.name} is a file: choose the model's folder (the one with config.json)."
        if not (path / "config.json").is_file():
            return False, f"{path} has no config.json: choose the folder the model was saved in."
        return True, "A local model folder."
    parts = source.split("/")
    if len(parts) == 2 and all(parts) and " " not in source:
        return True, "A Hugging Face id: downloaded (or read from the cache) when loaded."
    return False, "Not a model: give owner/name (a Hugging Face id), a local folder, or tiny-trained."


class ModelDialog(QDialog):
    def __init__(
        self, parent: QWidget | None = None, recent: list[str] | None = None, current: ModelChoice | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Model")
        self.requests = 0
        self.answers = 0
        self._pending_values: dict[str, Any] | None = None
        self.params_form = QFormLayout()
        self.fields: dict[str, Any] = {}
        self._local_boxes(recent)
        self._remote_boxes()
        self.form = self._choice_form()
        self.engine.currentIndexChanged.connect(self._engine_chosen)
        self.buttons = self._buttons()
        self._lay_out()
        if current is not None:
            self._show_choice(current)
        self._engine_chosen()
        self.check_source()
        self.source.editTextChanged.connect(self.check_source)
        from inference.runtime.params import DiffusionParams  # light: no torch, no transformers

        initial = DiffusionParams().to_dict()
        if current is not None:
            initial.update(current.params)
        self._fill(initial)
        self.refresh(current.params if current is not None else None)

    def _local_boxes(self, recent: list[str] | None) -> None:
        """Where the model comes from and how it is loaded here: source, dtype, device, weights."""
        self.source = QComboBox()
        self.source.setEditable(True)
        for s in ["tiny-trained", "tiny", *(recent or []), "google/diffusiongemma-26B-A4B-it"]:
            if self.source.findText(s) < 0:
                self.source.addItem(s)
        self.source.setToolTip(
            "tiny-trained (a demonstration model that transcribes short text pages), tiny (random "
            "weights, for tests), a Hugging Face id, or a local folder"
        )
        self.dtype = QComboBox()
        self.dtype.addItems(DTYPES)
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.quant = QComboBox()
        self.quant.addItems(QUANT_CHOICES)
        self.quant.setToolTip(
            "nf4: 4-bit weights (the 26B model in about 14 GiB), cached on disk after the first "
            "load; auto: NF4 when the plain weights do not fit the device and NF4 does"
        )

    def _remote_boxes(self) -> None:
        """Load here or ask a server, and the server's address, model, token variable and concurrency."""
        self.engine = QComboBox()
        self.engine.addItem("Load it here", "model")
        self.engine.addItem("Remote server (OpenAI chat API: dwb serve, vLLM)", "remote")
        self.engine.setToolTip(
            "Remote: the model runs on a server; prompts are built here with the Source's "
            "processor (no weights). Against dwb serve the panel shows the denoising live."
        )
        self.base_url = QLineEdit()
        self.base_url.setPlaceholderText("http://127.0.0.1:8000/v1")
        self.remote_model = QLineEdit()
        self.remote_model.setPlaceholderText("the first the server lists")
        self.api_key_env = QLineEdit()
        self.api_key_env.setPlaceholderText("none (e.g. DWB_API_KEY)")
        self.api_key_env.setToolTip("The name of an environment variable holding the bearer token, never the token")
        self.concurrency = QSpinBox()
        self.concurrency.setRange(1, 64)
        self.concurrency.setValue(4)
        self.concurrency.setToolTip("Requests in flight (pages in parallel)")

    def _choice_form(self) -> QFormLayout:
        """One row per choice; ``_engine_chosen`` shows the local rows or the remote ones."""
        form = QFormLayout()
        form.addRow("Engine", self.engine)
        form.addRow("Source", self._source_row())
        form.addRow("", self.source_check)
        form.addRow("Dtype", self.dtype)
        form.addRow("Device", self.device)
        form.addRow("Weights", self.quant)
        form.addRow("Base URL", self.base_url)
        form.addRow("Remote model", self.remote_model)
        form.addRow("API key env var", self.api_key_env)
        form.addRow("Concurrency", self.concurrency)
        return form

    def _estimate_box(self) -> QScrollArea:
        """The memory estimate (or why there is none), selectable; a long message scrolls, it never squashes the
        form below."""
        self.estimate = QLabel("")
        self.estimate.setWordWrap(True)
        self.estimate.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.estimate.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        estimate_box = QScrollArea()
        estimate_box.setWidget(self.estimate)
        estimate_box.setWidgetResizable(True)
        estimate_box.setFrameShape(QScrollArea.Shape.NoFrame)
        estimate_box.setFixedHeight(64)
        return estimate_box

    def _buttons(self) -> QDialogButtonBox:
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Load")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        return buttons

    def _lay_out(self) -> None:
        """The choices, the estimate with its button, the diffusion parameters, Load and Cancel."""
        refresh = QPushButton("Estimate memory and read defaults")
        refresh.clicked.connect(self.refresh)
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(refresh)
        layout.addWidget(self._estimate_box())
        layout.addWidget(QLabel("<b>Diffusion parameters</b> (the checkpoint's defaults)"))
        layout.addLayout(self.params_form)
        layout.addWidget(self.buttons)

    def _show_choice(self, current: ModelChoice) -> None:
        """The choice the model shown was loaded (or connected) with."""
        self.source.setCurrentText(current.source)
        self.dtype.setCurrentText(current.dtype)
        self.device.setCurrentText(current.device)
        self.quant.setCurrentText(current.quant)
        self.engine.setCurrentIndex(max(0, self.engine.findData(current.engine)))
        self.base_url.setText(current.base_url)
        self.remote_model.setText(current.remote_model)
        self.api_key_env.setText(current.api_key_env)
        self.concurrency.setValue(current.concurrency)

    def _source_row(self) -> QWidget:
        """The Source box with Browse\u2026 for a local folder, and the line under it that checks it as you type."""
        self.source_check = QLabel("")
        self.source_check.setWordWrap(True)
        self.source_help = self.source.toolTip()
        browse = QPushButton("Browse\u2026")
        browse.setToolTip("Choose a local model folder (the one with config.json)")
        browse.clicked.connect(self.browse)
        row = QWidget()
        line = QHBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(self.source, 1)
        line.addWidget(browse)
        return row

    def browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A model folder", self.source.currentText().strip())
        if folder:
            self.source.setCurrentText(folder)

    def check_source(self, *_: Any) -> bool:
        ok, text = source_problem(self.source.currentText())
        self.source_check.setText(text)
        self.source_check.setStyleSheet("" if ok else "color: #b3261e;")
        self.source.setToolTip(f"{self.source_help}\n\n{text}")
        self.form.setRowVisible(self.source_check, not ok)  # a problem is said under the box; a good source quietly
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok or self.engine.currentData() == "remote")
        return ok

    def _engine_chosen(self, *_: Any) -> None:
        """Local: dtype, device and weights; remote: the server's address, model, token variable, concurrency."""
        remote = self.engine.currentData() == "remote"
        for widget in (self.dtype, self.device, self.quant):
            self.form.setRowVisible(widget, not remote)
        for widget in (self.base_url, self.remote_model, self.api_key_env, self.concurrency):
            self.form.setRowVisible(widget, remote)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Connect" if remote else "Load")

    def refresh(self, values: dict[str, Any] | None = None) -> None:
        """Ask a background thread for the estimate and defaults of the source chosen; never waits for it."""
        source = self.source.currentText().strip() or "tiny"
        self.requests += 1
        ticket = self.requests
        self._pending_values = values if isinstance(values, dict) else None
        self.estimate.setText(f"Reading {source}\u2026")
        self.estimate.setToolTip("")
        dtype, device = self.dtype.currentText(), self.device.currentText()
        quant = self.quant.currentText()

        def work(_job: Job) -> tuple[str, dict[str, Any] | None]:
            try:
                with _READING:  # one at a time: two threads importing transformers at once get an ImportError
                    return read_source(source, dtype, device, quant)
            except Exception as exc:  # noqa: BLE001 - advisory: loading reports the real error
                return f"No estimate ({type(exc).__name__}).", None

        # detached: a hub lookup that hangs must never hold up closing the window, nor wait behind a model run
        job = Job("reading the model's estimate", work)
        job.succeeded.connect(lambda answer: self._answered(ticket, *answer))
        run_detached(job, self)

    def _answered(self, ticket: int, text: str, defaults: dict[str, Any] | None) -> None:
        if ticket != self.requests:
            return  # an answer for a source no longer chosen
        self.answers += 1
        first = text.split(". ")[0].rstrip(".") + "."
        self.estimate.setText(text if len(text) <= 400 else first)
        self.estimate.setToolTip(text)
        if defaults is not None:
            if self._pending_values:
                defaults.update(self._pending_values)
            self._fill(defaults)

    def _fill(self, defaults: dict[str, Any]) -> None:
        while self.params_form.rowCount():
            self.params_form.removeRow(0)
        self.fields = {}
        for name, value in defaults.items():
            self.fields[name] = self._field(name, value)
            self.params_form.addRow(name.replace("_", " "), self.fields[name])

    @staticmethod
    def _field(name: str, value: Any) -> QWidget:
        if name in ("stability_threshold", "confidence_threshold", "seed"):
            box = QCheckBox("set")  # optional values: unset means the engine's behaviour without them
            inner = QDoubleSpinBox() if name == "confidence_threshold" else QSpinBox()
            inner.setRange(0, 1_000_000) if isinstance(inner, QSpinBox) else inner.setRange(0.0, 1.0)
            if isinstance(inner, QDoubleSpinBox):
                inner.setDecimals(3)
                inner.setSingleStep(0.01)
            box.setChecked(value is not None)
            if value is not None:
                inner.setValue(value)
            holder = QWidget()
            row = QFormLayout(holder)
            row.setContentsMargins(0, 0, 0, 0)
            row.addRow(box, inner)
            holder.value = lambda: inner.value() if box.isChecked() else None  # type: ignore[attr-defined]
            return holder
        if isinstance(value, int):
            spin = QSpinBox()
            spin.setRange(1, 262_144)
            spin.setValue(value)
            return spin
        dspin = QDoubleSpinBox()
        dspin.setRange(0.0, 100.0)
        dspin.setDecimals(3)
        dspin.setSingleStep(0.05)
        dspin.setValue(float(value))
        return dspin

    def choice(self) -> ModelChoice:
        params = {}
        for name, widget in self.fields.items():
            value = widget.value() if callable(getattr(widget, "value", None)) else None
            if isinstance(widget, QDoubleSpinBox):
                value = float(value)
            params[name] = value
        return ModelChoice(
            self.source.currentText().strip() or "tiny",
            self.dtype.currentText(),
            self.device.currentText(),
            params,
            self.quant.currentText(),
            engine=self.engine.currentData(),
            base_url=self.base_url.text().strip(),
            remote_model=self.remote_model.text().strip(),
            api_key_env=self.api_key_env.text().strip(),
            concurrency=self.concurrency.value(),
        )
