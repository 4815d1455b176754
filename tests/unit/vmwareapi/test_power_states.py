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
