"""The check command's report and the XenServer values it interprets."""

import datetime
import json
import xmlrpc.client

from nova_hypervisors.check import report as check_report
from nova_hypervisors.check import xenserver


def test_the_exit_status_is_the_worst_result():
    report = check_report.Report('test')
    assert report.exit_status == 0
    report.passed('a', 'fine')
    assert report.exit_status == 0
    report.warn('b', 'hm', 'do this')
    assert report.exit_status == 1
    report.fail('c', 'broken', 'do that')
    report.passed('d', 'fine')
    assert report.exit_status == 2


def test_text_has_a_line_per_check_and_the_fixes():
    report = check_report.Report('vCenter at vc')
    report.passed('login', 'logged in')
    report.warn('DRS and HA', 'DRS off', 'turn DRS on')
    lines = report.as_text().splitlines()
    assert lines == [
        'vCenter at vc:',
        'PASS  login: logged in',
        'WARN  DRS and HA: DRS off',
        '      fix: turn DRS on',
        '1 passed, 1 warnings, 0 failed',
    ]


def test_json_carries_every_result_and_the_exit_status():
    report = check_report.Report('x')
    report.fail('login', 'refused', 'fix the password')
    found = json.loads(report.as_json())
    assert found == {
        'hypervisor': 'x',
        'exit_status': 2,
        'checks': [
            {
                'check': 'login',
                'status': 'failed',
                'detail': 'refused',
                'fix': 'fix the password',
            }
        ],
    }


def test_the_pool_size_limit_is_read_from_the_licence_when_given():
    limit = xenserver._pool_size_limit
    assert limit({'license_params': {'sku_type': 'free'}}) is None
    assert limit({'license_params': {'restrict_pooling': 'true'}}) == 1
    assert limit({'license_params': {'restrict_pool_size': '3'}}) == 3
    assert limit({}) is None


def test_xapi_server_time_is_utc():
    expected = datetime.datetime(2026, 12, 3, 8, 15, 0, tzinfo=datetime.UTC)
    assert xenserver._as_datetime('20261203T08:15:00Z') == expected
    stamp = xmlrpc.client.DateTime('20261203T08:15:00Z')
    assert xenserver._as_datetime(stamp) == expected
