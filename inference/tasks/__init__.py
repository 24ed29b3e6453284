"""Document tasks (parse, ask, extract) on two engines behind one interface: ``builtin`` (no weights) and ``model``."""

from .base import Answer, Citation, Extraction, ParseOptions, ParseResult, TaskContext, TaskEngine  # noqa: F401
from .builtin import BuiltinEngine  # noqa: F401
