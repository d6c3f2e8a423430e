"""The local web page and its API (docs/api.md), served by ``stockbridge run`` in a thread.

``app`` builds the Starlette application; ``guard`` is the door (Host, token, Origin, headers);
``token`` keeps the access token; ``queries`` reads the ledger for the page; ``events`` carries the
live service's news to the event streams; ``thumbs`` makes the small pictures; ``server`` runs
uvicorn in a thread of the service.
"""
