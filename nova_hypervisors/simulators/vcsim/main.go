// vcsim for nova_hypervisors: govmomi's vCenter simulator with the inventory
// our tests need, started on loopback, plus a loopback-only control endpoint
// for fault injection.  Built offline against Debian's
// golang-github-vmware-govmomi-dev (GOPATH mode); see build.py.
package main

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/simulator/esx"
	"github.com/vmware/govmomi/simulator/vpx"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// relocationFixer keeps ResourcePool.vm and HostSystem.vm right when a VM
// is relocated: vcsim 0.24's RelocateVM_Task changes the VM's resourcePool
// and runtime.host but leaves the old lists untouched and never adds the VM
// to the new ones, so traversals from the destination cluster could not see
// it.  Updates go through Map.Update so PropertyCollectors notice them.
type relocationFixer struct{}

func (relocationFixer) Reference() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "NovaHypervisorsFixer", Value: "fixer-1"}
}

func (relocationFixer) PutObject(mo.Reference)                    {}
func (relocationFixer) RemoveObject(types.ManagedObjectReference) {}

func (relocationFixer) UpdateObject(obj mo.Reference, changes []types.PropertyChange) {
	vm, ok := obj.(*mo.VirtualMachine)
	if !ok {
		return
	}
	for _, change := range changes {
		switch change.Name {
		case "resourcePool":
			if vm.ResourcePool != nil {
				relink("ResourcePool", vm.Self, *vm.ResourcePool)
			}
		case "runtime.host":
			if vm.Runtime.Host != nil {
				relink("HostSystem", vm.Self, *vm.Runtime.Host)
			}
		}
	}
}

// relink makes vm appear in the "vm" list of owner only, among kind.
func relink(kind string, vm, owner types.ManagedObjectReference) {
	for _, entity := range simulator.Map.All(kind) {
		var list *[]types.ManagedObjectReference
		switch e := entity.(type) {
		case *simulator.ResourcePool:
			list = &e.Vm
		case *simulator.HostSystem:
			list = &e.Vm
		default:
			continue
		}
		ref := entity.Reference()
		present := false
		for _, r := range *list {
			if r == vm {
				present = true
			}
		}
		if ref == owner && !present {
			vms := append(append([]types.ManagedObjectReference{}, *list...), vm)
			simulator.Map.Update(entity, []types.PropertyChange{{Name: "vm", Val: vms}})
		} else if ref != owner && present {
			var vms []types.ManagedObjectReference
			for _, r := range *list {
				if r != vm {
					vms = append(vms, r)
				}
			}
			simulator.Map.Update(entity, []types.PropertyChange{{Name: "vm", Val: vms}})
		}
	}
}

// sessionJanitor makes sessions expire on demand: every session cookie seen
// before /_control/expire-sessions is dropped from later requests, so vcsim
// answers them with NotAuthenticated exactly as a vCenter whose session timed
// out does.  Sessions opened afterwards (a re-login) work normally.
type sessionJanitor struct {
	mu      sync.Mutex
	seen    map[string]bool
	expired map[string]bool
	next    http.Handler
}

func (j *sessionJanitor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/_control/expire-sessions":
		j.mu.Lock()
		n := 0
		for id := range j.seen {
			if !j.expired[id] {
				j.expired[id] = true
				n++
			}
		}
		j.mu.Unlock()
		fmt.Fprintf(w, "{\"expired\": %d}\n", n)
		return
	case "/_control/fail-next-sdk":
		// The next /sdk request is answered with HTTP 503.
		simulator.StatusSDK = http.StatusServiceUnavailable
		fmt.Fprintln(w, "{}")
		return
	}
	if c, err := r.Cookie(soap.SessionCookieName); err == nil {
		j.mu.Lock()
		dead := j.expired[c.Value]
		j.seen[c.Value] = true
		j.mu.Unlock()
		if dead {
			r.Header.Del("Cookie")
		}
	}
	j.next.ServeHTTP(w, r)
}

// mountEverywhere lists, in each datastore's "host", every host that mounts
// it.  vSphere API, Datastore.host: the hosts attached to the datastore,
// each a DatastoreHostMount; vcsim 0.24.2 kept only the last host it
// mounted the datastore on (host_datastore_system.go
// CreateLocalDatastore), although every host lists it in its own
// "datastore".  A driver that splits a shared datastore's capacity among
// the clusters mounting it needs the whole list.
func mountEverywhere() {
	mounts := map[types.ManagedObjectReference][]types.DatastoreHostMount{}
	for _, obj := range simulator.Map.All("HostSystem") {
		host := obj.(*simulator.HostSystem)
		for _, ref := range host.Datastore {
			mounts[ref] = append(mounts[ref], types.DatastoreHostMount{
				Key: host.Self,
				MountInfo: types.HostMountInfo{
					AccessMode: string(types.HostMountModeReadWrite),
					Mounted:    types.NewBool(true),
					Accessible: types.NewBool(true),
				},
			})
		}
	}
	for ref, list := range mounts {
		ds := simulator.Map.Get(ref).(*simulator.Datastore)
		simulator.Map.Update(ds, []types.PropertyChange{{Name: "host", Val: list}})
	}
}

