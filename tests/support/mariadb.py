"""A throwaway MariaDB server in a temporary data directory, on a free port of 127.0.0.1.

Uses Debian's mariadb-server binaries (installed by scripts/setup); never the system instance.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

from tests.support.net import free_port, port_open, wait_until

ROOT_PASSWORD = "throwaway-root"


def _binary(*names: str) -> str:
    for name in names:
        for folder in ("", "/usr/sbin/", "/usr/bin/"):
            path = shutil.which(folder + name) if not folder else folder + name
            if path and os.path.exists(path):
                return path
    raise RuntimeError(f"{names[0]} not found: run scripts/setup to install mariadb-server")


@dataclass
class MariaDB:
    datadir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        os.chown(self.datadir, *_mysql_ids())
        subprocess.run(
            [
                _binary("mariadb-install-db", "mysql_install_db"),
                "--no-defaults",
                f"--datadir={self.datadir}",
                "--user=mysql",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
        )
        self._launch()
        self._set_root_password()

    def _set_root_password(self) -> None:
        connection = pymysql.connect(
            unix_socket=str(self.datadir / "mysqld.sock"), user="root", password=""
        )
        with connection, connection.cursor() as cursor:
            cursor.execute(
                "CREATE OR REPLACE USER 'root'@'127.0.0.1' IDENTIFIED BY %s", (ROOT_PASSWORD,)
            )
            cursor.execute("GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")

    def admin(self) -> pymysql.Connection:  # type: ignore[type-arg]
        return pymysql.connect(
            host="127.0.0.1", port=self.port, user="root", password=ROOT_PASSWORD, autocommit=True
        )

    def create_database(self, name: str, user: str, password: str) -> None:
        with self.admin() as connection, connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            cursor.execute(f"CREATE USER IF NOT EXISTS '{user}'@'%%' IDENTIFIED BY %s", (password,))
            cursor.execute(f"GRANT ALL ON `{name}`.* TO '{user}'@'%'")

    def drop_database(self, name: str) -> None:
        with self.admin() as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")

    def url(self, name: str, user: str, password: str) -> str:
        return f"mysql+pymysql://{user}:{password}@127.0.0.1:{self.port}/{name}?charset=utf8mb4"

    def pause(self) -> None:
        """Stop the server (as an outage would); `resume` brings the same data back."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        self.process = None

    def resume(self) -> None:
        self._launch()

    def _launch(self) -> None:
        log = open(self.datadir / "server.log", "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(
            [
                _binary("mariadbd", "mysqld"),
                "--no-defaults",
                f"--datadir={self.datadir}",
                f"--socket={self.datadir}/mysqld.sock",
                f"--pid-file={self.datadir}/mysqld.pid",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--user=mysql",
                "--innodb-buffer-pool-size=64M",
                "--skip-log-bin",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        wait_until(lambda: port_open(self.port), 60, "MariaDB")

    def stop(self) -> None:
        if self.process is not None:
            self.pause()


def _mysql_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("mysql")
    return entry.pw_uid, entry.pw_gid
