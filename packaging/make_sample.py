"""Write resources/sample.pdf: a small two-page document of our own, for the README's run command and screenshots.

Run: .venv/bin/python packaging/make_sample.py
"""

from __future__ import annotations

from pathlib import Path

import pymupdf

OUT = Path(__file__).resolve().parents[1] / "resources" / "sample.pdf"
LEFT = (
    "Block diffusion writes text in canvases of 256 tokens. A causal prefill reads the prompt into a key-value "
    "cache; a bidirectional decoder then denoises the canvas step by step, accepting confident tokens and "
    "re-noising the rest."
)
RIGHT = (
    "When a canvas is finished it is committed to the cache and the next canvas starts. Adaptive stopping ends a "
    "canvas early once its tokens are stable and confident, so easy text takes few steps."
)
PAGE2 = (
    "The workbench turns PDFs, scans, images and video frames into interleaved prompts with exact token counts. "
    "Without model weights, the builtin engine parses documents with layout analysis and OCR, and answers "
    "questions with retrieved passages and their pages."
)


def main() -> Path:
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((56, 40), "Diffusion Workbench sample", fontsize=8, color=(0.4, 0.4, 0.4))
    page.insert_text((56, 90), "How block diffusion writes", fontsize=22)
    page.insert_textbox(pymupdf.Rect(56, 120, 285, 320), LEFT, fontsize=10.5)
    page.insert_textbox(pymupdf.Rect(310, 120, 540, 320), RIGHT, fontsize=10.5)
    page.insert_text((56, 350), "Figures from one run", fontsize=14)
    rows = [["Canvas", "Steps", "Tokens"], ["1", "18", "256"], ["2", "11", "256"], ["3", "6", "97"]]
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            page.insert_text((66 + c * 110, 382 + r * 20), cell, fontsize=10)
    for r in range(len(rows) + 1):
        page.draw_line((56, 368 + r * 20), (386, 368 + r * 20))
    for c in range(len(rows[0]) + 1):
        page.draw_line((56 + c * 110, 368), (56 + c * 110, 448))
    page.insert_text((290, 815), "1", fontsize=9)
    page = doc.new_page(width=595, height=842)
    page.insert_text((56, 40), "Diffusion Workbench sample", fontsize=8, color=(0.4, 0.4, 0.4))
    page.insert_text((56, 90), "What the workbench does", fontsize=18)
    page.insert_textbox(pymupdf.Rect(56, 110, 540, 260), PAGE2, fontsize=11)
    page.insert_text((290, 815), "2", fontsize=9)
    doc.set_metadata({"title": "Diffusion Workbench sample", "author": "Diffusion Workbench"})
    OUT.parent.mkdir(exist_ok=True)
    doc.save(OUT, garbage=4, deflate=True)
    return OUT


if __name__ == "__main__":
    print(main())
