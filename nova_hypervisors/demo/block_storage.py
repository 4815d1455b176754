"""The demo cloud's Block Storage API (Cinder v3) for ``demo --serve``.

The in-process cloud's Cinder is Nova's ``CinderFixture``: Nova asks it for
volumes and attachments, and it answers with the connection data we give
it.  ``demo --serve`` puts the part of Cinder's v3 REST API that the
``openstack`` CLI uses for volumes in front of it (create, list, show,
delete, volume types, version discovery), so ``openstack volume create``
and ``openstack server add volume`` work as against a real cloud.

Each volume is real storage on the demo's simulators, as on the stack's
two Cinder backends of the same names:

* ``simulated-iscsi-array`` (the default type): a LUN of the demo's iSCSI
  array behind one target with CHAP; a XenServer host logs in to it when
  the driver plugs the volume's SR.
* ``vcenter-vmdk``: a powered-off shadow VM on vcsim whose one disk is the
  volume, as Cinder's VMDK driver keeps a volume.

Status and attachments are the fixture's: ``in-use`` while Nova holds an
attachment, else ``available``.  A volume in use is not deleted (Cinder's
``volume/api.py`` refuses the same with 400).
"""

from __future__ import annotations

from collections.abc import Callable
import datetime
import json
import re
import threading
from typing import Any
import uuid

from nova_hypervisors.demo import rest

ISCSI_TYPE = 'simulated-iscsi-array'
VMDK_TYPE = 'vcenter-vmdk'
#: Cinder's newest v3 microversion in Cinder 29 (2026.2).
MAX_MICROVERSION = '3.71'
GIB = 1 << 30


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class IscsiArrayBackend:
    """Volumes as LUNs of one CHAP target of the demo's array."""

    name = ISCSI_TYPE

    def __init__(
        self, array: Any, iqn: str, chap: tuple[str, str], first_lun: int
    ) -> None:
        self.array = array
        self.iqn = iqn
        self.chap = chap
        self._next_lun = first_lun
        self._luns: dict[str, int] = {}

    def create(self, volume_id: str, size_gb: int) -> dict:
        lun = self._next_lun
        self._next_lun += 1
        self.array.create_lun(self.iqn, lun, size_gb * GIB)
        self._luns[volume_id] = lun
        user, secret = self.chap
        return {
            'driver_volume_type': 'iscsi',
            'data': {
                'target_portal': self.array.portal,
                'target_iqn': self.iqn,
                'target_lun': lun,
                'auth_method': 'CHAP',
                'auth_username': user,
                'auth_password': secret,
            },
        }

    def delete(self, volume_id: str) -> None:
        self.array.delete_lun(self.iqn, self._luns.pop(volume_id))


class ShadowVmBackend:
    """Volumes as shadow VMs on vcsim (Cinder's VMDK driver's layout)."""

    name = VMDK_TYPE

    def __init__(self, create: Callable, destroy: Callable) -> None:
        self._create = create
        self._destroy = destroy
        self._shadows: dict[str, str] = {}

    def create(self, volume_id: str, size_gb: int) -> dict:
        moref, _ = self._create(f'volume-{volume_id}', size_gb)
        self._shadows[volume_id] = moref
        return {
            'driver_volume_type': 'vmdk',
            'data': {'volume': moref, 'volume_id': volume_id},
        }

    def delete(self, volume_id: str) -> None:
        self._destroy(self._shadows.pop(volume_id))


