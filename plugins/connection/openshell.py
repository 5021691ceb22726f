# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Run Ansible inside an OpenShell sandbox through an exec command prefix."""

from __future__ import annotations

DOCUMENTATION = r"""
name: openshell
short_description: Run tasks inside an OpenShell sandbox, as the agent, through C(openshell sandbox exec)
version_added: 0.1.0
description:
  - Every command runs as C(<exec_prefix> /bin/sh -c <command>), by default C(openshell sandbox exec -n NAME -- ...),
    so modules run as the sandbox's agent user, inside the agent network namespace and under its Landlock and seccomp
    domain - the vantage point the verifier needs. A C(kubectl exec)/C(docker exec) shell would be outside that domain.
  - The prefix is configurable (another CLI path, the local lab's exec entry point). It runs where the play runs, so the
    OpenShell CLI must be on that host; for a remote fleet host, run the play there (inventory host with
    C(ansible_connection) to it, then C(delegate_to)) or use the verify role's host mode. A prefix starting with
    C(ssh) is refused - ssh joins its arguments into one string and the remote shell splits C(/bin/sh -c <command>)
    again, so the command would not arrive intact.
  - Files are copied through the same prefix with C(cat), so they land with the agent's permissions and only where the
    agent may write (Landlock); point C(remote_tmp) at a writable path such as C(/tmp).
author: agentsec.nemoclaw contributors (@agentsec)
options:
  sandbox:
    description:
      - Sandbox name, substituted for C({sandbox}) in O(exec_prefix).
      - C(ansible_openshell_sandbox) wins over the inventory name (ansible-core takes the last of these variables that
        is set, and C(inventory_hostname) always is).
    type: str
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_openshell_sandbox
  exec_prefix:
    description: Command (a list) that runs its arguments inside the sandbox. C({sandbox}) is replaced by O(sandbox).
    type: list
    elements: str
    default: [openshell, sandbox, exec, -n, "{sandbox}", --]
    vars:
      - name: ansible_openshell_exec_prefix
  timeout:
    description: Seconds a single command may take.
    type: int
    default: 120
    vars:
      - name: ansible_openshell_timeout
notes:
  - "Privilege escalation is not supported: the point of the plugin is to act as the agent."
"""

import os
import shlex
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

display = Display()


class Connection(ConnectionBase):
    transport = "agentsec.nemoclaw.openshell"
    has_pipelining = True
    become_methods = frozenset()

    def _prefix(self):
        sandbox = self.get_option("sandbox")
        prefix = [part.replace("{sandbox}", str(sandbox)) for part in self.get_option("exec_prefix")]
        if prefix and os.path.basename(prefix[0]) == "ssh":
            raise AnsibleConnectionFailure(
                f"exec_prefix {prefix!r} starts with ssh: ssh joins its arguments and the remote shell splits them again, "
                "so `/bin/sh -c <command>` would not arrive intact; run the play on the sandbox host instead (delegate_to, "
                "or the verify role's host mode)")
        return prefix

    def _connect(self):
        self._connected = True
        return self

    def _run(self, argv, in_data=None):
        display.vvv(f"OPENSHELL EXEC {shlex.join(argv)}", host=self._play_context.remote_addr)
        try:
            proc = subprocess.run(argv, input=in_data, capture_output=True, timeout=self.get_option("timeout"), check=False)
        except FileNotFoundError as exc:
            raise AnsibleConnectionFailure(f"exec prefix command not found: {argv[0]!r} ({exc.strerror})") from exc
        except subprocess.TimeoutExpired as exc:
            raise AnsibleConnectionFailure(f"command in sandbox {self.get_option('sandbox')!r} timed out after {exc.timeout}s") from exc
        return proc.returncode, proc.stdout, proc.stderr

    def exec_command(self, cmd, in_data=None, sudoable=True):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        return self._run([*self._prefix(), "/bin/sh", "-c", cmd], in_data)

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        if not os.path.exists(to_bytes(in_path)):
            raise AnsibleFileNotFound(f"file to copy into the sandbox does not exist: {in_path}")
        with open(in_path, "rb") as fh:
            data = fh.read()
        rc, _out, err = self._run([*self._prefix(), "/bin/sh", "-c", f"cat > {shlex.quote(out_path)}"], data)
        if rc != 0:
            raise AnsibleError(f"failed to write {out_path} in the sandbox (rc={rc}): {err.decode(errors='replace').strip()}")

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        rc, out, err = self._run([*self._prefix(), "/bin/sh", "-c", f"cat {shlex.quote(in_path)}"])
        if rc != 0:
            raise AnsibleError(f"failed to read {in_path} from the sandbox (rc={rc}): {err.decode(errors='replace').strip()}")
        with open(out_path, "wb") as fh:
            fh.write(out)

    def close(self):
        self._connected = False
