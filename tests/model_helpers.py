"""The tiny model written to a folder as a checkpoint would be (for tests of the folder and NF4 paths)."""

from __future__ import annotations

from pathlib import Path


def save_tiny(folder: str | Path) -> Path:
    """Write the tiny model, its generation config and processor to ``folder`` as safetensors."""
    from inference.tiny import build_tiny

    folder = Path(folder)
    model, processor = build_tiny()
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder
