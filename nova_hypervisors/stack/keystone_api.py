"""A few calls of the identity and compute APIs, over plain urllib.

The catalog and the service users are created through keystone's REST API
from the tooling itself: a dozen HTTP calls take well under a second, while
the same through the ``openstack`` CLI (about 3 s per call) would cost most
of the bring-up budget.
"""

import json
import urllib.error
import urllib.request

from nova_hypervisors.stack import StackError


class Client:
    """An admin-scoped session against keystone (and, via the catalog,
    against nova-api)."""

    def __init__(self, auth_url: str, password: str) -> None:
        self.auth_url = auth_url.rstrip('/')
        self._password = password
        self.token = ''
        self.catalog: list[dict] = []

    def login(self) -> None:
        body = {
            'auth': {
                'identity': {
                    'methods': ['password'],
                    'password': {
                        'user': {
                            'name': 'admin',
                            'domain': {'id': 'default'},
                            'password': self._password,
                        }
                    },
                },
                'scope': {
                    'project': {'name': 'admin', 'domain': {'id': 'default'}}
                },
            }
        }
        request = urllib.request.Request(
            f'{self.auth_url}/v3/auth/tokens',
            data=json.dumps(body).encode(),
            headers={'Content-Type': 'application/json'},
            method='POST',
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                self.token = response.headers['X-Subject-Token']
                self.catalog = json.loads(response.read())['token'].get(
                    'catalog', []
                )
        except urllib.error.HTTPError as error:
            raise StackError(
                f'keystone refused the admin login: HTTP {error.code}'
            ) from None

    def request(
        self,
        method: str,
        url: str,
        body: dict | None = None,
        headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201, 202, 204),
    ) -> dict:
        if not url.startswith('http'):
            url = f'{self.auth_url}/v3{url}'
        request = urllib.request.Request(
            url,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                'Content-Type': 'application/json',
                'X-Auth-Token': self.token,
                **(headers or {}),
            },
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            raw, status = error.read(), error.code
        if status not in ok:
            text = raw[:300].decode(errors='replace')
            raise StackError(f'{method} {url}: HTTP {status} {text}')
        return json.loads(raw) if raw else {}

    # -- identity ---------------------------------------------------------

    def find(self, collection: str, name: str, **filters: str) -> dict | None:
        query = '&'.join(
            f'{key}={value}'
            for key, value in {'name': name, **filters}.items()
        )
        found = self.request('GET', f'/{collection}?{query}')[collection]
        return found[0] if found else None

    def ensure(self, collection: str, name: str, body: dict) -> dict:
        """The named entity, created with ``body`` if it does not exist."""
        existing = self.find(collection, name)
        if existing:
            return existing
        singular = collection[:-1]
        return self.request('POST', f'/{collection}', {singular: body})[
            singular
        ]

    def ensure_service(self, service_type: str, name: str, url: str) -> None:
        """A catalog service with public and internal endpoints at ``url``."""
        services = self.request('GET', f'/services?type={service_type}')[
            'services'
        ]
        if services:
            service = services[0]
        else:
            service = self.request(
                'POST',
                '/services',
                {'service': {'type': service_type, 'name': name}},
            )['service']
        endpoints = self.request(
            'GET', f'/endpoints?service_id={service["id"]}'
        )['endpoints']
        have = {endpoint['interface']: endpoint for endpoint in endpoints}
        for interface in ('public', 'internal'):
            if interface in have and have[interface]['url'] == url:
                continue
            if interface in have:
                self.request(
                    'PATCH',
                    f'/endpoints/{have[interface]["id"]}',
                    {'endpoint': {'url': url}},
                )
                continue
            self.request(
                'POST',
                '/endpoints',
                {
                    'endpoint': {
                        'service_id': service['id'],
                        'interface': interface,
                        'url': url,
                        'region_id': 'RegionOne',
                    }
                },
            )

    def ensure_user(
        self, name: str, password: str, project_id: str, roles: list[str]
    ) -> None:
        user = self.find('users', name)
        if user is None:
            user = self.request(
                'POST',
                '/users',
                {
                    'user': {
                        'name': name,
                        'password': password,
                        'domain_id': 'default',
                    }
                },
            )['user']
        for role_name in roles:
            role = self.ensure('roles', role_name, {'name': role_name})
            self.request(
                'PUT',
                f'/projects/{project_id}/users/{user["id"]}/roles/{role["id"]}',
            )

    # -- compute ----------------------------------------------------------

    def endpoint(self, service_type: str) -> str:
        for service in self.catalog:
            if service['type'] == service_type:
                for endpoint in service['endpoints']:
                    if endpoint['interface'] == 'public':
                        return endpoint['url'].rstrip('/')
        raise StackError(f'no {service_type} endpoint in the catalog')

    def compute(self, path: str) -> dict:
        return self.request(
            'GET',
            self.endpoint('compute') + path,
            headers={'OpenStack-API-Version': 'compute 2.53'},
        )
