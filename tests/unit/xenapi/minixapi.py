"""A few dozen lines of xapi state behind the fake wire, for VMOps tests.

Objects are plain dicts per class; ``Async.`` calls finish at once (their
task is already ``success`` or ``failure`` when the ref comes back), and
disk transfers land in memory.  Faults: ``mini.fail('VM.start_on',
'HOST_NOT_ENOUGH_FREE_MEMORY', '1', '0')`` makes the next such call fail.
"""

from __future__ import annotations

import io
import itertools
import re
import time

import fixtures

from nova_hypervisors.xenapi import session as xsession
from tests.unit.xenapi.fakewire import XapiFailure

HOST = 'OpaqueRef:host-0'
SR = 'OpaqueRef:sr'
_CLAUSE = re.compile(r'field "([^"]+)"="([^"]*)"')


class MiniXapi:
    def __init__(self, wire) -> None:
        self.wire = wire
        self.objects: dict[str, dict[str, dict]] = {}
        self.disk_bytes: dict[str, bytes] = {}
        self.faults: dict[str, list] = {}
        self._ids = itertools.count(1)
        self.add(
            'host',
            HOST,
            uuid='host-uuid-0',
            name_label='xen0',
            hostname='xen0',
            address='127.0.0.1',
            metrics='OpaqueRef:hm',
            cpu_info={'cpu_count': '8'},
            software_version={'product_version': '8.2.1'},
        )
        self.add(
            'host_metrics',
            'OpaqueRef:hm',
            memory_total=str(16 << 30),
            memory_free=str(12 << 30),
        )
        self.add('pool', 'OpaqueRef:pool', master=HOST, default_SR=SR)
        self.add(
            'SR',
            SR,
            physical_size=str(100 << 30),
            virtual_allocation=str(10 << 30),
            other_config={},
        )
        self.add(
            'PBD',
            'OpaqueRef:pbd',
            SR=SR,
            host=HOST,
            currently_attached=True,
        )
        for cls in ('VM', 'VDI', 'VBD', 'VIF', 'network', 'task'):
            self.objects.setdefault(cls, {})
        self._install()

    # -- state ----------------------------------------------------------

    def add(self, cls: str, ref: str | None = None, **fields) -> str:
        ref = ref or 'OpaqueRef:%s-%d' % (cls.lower(), next(self._ids))
        self.objects.setdefault(cls, {})[ref] = dict(fields)
        return ref

    def fail(self, method: str, *details: str) -> None:
        self.faults.setdefault(method, []).append(list(details))

    def leftovers(self) -> dict[str, int]:
        """What Nova made and left: VMs, VDIs, VBDs, VIFs, tasks."""
        return {
            cls: len(self.objects[cls])
            for cls in ('VM', 'VDI', 'VBD', 'VIF', 'task')
            if self.objects[cls]
        }

    # -- wire handlers ------------------------------------------------

    def _install(self) -> None:
        wire = self.wire
        for cls in self.objects:
            wire.on(
                '%s.get_all_records' % cls,
                lambda s, cls=cls: dict(self.objects[cls]),
            )
            wire.on(
                '%s.get_all_records_where' % cls,
                lambda s, expr, cls=cls: self.where(cls, expr),
            )
            wire.on(
                '%s.get_record' % cls,
                lambda s, ref, cls=cls: dict(self.get(cls, ref)),
            )
            wire.on(
                '%s.create' % cls,
                lambda s, rec, cls=cls: self.create(cls, rec),
            )
            wire.on(
                '%s.destroy' % cls,
                lambda s, ref, cls=cls: self.destroy(cls, ref),
            )
        for name, handler in {
            'VM.start_on': self.vm_power('Running'),
            'VM.hard_shutdown': self.vm_power('Halted'),
            'VM.clean_shutdown': self.vm_power('Halted'),
            'VM.clean_reboot': self.vm_power('Running'),
            'VM.hard_reboot': self.vm_power('Running'),
            'VM.pause': self.vm_power('Paused'),
            'VM.unpause': self.vm_power('Running'),
            'VM.suspend': self.vm_power('Suspended'),
            'VM.resume_on': self.vm_power('Running'),
            'VDI.clone': self.vdi_copy,
            'VDI.snapshot': self.vdi_copy,
            'VDI.resize': self.vdi_resize,
            'VDI.get_virtual_size': lambda s, ref: self.get('VDI', ref)[
                'virtual_size'
            ],
            'VDI.set_other_config': self.setter('VDI', 'other_config'),
            'VDI.set_name_label': self.setter('VDI', 'name_label'),
            'VDI.get_SR': lambda s, ref: self.get('VDI', ref)['SR'],
            'host.get_address': lambda s, ref: self.get('host', ref)[
                'address'
            ],
            'task.create': lambda s, label, description: self.add(
                'task', status='pending', result='', error_info=[]
            ),
            'task.cancel': lambda s, ref: '',
        }.items():
            self.wire.on(name, self.faulty(name, handler))
        for method in list(self.wire.handlers):
            address, name = method
            if name.split('.')[0] in self.objects and name.endswith(
                ('.create', '.destroy')
            ):
                self.wire.on(
                    name, self.faulty(name, self.wire.handlers[method])
                )
        for name in (
            'VM.start_on',
            'VM.hard_shutdown',
            'VM.clean_shutdown',
            'VM.clean_reboot',
            'VM.hard_reboot',
            'VM.suspend',
            'VM.resume_on',
            'VDI.snapshot',
        ):
            self.wire.on('Async.' + name, self.async_of(name))
        self.wire.on('event.from', self.event_from)

    def faulty(self, name, handler):
        def call(*params):
            pending = self.faults.get(name)
            if pending:
                raise XapiFailure(*pending.pop(0))
            return handler(*params)

        return call

    def async_of(self, name):
        def call(session_ref, *args):
            task = self.add('task', status='pending', result='', error_info=[])
            try:
                value = self.wire.handlers[(None, name)](session_ref, *args)
                self.objects['task'][task].update(
                    status='success',
                    result='<value>%s</value>' % value if value else '',
                )
            except XapiFailure as failure:
                self.objects['task'][task].update(
                    status='failure', error_info=failure.details
                )
            return task

        return call

    def event_from(self, session_ref, classes, token, timeout):
        time.sleep(0.02)
        return {
            'events': [],
            'token': str(int(token or 0) + 1),
            'valid_ref_counts': {},
        }

    def get(self, cls, ref):
        try:
            return self.objects[cls][ref]
        except KeyError:
            raise XapiFailure('HANDLE_INVALID', cls, ref) from None

    def where(self, cls, expr):
        wanted = _CLAUSE.findall(expr)
        result = {}
        for ref, rec in self.objects[cls].items():
            if all(
                str(rec.get(f.replace('__', '_'), '')).lower() == v.lower()
                for f, v in wanted
            ):
                result[ref] = dict(rec)
        return result

    def create(self, cls, rec):
        ref = self.add(cls, **rec)
        record = self.objects[cls][ref]
        if cls == 'VM':
            record.update(
                power_state='Halted',
                VBDs=[],
                VIFs=[],
                is_control_domain=False,
                is_a_snapshot=False,
                resident_on='OpaqueRef:NULL',
                consoles=[],
                metrics='OpaqueRef:NULL',
                domid='-1',
            )
        elif cls == 'VBD':
            self.get('VM', rec['VM'])['VBDs'].append(ref)
        elif cls == 'VIF':
            self.get('VM', rec['VM'])['VIFs'].append(ref)
            record.setdefault('network', rec['network'])
        elif cls == 'network':
            record.setdefault('VIFs', [])
        elif cls == 'VDI':
            self.disk_bytes[ref] = b''
        return ref

    def destroy(self, cls, ref):
        record = self.get(cls, ref)
        if cls == 'VM':
            if record['power_state'] != 'Halted':
                raise XapiFailure(
                    'VM_BAD_POWER_STATE',
                    ref,
                    'halted',
                    record['power_state'].lower(),
                )
            for vbd in list(record['VBDs']):
                self.objects['VBD'].pop(vbd, None)
            for vif in list(record['VIFs']):
                self.objects['VIF'].pop(vif, None)
        elif cls in ('VBD', 'VIF'):
            vm = self.objects['VM'].get(record['VM'])
            if vm:
                vm[cls + 's'].remove(ref)
        del self.objects[cls][ref]
        return ''

    def vm_power(self, state):
        def call(session_ref, vm, *args):
            record = self.get('VM', vm)
            record['power_state'] = state
            record['resident_on'] = (
                'OpaqueRef:NULL' if state == 'Halted' else HOST
            )
            return ''

        return call

    def vdi_copy(self, session_ref, vdi, driver_params):
        record = dict(self.get('VDI', vdi))
        ref = self.add('VDI', **record)
        self.disk_bytes[ref] = self.disk_bytes[vdi]
        return ref

    def vdi_resize(self, session_ref, vdi, size):
        self.get('VDI', vdi)['virtual_size'] = size
        return ''

    def setter(self, cls, field):
        def call(session_ref, ref, value):
            self.get(cls, ref)[field] = value
            return ''

        return call


