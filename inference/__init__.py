"""Everything headless: documents, prompts, model loading, the diffusion engine, tasks, exports.

This package never imports Qt or ``app``. Heavy libraries (torch, transformers) are imported by the modules that
need them, not here.
"""

__version__ = "0.1.0"
