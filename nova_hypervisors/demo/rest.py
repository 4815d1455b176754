"""What the demo's served APIs share: their base URL and JSON answers."""

from __future__ import annotations

import http
import json


def base_url(environ) -> str:
    """The URL the service is mounted at, as the client addressed it."""
    host = environ.get('HTTP_HOST') or (
        f'{environ["SERVER_NAME"]}:{environ["SERVER_PORT"]}'
    )
    return f'http://{host}{environ.get("SCRIPT_NAME", "")}'


def respond(start_response, status: int, body, headers=()) -> list[bytes]:
    """A JSON answer (none for ``body`` None) with its length."""
    payload = b'' if body is None else json.dumps(body).encode()
    start_response(
        f'{status} {http.HTTPStatus(status).phrase}',
        [
            ('Content-Type', 'application/json'),
            ('Content-Length', str(len(payload))),
            *headers,
        ],
    )
    return [payload]
