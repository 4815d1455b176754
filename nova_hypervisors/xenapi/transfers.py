"""VDI transfers through xapi's HTTP handlers, judged by their task.

Disk bytes move through ``PUT /import_raw_vdi`` and ``GET /export_raw_vdi``,
streamed: nothing of an image is ever stored whole on the compute host.
What real xapi does, and what this module relies on:

* The handlers serve only on a host with a plugged PBD for the VDI's SR;
  any other host answers ``302`` to one that has it
  (xen-api ``ocaml/xapi/importexport.ml``, ``check_sr_availability`` and
  ``return_302_redirect``).  An import is redirected without its body
  being read, so transfers are sent straight to a host that has the SR
  (this compute's own host when it has), and an export follows a redirect.
* ``import_raw_vdi`` answers ``200`` *before* reading the body
  (``import_raw_vdi.ml``, ``localhost_handler``); a failure after that is
  recorded only on the request's task.  So every transfer runs under a
  task of ours (``task_id=``), and its outcome is the task's, never the
  HTTP status alone.  The task is destroyed in every case.
* The handlers check ``session_id`` themselves and answer ``401`` for one
  that expired (``Xapi_http.with_context``); nothing logs in again there.
  A transfer refused so is made once more with a session ref xapi has
  just accepted (:meth:`.XenAPISession.valid_handle`): a toolstack
  restart or a new master drops every session, in real life too.
"""

from __future__ import annotations

import contextlib
import http.client
import urllib.parse

from nova import exception
from oslo_log import log as logging

from nova_hypervisors.common import images
from nova_hypervisors.xenapi import disks
from nova_hypervisors.xenapi import errors
from nova_hypervisors.xenapi import events
from nova_hypervisors.xenapi import session as xsession
from nova_hypervisors.xenapi import vm_utils

LOG = logging.getLogger(__name__)

MIB = 1024**2
#: How often an export follows a 302 before giving up.
MAX_REDIRECTS = 3
#: Seconds to wait for the task of a transfer that broke off.
ABORTED_TASK_TIMEOUT = 30


class _SessionRejected(Exception):
    """xapi answered 401: the transfer's session ref has expired."""


