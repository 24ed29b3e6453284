"""Builtin Ask: passage ranking on questions written after reading four documents of ../shared/data.

All four documents go into one index; a question is answered at top-k when one of the first k citations is the
answering page of the answering document. Prints ``ask_top1=`` and ``ask_top3=``.
"""

from __future__ import annotations

from pathlib import Path

from inference.documents import open_document
from inference.tasks import BuiltinEngine
from tests.helpers import DATA, needs_shared

PDF = DATA / "docling" / "pdf"
pytestmark = needs_shared("data", "docling", "pdf")

QUESTIONS = [  # (question, document, page)
    ("How many data breaches does the Identity Theft Resource Center report?", "redp5110_sampled.pdf", 5),
    ("Which CL commands work with, display or change function usage IDs?", "redp5110_sampled.pdf", 8),
    ("Which global variable holds the IP address of the current client?", "redp5110_sampled.pdf", 12),
    ("What value does the special register CURRENT_USER hold?", "redp5110_sampled.pdf", 11),
    ("What are the two fundamental steps in securing information assets?", "redp5110_sampled.pdf", 6),
    ("Which IBM i release added the VERIFY_GROUP_FOR_USER function?", "redp5110_sampled.pdf", 12),
    ("What authority did Theresa need to grant *USE privileges on the PAYROLL table?", "redp5110_sampled.pdf", 9),
    ("What does a column mask use to describe what you see when you access the column?", "redp5110_sampled.pdf", 10),
    ("How is RCAC activated on a table after the masks are created?", "redp5110_sampled.pdf", 14),
    ("What does Visual Explain show when RCAC is enabled?", "redp5110_sampled.pdf", 15),
    ("Who patented the typewriter in 1868?", "multi_page.pdf", 1),
    ("When did IBM introduce the electric typewriter?", "multi_page.pdf", 1),
    ("What did the IBM MT/ST combine with the Selectric typewriter?", "multi_page.pdf", 1),
    ("Which word processor was popular among legal professionals?", "multi_page.pdf", 2),
    ("When was Google Docs introduced and what did it change?", "multi_page.pdf", 2),
    ("Which tools do screenwriters use to format scripts?", "multi_page.pdf", 3),
    ("Why do academics use LaTeX for mathematical equations?", "multi_page.pdf", 3),
    ("Which program helps authors manage novels with chapter outlines and character notes?", "multi_page.pdf", 4),
    ("Which speech-to-text tools made dictation mainstream?", "multi_page.pdf", 4),
    ("What are the two general types of self-locking nuts?", "amt_handbook_sample.pdf", 1),
    ("How is the Boots self-locking nut constructed?", "amt_handbook_sample.pdf", 1),
    ("What does an elastic stop nut use as its locking insert?", "amt_handbook_sample.pdf", 1),
    ("Which data set was used for hyper parameter optimization of the table model?", "2305.03393v1-pg9.pdf", 1),
    ("What speed up does OTSL give in inference runtime over HTML?", "2305.03393v1-pg9.pdf", 1),
    ("On which CPU were the inference timing results obtained?", "2305.03393v1-pg9.pdf", 1),
    ("What do row permissions and column masks let a company do with RCAC?", "redp5110_sampled.pdf", 4),
]


def test_ask_ranking_top1_and_top3():
    engine = BuiltinEngine()
    docs = [
        engine.parse(open_document(PDF / name)).document
        for name in ("redp5110_sampled.pdf", "multi_page.pdf", "amt_handbook_sample.pdf", "2305.03393v1-pg9.pdf")
    ]
    assert len(QUESTIONS) >= 25 and len({d for _, d, _ in QUESTIONS}) >= 4
    top1 = top3 = 0
    misses = []
    for question, name, page in QUESTIONS:
        cited = [(Path(c.document).name, c.page) for c in engine.ask(docs, question).citations]
        top1 += cited[:1] == [(name, page)]
        top3 += (name, page) in cited[:3]
        if cited[:1] != [(name, page)]:
            misses.append((question, (name, page), cited[:3]))
    n = len(QUESTIONS)
    print("\n".join(f"miss: {q} want {want} got {got}" for q, want, got in misses))
    print(f"ask_top1={top1 / n:.3f} ask_top3={top3 / n:.3f} ({n} questions)")
    assert top1 / n >= 0.8 and top3 / n >= 0.95
