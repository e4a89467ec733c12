"""The audit page under /api/ui/: read-only HTML over the ledger, rendered on the server.

`routes.py` holds the routes and their credential, `events.py`/`fleet.py` the view-models read
through the ledger port, `attempts.py` the attempts read from an action's audit log, `links.py`
the outputs an operator can follow, `timeline.py` the SVG of an event's chain and `render.py` the
Jinja2 templates (imported on the first page, not at cold start).
"""
