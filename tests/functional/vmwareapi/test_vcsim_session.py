"""VCDriver's session, node and resources against a real vcsim (TLS)."""

import datetime
import time
import unittest
import uuid

from pyVmomi import vim
from pyVmomi import vmodl

from nova_hypervisors.simulators.vcsim import tls as vcsim_tls
from nova_hypervisors.vmwareapi import cluster
from nova_hypervisors.vmwareapi import events
from nova_hypervisors.vmwareapi import inventory
from nova_hypervisors.vmwareapi import lookup
from nova_hypervisors.vmwareapi import session as vc_session
from tests.functional.vmwareapi import vcsim_fixture


class TestAgainstVcsim(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = vcsim_fixture.start(clusters=2, hosts_per_cluster=2, vms=3)

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def settings(self, **overrides):
        values = dict(
            host=self.sim.host,
            port=self.sim.port,
            username=self.sim.username,
            password=self.sim.password,
            ca_file=self.sim.ca_file,
        )
        values.update(overrides)
        return vc_session.Settings(**values)

    def connect(self, **overrides):
        session = vc_session.VCenterSession(self.settings(**overrides))
        session.connect()
        self.addCleanup(session.disconnect)
        return session

    def test_tls_with_the_ca_file_works(self):
        session = self.connect()
        self.assertTrue(session.content.about.instanceUuid)

    def test_a_wrong_ca_is_refused_naming_ca_file(self):
        import pathlib
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            _, _, other_ca = vcsim_tls.make_ca(pathlib.Path(tmp), 'other')
            with self.assertRaises(vc_session.ConfigurationError) as caught:
                self.connect(ca_file=str(other_ca))
        self.assertIn('[vmware] ca_file', str(caught.exception))

    def test_insecure_opts_out_of_verification(self):
        self.connect(ca_file=None, insecure=True)

    def test_wrong_credentials_and_host_name_the_option(self):
        with self.assertRaises(vc_session.ConfigurationError) as caught:
            self.connect(password='wrong')
        self.assertIn('host_username/host_password', str(caught.exception))
        self.assertNotIn('wrong', str(caught.exception))
        with self.assertRaises(vc_session.ConfigurationError) as caught:
            self.connect(port=1)
        self.assertIn('[vmware] host_ip', str(caught.exception))

    def test_unknown_cluster_lists_the_clusters(self):
        with self.assertRaises(vc_session.ConfigurationError) as caught:
            cluster.find_node(self.connect(), 'nope')
        self.assertIn('[vmware] cluster_name', str(caught.exception))
        self.assertIn('DC0_C0', str(caught.exception))

    def test_a_cluster_name_in_two_datacenters_is_refused(self):
        """Cluster names are unique per datacenter only (vSphere API,
        Folder.CreateClusterEx: DuplicateName within the folder): a name
        that matches two clusters is an error listing both morefs; the
        moref itself then picks one."""
        session = self.connect()
        datacenter = session.invoke(
            session.content.rootFolder, 'CreateDatacenter', name='DC9'
        )
        host_folder = session.properties(
            [datacenter], vim.Datacenter, ['hostFolder']
        )[datacenter]['hostFolder']
        twin = session.invoke(
            host_folder,
            'CreateClusterEx',
            name='DC0_C1',
            spec=vim.cluster.ConfigSpecEx(),
        )
        # Other tests of the class use DC0_C1: give the twin a name of its
        # own afterwards.
        self.addCleanup(
            lambda: session.wait_for_task(
                session.invoke(twin, 'Rename_Task', newName='DC9_C0')
            )
        )
        with self.assertRaises(vc_session.ConfigurationError) as caught:
            cluster.find_node(session, 'DC0_C1')
        message = str(caught.exception)
        self.assertIn('[vmware] cluster_name', message)
        self.assertIn(twin._moId, message)
        self.assertIn('DC9', message)
        self.assertEqual(twin, cluster.find_node(session, twin._moId).cluster)

    def test_node_name_is_the_in_tree_drivers(self):
        session = self.connect()
        node = cluster.find_node(session, 'DC0_C1')
        self.assertEqual(
            f'{node.cluster._moId}.{session.content.about.instanceUuid}',
            node.nodename,
        )

    def test_resources_count_connected_hosts_and_running_vms(self):
        session = self.connect()
        node = cluster.find_node(session, 'DC0_C0')
        capacity = cluster.read_capacity(session, node, None)
        self.assertEqual(2, len(capacity.hosts))
        # Every running VM uses memory, Nova's or not (3 + 1 agent VM).
        self.assertEqual(4 * 32, sum(h.used_memory_mb for h in capacity.hosts))
        self.assertEqual(['LocalDS_0'], [d.name for d in capacity.datastores])

    def test_a_datastore_both_clusters_mount_counts_once(self):
        """vcsim mounts LocalDS_0 on every host of both clusters: each
        cluster reports its hosts' part of it, and the parts add up to the
        datastore once (review B9)."""
        session = self.connect()
        ds_ref = (
            cluster.read_capacity(
                session, cluster.find_node(session, 'DC0_C0'), None
            )
            .datastores[0]
            .ref
        )
        mounts = session.properties([ds_ref], vim.Datastore, ['host'])[ds_ref][
            'host'
        ]
        shares = []
        for name in ('DC0_C0', 'DC0_C1'):
            node = cluster.find_node(session, name)
            (datastore,) = cluster.read_capacity(
                session, node, None
            ).datastores
            self.assertEqual(2 / len(mounts), datastore.share)
            shares.append(datastore.share)
        self.assertEqual(4, len(mounts))
        self.assertEqual(1, sum(shares))

    def test_a_traversal_spec_is_followed_only_from_its_type(self):
        """vSphere API, PropertyCollector.TraversalSpec: ``type`` is the
        type whose property ``path`` is followed (a base type's spec also
        applies to its subtypes).  One recursive selectSet for every type,
        as oslo.vmware's vim_util.build_recursive_traversal_spec gives
        Nova's in-tree driver and Cinder, reaches each VM once; a
        HostSystem spec does not follow a Datastore's ``vm`` (our vcsim
        patch 0015: vcsim 0.24.2 followed every spec from every object
        with such a field, round and round until it crashed)."""
        session = self.connect()
        spec = vmodl.query.PropertyCollector
        visit = spec.SelectionSpec(name='visit')

        def hop(name, type_, path, *select):
            return spec.TraversalSpec(
                name=name,
                type=type_,
                path=path,
                skip=False,
                selectSet=list(select),
            )

        pool_hops = [
            spec.SelectionSpec(name='rp_to_rp'),
            spec.SelectionSpec(name='rp_to_vm'),
        ]
        recursive = hop(
            'visit',
            vim.Folder,
            'childEntity',
            visit,
            hop('dc_to_hf', vim.Datacenter, 'hostFolder', visit),
            hop('dc_to_vmf', vim.Datacenter, 'vmFolder', visit),
            hop('dc_to_dsf', vim.Datacenter, 'datastoreFolder', visit),
            hop('h_to_vm', vim.HostSystem, 'vm', visit),
            hop('cr_to_h', vim.ComputeResource, 'host'),
            hop('cr_to_ds', vim.ComputeResource, 'datastore'),
            hop('cr_to_rp', vim.ComputeResource, 'resourcePool', *pool_hops),
            hop('rp_to_rp', vim.ResourcePool, 'resourcePool', *pool_hops),
            hop('rp_to_vm', vim.ResourcePool, 'vm', *pool_hops),
        )
        vms = session.retrieve(
            [
                spec.FilterSpec(
                    objectSet=[
                        spec.ObjectSpec(
                            obj=session.content.rootFolder,
                            selectSet=[recursive],
                        )
                    ],
                    propSet=[
                        spec.PropertySpec(
                            type=vim.VirtualMachine, pathSet=['name']
                        )
                    ],
                )
            ]
        )
        # 3 VMs and an agent VM in each of the two clusters (and those
        # other tests of the class made), each once.
        self.assertGreaterEqual(len(vms), 8)
        self.assertEqual(len(vms), len({content.obj for content in vms}))

        node = cluster.find_node(session, 'DC0_C0')
        datastore = cluster.read_capacity(session, node, None).datastores[0]
        from_datastore = session.retrieve(
            [
                spec.FilterSpec(
                    objectSet=[
                        spec.ObjectSpec(
                            obj=datastore.ref,
                            skip=True,
                            selectSet=[hop('h_to_vm', vim.HostSystem, 'vm')],
                        )
                    ],
                    propSet=[
                        spec.PropertySpec(
                            type=vim.VirtualMachine, pathSet=['name']
                        )
                    ],
                )
            ]
        )
        self.assertEqual([], from_datastore)

    def test_every_vm_with_a_uuid_is_found(self):
        """vSphere API, SearchIndex.FindAllByUuid (since API 4.0), which
        Nova's in-tree driver finds its VMs with (vm_util.
        _get_vm_ref_from_vm_uuid): by instance uuid or BIOS uuid, within
        a datacenter when given (our vcsim patch 0016; vcsim 0.24.2 did not
        implement it)."""
        session = self.connect()
        node = cluster.find_node(session, 'DC0_C0')
        vms = self._foreign_vms(session, node)
        vm = next(iter(vms))
        found = session.properties(
            [vm], vim.VirtualMachine, ['config.uuid', 'config.instanceUuid']
        )[vm]
        index = session.content.searchIndex

        def find_all(uuid, instance_uuid, datacenter=None):
            return session.invoke(
                index,
                'FindAllByUuid',
                uuid=uuid,
                vmSearch=True,
                instanceUuid=instance_uuid,
                datacenter=datacenter,
            )

        self.assertEqual([vm], find_all(found['config.instanceUuid'], True))
        self.assertIn(vm, find_all(found['config.uuid'], False))
        self.assertEqual(
            [vm],
            find_all(found['config.instanceUuid'], True, node.datacenter),
        )
        self.assertEqual([], find_all(str(uuid.uuid4()), True))

    def test_extensions_are_registered_found_and_unregistered(self):
        """vSphere API, vim.ExtensionManager: a key registers once
        (InvalidArgument again), FindExtension finds it or returns nothing,
        UnregisterExtension removes it; a lastHeartbeatTime without a time
        zone, as oslo.vmware sends it, is taken (our vcsim patch 0019;
        vcsim 0.24.2 implemented none of these methods)."""
        session = self.connect()
        manager = session.content.extensionManager
        key = 'org.openstack.test-%s' % uuid.uuid4().hex[:8]
        extension = vim.Extension(
            key=key,
            version='1.0',
            company='OpenStack',
            type='test',
            lastHeartbeatTime=datetime.datetime(2026, 12, 3, 11, 9, 59),
            description=vim.Description(label='test', summary='test'),
        )
        self.assertIsNone(
            session.invoke(manager, 'FindExtension', extensionKey=key)
        )
        session.invoke(manager, 'RegisterExtension', extension=extension)
        found = session.invoke(manager, 'FindExtension', extensionKey=key)
        self.assertEqual('OpenStack', found.company)
        with self.assertRaises(vmodl.fault.InvalidArgument):
            session.invoke(manager, 'RegisterExtension', extension=extension)
        session.invoke(manager, 'UnregisterExtension', extensionKey=key)
        self.assertIsNone(
            session.invoke(manager, 'FindExtension', extensionKey=key)
        )
        with self.assertRaises(vim.fault.NotFound):
            session.invoke(manager, 'UnregisterExtension', extensionKey=key)

    def test_an_extra_config_key_set_again_is_replaced_or_removed(self):
        """vSphere API, vim.vm.ConfigSpec.extraConfig: a key set again
        carries the new value, one option per key; "Keys with empty string
        values will be removed" (our vcsim patch 0018; vcsim 0.24.2
        appended another option each time)."""
        session = self.connect()
        node = cluster.find_node(session, 'DC0_C0')
        vm = next(iter(self._foreign_vms(session, node)))

        def reconfigure(value):
            task = session.invoke(
                vm,
                'ReconfigVM_Task',
                spec=vim.vm.ConfigSpec(
                    extraConfig=[
                        vim.option.OptionValue(key='test.key', value=value)
                    ]
                ),
            )
            session.wait_for_task(task)
            options = session.properties(
                [vm], vim.VirtualMachine, ['config.extraConfig']
            )[vm]['config.extraConfig']
            return [o.value for o in options if o.key == 'test.key']

        self.assertEqual(['one'], reconfigure('one'))
        self.assertEqual(['two'], reconfigure('two'))
        self.assertEqual([], reconfigure(''))

    def test_the_drs_flag_comes_with_hosts_and_datastores(self):
        """vSphere API, ClusterComputeResource.configuration: deprecated
        but still served, with the DRS config (our vcsim patch 0010; vcsim
        0.24.2 left it empty).  Read in the capacity's one request."""
        session = self.connect()
        node = cluster.find_node(session, 'DC0_C1')
        self.assertTrue(cluster.read_capacity(session, node, None).drs_enabled)
        self._set_drs(session, node, False)
        self.addCleanup(self._set_drs, session, node, True)
        self.assertFalse(
            cluster.read_capacity(session, node, None).drs_enabled
        )

    @staticmethod
    def _set_drs(session, node, enabled):
        spec = vim.cluster.ConfigSpecEx(
            drsConfig=vim.cluster.DrsConfigInfo(enabled=enabled)
        )
        session.wait_for_task(
            session.invoke(
                node.cluster,
                'ReconfigureComputeResource_Task',
                spec=spec,
                modify=True,
            )
        )

    def test_the_watch_knows_what_the_hosts_vms_hold(self):
        """Spawn and the periodic reports take the hosts' usage from the
        power-state watch: the same figures as reading every VM."""
        session = self.connect()
        node = cluster.find_node(session, 'DC0_C0')
        states = events.PowerStates()
        watcher = events.PowerStateWatcher(
            session, node.cluster, states, lambda event: None
        )
        watcher.start()
        self.addCleanup(watcher.stop)
        for _ in range(100):
            if states.known():
                break
            time.sleep(0.05)
        read = cluster.read_capacity(session, node, None)
        watched = cluster.read_capacity(
            session, node, None, states.host_usage()
        )
        self.assertEqual(
            [(h.name, h.used_memory_mb, h.used_vcpus) for h in read.hosts],
            [(h.name, h.used_memory_mb, h.used_vcpus) for h in watched.hosts],
        )
        self.assertEqual(4 * 32, sum(h.used_memory_mb for h in watched.hosts))

    def test_a_disk_a_running_vm_holds_is_not_extended(self):
        """vSphere API, VirtualDiskManager.ExtendVirtualDisk_Task and
        vim.fault.FileLocked: ESXi locks the disk files a powered-on VM
        has open, so the disk manager cannot grow them (our vcsim patch
        0020; vcsim grew them).  ReconfigVM_Task grows such a disk."""
        session = self.connect()
        node = cluster.find_node(session, 'DC0_C0')
        found = session.properties(
            list(self._foreign_vms(session, node)),
            vim.VirtualMachine,
            ['runtime.powerState', 'config.hardware.device'],
        )
        disk = next(
            device
            for props in found.values()
            if props['runtime.powerState'] == 'poweredOn'
            for device in props['config.hardware.device']
            if isinstance(device, vim.vm.device.VirtualDisk)
        )
        task = session.invoke(
            session.content.virtualDiskManager,
            'ExtendVirtualDisk_Task',
            name=disk.backing.fileName,
            datacenter=node.datacenter,
            newCapacityKb=disk.capacityInKB * 2,
            eagerZero=False,
        )
        with self.assertRaises(vc_session.TaskFailed) as caught:
            session.wait_for_task(task)
        self.assertIsInstance(caught.exception.fault, vim.fault.FileLocked)

    def _foreign_vms(self, session, node) -> dict:
        return inventory.read_cluster(
            session, node.cluster, {vim.VirtualMachine: ['name']}
        )[vim.VirtualMachine]

    def test_listing_sees_no_vm_nova_did_not_create(self):
        """vcsim's VMs (and its vCLS-like agent VM) are not instances."""
        session = self.connect()
        node = cluster.find_node(session, 'DC0_C0')
        self.assertEqual(4, len(self._foreign_vms(session, node)))
        self.assertEqual({}, lookup.cluster_vms(session, node.cluster))

    def test_an_expired_session_is_survived_mid_operation(self):
        session = self.connect()
        node = cluster.find_node(session, 'DC0_C0')
        ref = next(iter(self._foreign_vms(session, node)))
        vm = {'ref': ref}
        self.assertGreater(self.sim.expire_sessions(), 0)
        task = session.invoke(vm['ref'], 'PowerOffVM_Task')
        session.wait_for_task(task)
        self.assertEqual(2, session.generation)
        state = session.properties(
            [vm['ref']], vim.VirtualMachine, ['runtime.powerState']
        )[vm['ref']]['runtime.powerState']
        self.assertEqual('poweredOff', state)
        session.wait_for_task(session.invoke(vm['ref'], 'PowerOnVM_Task'))
