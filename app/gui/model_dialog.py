"""The model dialog: source, dtype, device, diffusion parameters (the checkpoint's defaults), memory estimate.

It only collects choices and shows the estimate (from the config, no weights read); the window loads the model on
its worker thread.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)


@dataclass
class ModelChoice:
    source: str
    dtype: str
    device: str
    params: dict[str, Any]


def checkpoint_defaults(source: str) -> dict[str, Any]:
    """The diffusion parameters a checkpoint ships with (its generation config), else the library's."""
    from inference.params import DiffusionParams

    generation_config = None
    try:
        if source.strip().lower() == "tiny":
            from inference.tiny import build_generation_config, build_tokenizer

            generation_config = build_generation_config(build_tokenizer())
        else:
            from transformers import GenerationConfig

            generation_config = GenerationConfig.from_pretrained(source)
    except Exception:  # noqa: BLE001 - no generation config: the library defaults
        generation_config = None
    return dataclasses.asdict(DiffusionParams.from_generation_config(generation_config))


def memory_estimate_text(source: str, dtype: str, device: str) -> str:
    from inference.errors import WorkbenchError
    from inference.loading import count_parameters, estimate_memory, load_config, resolve_device, resolve_dtype

    try:
        counts = count_parameters(load_config(source))
        resolved = resolve_dtype(dtype, resolve_device(device))
        est = estimate_memory(counts, resolved)
    except WorkbenchError as exc:
        return f"No estimate: {exc.user_message()}"
    except Exception as exc:  # noqa: BLE001 - the estimate is advisory; loading reports the real error
        return f"No estimate ({type(exc).__name__})."
    gib = est.total_bytes / 2**30
    size = f"{gib:.2f} GiB" if gib >= 0.1 else f"{est.total_bytes / 2**20:.1f} MiB"
    return (f"{counts.total:,} parameters ({counts.active:,} active per token); {resolved}: about {size} "
            "with runtime overhead")


class ModelDialog(QDialog):
    def __init__(self, parent: QWidget | None = None, recent: list[str] | None = None,
                 current: ModelChoice | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Model")
        self.source = QComboBox()
        self.source.setEditable(True)
        for s in ["tiny", *(recent or []), "google/diffusiongemma-26B-A4B-it"]:
            if self.source.findText(s) < 0:
                self.source.addItem(s)
        self.source.setToolTip("tiny (random weights, for demos), a Hugging Face id, or a local folder")
        self.dtype = QComboBox()
        self.dtype.addItems(["auto", "bf16", "fp16", "fp32"])
        self.device = QComboBox()
        self.device.addItems(["auto", "cuda", "mps", "cpu"])
        self.estimate = QLabel("")
        self.estimate.setWordWrap(True)
        self.params_form = QFormLayout()
        self.fields: dict[str, Any] = {}
        form = QFormLayout()
        form.addRow("Source", self.source)
        form.addRow("Dtype", self.dtype)
        form.addRow("Device", self.device)
        refresh = QPushButton("Estimate memory and read defaults")
        refresh.clicked.connect(self.refresh)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(refresh)
        layout.addWidget(self.estimate)
        layout.addWidget(QLabel("<b>Diffusion parameters</b> (the checkpoint's defaults)"))
        layout.addLayout(self.params_form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Load")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        if current is not None:
            self.source.setCurrentText(current.source)
            self.dtype.setCurrentText(current.dtype)
            self.device.setCurrentText(current.device)
        self.refresh(current.params if current is not None else None)

    def refresh(self, values: dict[str, Any] | None = None) -> None:
        source = self.source.currentText().strip() or "tiny"
        self.estimate.setText(memory_estimate_text(source, self.dtype.currentText(), self.device.currentText()))
        defaults = checkpoint_defaults(source)
        if isinstance(values, dict):
            defaults.update(values)
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
            holder.value = lambda: (inner.value() if box.isChecked() else None)  # type: ignore[attr-defined]
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
        return ModelChoice(self.source.currentText().strip() or "tiny", self.dtype.currentText(),
                           self.device.currentText(), params)
