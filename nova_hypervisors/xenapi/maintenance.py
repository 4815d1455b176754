"""Host maintenance: empty a XenServer host onto the other pool members.

Running VMs move with ``VM.pool_migrate`` through the master, halted ones
by affinity; xapi is told to place nothing here (``host.disable``), and
Nova's records (instance host and node, placement allocations) follow
each move, since Nova's compute manager only asks the driver to do it.
"""

from __future__ import annotations

from nova import context as nova_context
from nova import exception
from nova import objects
from nova.compute import task_states
from nova.scheduler.client import report
from oslo_log import log as logging

from nova_hypervisors.xenapi import events
from nova_hypervisors.xenapi import session as xsession
from nova_hypervisors.xenapi import vm_utils

LOG = logging.getLogger(__name__)


class HostMaintenance:
    """``host_maintenance_mode`` and ``set_host_enabled`` of one host."""

    def __init__(
        self, session: xsession.XenAPISession, watcher: events.EventWatcher
    ) -> None:
        self._session = session
        self._watcher = watcher

    def _call(self, method: str, *args):
        return self._session.call_xenapi(method, *args)

    def _async(self, method: str, *args):
        return events.run_async(self._session, self._watcher, method, *args)

    def set_host_enabled(self, enabled: bool) -> str:
        """xapi places no VM on a disabled host (Nova's trait does the
        same for the scheduler)."""
        method = 'host.enable' if enabled else 'host.disable'
        self._call(method, self._session.host_ref)
        return 'enabled' if enabled else 'disabled'

    def host_maintenance_mode(self, mode: bool) -> str:
        """Disable this host and move each instance to another member.

        Running VMs move with ``VM.pool_migrate``, halted ones by affinity;
        Nova's records (host, node and placement allocations) follow each
        move.  Instances that cannot move stay here, and the answer says so.
        """
        if not mode:
            self.set_host_enabled(True)
            return 'off_maintenance'
        self.set_host_enabled(False)
        context = nova_context.get_admin_context()
        targets = self._maintenance_targets(context)
        stuck = []
        host_ref = self._session.host_ref
        for vm_ref, record in vm_utils.all_nova_vms(self._session).items():
            if not vm_utils.belongs_to_host(record, host_ref):
                continue
            if not self._evacuate(context, vm_ref, record, targets):
                stuck.append(record['name_label'])
        if stuck:
            raise exception.NoValidHost(
                reason='no other pool member can take %s' % ', '.join(stuck)
            )
        return 'on_maintenance'

    def _maintenance_targets(self, context) -> list[tuple[str, object]]:
        """[(host ref, Nova compute node)] of enabled pool members, most
        free memory first."""
        targets = []
        for ref, rec in self._call('host.get_all_records').items():
            if ref == self._session.host_ref or not rec.get('enabled'):
                continue
            try:
                node = objects.ComputeNode.get_by_uuid(context, rec['uuid'])
            except exception.ComputeHostNotFound:
                continue
            free = int(self._call('host.compute_free_memory', ref))
            targets.append((free, ref, node))
        targets.sort(key=lambda item: -item[0])
        return [(ref, node) for _, ref, node in targets]

    def _evacuate(self, context, vm_ref, record, targets) -> bool:
        uuid = record['other_config'][vm_utils.NOVA_UUID]
        running = record['power_state'] == 'Running'
        for target_ref, node in targets:
            try:
                if running:
                    self._async(
                        'VM.pool_migrate', vm_ref, target_ref, {'live': 'true'}
                    )
                self._call('VM.set_affinity', vm_ref, target_ref)
            except exception.NovaException as exc:
                LOG.warning(
                    'Cannot move %s to %s: %s',
                    record['name_label'],
                    node.hypervisor_hostname,
                    exc,
                )
                continue
            self._record_move(context, uuid, node)
            return True
        return False

    def _record_move(self, context, instance_uuid: str, node) -> None:
        """Tell Nova the instance now lives on ``node``."""
        instance = objects.Instance.get_by_uuid(context, instance_uuid)
        instance.host = node.host
        instance.node = node.hypervisor_hostname
        instance.compute_id = node.id
        instance.task_state = None
        instance.save(expected_task_state=[None, task_states.MIGRATING])
        client = report.report_client_singleton()
        try:
            allocs = client.get_allocs_for_consumer(context, instance_uuid)
            by_rp = allocs.get('allocations') or {}
            source = self._session.host_uuid
            if source not in by_rp:
                return
            moved = {
                rp: {'resources': alloc['resources']}
                for rp, alloc in by_rp.items()
                if rp != source
            }
            moved[node.uuid] = {'resources': by_rp[source]['resources']}
            client.put_allocations(
                context,
                instance_uuid,
                {
                    'allocations': moved,
                    'consumer_generation': allocs['consumer_generation'],
                    'project_id': allocs['project_id'],
                    'user_id': allocs['user_id'],
                },
            )
        except Exception:
            LOG.exception(
                'Moving the placement allocations of %s failed', instance_uuid
            )
