"""What a refusal may leave behind: exactly one ``Decision`` for a write, nothing for a read or a dry run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from application.service import Writ
from domain.decision import Decision
from domain.errors import WritError


def topics_since(writ: Writ, position: int | None) -> list[str]:
    """The topics of every notification after ``position``, in order."""
    return [
        n.topic
        for n in writ._core.store.recorder.select_notifications(
            position, 1000, inclusive_of_start=False
        )
    ]


def refusal(writ: Writ, attempt: Callable[[], Any], *, writes: bool) -> WritError:
    """Run ``attempt``, which must be refused; check what the refusal left behind; return the error."""
    position = writ._core.store.recorder.max_notification_id()
    with pytest.raises(WritError) as caught:
        attempt()
    error = caught.value
    assert error.code and error.code != "WRIT_ERROR", error.message
    assert len(orjson.dumps(error.to_dict())) < 4_000  # encodable and bounded, whatever was sent
    assert topics_since(writ, position) == ([Decision.Created.TOPIC] if writes else [])
    if writes:
        (notification,) = writ._core.store.recorder.select_notifications(
            position, 1, inclusive_of_start=False
        )
        decision = writ._core.store.events.mapper.to_domain_event(notification)
        assert isinstance(decision, Decision.Created) and decision.code == error.code
        assert len(notification.state) < 16_000  # what a caller sent is stored bounded
    return error
