"""Errors of the projection side; they join Writ's one error tree under ``WritError``."""

from __future__ import annotations

from domain.errors import WritError


class ProjectionTimeoutError(WritError):
    """The projection did not reach a position before the caller's deadline."""

    code = "PROJECTION_TIMEOUT"


class ProjectionNotReadyError(WritError):
    """The views do not exist yet: no worker has prepared them (``writ project``)."""

    code = "PROJECTION_NOT_READY"


class ProjectionBusyError(WritError):
    """Another process is rebuilding the same projection."""

    code = "PROJECTION_BUSY"


class ProjectionHaltedError(WritError):
    """The projection stopped at an event it cannot apply; an operator must set that event aside."""

    code = "PROJECTION_HALTED"


class ProjectionLogChangedError(ProjectionNotReadyError):
    """The views were projected from another log than the event store holds (made afresh under them): they
    are not served until a worker has started them again from this log (``writ project``)."""

    code = "PROJECTION_LOG_CHANGED"
