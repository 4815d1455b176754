"""The rules that decide one compute's next pool step, as specifications."""

from nova_hypervisors.xenapi.pool import membership as m
from nova_hypervisors.xenapi.pool.membership import Action

AGG = 'a1b2c3d4-0000-4000-8000-000000000001'


def aggregate(hosts, **metadata):
    meta = {'hypervisor_pool': 'true', 'operational_state': 'created'}
    meta.update(metadata)
    return m.AggregateView(AGG, 'pool1', tuple(hosts), meta)


def standalone(uuid='h1', address='127.0.0.11', pool_aggregate=None):
    return m.HostView(uuid, address, True, 1, address, pool_aggregate)


def slave_of(master_address, uuid='h2', address='127.0.0.12', members=2):
    return m.HostView(uuid, address, False, members, master_address, AGG)


def test_first_host_added_becomes_the_master():
    decision = m.decide('c1', [aggregate(['c1'])], standalone())
    assert decision.action is Action.BECOME_MASTER


def test_other_hosts_wait_until_the_master_is_recorded():
    decision = m.decide('c2', [aggregate(['c1', 'c2'])], standalone('h2'))
    assert decision.action is Action.WAIT


def test_recorded_master_has_nothing_more_to_do():
    agg = aggregate(
        ['c1'], master_compute='c1', master_address='127.0.0.11', c1='h1'
    )
    decision = m.decide('c1', [agg], standalone(pool_aggregate=AGG))
    assert decision.action is Action.NOTHING


def test_a_standalone_host_joins_the_recorded_master():
    agg = aggregate(
        ['c1', 'c2'], master_compute='c1', master_address='127.0.0.11'
    )
    decision = m.decide('c2', [agg], standalone('h2', '127.0.0.12'))
    assert decision.action is Action.JOIN


def test_a_joined_host_records_itself_once():
    agg = aggregate(
        ['c1', 'c2'], master_compute='c1', master_address='127.0.0.11'
    )
    host = slave_of('127.0.0.11')
    assert m.decide('c2', [agg], host).action is Action.RECORD_MEMBER
    agg.metadata['c2'] = 'h2'
    assert m.decide('c2', [agg], host).action is Action.NOTHING


def test_a_host_in_another_pool_is_an_error_not_a_forced_join():
    agg = aggregate(
        ['c1', 'c2'], master_compute='c1', master_address='127.0.0.11'
    )
    decision = m.decide('c2', [agg], slave_of('127.0.0.99'))
    assert decision.action is Action.ERROR
    assert '127.0.0.99' in decision.reason


def test_aggregates_without_hypervisor_pool_are_ignored():
    plain = m.AggregateView(AGG, 'az1', ('c1',), {})
    assert m.decide('c1', [plain], standalone()).action is Action.NOTHING


def test_a_removed_member_leaves_the_pool():
    decision = m.decide('c2', [], slave_of('127.0.0.11'))
    assert decision.action is Action.LEAVE


def test_removing_the_master_is_refused_while_others_remain():
    master = m.HostView('h1', '127.0.0.11', True, 3, '127.0.0.11', AGG)
    decision = m.decide('c1', [], master)
    assert decision.action is Action.ERROR
    assert '2 other host(s)' in decision.reason


def test_removing_a_lone_master_is_allowed():
    decision = m.decide('c1', [], standalone(pool_aggregate=AGG))
    assert decision.action is Action.NOTHING


def test_members_left_behind_by_a_removed_master_report_an_error():
    agg = aggregate(
        ['c2'], master_compute='c1', master_address='127.0.0.11', c2='h2'
    )
    decision = m.decide('c2', [agg], slave_of('127.0.0.11'))
    assert decision.action is Action.ERROR
    assert 'master compute c1 was removed' in decision.reason


def test_a_new_first_host_takes_over_from_a_master_removed_alone():
    agg = aggregate(['c2'], master_compute='c1', master_address='127.0.0.11')
    decision = m.decide('c2', [agg], standalone('h2', '127.0.0.12'))
    assert decision.action is Action.BECOME_MASTER


def test_a_host_in_two_pool_aggregates_is_an_error():
    other = m.AggregateView(
        'other', 'pool2', ('c1',), {'hypervisor_pool': 'true'}
    )
    decision = m.decide('c1', [aggregate(['c1']), other], standalone())
    assert decision.action is Action.ERROR
    assert 'pool1, pool2' in decision.reason


def test_a_master_whose_host_is_a_slave_elsewhere_is_an_error():
    decision = m.decide('c1', [aggregate(['c1'])], slave_of('127.0.0.99'))
    assert decision.action is Action.ERROR
