"""Turning failures into one line on stderr and exit code 1 (a traceback only with --debug)."""

from __future__ import annotations

import contextlib
from typing import Iterator, NoReturn

import typer


class CliError(Exception):
    """A user error: bad value, missing file, refused overwrite. The message is the line shown."""


def one_line(exc: BaseException) -> str:
    """A one-line description of ``exc`` fit for ``error: ...``."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.filename}: {exc.strerror.lower()}"
    elif isinstance(exc, MemoryError):
        text = "not enough memory for this image"
    elif isinstance(exc, CliError) or _is_user_error(exc):
        text = str(exc)
    else:
        text = (f"internal error ({type(exc).__name__}: {exc}); "
                "rerun with --debug for the traceback")
    return " ".join(text.split()) or type(exc).__name__


def _is_user_error(exc: BaseException) -> bool:
    # ValueError covers ImageError, FkmError and the quantizer's argument checks;
    # OSError covers refused overwrites, missing folders and permissions.
    return isinstance(exc, (ValueError, OSError))


def print_error(message: str) -> None:
    typer.echo(f"error: {message}", err=True)


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with status 1."""
    print_error(message)
    raise typer.Exit(1)


@contextlib.contextmanager
def reported(debug: bool) -> Iterator[None]:
    """Run a command body: any exception becomes ``error: ...`` and exit 1, unless --debug."""
    try:
        yield
    # Usage errors (exit 2) are Typer's own: BadParameter is a TyperException.
    except (typer.Exit, typer.Abort, typer.TyperException, KeyboardInterrupt):
        raise
    except Exception as exc:
        if debug:
            raise
        fail(one_line(exc))
