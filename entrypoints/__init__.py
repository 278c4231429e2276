"""Every way into Writ: the ``writ`` command line, the demo, and (as they land) the HTTP and agent tool servers.

``bootstrap`` is the composition root: it builds the backend once from the
database URL and wires the command service, the views and the workers on it;
nothing below this package asks which database it runs on.
"""
