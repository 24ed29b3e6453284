"""The CLI's document options shared by parse, ask and extract: OCR languages, passwords of encrypted PDFs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from inference.errors import ConfigError


def add_document_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ocr-lang",
        default=None,
        metavar="LANGS",
        help="OCR languages joined by +, e.g. eng+deu+jpn (default: each page's script picks an installed one)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="pages OCR'd at once (default: the core count, fewer when memory is short)",
    )
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument(
        "--password", default=None, help="password of encrypted PDFs and Office files (seen by other users: ps)"
    )
    secret.add_argument(
        "--password-file",
        default=None,
        metavar="FILE",
        help="read the password of encrypted PDFs and Office files from the first line of FILE",
    )


def password_source(args: argparse.Namespace) -> Callable[[str], str | None] | None:
    """The password callback ``open_document`` asks when a PDF is encrypted, or None when none was given."""
    secret = getattr(args, "password", None)
    if getattr(args, "password_file", None):
        try:
            lines = Path(args.password_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read --password-file {args.password_file}: {exc}") from exc
        secret = lines[0] if lines else ""
    if secret is None:
        return None
    return lambda _path: secret


def ocr_lang(args: argparse.Namespace) -> str | None:
    """``--ocr-lang`` checked against the installed languages before any document is read."""
    lang = getattr(args, "ocr_lang", None)
    if lang:
        from inference.errors import IngestError
        from inference.ocr.reader import check_languages

        try:
            check_languages(lang)
        except IngestError as exc:
            raise ConfigError(f"--ocr-lang: {exc.user_message()}") from exc
    return lang


def ocr_jobs(args: argparse.Namespace) -> int | None:
    jobs = getattr(args, "jobs", None)
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs must be 1 or more, not {jobs}")
    return jobs
