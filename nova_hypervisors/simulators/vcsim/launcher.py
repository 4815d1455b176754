"""Start vcsim on loopback and describe how to reach it.

The simulator prints one JSON line once it listens; the launcher waits for
that line (no sleeping), adds the CA file in TLS mode, and owns a private
temporary directory that holds the simulated datastores, so stopping the
simulator leaves nothing behind.
"""

import dataclasses
import json
import os
import pathlib
import select
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.request

from nova_hypervisors.simulators.vcsim import builder as vcsim_build
from nova_hypervisors.simulators.vcsim import tls as vcsim_tls

START_TIMEOUT = 30.0


@dataclasses.dataclass
class Vcsim:
    """A running vcsim process and everything a client needs."""

    url: str
    host: str
    port: int
    username: str
    password: str
    control: str
    ca_file: str | None
    process: subprocess.Popen
    workdir: str

    def describe(self) -> dict:
        """The JSON-able connection facts (what the CLI prints)."""
        return {
            'url': self.url,
            'host': self.host,
            'port': self.port,
            'username': self.username,
            'password': self.password,
            'ca_file': self.ca_file,
            'control': self.control,
            'pid': self.process.pid,
        }

    def _control(self, action: str) -> dict:
        context = None
        if self.ca_file:
            context = ssl.create_default_context(cafile=self.ca_file)
        request = urllib.request.Request(
            f'{self.control}/{action}', data=b'', method='POST'
        )
        with urllib.request.urlopen(request, context=context) as response:
            return json.loads(response.read() or b'{}')

    def expire_sessions(self) -> int:
        """Expire every session opened so far, as an idle timeout would."""
        return self._control('expire-sessions')['expired']

    def fail_next_request(self) -> None:
        """Answer the next SOAP request with HTTP 503."""
        self._control('fail-next-sdk')

    def stop(self) -> None:
        """Stop the simulator and remove its datastores."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> 'Vcsim':
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def start(
    clusters: int = 1,
    hosts_per_cluster: int = 3,
    vms: int = 0,
    use_tls: bool = False,
    agent_vms: int = 1,
    datastores: int = 1,
    dc_in_folder: bool = False,
    nsx_portgroups: int = 0,
    unmounted_datastore: str = '',
    host_memory_mb: int = 4096,
    host_cpus: int = 2,
    username: str = 'user',
    password: str = 'pass',
    vcenter_version: str = '7.0.3',
) -> Vcsim:
    """Build vcsim if needed and start it on 127.0.0.1 with a free port.

    ``vms`` is the number of VMs created in each cluster's root resource
    pool (powered on, spread over the hosts); ``agent_vms`` more VMs per
    cluster stand for what every vCenter 7.0U1+ cluster runs that Nova did
    not create (vSphere Cluster Services' agent VMs).  None of them is
    Nova's: a driver must neither list nor count them as instances.
    ``datastores`` are each mounted on every host; ``dc_in_folder`` puts
    the datacenter inside a folder (its inventory path is then not its
    name); ``nsx_portgroups`` adds NSX-backed distributed port groups;
    ``unmounted_datastore`` is not mounted on each cluster's first host;
    ``vcenter_version`` is what ``About`` reports.
    """
    binary = vcsim_build.build()
    workdir = tempfile.mkdtemp(prefix='nova-hypervisors-vcsim-')
    argv = [
        str(binary),
        f'-clusters={clusters}',
        f'-hosts-per-cluster={hosts_per_cluster}',
        f'-vms={vms + agent_vms}',
        f'-datastores={datastores}',
        f'-dc-in-folder={str(dc_in_folder).lower()}',
        f'-nsx-portgroups={nsx_portgroups}',
        f'-unmounted-datastore={unmounted_datastore}',
        f'-host-memory-mb={host_memory_mb}',
        f'-host-cpus={host_cpus}',
        f'-vcenter-version={vcenter_version}',
        '-listen=127.0.0.1:0',
        f'-username={username}',
    ]
    ca_file = None
    if use_tls:
        files = vcsim_tls.make_server_cert(pathlib.Path(workdir))
        argv += [f'-tls-cert={files["cert_file"]}']
        argv += [f'-tls-key={files["key_file"]}']
        ca_file = str(files['ca_file'])
    log = open(os.path.join(workdir, 'vcsim.log'), 'wb')
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=log,
        # The password goes through vcsim's environment, never its argv
        # (which ps shows to every user).
        env=dict(
            os.environ,
            TMPDIR=workdir,
            NOVA_HYPERVISORS_VCSIM_PASSWORD=password,
        ),
        start_new_session=True,
    )
    log.close()
    try:
        line = _first_line(process, workdir)
    except BaseException:
        process.kill()
        process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    facts = json.loads(line)
    return Vcsim(
        url=facts['url'],
        host=facts['host'],
        port=int(facts['port']),
        username=facts['username'],
        password=facts['password'],
        control=facts['control'],
        ca_file=ca_file,
        process=process,
        workdir=workdir,
    )


def _first_line(process: subprocess.Popen, workdir: str) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    stdout = process.stdout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError('vcsim did not start in time')
        ready, _, _ = select.select([stdout], [], [], remaining)
        if ready:
            line = stdout.readline()
            if line:
                return line.decode()
            process.wait()
            with open(os.path.join(workdir, 'vcsim.log')) as log:
                raise RuntimeError(f'vcsim exited: {log.read()[-2000:]}')
