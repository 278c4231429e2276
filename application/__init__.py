"""Writ's application layer: ``Writ`` (``service``), a facade of the documented calls over one core.

The core (``core``) decides and stages each command into a unit of work (``unit``, ``staging``) and commits
it into the event store it holds (``store``), retrying a lost race (``retry``); its collaborators are
the commands, transactions and compound operations, approvals, bulk updates, command-side reads and
auditors' reads. ``door`` checks every argument first; ``ports`` names what the layers above provide.
"""
