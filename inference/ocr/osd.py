"""Tesseract's orientation and script detection (OSD), without holding Python's lock.

tesserocr keeps the GIL through ``DetectOrientationScript``: two OCR threads ran their OSD one after the other
(1.1 times as fast with two threads, against 2.0 for recognition, which releases it), and every page runs OSD once
or twice. So the call goes through Tesseract's C API with ctypes, which releases the GIL for the call; the library
is the one tesserocr ships with (its wheel bundles it beside the package), else the system's. Where neither can be
loaded, tesserocr's own call is used. Both give the same answer for the same image (a test compares them).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from pathlib import Path
from typing import Any

import numpy as np

PSM_OSD_ONLY = 0  # TessPageSegMode
_LIBRARY: Any = None  # the loaded C API, False when it cannot be loaded, None before the first try
_LOCK = threading.Lock()


def _library() -> Any:
    global _LIBRARY
    with _LOCK:
        if _LIBRARY is None:
            _LIBRARY = _load() or False
        return _LIBRARY or None


def _load() -> Any:
    try:
        import tesserocr

        bundled = Path(tesserocr.__file__).resolve().parent.parent / "tesserocr.libs"
        found = sorted(bundled.glob("libtesseract*.so*")) + sorted(bundled.glob("libtesseract*.dylib"))
        name = str(found[0]) if found else ctypes.util.find_library("tesseract")
        if not name:
            return None
        lib = ctypes.CDLL(name)
        p, i, f = ctypes.c_void_p, ctypes.c_int, ctypes.c_float
        lib.TessBaseAPICreate.restype = p
        lib.TessBaseAPICreate.argtypes = []
        lib.TessBaseAPIInit3.restype = i
        lib.TessBaseAPIInit3.argtypes = [p, ctypes.c_char_p, ctypes.c_char_p]
        lib.TessBaseAPISetPageSegMode.argtypes = [p, i]
        lib.TessBaseAPISetPageSegMode.restype = None
        lib.TessBaseAPISetImage.argtypes = [p, p, i, i, i, i]
        lib.TessBaseAPISetImage.restype = None
        lib.TessBaseAPIDetectOrientationScript.restype = i
        lib.TessBaseAPIDetectOrientationScript.argtypes = [
            p,
            ctypes.POINTER(i),
            ctypes.POINTER(f),
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.POINTER(f),
        ]
        for name in ("TessBaseAPIEnd", "TessBaseAPIDelete"):
            getattr(lib, name).argtypes = [p]
            getattr(lib, name).restype = None
        return lib
    except (ImportError, OSError, AttributeError):
        return None


def detect(gray: np.ndarray, datapath: str, language: str) -> dict[str, Any] | None:
    """OSD of an image (uint8: grey, 2-D, or RGB, height x width x 3, made grey by Tesseract itself) with
    Tesseract initialised as ``(datapath, language)``: ``orient_deg``, ``orient_conf``, ``script_name`` and
    ``script_conf`` as tesserocr's ``DetectOrientationScript`` gives them, or None where Tesseract finds too little
    text. Raises ``RuntimeError`` when Tesseract cannot start."""
    lib = _library()
    if lib is None:
        return _with_tesserocr(gray, datapath, language)
    image = np.ascontiguousarray(gray, dtype=np.uint8)
    height, width = image.shape[:2]
    depth = 1 if image.ndim == 2 else image.shape[2]
    handle = lib.TessBaseAPICreate()
    try:
        if lib.TessBaseAPIInit3(handle, datapath.encode(), language.encode()) != 0:
            raise RuntimeError(f"Tesseract could not start with {language!r} from {datapath}")
        lib.TessBaseAPISetPageSegMode(handle, PSM_OSD_ONLY)
        lib.TessBaseAPISetImage(handle, image.ctypes.data, width, height, depth, depth * width)
        deg, conf, script, script_conf = ctypes.c_int(), ctypes.c_float(), ctypes.c_char_p(), ctypes.c_float()
        found = lib.TessBaseAPIDetectOrientationScript(
            handle, ctypes.byref(deg), ctypes.byref(conf), ctypes.byref(script), ctypes.byref(script_conf)
        )
        if not found:
            return None
        name = script.value.decode("utf-8", "replace") if script.value else ""
        return {
            "orient_deg": deg.value,
            "orient_conf": conf.value,
            "script_name": name,
            "script_conf": script_conf.value,
        }
    finally:
        lib.TessBaseAPIEnd(handle)
        lib.TessBaseAPIDelete(handle)


def _with_tesserocr(gray: np.ndarray, datapath: str, language: str) -> dict[str, Any] | None:
    import tesserocr
    from PIL import Image

    with tesserocr.PyTessBaseAPI(path=datapath, lang=language, psm=tesserocr.PSM.OSD_ONLY) as api:
        api.SetImage(Image.fromarray(np.ascontiguousarray(gray, dtype=np.uint8)))
        return api.DetectOrientationScript() or None
