"""The demo's served identity and volume APIs, through WSGI."""

import collections
import io
import json

from nova_hypervisors.demo import block_storage
from nova_hypervisors.demo import identity


class FakeCinder:
    """What BlockStorage reads of Nova's CinderFixture."""

    az = 'nova'
    VOLUME_CONNECTION_INFO: dict = {}

    def __init__(self):
        self.volumes = {}
        self.volume_to_attachment = collections.defaultdict(dict)


class MemoryBackend:
    name = 'simulated-iscsi-array'

    def __init__(self):
        self.luns = {}

    def create(self, volume_id, size_gb):
        self.luns[volume_id] = size_gb
        return {'driver_volume_type': 'iscsi', 'data': {'target_lun': 1}}

    def delete(self, volume_id):
        del self.luns[volume_id]


def call(app, method, path, body=None, project='admin'):
    payload = json.dumps(body).encode() if body is not None else b''
    path, _, query = path.partition('?')
    environ = {
        'REQUEST_METHOD': method,
        'PATH_INFO': path,
        'QUERY_STRING': query,
        'SCRIPT_NAME': '/volume',
        'HTTP_HOST': '127.0.0.1:1',
        'CONTENT_LENGTH': str(len(payload)),
        'wsgi.input': io.BytesIO(payload),
        'HTTP_X_AUTH_PROJECT_ID': project,
    }
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer['status'] = int(status.split()[0])
        answer['headers'] = dict(headers)

    chunks = app(environ, start_response)
    text = b''.join(chunks)
    return answer['status'], json.loads(text) if text else None


def volume_api():
    cinder = FakeCinder()
    backend = MemoryBackend()
    storage = block_storage.BlockStorage(cinder, [backend])
    app = block_storage.application(
        storage, lambda environ: environ['HTTP_X_AUTH_PROJECT_ID']
    )
    return app, cinder, backend


def test_a_volume_is_created_listed_attached_and_deleted():
    app, cinder, backend = volume_api()
    status, body = call(
        app, 'POST', '/v3/admin/volumes', {'volume': {'size': 2, 'name': 'v'}}
    )
    assert status == 202
    volume = body['volume']
    assert volume['status'] == 'available'
    assert volume['volume_type'] == 'simulated-iscsi-array'
    assert backend.luns == {volume['id']: 2}
    # Nova's side: the fixture knows the volume and its connection.
    assert cinder.volumes[volume['id']]['size'] == 2
    assert volume['id'] in cinder.VOLUME_CONNECTION_INFO
    status, body = call(app, 'GET', '/v3/admin/volumes/detail?name=v')
    assert [v['id'] for v in body['volumes']] == [volume['id']]

    cinder.volume_to_attachment[volume['id']]['a1'] = {
        'id': 'a1',
        'instance_uuid': 'server-1',
        'connector': {'host': 'xen1'},
    }
    status, body = call(app, 'GET', f'/v3/admin/volumes/{volume["id"]}')
    assert body['volume']['status'] == 'in-use'
    (attachment,) = body['volume']['attachments']
    assert attachment['server_id'] == 'server-1'
    assert attachment['host_name'] == 'xen1'
    status, body = call(app, 'DELETE', f'/v3/admin/volumes/{volume["id"]}')
    assert status == 400
    assert 'in-use' in body['badRequest']['message']
    assert backend.luns

    del cinder.volume_to_attachment[volume['id']]['a1']
    status, _ = call(app, 'DELETE', f'/v3/admin/volumes/{volume["id"]}')
    assert status == 202
    assert backend.luns == {}
    assert volume['id'] not in cinder.volumes
    assert volume['id'] not in cinder.VOLUME_CONNECTION_INFO


def test_bad_requests_name_what_is_wrong_and_make_nothing():
    app, cinder, backend = volume_api()
    status, body = call(
        app,
        'POST',
        '/v3/admin/volumes',
        {'volume': {'size': 1, 'volume_type': 'gold'}},
    )
    assert status == 404
    assert 'gold' in body['itemNotFound']['message']
    status, body = call(
        app, 'POST', '/v3/admin/volumes', {'volume': {'size': 'x'}}
    )
    assert status == 400
    status, body = call(
        app,
        'POST',
        '/v3/admin/volumes',
        {'volume': {'size': 1, 'imageRef': 'image'}},
    )
    assert status == 400
    assert 'imageRef' in body['badRequest']['message']
    status, _ = call(app, 'GET', '/v3/other/volumes')
    assert status == 404
    assert backend.luns == {} and cinder.volumes == {}


def test_version_discovery_names_the_v3_endpoint():
    app, _, _ = volume_api()
    status, body = call(app, 'GET', '')
    assert status == 300
    (version,) = body['versions']
    assert version['links'][0]['href'] == 'http://127.0.0.1:1/volume/v3/'


def test_identity_refuses_a_wrong_password():
    auth = {
        'identity': {
            'methods': ['password'],
            'password': {'user': {'name': 'admin', 'password': 'wrong'}},
        },
        'scope': {'project': {'name': 'admin'}},
    }
    assert identity.check_password(auth, 'right') is not None
    auth['identity']['password']['user']['password'] = 'right'
    assert identity.check_password(auth, 'right') is None
    body = identity.token_body(
        {'volumev3': 'http://h/volume/v3/%(project_id)s'}, ['password']
    )
    (entry,) = body['token']['catalog']
    assert {e['url'] for e in entry['endpoints']} == {
        'http://h/volume/v3/admin'
    }
