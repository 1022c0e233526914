"""How an ordinary failure reads: one paragraph naming the file or key and what to do."""

from __future__ import annotations

import errno


def describe_error(exc: BaseException) -> str:
    """One paragraph for an ordinary failure: what happened, to which file, and what to do.

    The project's own errors (and ``FileNotFoundError``, which it raises with advice) keep their message as
    written; other exceptions are prefixed with their type, which often is the only context they carry.
    """
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        where = f"{exc.filename}: {exc.strerror}"
        if isinstance(exc, PermissionError):
            return f"{where}; the folder or file is not writable/readable by this user: fix its permissions or owner"
        if exc.errno == errno.ENOSPC:
            return f"{where}; free disk space (or move the project) and run the stage again"
        if isinstance(exc, IsADirectoryError | NotADirectoryError):
            return f"{where}; a file and a folder share this name: move the one that does not belong there"
        return where
    text = str(exc).strip() or "(no message)"
    own = type(exc).__module__.split(".")[0] == "v2v" or isinstance(exc, FileNotFoundError)
    return text if own else f"{type(exc).__name__}: {text}"


class DamagedFileError(ValueError):
    """A file one stage wrote and another reads is unreadable or malformed; the message says how to rebuild it."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}; {repair_advice(path)}")


def repair_advice(path: object) -> str:
    """What rebuilds ``path``: the stage that owns its folder checks its files on reuse and rebuilds what changed."""
    from v2v.paths import WRITERS

    text = "/" + str(path).replace("\\", "/")
    found = [(text.rfind(f"/{folder}/"), stage) for folder, stage in WRITERS.items() if f"/{folder}/" in text]
    if not found:
        return "re-run the stage that wrote it"
    stage = max(found)[1]
    return f"run `dvc repro {stage}` (it checks every file it wrote and rebuilds the damaged video)"
