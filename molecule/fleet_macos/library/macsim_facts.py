#!/usr/bin/python
# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Test-only module of the fleet_macos scenario (and tests/integration/test_fleet_inputs.py): presents the host as
macOS on Apple Silicon by returning the platform facts a Mac Studio reports (the roles dispatch on them), keeping the
real user facts. `machine` and `system` let a test play an Intel Mac or an unsupported system."""

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: macsim_facts
short_description: Report macOS on Apple Silicon facts (molecule fleet_macos only)
options:
  machine:
    description: ansible_facts.machine to report (arm64 for Apple Silicon, x86_64 for an Intel Mac).
    type: str
    default: arm64
  system:
    description: ansible_facts.system to report.
    type: str
    default: Darwin
"""


def main():
    module = AnsibleModule(argument_spec={"machine": {"type": "str", "default": "arm64"},
                                          "system": {"type": "str", "default": "Darwin"}}, supports_check_mode=True)
    machine, system = module.params["machine"], module.params["system"]
    module.exit_json(changed=False, ansible_facts={
        "system": system, "os_family": system, "distribution": "MacOSX", "distribution_version": "26.4.1",
        "distribution_major_version": "26", "machine": machine, "architecture": machine, "kernel": "25.4.0",
    })


if __name__ == "__main__":
    main()
