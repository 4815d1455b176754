"""Pre-flight checks of a XenServer / XCP-ng host for ``XenAPIDriver``.

Only reads: a login, then records of the host, its pool, its SRs and
networks.  Each check says what it saw and, when something is off, which
nova.conf option or host setting to change.
"""

import datetime
from typing import Any
import xmlrpc.client

from nova import exception

from nova_hypervisors.check import report as check_report
from nova_hypervisors.xenapi import disks
from nova_hypervisors.xenapi import session as xsession
from nova_hypervisors.xenapi import vifs

#: XenAPI 2.0 came with XenServer 6.1 (xen-api's datamodel lifecycle: the
#: "boston" release); every call the driver makes exists from there on.
MIN_API_VERSION = (2, 0)
#: Beyond this the host's clock differs enough to upset TLS validity
#: windows, task times and Nova's view of when things happened.
CLOCK_SKEW_SECONDS = 30


def run(group: Any, compute: Any = None) -> check_report.Report:
    """Check the host of ``[xenserver]`` (``group``) without changing it;
    ``compute`` is the whole nova.conf, for the options of Nova's own that
    a XenServer compute must set."""
    report = check_report.Report(
        f'XenServer at {group.connection_url or "(no connection_url)"}'
    )
    session = _login(group, report)
    if session is None:
        return report
    try:
        _role(session, report)
        _version(session, report)
        _storage(session, group.sr_matching_filter, report)
        _pool(session, report)
        _clock(session, report)
        _integration_bridge(session, group.ovs_integration_bridge, report)
    finally:
        session.close()
    if compute is not None:
        _live_migration_vif_wait(compute, report)
    return report


def _live_migration_vif_wait(conf: Any, report) -> None:
    """xapi plugs a migrating VM's VIFs on the destination only inside
    VM.pool_migrate: a source waiting for network-vif-plugged before the
    migration waits out vif_plugging_timeout every time."""
    waits = (
        conf.compute.live_migration_wait_for_vif_plug
        and conf.vif_plugging_timeout
    )
    if waits:
        report.warn(
            'live migration',
            'Nova waits up to %d s for network-vif-plugged before each live '
            'migration to this host; xapi plugs the VIFs only during the '
            'migration, so the event cannot come first'
            % conf.vif_plugging_timeout,
            'set [compute] live_migration_wait_for_vif_plug = False',
        )
    else:
        report.passed(
            'live migration',
            'no wait for network-vif-plugged before a live migration',
        )


def _login(group: Any, report: check_report.Report):
    """The session, or None after a failed check that names the fix."""
    if not group.connection_url:
        report.fail(
            'connection',
            '[xenserver] connection_url is not set',
            'set it to https://<the XenServer host this compute manages>',
        )
        return None
    try:
        session = xsession.XenAPISession(
            group.connection_url,
            group.connection_username,
            group.connection_password or '',
            concurrent=1,
            login_timeout=group.login_timeout,
            ca_file=group.ca_file,
            insecure=group.insecure,
        )
        session.connect()
    except (
        exception.InvalidConfiguration,
        exception.HypervisorUnavailable,
    ) as error:
        report.fail('login', _message(error))
        return None
    how = 'TLS verified'
    if session.scheme != 'https':
        how = 'plain http'
    elif group.insecure and not group.ca_file:
        how = 'TLS without verification'
    detail = f'logged in as {group.connection_username!r} ({how})'
    if how == 'TLS verified':
        report.passed('login', detail)
    else:
        report.warn(
            'login',
            detail,
            'use https with [xenserver] ca_file (the host certificate or '
            'its CA) so that passwords and session ids travel verified',
        )
    return session


def _message(error: Exception) -> str:
    return str(getattr(error, 'kwargs', {}).get('message') or error)


def _role(session: xsession.XenAPISession, report) -> None:
    if session.master_address == session.host_address:
        report.passed(
            'pool role',
            f'{session.host_name} ({session.host_address}) is the pool master',
        )
    else:
        report.passed(
            'pool role',
            f'{session.host_name} ({session.host_address}) is a pool member; '
            f'its master is {session.master_address}, which this compute '
            'follows',
        )


def _version(session: xsession.XenAPISession, report) -> None:
    host = session.call_xenapi('host.get_record', session.host_ref)
    software = host.get('software_version') or {}
    product = (
        software.get('product_brand', 'XenServer')
        + ' '
        + (
            software.get('product_version')
            or software.get('platform_version')
            or '?'
        )
    )
    api = (
        int(host.get('API_version_major') or 0),
        int(host.get('API_version_minor') or 0),
    )
    detail = f'{product}, XenAPI {api[0]}.{api[1]}'
    if api >= MIN_API_VERSION:
        report.passed('version', detail)
    else:
        report.fail(
            'version',
            detail,
            'upgrade the host: the driver needs XenAPI %d.%d '
            '(XenServer 6.1) or newer' % MIN_API_VERSION,
        )


