"""The message bus: the notification-log relay and the deduplicating ``Subscriber``.

aio-pika is used only in this package. ``contract`` is the versioned
integration event on the wire; ``outbox`` reads the log as outgoing messages;
``publish`` (and its confined fast path ``fast_publish``) publishes them with
confirms over a window; ``relay`` runs it all as the one active relay per
exchange; ``subscriber`` consumes events at most once in effect via an inbox, in the database
``database`` opens.
"""
