"""XenServer resource pools built from Nova host aggregates.

Nova 34 tells neither the compute service nor the driver when a host joins
or leaves an aggregate, so pool membership is *reconciled*: each
nova-compute compares the aggregate that has ``hypervisor_pool=true`` with
its XenServer host's pool and acts for its own host (:mod:`.reconcile`).
It does so on a short interval, and at once when the pool agent
(:mod:`.agent`), which listens to Nova's versioned aggregate notifications,
wakes it over RPC (:mod:`.wakeup`).
"""
