"""The frozen app's entry point (``app.cli:main`` is a function, PyInstaller needs a script)."""

import multiprocessing
import os
import sys

from app.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    # PyMuPDF prints an advert for its layout add-on on stdout when that is absent; the bundle leaves it out
    os.environ.setdefault("PYMUPDF_SUGGEST_LAYOUT_ANALYZER", "0")
    sys.exit(main())