// unmount takes the named datastore away from the first host of every
// cluster: real clusters have datastores that not every host mounts.
func unmount(name string) {
	var ds *simulator.Datastore
	for _, obj := range simulator.Map.All("Datastore") {
		if d := obj.(*simulator.Datastore); d.Name == name {
			ds = d
		}
	}
	if ds == nil {
		log.Fatalf("no datastore %s", name)
	}
	for _, obj := range simulator.Map.All("ClusterComputeResource") {
		cluster := obj.(*simulator.ClusterComputeResource)
		if len(cluster.Host) == 0 {
			continue
		}
		host := simulator.Map.Get(cluster.Host[0]).(*simulator.HostSystem)
		var kept []types.ManagedObjectReference
		for _, ref := range host.Datastore {
			if ref != ds.Self {
				kept = append(kept, ref)
			}
		}
		simulator.Map.Update(host, []types.PropertyChange{{Name: "datastore", Val: kept}})
		var mounts []types.DatastoreHostMount
		for _, mount := range ds.Host {
			if mount.Key != host.Self {
				mounts = append(mounts, mount)
			}
		}
		simulator.Map.Update(ds, []types.PropertyChange{{Name: "host", Val: mounts}})
	}
}

func main() {
	clusters := flag.Int("clusters", 1, "clusters in the datacenter")
	hosts := flag.Int("hosts-per-cluster", 3, "ESXi hosts per cluster")
	vms := flag.Int("vms", 0, "VMs created in each cluster's root resource pool")
	hostMemMB := flag.Int64("host-memory-mb", 4096, "memory of every ESXi host")
	hostCPUs := flag.Int("host-cpus", 2, "logical CPUs of every ESXi host")
	listen := flag.String("listen", "127.0.0.1:0", "loopback address to listen on")
	user := flag.String("username", "user", "login user name")
	password := flag.String("password", "", "login password (default: $NOVA_HYPERVISORS_VCSIM_PASSWORD, else \"pass\"; the environment keeps it out of ps)")
	datastores := flag.Int("datastores", 1, "datastores, each mounted on every host")
	dcInFolder := flag.Bool("dc-in-folder", false, "put the datacenter inside a folder, as large vCenters do")
	nsxPortgroups := flag.Int("nsx-portgroups", 0, "NSX-backed distributed port groups (NSX-T segments on VDS 7)")
	unmounted := flag.String("unmounted-datastore", "", "a datastore the first host of every cluster does not mount")
	version := flag.String("vcenter-version", "7.0.3", "the vCenter version About reports (vcsim's own is 6.5.0)")
	certFile := flag.String("tls-cert", "", "PEM certificate: serve HTTPS")
	keyFile := flag.String("tls-key", "", "PEM key of -tls-cert")
	flag.Parse()
	if *password == "" {
		*password = os.Getenv("NOVA_HYPERVISORS_VCSIM_PASSWORD")
	}
	if *password == "" {
		*password = "pass"
	}

	// Every simulated host shares esx.HostHardwareInfo and esx.HostSystem.
	esx.HostHardwareInfo.MemorySize = *hostMemMB * 1024 * 1024
	esx.HostHardwareInfo.CpuInfo.NumCpuThreads = int16(*hostCPUs)
	esx.HostHardwareInfo.CpuInfo.NumCpuCores = int16(*hostCPUs)
	esx.HostSystem.Summary.Hardware.MemorySize = *hostMemMB * 1024 * 1024
	esx.HostSystem.Summary.Hardware.NumCpuThreads = int16(*hostCPUs)
	esx.HostSystem.Summary.Hardware.NumCpuCores = int16(*hostCPUs)

	// The vCenter release the driver targets (7.0U1+ clusters run vCLS,
	// ESXi 7 has no VNC server).  The API version stays vcsim's.
	vpx.ServiceContent.About.Version = *version
	vpx.ServiceContent.About.FullName = "VMware vCenter Server " + *version + " (vcsim)"

	model := simulator.VPX()
	model.Host = 0
	model.Cluster = *clusters
	model.ClusterHost = *hosts
	model.Machine = *vms
	model.Datastore = *datastores
	model.PortgroupNSX = *nsxPortgroups
	if *dcInFolder {
		model.Folder = 1
	}
	model.Autostart = true
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	defer model.Remove()
	simulator.Map.AddHandler(relocationFixer{})
	mountEverywhere()
	if *unmounted != "" {
		unmount(*unmounted)
	}

	model.Service.Listen = &url.URL{
		Host: *listen,
		User: url.UserPassword(*user, *password),
	}
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Fatal(err)
		}
		model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	server := model.Service.NewServer()
	defer server.Close()
	server.Config.Handler = &sessionJanitor{
		seen:    map[string]bool{},
		expired: map[string]bool{},
		next:    server.Config.Handler,
	}

	u := *server.URL
	u.User = nil
	line, _ := json.Marshal(map[string]interface{}{
		"url":      u.String(),
		"host":     u.Hostname(),
		"port":     u.Port(),
		"username": *user,
		"password": *password,
		"control":  u.Scheme + "://" + u.Host + "/_control",
	})
	fmt.Println(string(line))
	os.Stdout.Sync()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
