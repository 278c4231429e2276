"""The message bus: the notification-log relay and the deduplicating ``Subscriber``.

aio-pika is used only in this package. ``relay`` publishes Writ's events to a
durable topic exchange; ``schema`` is the versioned integration-event contract
on the wire; ``subscriber`` consumes it at most once in effect via an inbox.
"""
