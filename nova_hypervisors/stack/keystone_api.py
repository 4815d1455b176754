"""A few calls of the identity and compute APIs, through keystoneauth1.

The catalog and the service users are created through keystone's REST API
from the tooling itself, in process: a dozen HTTP calls take well under a
second, while the same through the ``openstack`` CLI (about 3 s per call)
would cost most of the bring-up budget.  keystoneauth1, which every
OpenStack client and service uses, logs in, keeps the token and finds
endpoints in the catalog.
"""

from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from nova_hypervisors.stack import StackError


class Client:
    """An admin-scoped session against keystone (and, via the catalog,
    against nova-api)."""

    def __init__(self, auth_url: str, password: str) -> None:
        self.auth_url = auth_url.rstrip('/')
        self._password = password
        self._session: ks_session.Session | None = None

    def login(self) -> None:
        """A new admin token (and catalog): also after the catalog grew."""
        auth = v3.Password(
            auth_url=f'{self.auth_url}/v3',
            username='admin',
            password=self._password,
            user_domain_id='default',
            project_name='admin',
            project_domain_id='default',
        )
        session = ks_session.Session(auth=auth, timeout=60)
        try:
            session.get_token()
        except ks_exceptions.Unauthorized:
            raise StackError(
                'keystone refused the admin login: HTTP 401'
            ) from None
        except ks_exceptions.ClientException as error:
            raise StackError(
                f'keystone refused the admin login: {error}'
            ) from None
        self._session = session

    def request(
        self,
        method: str,
        url: str,
        body: dict | None = None,
        headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201, 202, 204),
    ) -> dict:
        if self._session is None:
            self.login()
        if not url.startswith('http'):
            url = f'{self.auth_url}/v3{url}'
        response = self._session.request(
            url,
            method,
            json=body,
            headers=headers,
            raise_exc=False,
        )
        if response.status_code not in ok:
            text = response.content[:300].decode(errors='replace')
            raise StackError(
                f'{method} {url}: HTTP {response.status_code} {text}'
            )
        return response.json() if response.content else {}

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
        if self._session is None:
            self.login()
        try:
            url = self._session.get_endpoint(
                service_type=service_type, interface='public'
            )
        except ks_exceptions.EndpointNotFound:
            url = None
        if not url:
            raise StackError(f'no {service_type} endpoint in the catalog')
        return url.rstrip('/')

    def compute(self, path: str) -> dict:
        return self.request(
            'GET',
            self.endpoint('compute') + path,
            headers={'OpenStack-API-Version': 'compute 2.53'},
        )
