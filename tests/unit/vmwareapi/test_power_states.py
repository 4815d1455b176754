"""The power-state cache never vouches for a VM the driver just changed."""

import time
import unittest
from unittest import mock

from nova_hypervisors.vmwareapi import events
from nova_hypervisors.vmwareapi import lookup


class TestPowerStates(unittest.TestCase):
    def setUp(self):
        self.states = events.PowerStates()
        self.states.apply(
            'vm-1',
            {
                'config.instanceUuid': 'u1',
                'config.managedBy': lookup.managed_by(),
                'runtime.powerState': 'poweredOn',
            },
            'enter',
        )
        self.states.synced = True

    def test_watched_state_answers(self):
        self.assertEqual('poweredOn', self.states.get('u1'))

    def test_unsynced_cache_does_not_answer(self):
        self.states.synced = False
        self.assertIsNone(self.states.get('u1'))

    def test_driver_change_waits_for_confirmation(self):
        self.states.expect('u1', 'poweredOff')
        self.assertIsNone(self.states.get('u1'))
        self.states.apply(
            'vm-1', {'runtime.powerState': 'poweredOff'}, 'modify'
        )
        self.assertEqual('poweredOff', self.states.get('u1'))

    def test_last_answers_even_unconfirmed(self):
        """When vCenter cannot be asked: what the driver is bringing the
        VM to, else what the watch saw; None for a VM never seen."""
        self.assertEqual('poweredOn', self.states.last('u1'))
        self.states.expect('u1', 'poweredOff')
        self.assertIsNone(self.states.get('u1'))
        self.assertEqual('poweredOff', self.states.last('u1'))
        self.states.expect('u2', 'poweredOn')
        self.assertEqual('poweredOn', self.states.last('u2'))
        self.assertIsNone(self.states.last('u3'))

    def test_the_drivers_own_steps_emit_no_event(self):
        """A rescue (off, then on) or vcsim's reset (off and on) is the
        driver's doing: a late STOPPED would make Nova stop the server."""
        self.states.expect('u1', 'poweredOff')
        self.states.expect('u1', 'poweredOn')
        for state in ('poweredOff', 'poweredOn'):
            changed = self.states.apply(
                'vm-1', {'runtime.powerState': state}, 'modify'
            )
            self.assertIsNone(changed)
        self.assertEqual('poweredOn', self.states.get('u1'))
        changed = self.states.apply(
            'vm-1', {'runtime.powerState': 'poweredOff'}, 'modify'
        )
        self.assertEqual(('u1', 'poweredOn', 'poweredOff'), changed)

    def test_coalesced_updates_confirm_every_step(self):
        self.states.expect('u1', 'poweredOff')
        self.states.expect('u1', 'poweredOn')
        self.states.apply('vm-1', {'runtime.powerState': 'poweredOn'}, 'x')
        self.assertEqual('poweredOn', self.states.get('u1'))

    def test_a_later_operation_stays_expected_until_seen(self):
        """rescue (off, on) then unrescue (off) before the watch caught
        up: the first 'off' seen must not confirm unrescue's 'off'."""
        for state in ('poweredOff', 'poweredOn', 'poweredOff'):
            self.states.expect('u1', state)
        for state in ('poweredOff', 'poweredOn'):
            self.states.apply('vm-1', {'runtime.powerState': state}, 'x')
        self.assertIsNone(self.states.get('u1'))
        changed = self.states.apply(
            'vm-1', {'runtime.powerState': 'poweredOff'}, 'modify'
        )
        self.assertIsNone(changed)
        self.assertEqual('poweredOff', self.states.get('u1'))

    def test_an_operation_that_changed_nothing_is_retracted(self):
        self.states.expect('u1', 'poweredOn')
        self.states.retract('u1', 'poweredOn')
        self.assertEqual('poweredOn', self.states.get('u1'))

    def test_an_expectation_holds_while_the_operation_runs(self):
        """A clean shutdown may take Nova's 60 s and more."""
        with self.states.changing('u1', 'poweredOff'):
            with mock.patch.object(
                events.time,
                'monotonic',
                return_value=time.monotonic() + 120,
            ):
                self.assertIsNone(self.states.get('u1'))
        # Ended: it lapses soon unless the watch confirms it.
        with mock.patch.object(
            events.time,
            'monotonic',
            return_value=time.monotonic() + events.CONFIRM_SECONDS + 1,
        ):
            self.assertEqual('poweredOn', self.states.get('u1'))

    def test_an_unconfirmed_expectation_lapses(self):
        self.states.expect('u1', 'poweredOn')
        with mock.patch.object(
            events.time,
            'monotonic',
            return_value=time.monotonic() + events.EXPECT_SECONDS + 1,
        ):
            self.assertEqual('poweredOn', self.states.get('u1'))

    def test_vms_nova_did_not_create_are_not_followed(self):
        """A vCLS agent VM (no Nova managedBy) is no instance."""
        changed = self.states.apply(
            'vm-2',
            {'config.instanceUuid': 'vcls', 'runtime.powerState': 'poweredOn'},
            'enter',
        )
        self.assertIsNone(changed)
        self.assertIsNone(
            self.states.apply(
                'vm-2', {'runtime.powerState': 'poweredOff'}, 'x'
            )
        )
        self.assertEqual(['u1'], self.states.uuids())
        self.assertEqual(1, self.states.count())

    def test_an_orphaned_vm_is_forgotten(self):
        self.states.apply('vm-1', {'runtime.connectionState': 'orphaned'}, 'x')
        self.assertIsNone(self.states.get('u1'))
        self.assertEqual([], self.states.uuids())

    def test_vm_leaving_the_cluster_is_forgotten(self):
        self.states.apply('vm-1', {}, 'leave')
        self.assertIsNone(self.states.get('u1'))


