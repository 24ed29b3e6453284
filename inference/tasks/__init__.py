"""Document tasks (parse, ask, extract) on two engines behind one interface: ``builtin`` (no weights) and ``model``."""

from inference.tasks.base import Answer, Citation, Extraction, ParseOptions, ParseResult, TaskContext, TaskEngine  # noqa: F401
from inference.tasks.builtin import BuiltinEngine  # noqa: F401