class BlockStorage:
    """Volumes of the demo cloud: the fixture's records, real storage."""

    def __init__(self, cinder: Any, backends: list) -> None:
        self.cinder = cinder
        self.backends = {backend.name: backend for backend in backends}
        self.default_type = backends[0].name
        self._records: dict[str, dict] = {}
        self._lock = threading.Lock()

    # -- volumes -----------------------------------------------------------

    def create(self, project_id: str, body: dict) -> dict:
        spec = body.get('volume')
        if not isinstance(spec, dict):
            raise ApiError(400, 'the body has no "volume"')
        try:
            size = int(spec.get('size'))
        except (TypeError, ValueError):
            raise ApiError(400, 'size must be a whole number of GB') from None
        if size < 1:
            raise ApiError(400, 'size must be at least 1 GB')
        for unsupported in ('imageRef', 'snapshot_id', 'source_volid'):
            if spec.get(unsupported):
                raise ApiError(
                    400,
                    f'{unsupported}: the demo makes empty volumes only; the '
                    'stack (nova-hypervisors stack up) has the real Cinder',
                )
        type_name = spec.get('volume_type') or self.default_type
        backend = self.backends.get(type_name)
        if backend is None:
            raise ApiError(
                404,
                f'volume type {type_name} not found; the demo has '
                + ', '.join(sorted(self.backends)),
            )
        volume_id = str(uuid.uuid4())
        with self._lock:
            connection = backend.create(volume_id, size)
            now = _now()
            record = {
                'id': volume_id,
                'name': spec.get('name'),
                'display_name': spec.get('name'),
                'description': spec.get('description'),
                'size': size,
                'volume_type': type_name,
                'availability_zone': self.cinder.az,
                'multiattach': False,
                'bootable': 'false',
                'encrypted': False,
                'metadata': dict(spec.get('metadata') or {}),
                'created_at': now,
                'updated_at': now,
                'project_id': project_id,
            }
            self._records[volume_id] = record
            # What Nova asks the fixture for: the volume and its
            # connection data.
            self.cinder.volumes[volume_id] = record
            self.cinder.VOLUME_CONNECTION_INFO = dict(
                self.cinder.VOLUME_CONNECTION_INFO, **{volume_id: connection}
            )
        return self.show(volume_id)

    def show(self, volume_id: str) -> dict:
        record = self._records.get(volume_id)
        if record is None:
            raise ApiError(404, f'Volume {volume_id} could not be found.')
        attachments = [
            {
                'id': volume_id,
                'attachment_id': attachment['id'],
                'volume_id': volume_id,
                'server_id': attachment['instance_uuid'],
                'host_name': (attachment.get('connector') or {}).get('host'),
                'device': None,
                'attached_at': record['updated_at'],
            }
            for attachment in list(
                self.cinder.volume_to_attachment.get(volume_id, {}).values()
            )
        ]
        view = {
            key: value
            for key, value in record.items()
            if key not in ('display_name', 'project_id')
        }
        view.update(
            status='in-use' if attachments else 'available',
            attachments=attachments,
            user_id=record['project_id'],
            consistencygroup_id=None,
            group_id=None,
            snapshot_id=None,
            source_volid=None,
            replication_status=None,
            migration_status=None,
            links=[],
        )
        view['os-vol-tenant-attr:tenant_id'] = record['project_id']
        return view

    def list(self, query: dict) -> list[dict]:
        volumes = [self.show(volume_id) for volume_id in list(self._records)]
        for key in ('name', 'status'):
            if query.get(key):
                volumes = [v for v in volumes if v[key] == query[key]]
        return volumes

    def delete(self, volume_id: str) -> None:
        volume = self.show(volume_id)
        if volume['status'] != 'available':
            raise ApiError(
                400,
                f'Invalid volume: Volume status must be available or error, '
                f'but current status is: {volume["status"]}',
            )
        with self._lock:
            record = self._records.pop(volume_id)
            self.backends[record['volume_type']].delete(volume_id)
            self.cinder.volumes.pop(volume_id, None)
            connections = dict(self.cinder.VOLUME_CONNECTION_INFO)
            connections.pop(volume_id, None)
            self.cinder.VOLUME_CONNECTION_INFO = connections

    def types(self) -> list[dict]:
        return [
            {
                'id': name,
                'name': name,
                'description': None,
                'is_public': True,
                'extra_specs': {'volume_backend_name': name},
                'os-volume-type-access:is_public': True,
                'qos_specs_id': None,
            }
            for name in self.backends
        ]

    def stop(self) -> None:
        """Delete every volume no server holds."""
        for volume_id in list(self._records):
            try:
                self.delete(volume_id)
            except ApiError:
                pass


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%dT%H:%M:%S.%f')


