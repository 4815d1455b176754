"""Files on vCenter datastores: paths, HTTP transfers and file tasks.

Transfers use vCenter's ``/folder`` HTTP interface with the session cookie
and the same TLS settings as the SOAP connection, and the real datacenter
path (``dcPath``) vCenter needs to find the datastore.
"""

from collections.abc import Iterable
import http.client
import io
import logging
from typing import Any
import urllib.parse

from pyVmomi import vim

from nova_hypervisors.vmwareapi import session as vc_session

LOG = logging.getLogger(__name__)
#: What the file interface answers a session it does not know.
UNAUTHENTICATED = (401, 403)
CHUNK = 1024 * 1024


class ChunkReader(io.RawIOBase):
    """A file object over an iterable of byte chunks, so a download can be
    handed to whatever reads a file (Glance's upload) without landing on
    the compute node's disk."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__()
        self._chunks = iter(chunks)
        self._rest = b''

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._rest:
            self._rest = next(self._chunks, None)
            if self._rest is None:
                self._rest = b''
                return 0
        count = min(len(buffer), len(self._rest))
        buffer[:count] = self._rest[:count]
        self._rest = self._rest[count:]
        return count


def reader(chunks: Iterable[bytes]) -> io.BufferedReader:
    """A buffered file object reading ``chunks`` in order."""
    return io.BufferedReader(ChunkReader(chunks), buffer_size=CHUNK)


def path(datastore: str, *parts: str) -> str:
    """``[datastore] a/b`` as vSphere writes datastore paths."""
    return f'[{datastore}] ' + '/'.join(p.strip('/') for p in parts if p)


def split(ds_path: str) -> tuple[str, str]:
    """``[ds] a/b`` -> (``ds``, ``a/b``)."""
    datastore, _, rest = ds_path.partition('] ')
    return datastore.lstrip('['), rest


class DatastoreFiles:
    """Upload, download and manage files of one datacenter's datastores."""

    def __init__(
        self,
        session: vc_session.VCenterSession,
        datacenter: Any,
        datacenter_path: str,
    ) -> None:
        """``datacenter_path``: the datacenter's inventory path."""
        self._session = session
        self._datacenter = datacenter
        self._dc_path = datacenter_path
        self._browsers: dict[Any, Any] = {}

    def _connection(self) -> http.client.HTTPConnection:
        settings = self._session.settings
        return http.client.HTTPSConnection(
            settings.host,
            settings.port,
            timeout=settings.http_timeout,
            context=vc_session.ssl_context(settings),
        )

    def _url(self, ds_path: str) -> str:
        datastore, relative = split(ds_path)
        query = urllib.parse.urlencode(
            {'dcPath': self._dc_path, 'dsName': datastore}
        )
        return f'/folder/{urllib.parse.quote(relative)}?{query}'

    def _headers(self) -> dict:
        return {'Cookie': self._session.cookie()}

    def exists(self, ds_path: str) -> bool:
        """One HEAD request: whether the file is on the datastore.

        Only 404 means absent (as rbvmomi's ``Datastore#exists?``); a
        session vCenter no longer knows (401, 403) logs in again once;
        anything else is an error, never "not cached".
        """
        for attempt in (1, 2):
            generation = self._session.generation
            connection = self._connection()
            try:
                connection.request(
                    'HEAD', self._url(ds_path), headers=self._headers()
                )
                response = connection.getresponse()
                response.read()
            finally:
                connection.close()
            if response.status == 200:
                return True
            if response.status == 404:
                return False
            if response.status in UNAUTHENTICATED and attempt == 1:
                self._session.relogin(generation)
                continue
            break
        raise OSError(
            f'vCenter answered HTTP {response.status} {response.reason} '
            f'for {ds_path}'
        )

    def upload(self, ds_path: str, chunks: Iterable[bytes], size: int) -> None:
        """Stream ``size`` bytes into ``ds_path``.

        The stream cannot be sent twice, so the session is made sure of
        first: a HEAD of the target logs in again if vCenter forgot it.
        """
        self.exists(ds_path)
        connection = self._connection()
        try:
            connection.putrequest('PUT', self._url(ds_path))
            for key, value in self._headers().items():
                connection.putheader(key, value)
            connection.putheader('Content-Type', 'application/octet-stream')
            connection.putheader('Content-Length', str(size))
            connection.endheaders()
            for chunk in chunks:
                connection.send(chunk)
            response = connection.getresponse()
            response.read()
            if response.status not in (200, 201, 204):
                raise OSError(
                    f'upload of {ds_path} to vCenter failed: HTTP '
                    f'{response.status} {response.reason}'
                )
        finally:
            connection.close()

    def download(self, ds_path: str) -> Iterable[bytes]:
        """Stream a datastore file's bytes (logging in again on 401)."""
        generation = self._session.generation
        connection = self._connection()
        try:
            connection.request(
                'GET', self._url(ds_path), headers=self._headers()
            )
            response = connection.getresponse()
            if response.status in UNAUTHENTICATED:
                response.read()
                connection.close()
                self._session.relogin(generation)
                connection = self._connection()
                connection.request(
                    'GET', self._url(ds_path), headers=self._headers()
                )
                response = connection.getresponse()
            if response.status != 200:
                response.read()
                raise OSError(
                    f'download of {ds_path} from vCenter failed: HTTP '
                    f'{response.status} {response.reason}'
                )
            while chunk := response.read(CHUNK):
                yield chunk
        finally:
            connection.close()

    def names(self, datastore: Any, ds_path: str) -> list[str]:
        """The names in a datastore folder; [] when there is no folder.

        ``HostDatastoreBrowser.SearchDatastore_Task`` of the datastore's
        browser, every name (``matchPattern`` "*": vcsim matches nothing
        without one).
        """
        browser = self._browsers.get(datastore)
        if browser is None:
            browser = self._session.properties(
                [datastore], vim.Datastore, ['browser']
            )[datastore]['browser']
            self._browsers[datastore] = browser
        spec = vim.host.DatastoreBrowser.SearchSpec(matchPattern=['*'])
        try:
            result = self._session.wait_for_task(
                self._session.invoke(
                    browser,
                    'SearchDatastore_Task',
                    datastorePath=ds_path,
                    searchSpec=spec,
                )
            )
        except (vim.fault.FileNotFound, vc_session.TaskFailed) as error:
            if not _is_not_found(error):
                raise
            return []
        return [entry.path for entry in getattr(result, 'file', None) or ()]

    def make_directory(self, ds_path: str) -> None:
        try:
            self._session.invoke(
                self._session.content.fileManager,
                'MakeDirectory',
                name=ds_path,
                datacenter=self._datacenter,
                createParentDirectories=True,
            )
        except vim.fault.FileAlreadyExists:
            pass

    def delete(self, ds_path: str) -> None:
        """Delete a file or directory; a missing one is not an error (so
        the delete is sent again if the connection dropped under it)."""
        try:
            task = self._session.invoke_repeatable(
                self._session.content.fileManager,
                'DeleteDatastoreFile_Task',
                name=ds_path,
                datacenter=self._datacenter,
            )
            self._session.wait_for_task(task)
        except (vim.fault.FileNotFound, vc_session.TaskFailed) as error:
            if not _is_not_found(error):
                raise
            LOG.debug('%s was already gone', ds_path)

    def create_disk(
        self, ds_path: str, capacity_kb: int, disk_type: str, adapter: str
    ) -> None:
        """A new virtual disk: vCenter writes its descriptor and extent
        (CreateVirtualDisk_Task)."""
        task = self._session.invoke(
            self._session.content.virtualDiskManager,
            'CreateVirtualDisk_Task',
            name=ds_path,
            datacenter=self._datacenter,
            spec=vim.VirtualDiskManager.FileBackedVirtualDiskSpec(
                diskType=disk_type,
                adapterType=adapter,
                capacityKb=capacity_kb,
            ),
        )
        self._session.wait_for_task(task)

    def copy_disk(self, source: str, destination: str) -> None:
        """Copy a virtual disk (descriptor and extents) within vCenter."""
        task = self._session.invoke(
            self._session.content.virtualDiskManager,
            'CopyVirtualDisk_Task',
            sourceName=source,
            sourceDatacenter=self._datacenter,
            destName=destination,
            destDatacenter=self._datacenter,
        )
        self._session.wait_for_task(task)

    def extend_disk(self, ds_path: str, capacity_kb: int) -> None:
        """Grow a virtual disk that no VM uses (ExtendVirtualDisk_Task)."""
        task = self._session.invoke(
            self._session.content.virtualDiskManager,
            'ExtendVirtualDisk_Task',
            name=ds_path,
            datacenter=self._datacenter,
            newCapacityKb=capacity_kb,
            eagerZero=False,
        )
        self._session.wait_for_task(task)

    def move_disk(self, source: str, destination: str) -> None:
        """Rename a virtual disk, descriptor and extents together."""
        task = self._session.invoke(
            self._session.content.virtualDiskManager,
            'MoveVirtualDisk_Task',
            sourceName=source,
            sourceDatacenter=self._datacenter,
            destName=destination,
            destDatacenter=self._datacenter,
            force=False,
        )
        self._session.wait_for_task(task)

    def delete_disk(self, ds_path: str) -> None:
        """Delete a virtual disk; a missing one is not an error."""
        try:
            task = self._session.invoke_repeatable(
                self._session.content.virtualDiskManager,
                'DeleteVirtualDisk_Task',
                name=ds_path,
                datacenter=self._datacenter,
            )
            self._session.wait_for_task(task)
        except (vim.fault.FileNotFound, vc_session.TaskFailed) as error:
            if not _is_not_found(error):
                raise


def _is_not_found(error: Exception) -> bool:
    if isinstance(error, vim.fault.FileNotFound):
        return True
    return isinstance(getattr(error, 'fault', None), vim.fault.FileNotFound)
