"""The web console at ``/console``: approvers' inbox and auditors' pages, server-rendered, served from the package.

One module per concern: ``app`` (routes and the security headers every response carries), ``web`` (a
visit: session, form posts, rendering, errors), ``session`` (the token cookie, CSRF and Origin checks),
``signin``, ``inbox`` (requests waiting for me, approve / reject / cancel), ``records`` (rows with filters,
a record's timeline), ``auditing`` (the decisions feed, the log's checkpoint), ``diffs`` (per-field
differences), ``showing`` (the templates' filters) and ``api_docs`` (``/docs``). The pages are Jinja2
templates in ``templates/`` and one stylesheet in ``static/``; there is no script. Every read and decision
goes through the same ``Writ`` and ``Views`` calls as the HTTP API, as the principal the token proves.
"""
