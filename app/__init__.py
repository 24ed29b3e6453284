"""Diffusion Workbench: the desktop window (PySide6) and the ``dwb`` command line.

Qt is imported only by the window's modules, never at package import, so the headless commands start fast and
run without PySide6 installed.
"""
