"""Runs the story: the steps in order, a line each, then the summary."""

from __future__ import annotations

import signal
import threading

from nova_hypervisors.demo import story as story_module
from nova_hypervisors.demo.report import Report


def _steps(story: story_module.Story, vcenter: bool) -> list[tuple]:
    xen = len(story.xen.hosts) if story.xen else story.options.xen_hosts
    steps = [
        (f'start the XenServer simulator ({xen} standalone hosts, '
         'shared SR)', story.start_xenserver),
        ('start Nova 34 in one process', story.start_nova),
        ('start the nova-compute services (their nova.conf)',
         story.start_computes),
        ('create aggregate xenpool1: hypervisor_pool=true, '
         'operational_state=created', story.create_aggregate),
        ("add the master's host xen1", story.add_master),
        ('add the other hosts; the pool forms', story.add_others),
        ('boot instances on the pool', story.boot_on_pool),
        ('live-migrate pool-vm1 to another member', story.live_migrate),
        ('snapshot pool-vm2, boot from the snapshot',
         story.snapshot_and_boot),
        ('attach a Cinder iSCSI volume to pool-vm2, then detach it',
         story.volume_on_pool),
    ]  # fmt: skip
    if vcenter:
        steps.insert(1, ('build and start vcsim (1 cluster)',
                         story.start_vcsim))  # fmt: skip
        steps += [
            ('boot on the vCenter cluster node', story.boot_on_vcenter),
            ('attach a Cinder vmdk volume to vc-vm1, then detach it',
             story.volume_on_vcenter),
            ('a flavor no single ESXi host can hold is refused',
             story.too_big_for_any_esxi_host),
        ]  # fmt: skip
    steps += [
        ('delete every server', story.delete_everything),
        ('nothing is left on either hypervisor', story.nothing_left),
    ]
    return steps


def run(
    xen_hosts: int = 3,
    esxi_hosts: int = 3,
    vcenter: bool = True,
    serve: bool = False,
    port: int = 0,
) -> int:
    options = story_module.Options(
        xen_hosts=xen_hosts, esxi_hosts=esxi_hosts, vcenter=vcenter
    )
    hint = None
    if vcenter:
        from nova_hypervisors.simulators import vcsim

        if not vcsim.available():
            vcenter = False
            hint = vcsim.INSTALL_HINT
    story = story_module.Story(options, Report(0))
    steps = _steps(story, vcenter)
    report = story.report = Report(len(steps))
    report.diagnose = story.service_errors
    if hint:
        report.say(f'vcsim cannot be built here, so the vCenter part is left '
                   f'out. {hint}')  # fmt: skip
    try:
        failed = False
        for title, action in steps:
            if failed:
                report.skip(title, 'an earlier step failed')
            elif not report.step(title, action):
                failed = True
        report.say()
        report.say(report.summary())
        if serve and not failed:
            _serve(report, story, port)
    finally:
        story.stop()
    return 0 if report.succeeded else 1


def _serve(report: Report, story, port: int) -> None:
    from nova_hypervisors.demo import serve

    cloud = serve.ServedCloud(story, port)
    openrc = serve.write_openrc(cloud, story.state_dir)
    report.say()
    report.say(f'The demo cloud\'s APIs: {cloud.url} (identity, compute, '
               'volume, image)')  # fmt: skip
    report.say(serve.client_hint(openrc))
    report.say('Ctrl-C stops the clouds.')
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        cloud.stop()
