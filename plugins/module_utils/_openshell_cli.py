# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""The OpenShell CLI as the modules drive it: one place that runs a subcommand with the target's environment, reads
its structured output (`--output json`, run.rs @v0.0.111 L1959-2106 sandbox_to_json; openshell-current.md 3.2) and
lists the gateway's sandboxes. Used by sandbox_policy and openshell_sandbox; nothing here is specific to one of them.
The host-service lines (0.0.116, 0.1.x) list sandboxes as JSON; the k3s line's v0.0.26 CLI has no `--output` and
lists them with the target's discovery command (`sandbox list --names`, main.rs @v0.0.26 L1206-1222), one per line."""

from __future__ import annotations

import json
import os
import tempfile
import time

from ansible_collections.agentsec.nemoclaw.plugins.module_utils._fleet import strip_ansi


# The argument spec of the options doc fragment agentsec.nemoclaw.openshell_cli documents (openshell, environment).
ARGUMENT_SPEC = dict(
    openshell=dict(type="str", default="openshell"),
    environment=dict(type="dict", default={}),
)


def tail(out, err):
    """The end of what a failed command printed (stderr, else stdout), for an error message."""
    return (err or out).strip()[-600:]


class Cli:
    def __init__(self, module, binary, environment, names_command=None):
        """names_command: a whole argv printing one sandbox name per line (the target's sandbox.discover); empty means
        `<binary> sandbox list --output json`."""
        self.module, self.binary = module, binary
        self.env = {k: str(v) for k, v in environment.items()}
        self.env.setdefault("NO_COLOR", "1")
        self.names_command = list(names_command or [])

    def fail(self, msg, **extra):
        """How a failed step ends: the module fails. A subclass that handles its items one at a time (sandbox_policy)
        raises instead, so that the next item is still handled."""
        self.module.fail_json(msg=msg, **extra)

    def run(self, *args, check=True):
        rc, out, err = self.module.run_command([self.binary, *args], environ_update=self.env)
        if check and rc != 0:
            self.fail(f"`openshell {' '.join(args)}` exited {rc}: {tail(out, err)}", rc=rc)
        return rc, out, err

    def json(self, *args):
        _rc, out, _err = self.run(*args)
        try:
            return json.loads(out)
        except ValueError:
            self.fail(f"`openshell {' '.join(args)}` printed no JSON: {out[:300]!r}")
        return None

    def sandboxes_or_problem(self):
        """(names, None), or (None, why) when the gateway cannot list its sandboxes (no CLI, no gateway answering)."""
        argv = self.names_command or [self.binary, "sandbox", "list", "--output", "json"]
        try:
            rc, out, err = self.module.run_command(argv, environ_update=self.env, handle_exceptions=False)
        except OSError as exc:
            return None, f"{argv[0]}: {exc.strerror}"
        if rc != 0:
            return None, f"`{' '.join(argv)}` exited {rc}: {(err or out).strip()[-300:]}"
        if self.names_command:
            return [n for n in (strip_ansi(line).strip() for line in out.splitlines()) if n], None
        try:
            return [s["name"] for s in json.loads(out)], None
        except (ValueError, TypeError, KeyError):
            return None, f"`openshell sandbox list --output json` printed no sandbox list: {out[:300]!r}"

    def sandboxes(self):
        names, problem = self.sandboxes_or_problem()
        if problem:
            self.fail(problem)
        return names

    def sandboxes_for_plan(self):
        """(names, None); in check mode on a host whose gateway is not there yet (the roles before this one only
        simulated installing it) (None, why) with a warning, so the caller reports its plan instead of failing. A real
        run fails on the same problem."""
        if not self.module.check_mode:
            return self.sandboxes(), None
        present, problem = self.sandboxes_or_problem()
        if problem:
            self.module.warn(f"no gateway to read the sandboxes from ({problem}); in check mode that is expected before "
                             "the gateway is installed, a real run refuses it")
        return present, problem

    @staticmethod
    def with_policy_file(policy, fn):
        """fn(path) with the policy document in a private temporary file (JSON is YAML; the CLI reads YAML)."""
        fd, path = tempfile.mkstemp(prefix="agentsec-policy-", suffix=".yaml")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(policy, fh)
            return fn(path)
        finally:
            os.unlink(path)

    def create(self, name, image, *extra):
        """`sandbox create --name N [--from IMAGE] --detach --output json EXTRA...` -> (rc, out, err). --detach returns
        once the sandbox is Ready; without it the main process (`/bin/bash -l`) attaches (openshell-current.md 3.2,
        CLI of 0.0.116 and 0.1.x; openshell.md: --detach is on the CLI since v0.0.111)."""
        args = ["sandbox", "create", "--name", name, *(["--from", image] if image else []), "--detach", "--output", "json"]
        return self.run(*args, *extra, check=False)

    def delete(self, name, timeout):
        """`sandbox delete N`, then wait until the gateway no longer lists it: "deletion accepted" means the cleanup is
        still pending (openshell-current.md 3.2), and a sandbox of the same name cannot be created before it is gone."""
        self.run("sandbox", "delete", name)
        deadline = time.monotonic() + timeout
        while name in self.sandboxes():
            if time.monotonic() >= deadline:
                self.fail(f"sandbox {name!r} is still listed {timeout} s after `openshell sandbox delete`")
            time.sleep(1)