class Transfers:
    """Imports and exports of VDIs for one session."""

    def __init__(
        self, session: xsession.XenAPISession, watcher: events.EventWatcher
    ) -> None:
        self._session = session
        self._watcher = watcher

    # -- where -------------------------------------------------------------

    def host_with_sr(self, sr_ref: str) -> str:
        """The address of a host with a plugged PBD for the SR.

        This compute's own host when it has one; otherwise any host that
        has (a shared SR plugged elsewhere only, or another member's
        local SR during a migration).
        """
        session = self._session
        pbds = session.get_all_records_where(
            'PBD',
            'field "SR"=%s and field "currently_attached"="true"'
            % vm_utils.quote(sr_ref),
        )
        hosts = [pbd['host'] for pbd in pbds.values()]
        if session.host_ref in hosts:
            return session.host_address
        if not hosts:
            raise exception.StorageError(
                reason='SR %s is plugged on no host of the pool' % sr_ref
            )
        return session.call_xenapi('host.get_address', hosts[0])

    def _new_task(self, what: str, vdi_ref: str) -> str:
        return self._session.call_xenapi(
            'task.create', 'Nova %s' % what, vdi_ref
        )

    def _query(
        self, vdi_ref: str, disk_format: str, task: str, handle: str
    ) -> str:
        return urllib.parse.urlencode(
            {
                'vdi': vdi_ref,
                'format': disk_format,
                'session_id': handle,
                'task_id': task,
            }
        )

    def _handle(self, again: bool) -> str:
        """A session ref for a transfer; one xapi has just accepted when
        the first was refused."""
        if again:
            LOG.info('xapi refused a transfer session (expired); retrying')
            return self._session.valid_handle()
        return self._session.handle

    # -- import ------------------------------------------------------------

    def import_image(
        self, context, image_meta, sr_ref: str, name: str, other_config: dict
    ) -> str:
        """Stream a Glance image into a new VDI; return the VDI.

        The VDI is created once the image head is known (a VHD tells its
        virtual size there), and destroyed again if the transfer fails.
        """
        session = self._session
        disk_format = images.require_disk_format(
            image_meta, disks.DISK_FORMATS
        )
        length = int(image_meta.size)
        created: list[str] = []
        for again in (False, True):
            handle = self._handle(again)

            def open_sink(head: bytes, handle=handle) -> _PutSink:
                if disk_format == 'vhd':
                    size = disks.vhd_virtual_size(head, length)
                else:
                    size = length
                vdi_ref = disks.create_vdi(
                    session, sr_ref, name, max(size, MIB), other_config
                )
                created.append(vdi_ref)
                return self._put(vdi_ref, sr_ref, disk_format, length, handle)

            writer = images.StreamingWriter(open_sink)
            try:
                images.stream_image(context, image_meta.id, writer)
                if not created:
                    raise exception.ImageUnacceptable(
                        image_id=image_meta.id, reason='the image is empty'
                    )
                break
            except _SessionRejected:
                self._destroy_all(created)
                if again:
                    raise self._refused('import_raw_vdi') from None
            except BaseException:
                self._destroy_all(created)
                raise
        LOG.debug(
            'Imported image %s (%d bytes, %s)',
            image_meta.id,
            length,
            disk_format,
        )
        return created[0]

    def _destroy_all(self, created: list[str]) -> None:
        for vdi_ref in created:
            disks.destroy_vdi(self._session, vdi_ref)
        created.clear()

    @staticmethod
    def _refused(what: str) -> Exception:
        return exception.StorageError(
            reason='%s refused two sessions in a row (HTTP 401)' % what
        )

    def upload_bytes(self, vdi_ref: str, sr_ref: str, data: bytes) -> None:
        """Write small contents (a config drive) into a VDI on ``sr_ref``."""
        for again in (False, True):
            sink = self._put(
                vdi_ref, sr_ref, 'raw', len(data), self._handle(again)
            )
            try:
                sink.write(data)
                sink.close()
                return
            except _SessionRejected:
                if again:
                    raise self._refused('import_raw_vdi') from None
            except BaseException:
                sink.abort()
                raise

    def _put(
        self,
        vdi_ref: str,
        sr_ref: str,
        disk_format: str,
        length: int,
        handle: str,
    ) -> _PutSink:
        address = self.host_with_sr(sr_ref)
        task = self._new_task('import_raw_vdi', vdi_ref)
        try:
            conn = self._session.http_connection(
                self._session.operation_timeout, address=address
            )
            conn.putrequest(
                'PUT',
                '/import_raw_vdi?'
                + self._query(vdi_ref, disk_format, task, handle),
                skip_accept_encoding=True,
            )
            conn.putheader('Content-Length', str(length))
            conn.putheader('Content-Type', 'application/octet-stream')
            conn.endheaders()
        except BaseException:
            self._forget_task(task)
            raise
        return _PutSink(self, conn, task, length)

    # -- export ------------------------------------------------------------

    @contextlib.contextmanager
    def export_vdi(self, vdi_ref: str, disk_format: str = 'vhd'):
        """An open response streaming the VDI's bytes (has ``read``).

        Leaving the block awaits the transfer's task: a failure xapi
        reports only there (``VDI_TOO_LARGE``...) still raises.
        """
        task = self._new_task('export_raw_vdi', vdi_ref)
        try:
            response = self._get(vdi_ref, disk_format, task)
        except BaseException:
            self._forget_task(task)
            raise
        try:
            yield response
        except BaseException:
            response.close()
            self._settle(task, 'export_raw_vdi', aborted=True)
            raise
        response.close()
        self._settle(task, 'export_raw_vdi')

    def _get(self, vdi_ref: str, disk_format: str, task: str):
        address = self.host_with_sr(
            self._session.call_xenapi('VDI.get_SR', vdi_ref)
        )
        again = False
        path = '/export_raw_vdi?' + self._query(
            vdi_ref, disk_format, task, self._handle(again)
        )
        for _ in range(MAX_REDIRECTS + 2):
            conn = self._session.http_connection(
                self._session.operation_timeout, address=address
            )
            conn.request('GET', path)
            response = conn.getresponse()
            if response.status == 200:
                return response
            body = response.read()[:200].decode('ascii', 'replace')
            conn.close()
            if response.status == 401 and not again:
                again = True
                path = '/export_raw_vdi?' + self._query(
                    vdi_ref, disk_format, task, self._handle(again)
                )
                continue
            if response.status not in (301, 302, 307):
                raise exception.StorageError(
                    reason='export_raw_vdi answered HTTP %d %s'
                    % (response.status, self._scrub(body))
                )
            address, path = self._redirect(response.getheader('Location'))
        raise exception.StorageError(
            reason='export_raw_vdi redirected more than %d times'
            % MAX_REDIRECTS
        )

    def _redirect(self, location: str | None) -> tuple[str, str]:
        """Where a 302 sends us: the host's address and the request path.

        The scheme, port and TLS settings stay ours: xapi redirects to
        ``https://<host>/...`` of the same pool, whose hosts share them.
        """
        target = urllib.parse.urlsplit(location or '')
        if not target.hostname:
            raise exception.StorageError(
                reason='xapi redirected a transfer nowhere'
            )
        LOG.debug('VDI transfer redirected to host %s', target.hostname)
        return target.hostname, '%s?%s' % (target.path, target.query)

    # -- tasks -------------------------------------------------------------

    def _settle(
        self,
        task: str,
        what: str,
        aborted: bool = False,
        broken: bool = False,
    ) -> None:
        """Await the task and raise its failure; destroy it in any case.

        After an abort the caller's own error says more than the task's,
        which is then only awaited (briefly) so that it is destroyed.  A
        connection xapi broke off ends briefly too: its task says why.
        """
        try:
            events.await_task(
                self._session,
                self._watcher,
                task,
                what,
                ABORTED_TASK_TIMEOUT if (aborted or broken) else None,
            )
        except exception.NovaException:
            if not aborted:
                raise
            LOG.debug('%s ended in failure after an abort', what)

    def _forget_task(self, task: str) -> None:
        events.destroy_task(self._session, task)

    def _scrub(self, text: str) -> str:
        return errors.scrub(text, self._session.secrets)


