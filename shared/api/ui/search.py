"""The audit page's search box: one line of words, read as filters of the events list."""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode

from shared.errors import BadRequest
from shared.service.event_query import EventFilters

PREFIX = "/api/ui"
_VERSION = re.compile(r"^v?(\d+)$")


def search_target(query: str) -> str:
    """Where a search goes: `act_...`/`evt_...` to that page; `churn` to the model's history;
    `churn v2 source:dev status:failed kind:model.registered` to the events list filtered so."""
    words = query.split()
    if not words:
        raise BadRequest(
            "type a model name, an event or action id, or key:value words (source, kind, status, model, version)",
            field="q",
        )
    if len(words) == 1 and words[0].startswith(("act_", "evt_")):
        section = "actions" if words[0].startswith("act_") else "events"
        return f"{PREFIX}/{section}/{quote(words[0], safe='')}"
    filters: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition(":") if ":" in word else word.partition("=")
        if sep:
            if key not in EventFilters.NAMES:
                raise BadRequest(f"{key!r} is not a filter; use {', '.join(EventFilters.NAMES)}", field="q")
            filters[key] = value
        elif (number := _VERSION.match(word)) and "model" in filters:
            filters["version"] = number.group(1)
        else:
            filters["model"] = word
    if list(filters) == ["model"]:
        return f"{PREFIX}/models/{quote(filters['model'], safe='')}"
    if filters.get("status") == "in-progress":
        filters["status"] = "in progress"
    EventFilters.parse(filters)  # a bad kind or status is a 400 naming it, here rather than on the list
    return f"{PREFIX}/?{urlencode(filters)}"
