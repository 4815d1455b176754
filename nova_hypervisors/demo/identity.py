"""The demo cloud's Identity API (keystone v3 tokens) for ``demo --serve``.

The in-process cloud has no keystone: Nova's API there takes the caller's
user and project from headers.  So that the ``openstack`` CLI finds every
service as it would in a real cloud, this answers keystone v3's version
discovery and ``POST /v3/auth/tokens`` (password method) with a token and
a service catalog of the served APIs.  One user exists, ``admin`` (admin
role) in project ``admin``, with the password ``demo --serve`` prints; a
wrong one is refused with 401, as keystone refuses it.

The token is ``<user>:<project>``: the served APIs turn it back into the
caller's user and project (Nova's old ``noauth2`` convention).
"""

from __future__ import annotations

from collections.abc import Callable
import datetime
import hmac
import json

from nova_hypervisors.demo import rest

USER = 'admin'
PROJECT = 'admin'
DOMAIN = {'id': 'default', 'name': 'Default'}
REGION = 'RegionOne'


def version(base: str) -> dict:
    return {
        'id': 'v3.14',
        'status': 'stable',
        'updated': '2020-04-07T00:00:00Z',
        'links': [{'rel': 'self', 'href': f'{base}/v3/'}],
        'media-types': [
            {
                'base': 'application/json',
                'type': 'application/vnd.openstack.identity-v3+json',
            }
        ],
    }


def catalog(endpoints: dict[str, str], project: str) -> list[dict]:
    """Catalog entries of ``{service type: url}``; ``%(project_id)s`` in
    a url is the token's project."""
    return [
        {
            'id': service_type,
            'type': service_type,
            'name': service_type,
            'endpoints': [
                {
                    'id': f'{service_type}-{interface}',
                    'interface': interface,
                    'region': REGION,
                    'region_id': REGION,
                    'url': url % {'project_id': project},
                }
                for interface in ('public', 'internal', 'admin')
            ],
        }
        for service_type, url in endpoints.items()
    ]


def token_body(endpoints: dict[str, str], methods: list[str]) -> dict:
    now = datetime.datetime.now(datetime.UTC)
    stamp = '%Y-%m-%dT%H:%M:%S.000000Z'
    return {
        'token': {
            'methods': methods,
            'user': {
                'id': USER,
                'name': USER,
                'domain': DOMAIN,
                'password_expires_at': None,
            },
            'project': {'id': PROJECT, 'name': PROJECT, 'domain': DOMAIN},
            'roles': [
                {'id': role, 'name': role}
                for role in ('admin', 'member', 'reader')
            ],
            'catalog': catalog(endpoints, PROJECT),
            'issued_at': now.strftime(stamp),
            'expires_at': (now + datetime.timedelta(hours=12)).strftime(stamp),
        }
    }


def check_password(auth: dict, password: str) -> str | None:
    """Why the auth request is refused, or None."""
    identity = auth.get('identity') or {}
    if 'password' not in (identity.get('methods') or []):
        return 'the demo takes the password method only'
    user = (identity.get('password') or {}).get('user') or {}
    if USER not in (user.get('name'), user.get('id')):
        return f'the demo has one user, {USER}'
    given = str(user.get('password') or '')
    if not hmac.compare_digest(given.encode(), password.encode()):
        return 'The request you have made requires authentication.'
    scope = (auth.get('scope') or {}).get('project') or {}
    if scope and PROJECT not in (scope.get('name'), scope.get('id')):
        return f'the demo has one project, {PROJECT}'
    return None


def application(password: str, endpoints: Callable[[], dict]) -> Callable:
    """WSGI application of the Identity API; ``endpoints()`` gives
    ``{service type: url}`` of the served APIs."""

    def app(environ, start_response):
        base = rest.base_url(environ)
        path = (environ.get('PATH_INFO') or '/').rstrip('/')
        method = environ['REQUEST_METHOD']
        extra = []
        if path == '' and method == 'GET':
            status, body = 300, {'versions': {'values': [version(base)]}}
        elif path == '/v3' and method == 'GET':
            status, body = 200, {'version': version(base)}
        elif path == '/v3/auth/tokens' and method == 'POST':
            length = int(environ.get('CONTENT_LENGTH') or 0)
            try:
                auth = json.loads(environ['wsgi.input'].read(length))['auth']
            except (ValueError, KeyError, TypeError):
                auth = {}
            refused = check_password(auth, password)
            if refused:
                status = 401
                body = {
                    'error': {
                        'code': 401,
                        'title': 'Unauthorized',
                        'message': refused,
                    }
                }
            else:
                status = 201
                body = token_body(endpoints(), ['password'])
                extra = [('X-Subject-Token', f'{USER}:{PROJECT}')]
        else:
            status = 404
            body = {
                'error': {
                    'code': 404,
                    'title': 'Not Found',
                    'message': f'{method} {path}: not in the demo identity',
                }
            }
        return rest.respond(start_response, status, body, extra)

    return app
