"""A workbench session on disk: the documents open, every parse of each (per engine and run), the answers about them
(the conversations, oldest first) and the extractions, so that a window reopens where it was left.

JSON, written atomically (a temporary file, then a rename): a crash while writing leaves the saved session whole. A
file that cannot be read as a session raises ``SessionError``; ``set_aside`` moves it out of the way so that the
window opens with a new session and the old file stays for whoever wants to look at it. No Qt here.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from inference.documents.model import Document
from inference.errors import WorkbenchError
from inference.tasks.base import Answer, Citation, Extraction, LeftOut, ParseResult

FORMAT = "diffusion-workbench-session"
VERSION = 1


class SessionError(WorkbenchError):
    """A session file that is not one (truncated, edited by hand, from a newer version)."""


@dataclass
class SavedRun:
    """One parse of one document and what made it (``app.gui.runs.Run`` without Qt)."""

    parsed: ParseResult
    engine: str
    model: str = ""
    params: str = ""
    seconds: float = 0.0


@dataclass
class SavedDocument:
    path: str
    runs: list[SavedRun] = field(default_factory=list)
    shown: int = -1  # the run shown (an index into ``runs``); -1: none
    page: int = 1  # the page shown last


@dataclass
class SessionState:
    documents: list[SavedDocument] = field(default_factory=list)
    answers: list[tuple[tuple[str, ...], Answer]] = field(default_factory=list)  # (documents asked about, answer)
    extractions: list[Extraction] = field(default_factory=list)
    extraction_scope: list[str] | None = None  # the documents the last extraction covered
    current: str | None = None  # the document shown
    selected: list[str] = field(default_factory=list)  # the documents selected in the list (the scope)
    scope_all: bool = False  # the scope is all documents

    @property
    def empty(self) -> bool:
        return not (self.documents or self.answers or self.extractions)


# writing ------------------------------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """What ``json`` cannot write by itself: numpy scalars and arrays, sets, paths."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, set | frozenset):
        return sorted(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not kept in a session")


def _parse_dict(parsed: ParseResult) -> dict[str, Any]:
    return {
        "engine": parsed.engine,
        "markdown": parsed.markdown,
        "pages": parsed.pages,
        "document": parsed.document.to_dict(),
    }


def to_json(state: SessionState) -> str:
    data = {
        "format": FORMAT,
        "version": VERSION,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "current": state.current,
        "selected": state.selected,
        "scope_all": state.scope_all,
        "documents": [
            {
                "path": d.path,
                "shown": d.shown,
                "page": d.page,
                "runs": [
                    {
                        "engine": r.engine,
                        "model": r.model,
                        "params": r.params,
                        "seconds": r.seconds,
                        "parsed": _parse_dict(r.parsed),
                    }
                    for r in d.runs
                ],
            }
            for d in state.documents
        ],
        "answers": [{"documents": list(docs), "answer": asdict(a)} for docs, a in state.answers],
        "extractions": [asdict(e) for e in state.extractions],
        "extraction_scope": state.extraction_scope,
    }
    return json.dumps(data, ensure_ascii=False, default=_plain)


def save_session(path: Path, state: SessionState) -> Path:
    from inference.files import write_atomic

    return write_atomic(Path(path), to_json(state))


# reading ------------------------------------------------------------------------------------------------------------
def _citation(data: dict[str, Any]) -> Citation:
    return Citation(**data)


def _answer(data: dict[str, Any]) -> Answer:
    data = dict(data)
    data["citations"] = [_citation(c) for c in data.get("citations", [])]
    data["left_out"] = [
        LeftOut(**{**x, "span": tuple(x["span"]) if x.get("span") else None}) for x in data.get("left_out", [])
    ]
    return Answer(**data)


def _extraction(data: dict[str, Any]) -> Extraction:
    data = dict(data)
    data["sources"] = {k: _citation(c) for k, c in data.get("sources", {}).items()}
    return Extraction(**data)


def _parsed(data: dict[str, Any]) -> ParseResult:
    return ParseResult(
        document=Document.from_dict(data["document"]),
        markdown=data["markdown"],
        pages=list(data["pages"]),
        engine=data["engine"],
    )


def from_json(text: str) -> SessionState:
    """The session in ``text``; ``SessionError`` saying what is wrong when it is not a session this version reads."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SessionError(f"not JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SessionError("not a Diffusion Workbench session")
    if data.get("version") != VERSION:
        raise SessionError(f"session version {data.get('version')!r}; this version reads {VERSION}")
    try:
        documents = [
            SavedDocument(
                path=str(d["path"]),
                shown=int(d.get("shown", -1)),
                page=int(d.get("page", 1)),
                runs=[
                    SavedRun(
                        parsed=_parsed(r["parsed"]),
                        engine=str(r["engine"]),
                        model=str(r.get("model", "")),
                        params=str(r.get("params", "")),
                        seconds=float(r.get("seconds", 0.0)),
                    )
                    for r in d.get("runs", [])
                ],
            )
            for d in data.get("documents", [])
        ]
        answers = [(tuple(a["documents"]), _answer(a["answer"])) for a in data.get("answers", [])]
        extractions = [_extraction(e) for e in data.get("extractions", [])]
    except (KeyError, TypeError, ValueError) as exc:
        raise SessionError(f"damaged ({type(exc).__name__}: {exc})") from exc
    scope = data.get("extraction_scope")
    selected = [str(p) for p in data.get("selected") or []]
    return SessionState(
        documents,
        answers,
        extractions,
        list(scope) if scope else None,
        data.get("current"),
        selected,
        bool(data.get("scope_all", False)),
    )


def load_session(path: Path) -> SessionState | None:
    """The session saved at ``path``; None when there is none."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SessionError(f"unreadable ({exc})") from exc
    return from_json(text)


def set_aside(path: Path) -> Path:
    """Move a session file that could not be read beside itself (``session.json.unreadable-<time>``)."""
    path = Path(path)
    target = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
    path.replace(target)
    return target