class _PutSink:
    """``PUT /import_raw_vdi`` with a known length, fed chunk by chunk."""

    def __init__(
        self,
        transfers: Transfers,
        conn: http.client.HTTPConnection,
        task: str,
        length: int,
    ) -> None:
        self._transfers = transfers
        self._conn = conn
        self._task = task
        self._expected = length
        self._sent = 0
        self._done = False

    def write(self, chunk: bytes) -> None:
        self._sent += len(chunk)
        if self._sent > self._expected:
            raise exception.ImageUnacceptable(
                image_id='', reason='image is larger than Glance says'
            )
        try:
            self._conn.send(chunk)
        except OSError:
            # xapi closes the connection when the import fails; the
            # task says why.  A refused session was answered 401 first.
            if self._early_status() == 401:
                raise self._rejected() from None
            raise self._broken() from None

    def close(self) -> None:
        if self._sent != self._expected:
            self.abort()
            raise exception.ImageUnacceptable(
                image_id='',
                reason='image has %d bytes, Glance says %d'
                % (self._sent, self._expected),
            )
        try:
            response = self._conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            raise self._broken() from None
        if response.status == 401:
            raise self._rejected()
        if response.status != 200:
            self._finish(aborted=True)
            raise exception.StorageError(
                reason='import_raw_vdi answered HTTP %d %s'
                % (
                    response.status,
                    self._transfers._scrub(
                        body[:200].decode('ascii', 'replace')
                    ),
                )
            )
        self._finish(aborted=False)

    def abort(self) -> None:
        self._finish(aborted=True)

    def _early_status(self) -> int | None:
        """The status xapi answered before closing, if it did."""
        try:
            return self._conn.getresponse().status
        except (OSError, http.client.HTTPException):
            return None

    def _rejected(self) -> Exception:
        """The handler refused the session and never took the task: drop
        both; the caller tries once more with a fresh session."""
        self._done = True
        self._conn.close()
        self._transfers._forget_task(self._task)
        return _SessionRejected()

    def _finish(self, aborted: bool, broken: bool = False) -> None:
        """Close the connection, then settle the task (once)."""
        if self._done:
            return
        self._done = True
        self._conn.close()
        self._transfers._settle(
            self._task, 'import_raw_vdi', aborted=aborted, broken=broken
        )

    def _broken(self) -> Exception:
        """xapi closed the connection of a failed import, with the reason on
        the task: settling raises that reason; this error is for a task
        that says nothing went wrong."""
        self._finish(aborted=False, broken=True)
        return exception.StorageError(
            reason='import_raw_vdi closed the connection early'
        )