def _storage(session: xsession.XenAPISession, matching_filter: str, report):
    try:
        sr_ref = disks.find_sr(session, matching_filter)
    except exception.StorageError as error:
        report.fail(
            'storage',
            error.kwargs.get('reason') or str(error),
            'set [xenserver] sr_matching_filter to an SR plugged on this '
            'host (default-sr:true, or other-config:<key>=<value>)',
        )
        return
    sr = session.call_xenapi('SR.get_record', sr_ref)
    detail = (
        f'{sr.get("name_label")!r} ({sr.get("type")}) matches '
        f'{matching_filter!r} and is plugged on this host'
    )
    if sr.get('shared'):
        report.passed('storage', detail + '; shared by the pool')
    else:
        report.warn(
            'storage',
            detail + '; it is not shared',
            'a shared SR (NFS, iSCSI) as the pool default lets servers move '
            'between members without copying disks; with local storage, '
            'live migration copies the disks and resize stays on the host',
        )


def _pool(session: xsession.XenAPISession, report) -> None:
    hosts = session.call_xenapi('host.get_all_records')
    metrics = session.call_xenapi('host_metrics.get_all_records')
    members = []
    down = []
    for host in sorted(hosts.values(), key=lambda h: h['name_label']):
        live = (metrics.get(host.get('metrics')) or {}).get('live', True)
        name = f'{host["name_label"]} ({host.get("address")})'
        members.append(name)
        if not live or not host.get('enabled', True):
            down.append(name)
    detail = f'{len(members)} host(s): ' + ', '.join(members)
    limit = _pool_size_limit(hosts.get(session.host_ref) or {})
    if limit is not None:
        detail += f'; the licence allows {limit} host(s)'
    if down:
        report.warn(
            'pool',
            detail + '; not live or disabled: ' + ', '.join(down),
            'bring the members back, or eject them from the pool (Nova: '
            'remove the host from the pool aggregate)',
        )
    elif limit is not None and len(members) >= limit:
        report.warn(
            'pool',
            detail,
            'the pool cannot grow: a new host would exceed the licence',
        )
    else:
        report.passed('pool', detail)


def _pool_size_limit(host: dict) -> int | None:
    """The licence's pool size limit, when the host reports one: xapi's
    licence parameters say ``restrict_pooling=true`` where no pool is
    licensed (one host), or give ``restrict_pool_size`` (the parameter
    names are xapi's licence feature flags; which editions set them is
    not checked here)."""
    params = host.get('license_params') or {}
    if str(params.get('restrict_pooling', '')).lower() == 'true':
        return 1
    try:
        return int(params['restrict_pool_size'])
    except (KeyError, TypeError, ValueError):
        return None


def _clock(session: xsession.XenAPISession, report) -> None:
    stamp = session.call_xenapi('host.get_servertime', session.host_ref)
    host_time = _as_datetime(stamp)
    now = datetime.datetime.now(datetime.UTC)
    skew = abs((host_time - now).total_seconds())
    detail = f'the host clock is {skew:.0f} s from ours'
    if skew <= CLOCK_SKEW_SECONDS:
        report.passed('clock', detail)
    else:
        report.warn('clock', detail, 'run NTP on the host and on this compute')


def _as_datetime(stamp: Any) -> datetime.datetime:
    """xapi's dateTime.iso8601 (``20261203T08:15:00Z``) as UTC."""
    if isinstance(stamp, xmlrpc.client.DateTime):
        stamp = stamp.value
    text = str(stamp).rstrip('Z')
    parsed = datetime.datetime.strptime(text, '%Y%m%dT%H:%M:%S')
    return parsed.replace(tzinfo=datetime.UTC)


def _integration_bridge(session, bridge: str, report) -> None:
    """XenAPI lists no dom0 bridges: what it can say is whether a network
    for the bridge exists (the driver makes an unmanaged one at the first
    boot, and xapi refuses to plug a VIF where the bridge is missing)."""
    network = vifs.network_of_bridge(session, bridge)
    if network is not None:
        record = session.call_xenapi('network.get_record', network)
        report.passed(
            'integration bridge',
            f'network {record.get("name_label")!r} is on bridge {bridge!r}',
        )
    else:
        report.warn(
            'integration bridge',
            f'no XenServer network is on bridge {bridge!r} yet',
            f'create the Open vSwitch bridge in dom0 of every host '
            f'(ovs-vsctl add-br {bridge}); the driver then makes its '
            'network at the first boot ([xenserver] ovs_integration_bridge '
            'names it)',
        )
