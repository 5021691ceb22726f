# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Controller side of role verify in one task: reports, tables, fleet summary and the failure threshold.

Documentation: plugins/modules/verify_report.py. The report formats are the filters of plugins/filter/verify_report.py
(the one implementation); the severity rule of the threshold is sandbox_verify's own (module_utils/_verify.failing).
"""
from __future__ import annotations

import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.plugins.filter.core import to_nice_json
from ansible_collections.agentsec.nemoclaw.plugins.filter import verify_report as R
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _verify

ARGUMENT_SPEC = {
    "result_var": {"type": "str", "required": True},
    "connection_var": {"type": "str"},
    "report_dir": {"type": "path", "required": True},
    "hosts": {"type": "list", "elements": "str"},
    "fail_on": {"type": "str", "default": "high", "choices": ["none", "high", "any"]},
    "fail_on_error": {"type": "bool", "default": True},
}
# file name -> the filter chain that renders it (the role's report set, unchanged)
REPORTS = (
    ("verify.json", lambda results: to_nice_json(R.verify_json(results))),
    ("verify.junit.xml", R.verify_junit),
    ("verify.sarif", lambda results: to_nice_json(R.verify_sarif(results))),
    ("verify.txt", R.verify_text),
)


def is_pending(result, check_mode):
    """Check mode on a host not deployed yet: the role skipped sandbox_verify because the target's CLI is missing."""
    return bool(check_mode and isinstance(result, dict) and result.get("skipped") and not result.get("sandboxes"))


def host_failing(result, fail_on, fail_on_error):
    """Why this host fails the threshold (empty: it does not). `result` is its sandbox_verify result (host mode), or
    None when it has none. A host without a usable result fails when fail_on_error; findings marked residual never
    count; which findings count is sandbox_verify's own fail_on rule."""
    reasons = []
    if not isinstance(result, dict) or not result or result.get("unreachable"):
        msg = result.get("msg") if isinstance(result, dict) else None
        reasons.append(f"host unreachable: {msg or 'no result'}")
    elif result.get("errors"):
        reasons.extend(str(e) for e in result["errors"])
    elif result.get("skipped") and not result.get("sandboxes"):
        reasons.append("no result: sandbox_verify did not run (skipped)")
    elif not isinstance(result.get("sandboxes"), dict):  # the module did not get as far as the sandboxes (bad input)
        reasons.append(f"no result: {result.get('msg') or 'sandbox_verify returned no sandboxes'}")
    reasons = reasons if fail_on_error else []
    sandboxes = result.get("sandboxes") if isinstance(result, dict) else None
    findings = [f for sb in (sandboxes or {}).values() if isinstance(sb, dict) for f in sb.get("findings") or []]
    failing = list(dict.fromkeys(_verify.failing(findings, fail_on)))
    return reasons + [f"failing check {cid}" for cid in failing]


def write_reports(report_dir, results):
    """Write every report atomically (temporary file, then rename) and return the paths."""
    paths = []
    for name, render in REPORTS:
        path = os.path.join(report_dir, name)
        fd, tmp = tempfile.mkstemp(dir=report_dir, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(render(results))
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        paths.append(path)
    return paths


def ensure_dir(report_dir):
    """Create the report directory (0755, with parents) when missing; None when it can be written, else why not.
    An existing directory is left as it is (its mode is the operator's)."""
    try:
        os.makedirs(report_dir, mode=0o755, exist_ok=True)
    except OSError as exc:
        return exc.strerror or str(exc)
    if not os.path.isdir(report_dir):
        return "not a directory"
    if not os.access(report_dir, os.W_OK | os.X_OK):
        return "not writable"
    return None


def registered(hostvars, host, name):
    """The variable `name` of `host` ({} when the host or the variable is missing); one variable look-up per host."""
    if host not in hostvars:
        return {}
    variables = hostvars[host]
    return variables[name] if name in variables else {}


def outcome(hostvars, host, result_var, connection_var):
    """The result to report for `host`: what it registered in `result_var`, unless its earlier task registered in
    `connection_var` found the host unreachable (the probes were then skipped, and the reason is that task's)."""
    if connection_var:
        connection = registered(hostvars, host, connection_var)
        if isinstance(connection, dict) and connection.get("unreachable"):
            return connection
    return registered(hostvars, host, result_var)


def lines(text):
    return text.rstrip("\n").splitlines()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        host = task_vars.get("inventory_hostname")
        hosts = args["hosts"] if args["hosts"] is not None else list(task_vars.get("ansible_play_hosts_all") or [host])
        batch = list(task_vars.get("ansible_play_batch") or [host])
        check_mode = bool(self._task.check_mode)
        hostvars = task_vars.get("hostvars") or {}
        own = outcome({host: task_vars}, host, args["result_var"], args["connection_var"]) or None
        report_dir = args["report_dir"]

        why = ensure_dir(report_dir)  # on every host, so a directory that cannot be written fails each of them
        if why:
            raise AnsibleActionFail(f"report_dir {report_dir} cannot be written ({why}); choose another directory "
                                    "(role verify: -e nemoclaw_report_dir=PATH)")
        result["changed"] = False  # a report is the controller's record of this run, not a change to any host
        result["tables"] = lines(R.verify_text(R.verify_flatten({host: own or {}})))
        if batch and host == batch[0]:
            fleet = R.verify_flatten({h: outcome(hostvars, h, args["result_var"], args["connection_var"]) for h in hosts})
            try:
                result["reports"] = write_reports(report_dir, fleet)
            except OSError as exc:
                raise AnsibleActionFail(f"report_dir {report_dir} cannot be written ({exc.strerror or exc})") from exc
            result["summary"] = lines(R.verify_fleet_summary(fleet))
        result["pending"] = is_pending(own, check_mode)
        if result["pending"]:
            result["failing"] = []
            result["msg"] = f"{host}: not verified - the target is not deployed yet (check mode); its sandboxes are verified once deployed"
        else:
            result["failing"] = host_failing(own, args["fail_on"], args["fail_on_error"])
            if result["failing"]:
                result["failed"] = True
                result["msg"] = f"{host}: {'; '.join(result['failing'])}"
            else:
                result["msg"] = f"{host}: no check fails the threshold fail_on={args['fail_on']}"
        result["_ansible_verbose_always"] = True  # the tables and the summary are the point of this task, like debug's
        return result
