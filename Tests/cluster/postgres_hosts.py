"""PostgreSQL 15 on hosts of a `Site`: a primary, and standbys that stream from it.

Each server runs as the `postgres` user (PostgreSQL refuses root) in a temporary folder,
listening on its host's address, with trust for the site's subnet (a throwaway cluster on
private namespaces). A standby is made with `pg_basebackup -R` and streams from the primary;
`make_synchronous` on the primary, once a standby streams, acknowledges a commit only once a
standby has it.
"""
import pathlib
import shutil
import subprocess
import tempfile

BIN = pathlib.Path("/usr/lib/postgresql/15/bin")
PORT = 5432


class PostgresHost:
    def __init__(self, site, host, primary=None):
        self.site, self.host = site, host
        self.directory = pathlib.Path(tempfile.mkdtemp(prefix=f"tidings-cluster-{host}-"))
        shutil.chown(self.directory, "postgres", "postgres")
        self.data = self.directory / "data"
        if primary is None:
            self._as_postgres(BIN / "initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                              "--no-sync")
            with open(self.data / "pg_hba.conf", "a") as hba:
                hba.write(f"host all all {site.prefix}.0/24 trust\n")
                hba.write(f"host replication all {site.prefix}.0/24 trust\n")
            settings = [
                f"listen_addresses = '{site.address(host)}'", f"port = {PORT}", "max_connections = 300",
                f"unix_socket_directories = '{self.directory}'", "wal_level = replica", "max_wal_senders = 8",
                "wal_keep_size = '256MB'", "hot_standby = on", "shared_buffers = '128MB'",
            ]
            with open(self.data / "postgresql.conf", "a") as conf:
                conf.write("\n".join(settings) + "\n")
        else:
            self._as_postgres(BIN / "pg_basebackup", "-h", site.address(primary.host), "-p", PORT, "-U",
                              "postgres", "-D", self.data, "-R", "-X", "stream", "-c", "fast", "--no-sync", in_host=True)
            with open(self.data / "postgresql.conf", "a") as conf:
                conf.write(f"listen_addresses = '{site.address(host)}'\n"
                           f"unix_socket_directories = '{self.directory}'\n")
        self.start()

    def make_synchronous(self):
        """Commits wait for a standby from now on (set once one streams: before, they would wait
        for ever)."""
        self.psql("ALTER SYSTEM SET synchronous_standby_names = '*'")
        self.psql("SELECT pg_reload_conf()")

    def _as_postgres(self, *args, in_host=False):
        command = ["runuser", "-u", "postgres", "--", *map(str, args)]
        if in_host:
            command = self.site.command(self.host, *command)
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} on {self.host} failed: {result.stderr.strip()}")
        return result.stdout

    def pg_ctl(self, *args):
        return self._as_postgres(BIN / "pg_ctl", "-D", self.data, *args, in_host=True)

    def start(self):
        self.pg_ctl("-l", self.directory / "server.log", "-w", "-t", "60", "start")

    def stop(self, mode="fast"):
        self.pg_ctl("-m", mode, "-w", "-t", "60", "stop")

    def kill(self):
        """The crash of the host's database: no shutdown checkpoint, no goodbye to clients."""
        self.stop("immediate")

    def promote(self):
        self.pg_ctl("-w", "-t", "60", "promote")

    def url(self, database="postgres"):
        return f"postgres://postgres@{self.site.address(self.host)}:{PORT}/{database}?sslmode=disable"

    def psql(self, sql, database="postgres"):
        result = subprocess.run(
            self.site.command(self.host, "psql", self.url(database), "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql),
            capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"psql on {self.host}: {result.stderr.strip()}")
        return result.stdout.strip()

    def close(self):
        subprocess.run(self.site.command(self.host, "runuser", "-u", "postgres", "--", str(BIN / "pg_ctl"), "-D",
                                         str(self.data), "-m", "immediate", "-w", "stop"), capture_output=True)
        shutil.rmtree(self.directory, ignore_errors=True)
