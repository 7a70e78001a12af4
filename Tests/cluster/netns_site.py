"""Hosts for the cluster tests: network namespaces on one switch, as root (as in CI).

Every host is a namespace with one interface, `eth0`, cabled by a veth pair to a bridge that
lives in a namespace of its own (the switch), so no firewall of the machine sees the traffic.
The test process itself is one more host: a veth pair from the root namespace to the switch
gives it the subnet's first address, from which the publishers and stream clients run. Cutting a
host off is `ip link set eth0 down` inside it; mending it, `up`.
"""
import os
import subprocess
import uuid


def run(*args, check=True):
    result = subprocess.run([str(arg) for arg in args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


class Site:
    """Namespaces named after `hosts`, each at its own address of a fresh /24."""

    def __init__(self, hosts):
        self.tag = uuid.uuid4().hex[:6]
        # A /24 of 10.200.0.0/13 picked from the tag, so two runs on one machine do not meet.
        number = int(self.tag, 16) % 2048
        self.prefix = f"10.{200 + number // 256}.{number % 256}"
        self.switch = f"ts{self.tag}"
        self.namespaces = {}
        self.processes = []
        run("ip", "netns", "add", self.switch)
        try:
            self._in(self.switch, "ip", "link", "add", "br0", "type", "bridge")
            self._in(self.switch, "ip", "link", "set", "br0", "up")
            self._in(self.switch, "ip", "link", "set", "lo", "up")
            # The test process: the root namespace at .1.
            self._cable(None, f"tr{self.tag}", 1)
            for index, host in enumerate(hosts):
                namespace = f"t{self.tag}{host}"[:15]
                run("ip", "netns", "add", namespace)
                self.namespaces[host] = namespace
                self._in(namespace, "ip", "link", "set", "lo", "up")
                self._cable(namespace, f"th{self.tag}{index}", 10 + index)
        except Exception:
            self.close()
            raise

    def _in(self, namespace, *args, check=True):
        return run("ip", "netns", "exec", namespace, *args, check=check)

    def _cable(self, namespace, name, host_number):
        """A veth pair from `namespace` (None: the root) to the switch's bridge."""
        run("ip", "link", "add", name, "type", "veth", "peer", "name", name + "s")
        run("ip", "link", "set", name + "s", "netns", self.switch)
        self._in(self.switch, "ip", "link", "set", name + "s", "master", "br0")
        self._in(self.switch, "ip", "link", "set", name + "s", "up")
        address = f"{self.prefix}.{host_number}/24"
        if namespace is None:
            run("ip", "addr", "add", address, "dev", name)
            run("ip", "link", "set", name, "up")
        else:
            run("ip", "link", "set", name, "netns", namespace)
            self._in(namespace, "ip", "link", "set", name, "name", "eth0")
            self._in(namespace, "ip", "addr", "add", address, "dev", "eth0")
            self._in(namespace, "ip", "link", "set", "eth0", "up")

    def address(self, host):
        return f"{self.prefix}.{10 + list(self.namespaces).index(host)}"

    def command(self, host, *args):
        """`args` run inside `host`."""
        return ["ip", "netns", "exec", self.namespaces[host], *map(str, args)]

    def run(self, host, *args, check=True):
        return run(*self.command(host, *args), check=check)

    def spawn(self, host, *args, **options):
        process = subprocess.Popen(self.command(host, *args), **options)
        self.processes.append(process)
        return process

    def cut(self, host):
        self.run(host, "ip", "link", "set", "eth0", "down")

    def mend(self, host):
        self.run(host, "ip", "link", "set", "eth0", "up")

    def close(self):
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
        for namespace in [*self.namespaces.values(), self.switch]:
            # A namespace's processes are gone above; deleting it removes its interfaces.
            run("ip", "netns", "del", namespace, check=False)
        run("ip", "link", "del", f"tr{self.tag}", check=False)


def available():
    """Whether this machine lets the tests make namespaces (root, iproute2)."""
    return os.geteuid() == 0 and subprocess.run(["ip", "netns", "list"], capture_output=True).returncode == 0
