#!/usr/bin/python
# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
# Documentation only: the work is done on the controller by the action plugin plugins/action/verify_report.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: verify_report
short_description: Write the verification reports, show the tables and the fleet summary, and apply the failure threshold
version_added: 0.1.0
description:
  - The controller half of role C(agentsec.nemoclaw.verify) in one task, after M(agentsec.nemoclaw.sandbox_verify)
    registered its result on every host of the play under O(result_var).
  - On every host it runs on, it returns that host's tables (one per sandbox, like the paper's Table 4) and applies
    the failure threshold to that host alone, so each host passes or fails on its own findings.
  - On one host of the batch (the first of C(ansible_play_batch)) it also writes the JSON, JUnit XML, SARIF and text
    reports for all of O(hosts) into O(report_dir) on the controller and returns the fleet summary. The reports are
    written before any host is failed, and also in check mode.
  - Writing a report is never reported as C(changed) - a report is the controller's record of the run (timestamps and
    durations differ every time), not a change to any host - so a converged fleet shows C(changed=0).
  - A host without a usable result fails the threshold when O(fail_on_error) is true - unreachable, discovery failed,
    no sandbox found, a sandbox that did not answer, or a module that stopped before the sandboxes (a bad option).
    The exception is check mode on a host not deployed yet, where the role skipped the verifier because the target's
    CLI is missing; such a host is reported as not verified and does not fail.
  - Findings marked C(residual) (open by design of the target, with the reason) are reported but never counted.
  - Runs on the controller only; it does not connect to the host. Needs the C(linear) strategy (the default), so that
    every host's result is registered before the reports are written.
author: agentsec.nemoclaw contributors (@agentsec)
extends_documentation_fragment:
  - agentsec.nemoclaw.attributes
options:
  result_var:
    description:
      - Name of the variable each host registered its M(agentsec.nemoclaw.sandbox_verify) result (host mode) in.
      - Hosts without the variable are reported as having no result.
    type: str
    required: true
  connection_var:
    description:
      - Name of the variable each host registered an earlier task's result in, a task run with C(ignore_unreachable)
        (role verify - the fact-gathering task its target needs).
      - A host whose result there is unreachable is reported unreachable with that task's message, whatever
        O(result_var) holds (the probes were skipped). Omitted, only O(result_var) is read.
    type: str
  report_dir:
    description:
      - Directory on the controller for C(verify.json), C(verify.junit.xml), C(verify.sarif) and C(verify.txt).
      - Created with mode C(0755), parents included, when missing; an existing directory is left as it is. A path
        that is not a writable directory fails every host of the task.
    type: path
    required: true
  hosts:
    description: Hosts the reports cover. Default C(ansible_play_hosts_all), every host of the play.
    type: list
    elements: str
  fail_on:
    description:
      - Which findings fail a host, the rule of M(agentsec.nemoclaw.sandbox_verify)'s O(agentsec.nemoclaw.sandbox_verify#module:fail_on).
      - V(none) no finding, V(high) failing checks of severity high or critical, V(any) failing or erroring checks.
    type: str
    choices: [none, high, any]
    default: high
  fail_on_error:
    description: Fail a host that has no usable result (see the description), except check mode on a host not deployed yet.
    type: bool
    default: true
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
  async:
    description: Supports being used with the C(async) keyword.
    support: none
  bypass_host_loop:
    description: Forces a 'global' task that does not execute per host; this bypasses per host templating and serial.
    support: none
    details:
      - It runs per host (each host gets its own verdict); one host of the batch also writes the reports for all.
  check_mode:
    support: full
    details:
      - The reports are written in check mode too (the controller's record of the run); nothing changes on any host.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - The report files are rewritten every run and never reported as changed.
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    details:
      - Runs on the controller only (POSIX); the hosts' platform does not matter.
    platforms: posix
notes:
  - The report formats are the filters C(agentsec.nemoclaw.verify_flatten), C(verify_json), C(verify_junit),
    C(verify_sarif), C(verify_text) and C(verify_fleet_summary) (plugins/filter/verify_report.py), applied to the
    results of all O(hosts).
  - Each report is written to a temporary file in O(report_dir) and renamed into place, so a reader never sees half a
    report.
seealso:
  - module: agentsec.nemoclaw.sandbox_verify
  - name: docs/verify.md
    description: Check catalogue, vantage rules and report formats.
    link: https://github.com/agentsec/nemoclaw/blob/main/docs/verify.md
"""

EXAMPLES = r"""
- name: Verify every sandbox of the host (probes piped through the target's exec command)
  agentsec.nemoclaw.sandbox_verify:
    exec: "{{ lookup('agentsec.nemoclaw.target', 'sandbox.exec') }}"
    discover: "{{ lookup('agentsec.nemoclaw.target', 'sandbox.discover') }}"
    fail_on: none
  register: verify_result
  ignore_unreachable: true
  failed_when: false

- name: Write the reports, show the tables and the fleet summary, apply the threshold
  agentsec.nemoclaw.verify_report:
    result_var: verify_result
    report_dir: "{{ playbook_dir }}/reports/verify"
    fail_on: high
"""

RETURN = r"""
msg:
  description: "The verdict for this host: C(<host>: failing check <id>; ...) when it fails the threshold."
  returned: always
  type: str
  sample: "mac01: failing check L1.landlock"
failing:
  description: Why this host fails the threshold (missing results and failing checks); empty when it passes.
  returned: always
  type: list
  elements: str
  sample: ["failing check L1.landlock"]
pending:
  description: Check mode on a host not deployed yet (the verifier was skipped); such a host is not failed.
  returned: always
  type: bool
tables:
  description: This host's tables, one per sandbox (or why it has none), as lines.
  returned: always
  type: list
  elements: str
summary:
  description: The fleet summary (hosts x layers) of all O(hosts), as lines.
  returned: on the host that wrote the reports
  type: list
  elements: str
reports:
  description: Paths of the reports written.
  returned: on the host that wrote the reports
  type: list
  elements: path
  sample: [/home/op/reports/verify/verify.json, /home/op/reports/verify/verify.junit.xml]
"""