class _FakeHTTP:
    """``PUT /import_raw_vdi`` and ``GET /export_raw_vdi`` in memory."""

    def __init__(self, mini: MiniXapi) -> None:
        self.mini = mini
        self.buffer = io.BytesIO()
        self.vdi = None
        self.task = None

    def putrequest(self, method, url, **kwargs):
        def param(name):
            found = re.search(name + r'=([^&]+)', url)
            return found and found.group(1).replace('%3A', ':')

        self.vdi = param('vdi')
        self.task = param('task_id')

    def putheader(self, *args):
        pass

    def endheaders(self):
        pass

    def send(self, chunk):
        self.buffer.write(chunk)

    def request(self, method, url):
        self.putrequest(method, url)

    def getresponse(self):
        if self.buffer.tell():
            self.mini.disk_bytes[self.vdi] = self.buffer.getvalue()
            body = b''
        else:
            body = self.mini.disk_bytes[self.vdi]
        if self.task:
            self.mini.get('task', self.task)['status'] = 'success'
        response = io.BytesIO(body)
        response.status = 200
        return response

    def close(self):
        pass


class MiniXapiFixture(fixtures.Fixture):
    def __init__(self, wire) -> None:
        super().__init__()
        self.wire = wire

    def _setUp(self) -> None:
        self.mini = MiniXapi(self.wire)
        self.wire.on(
            'host.get_all_records', lambda s: dict(self.mini.objects['host'])
        )
        self.wire.on(
            'pool.get_all_records', lambda s: dict(self.mini.objects['pool'])
        )
        self.useFixture(
            fixtures.MonkeyPatch(
                'nova_hypervisors.xenapi.session.XenAPISession.http_connection',
                lambda session, timeout=None, address=None: _FakeHTTP(
                    self.mini
                ),
            )
        )
        self.session = xsession.XenAPISession('http://127.0.0.1', 'root', 'pw')
        self.session.retry_delay = 0.001
