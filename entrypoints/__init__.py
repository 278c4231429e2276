"""Every way into Writ: the ``writ`` command line (``cli/``), the demo, the HTTP API and its web console
(``http/``), and the agent tools over the Model Context Protocol (``mcp_server``, ``mcp_http``).

``bootstrap`` is the composition root: it builds the backend once from the
database URL and wires the command service, the views and the workers on it;
nothing below this package asks which database it runs on.
"""
