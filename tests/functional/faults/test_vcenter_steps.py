"""The fault campaign for VCDriver: one fault at every vSphere call of a
boot, a snapshot, a resize (with its confirm) and a live migration between
clusters, through Nova's API on vcsim.

vcsim cannot fail a chosen call, so the fault is injected where every
call of the driver passes, ``VCenterSession.invoke`` of the computes
(never the test's own admin session): the call is answered with
``vmodl.fault.SystemError``, the fault vCenter returns for an internal
failure, before it reaches vcsim.  The steps come from a traced run.
After each faulty run the server is deleted, and vCenter must hold what it
held before: the same VMs, and the same files in every datastore (the
image cache's, which are there before, included).
"""

import os
import threading

from pyVmomi import vim
from pyVmomi import vmodl

from nova_hypervisors.vmwareapi import session as vc_session
from tests.functional.faults import campaign
from tests.functional.vmwareapi import api_base

#: Calls of the power-state watch's loop, not of the operation.
NOT_STEPS = ('WaitForUpdatesEx', 'CancelWaitForUpdates')
#: vSphere methods that only read.
READS = (
    'RetrievePropertiesEx',
    'ContinueRetrievePropertiesEx',
    'FindByUuid',
    'FindAllByUuid',
    'SearchDatastore_Task',
    'CreateContainerView',
    'CreatePropertyCollector',
    'CreateFilter',
    'DestroyPropertyCollector',
    'DestroyView',
)


class _Injector:
    """Traces and fails the computes' vSphere calls."""

    def __init__(self, admin) -> None:
        self._admin = admin
        self._lock = threading.Lock()
        self._trace: list[str] | None = None
        self._fail: tuple[str, int] | None = None
        self._original = vc_session.VCenterSession.invoke
        #: The session ids of every call of the computes.
        self.session_ids: set[str] = set()

    def invoke(self, session, managed_object, method, *args, **kwargs):
        if session is not self._admin and method not in NOT_STEPS:
            cookie = session.cookie()  # vmware_soap_session="<id>"
            with self._lock:
                self.session_ids.add(cookie.partition('=')[2].strip('"'))
                if self._trace is not None:
                    self._trace.append(method)
                fail = False
                if self._fail is not None and self._fail[0] == method:
                    if self._fail[1] == 0:
                        self._fail = None
                        fail = True
                    else:
                        self._fail = (method, self._fail[1] - 1)
            if fail:
                raise vmodl.fault.SystemError(
                    msg='injected', reason='injected'
                )
        return self._original(session, managed_object, method, *args, **kwargs)

    def start_trace(self) -> None:
        with self._lock:
            self._trace = []

    def stop_trace(self) -> list[str]:
        with self._lock:
            trace, self._trace = self._trace or [], None
            return trace

    def fail_next(self, method: str, after: int) -> None:
        with self._lock:
            self._fail = (method, after)

    def clear(self) -> None:
        with self._lock:
            self._fail = None


