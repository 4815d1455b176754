"""The demo cloud's Image API (glance v2, read-only) for ``demo --serve``.

The in-process cloud's Glance is Nova's ``GlanceFixture``.  The
``openstack`` CLI finds the image of ``server create --image NAME``
through the Image API, so this serves glance v2's version discovery,
``GET /v2/images`` (with the ``name`` filter) and ``GET /v2/images/{id}``
from the fixture's records.  Uploads are not served: the demo registers
its images itself.
"""

from __future__ import annotations

from collections.abc import Callable
import datetime
from typing import Any
from urllib.parse import parse_qsl

from nova_hypervisors.demo import rest

#: glance v2 fields of the fixture's records, with their names there.
_FIELDS = (
    'id',
    'name',
    'status',
    'visibility',
    'protected',
    'container_format',
    'disk_format',
    'size',
    'min_ram',
    'min_disk',
    'tags',
)


def image_view(record: dict) -> dict:
    """A fixture record as glance v2 shows it (properties at top level)."""
    view = {field: record.get(field) for field in _FIELDS}
    view['visibility'] = view['visibility'] or (
        'public' if record.get('is_public') else 'private'
    )
    view['tags'] = list(view['tags'] or [])
    for stamp in ('created_at', 'updated_at'):
        value = record.get(stamp)
        if isinstance(value, datetime.datetime):
            value = value.strftime('%Y-%m-%dT%H:%M:%SZ')
        view[stamp] = value
    view.update(record.get('properties') or {})
    view['self'] = f'/v2/images/{view["id"]}'
    view['file'] = f'/v2/images/{view["id"]}/file'
    view['schema'] = '/v2/schemas/image'
    return view


def application(glance: Any, context: Callable) -> Callable:
    """WSGI application of the fixture ``glance``; ``context()`` is the
    request context the fixture is asked with."""

    def app(environ, start_response):
        base = rest.base_url(environ)
        path = (environ.get('PATH_INFO') or '/').rstrip('/')
        method = environ['REQUEST_METHOD']
        images = {
            record['id']: record
            for record in glance.detail(context())
            if not record.get('deleted')
        }
        status, body = 404, {'message': f'{method} {path}: not found'}
        if method != 'GET':
            status, body = 405, {'message': 'the demo serves images read-only'}
        elif path == '':
            status, body = (
                300,
                {
                    'versions': [
                        {
                            'id': 'v2.16',
                            'status': 'CURRENT',
                            'links': [{'rel': 'self', 'href': f'{base}/v2/'}],
                        }
                    ]
                },
            )
        elif path == '/v2/images':
            query = dict(parse_qsl(environ.get('QUERY_STRING', '')))
            found = [image_view(r) for r in images.values()]
            for key in ('name', 'status', 'visibility'):
                if query.get(key):
                    found = [v for v in found if v[key] == query[key]]
            status, body = (
                200,
                {
                    'images': found,
                    'first': '/v2/images',
                    'schema': '/v2/schemas/images',
                },
            )
        elif path.startswith('/v2/images/'):
            image_id = path[len('/v2/images/') :]
            if image_id in images:
                status, body = 200, image_view(images[image_id])
            else:
                body = {'message': f'No image found with ID {image_id}'}
        return rest.respond(start_response, status, body)

    return app