# -- the REST API ----------------------------------------------------------

_VOLUME = re.compile(r'^/v3/(?P<project>[^/]+)/volumes/(?P<id>[^/]+)$')
_VOLUMES = re.compile(r'^/v3/(?P<project>[^/]+)/volumes(/detail)?$')
_TYPES = re.compile(r'^/v3/(?P<project>[^/]+)/types(/(?P<id>[^/]+))?$')


def versions(base: str) -> dict:
    return {
        'id': 'v3.0',
        'status': 'CURRENT',
        'version': MAX_MICROVERSION,
        'min_version': '3.0',
        'updated': '2026-09-01T00:00:00Z',
        'links': [{'rel': 'self', 'href': f'{base}/v3/'}],
        'media-types': [
            {
                'base': 'application/json',
                'type': 'application/vnd.openstack.volume+json;version=3',
            }
        ],
    }


def application(storage: BlockStorage, project_of: Callable) -> Callable:
    """WSGI application of ``storage`` (mounted at its SCRIPT_NAME);
    ``project_of(environ)`` names the caller's project."""

    def app(environ, start_response):
        path = environ.get('PATH_INFO', '') or '/'
        method = environ['REQUEST_METHOD']
        try:
            status, body = _route(environ, method, path)
        except ApiError as error:
            status = error.status
            body = {
                _FAULTS.get(status, 'computeFault'): {
                    'code': status,
                    'message': str(error),
                }
            }
        return rest.respond(
            start_response,
            status,
            body,
            [
                ('OpenStack-API-Version', f'volume {MAX_MICROVERSION}'),
                ('Vary', 'OpenStack-API-Version'),
            ],
        )

    def _route(environ, method, path):
        base = rest.base_url(environ)
        if path.rstrip('/') == '':
            return 300, {'versions': [versions(base)]}
        if path.rstrip('/') == '/v3':
            return 200, {'version': versions(base)}
        project = project_of(environ)
        match = _VOLUMES.match(path)
        if match:
            _check_project(match, project)
            if method == 'GET':
                query = _query(environ)
                return 200, {'volumes': storage.list(query)}
            if method == 'POST':
                created = storage.create(project, _json(environ))
                return 202, {'volume': created}
            raise ApiError(405, f'{method} is not allowed on volumes')
        match = _VOLUME.match(path)
        if match:
            _check_project(match, project)
            if method == 'GET':
                return 200, {'volume': storage.show(match['id'])}
            if method == 'DELETE':
                storage.delete(match['id'])
                return 202, None
            raise ApiError(405, f'{method} is not allowed on a volume')
        match = _TYPES.match(path)
        if match and method == 'GET':
            _check_project(match, project)
            types = storage.types()
            if match['id']:
                found = [
                    t for t in types if match['id'] in (t['id'], t['name'])
                ]
                if not found:
                    raise ApiError(
                        404, f'Volume type {match["id"]} could not be found.'
                    )
                return 200, {'volume_type': found[0]}
            return 200, {'volume_types': types}
        raise ApiError(404, f'{method} {path}: not in the demo volume API')

    return app


def _check_project(match, project: str) -> None:
    if match['project'] != project:
        raise ApiError(404, f'project {match["project"]} is not yours')


def _query(environ) -> dict:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(environ.get('QUERY_STRING', '')))


def _json(environ) -> dict:
    length = int(environ.get('CONTENT_LENGTH') or 0)
    try:
        return json.loads(environ['wsgi.input'].read(length) or b'{}')
    except ValueError:
        raise ApiError(400, 'the body is not JSON') from None


_FAULTS = {400: 'badRequest', 404: 'itemNotFound'}