class VCenterStepFaultsTest(
    campaign.StepCampaign, api_base.VCenterAPITestCase
):
    driver = 'vmware'
    FAULT = 'SystemError'
    compute_errors_expected = True

    def setUp(self):
        # One attempt: the failure is the boot's, not a reschedule's.
        self.flags(max_attempts=1, group='scheduler')
        super().setUp()
        self.api.microversion = '2.74'  # boots on a named host
        self.injector = _Injector(self.admin)
        self.stub_out(
            'nova_hypervisors.vmwareapi.session.VCenterSession.invoke',
            lambda session, *a, **kw: self.injector.invoke(session, *a, **kw),
        )
        self.flavor = self._flavor('small', 128, disk=1)
        self.larger = self._flavor('larger', 256, disk=2)
        self.delete_for_good(self._boot_on('compute1'))  # a warm cache

    # -- the hooks ---------------------------------------------------------

    def start_trace(self) -> None:
        self.injector.start_trace()

    def stop_trace(self) -> list[str]:
        return self.injector.stop_trace()

    def inject(self, method: str, after: int) -> None:
        self.injector.fail_next(method, after)

    def clear_injected(self) -> None:
        self.injector.clear()

    def is_read(self, method: str) -> bool:
        return method in READS

    def pool_state(self) -> dict:
        vms = self.admin.view_properties(
            self.admin.content.rootFolder, {vim.VirtualMachine: ['name']}
        )
        files = set()
        for directory, _, names in os.walk(self.sim.workdir):
            for name in names:
                path = os.path.join(directory, name)
                files.add(os.path.relpath(path, self.sim.workdir))
        return {
            'VM': {props['name'] for props in vms.values()},
            'file': files,
        }

    def secrets(self) -> set[str]:
        return {self.sim.password} | (self.injector.session_ids - {''})

    # -- helpers -----------------------------------------------------------

    def _boot_on(self, host, expect=('ACTIVE',)):
        created = self._boot(flavor_id=self.flavor, host=host)
        settled = self.settled(created)
        self.assertIn(settled['status'], expect)
        return settled

    def _action(self, action):
        return lambda server: self.api.post_server_action(server['id'], action)

    # -- the campaign ------------------------------------------------------

    def test_a_failure_at_any_step_of_a_boot_leaves_nothing(self):
        before = self.pool_state()
        traced = []
        steps = self.traced_steps(
            lambda: traced.append(self._boot_on('compute1'))
        )
        self.delete_for_good(traced[0])
        self.assertEqual(before, self.pool_state())
        self.assertIn(('CreateVM_Task', 0), steps)
        outcomes = self.fail_each_step(
            steps,
            prepare=lambda: {'id': None},
            operation=lambda server: server.update(
                self._boot_on('compute1', expect=('ACTIVE', 'ERROR'))
            ),
        )
        self.assertIn('ERROR', [status for status, _ in outcomes.values()])

    def test_a_failure_at_any_step_of_a_snapshot_leaves_nothing(self):
        server = self._boot_on('compute1')
        snapshot = self._action({'createImage': {'name': 'snap'}})

        def traced():
            snapshot(server)
            self.settled(server)

        steps = self.traced_steps(traced)
        self.delete_for_good(server)
        self.fail_each_step(
            self.changes_and_first_reads(steps),
            prepare=lambda: self._boot_on('compute1'),
            operation=snapshot,
        )

    def test_a_failure_at_any_step_of_a_resize_leaves_nothing(self):
        server = self._boot_on('compute1')

        def resize(server):
            self.api.post_server_action(
                server['id'], {'resize': {'flavorRef': self.larger}}
            )
            if self.settled(server)['status'] == 'VERIFY_RESIZE':
                self.api.post_server_action(
                    server['id'], {'confirmResize': None}
                )

        steps = self.traced_steps(
            lambda: resize(server) or self.settled(server)
        )
        self.delete_for_good(server)
        self.assertIn(('RelocateVM_Task', 0), steps)
        self.fail_each_step(
            self.changes_and_first_reads(steps),
            prepare=lambda: self._boot_on('compute1'),
            operation=resize,
        )

    def test_a_failure_at_any_step_of_a_live_migration_leaves_nothing(self):
        server = self._boot_on('compute1')
        migrate = self._action(
            {'os-migrateLive': {'host': 'compute2', 'block_migration': 'auto'}}
        )

        def traced():
            migrate(server)
            self._wait_for_migration_status(server, ['completed'])
            self.settled(server)

        steps = self.traced_steps(traced)
        self.delete_for_good(server)
        self.assertIn(('RelocateVM_Task', 0), steps)

        def where_nova_says(server):
            # Wherever the move stopped, the VM is in the cluster of the
            # compute Nova names.
            cluster = {'compute1': 'DC0_C0', 'compute2': 'DC0_C1'}[
                server['OS-EXT-SRV-ATTR:host']
            ]
            self.assertEqual(cluster, self._cluster_of(server))

        self.fail_each_step(
            steps,
            prepare=lambda: self._boot_on('compute1'),
            operation=migrate,
            check=where_nova_says,
        )