class TestSnapshots(unittest.TestCase):
    """A watch's first update may be truncated, and a re-created watch
    starts a new snapshot (vSphere API, PropertyCollector.WaitForUpdatesEx:
    ``truncated`` means more of the same version is to come)."""

    def setUp(self):
        self.states = events.PowerStates()

    def enter(self, ref, uuid, power='poweredOn', host='host-1', memory=512):
        return self.states.apply(
            ref,
            {
                'config.instanceUuid': uuid,
                'config.managedBy': lookup.managed_by(),
                'runtime.powerState': power,
                'runtime.host': host,
                'summary.config.memorySizeMB': memory,
                'summary.config.numCpu': 2,
            },
            'enter',
        )

    def test_nothing_is_vouched_for_until_the_snapshot_is_whole(self):
        self.states.begin_snapshot()
        self.enter('vm-1', 'u1')
        self.assertIsNone(self.states.get('u1'))
        self.assertIsNone(self.states.host_usage())
        self.assertFalse(self.states.known())
        self.enter('vm-2', 'u2')
        self.states.complete_snapshot()
        self.assertEqual('poweredOn', self.states.get('u1'))
        self.assertEqual(['u1', 'u2'], sorted(self.states.uuids()))

    def test_a_new_watch_keeps_what_it_knew_and_drops_what_is_gone(self):
        self.states.begin_snapshot()
        self.enter('vm-1', 'u1')
        self.enter('vm-2', 'u2')
        self.states.complete_snapshot()
        # The watch was down; meanwhile vm-1 was powered off, vm-2 deleted.
        self.states.begin_snapshot()
        changed = self.enter('vm-1', 'u1', power='poweredOff')
        self.assertEqual(('u1', 'poweredOn', 'poweredOff'), changed)
        self.states.complete_snapshot()
        self.assertEqual(['u1'], self.states.uuids())
        self.assertEqual('poweredOff', self.states.get('u1'))

    def test_host_usage_counts_every_running_vm_novas_or_not(self):
        self.states.begin_snapshot()
        self.enter('vm-1', 'u1', host='host-1', memory=512)
        self.enter('vm-2', 'u2', host='host-2', memory=256, power='poweredOff')
        self.states.apply(
            'vm-3',  # a vCLS agent VM: no instance, but it holds memory
            {
                'config.instanceUuid': 'vcls',
                'runtime.powerState': 'poweredOn',
                'runtime.host': 'host-1',
                'summary.config.memorySizeMB': 128,
                'summary.config.numCpu': 1,
            },
            'enter',
        )
        self.states.complete_snapshot()
        self.assertEqual({'host-1': (640, 3)}, self.states.host_usage())
        # A vMotion moves what the VM holds with it.
        self.states.apply('vm-1', {'runtime.host': 'host-2'}, 'modify')
        self.assertEqual(
            {'host-1': (128, 1), 'host-2': (512, 2)},
            self.states.host_usage(),
        )


class TestWatcherEvents(unittest.TestCase):
    """The watch reports the transitions both drivers report
    (common.lifecycle): a resume is a resume, not a start."""

    def setUp(self):
        self.states = events.PowerStates()
        self.events = []
        self.watcher = events.PowerStateWatcher(
            mock.Mock(), 'cluster', self.states, self.events.append
        )
        self._update('enter', 'poweredOn', with_identity=True)

    def _update(self, kind, state, with_identity=False):
        changes = [mock.Mock(op='assign', val=state)]
        changes[0].name = 'runtime.powerState'
        if with_identity:
            for name, val in (
                ('config.instanceUuid', 'u1'),
                ('config.managedBy', lookup.managed_by()),
            ):
                change = mock.Mock(op='assign', val=val)
                change.name = name
                changes.append(change)
        update = mock.Mock(
            filterSet=[
                mock.Mock(
                    objectSet=[
                        mock.Mock(obj='vm-1', kind=kind, changeSet=changes)
                    ]
                )
            ]
        )
        self.watcher._apply(update)

    def test_suspend_then_resume(self):
        from nova.virt import event as virtevent

        self._update('modify', 'suspended')
        self._update('modify', 'poweredOn')
        self._update('modify', 'poweredOff')
        self.assertEqual(
            [
                virtevent.EVENT_LIFECYCLE_SUSPENDED,
                virtevent.EVENT_LIFECYCLE_RESUMED,
                virtevent.EVENT_LIFECYCLE_STOPPED,
            ],
            [event.get_transition() for event in self.events],
        )
        self.assertEqual({'u1'}, {e.get_instance_uuid() for e in self.events})
