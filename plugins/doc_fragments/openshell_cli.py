# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Options of the modules that drive a host-service line's OpenShell CLI (module_utils/_openshell_cli)."""

from __future__ import annotations


class ModuleDocFragment:
    # Use with: extends_documentation_fragment: [agentsec.nemoclaw.openshell_cli]
    DOCUMENTATION = r"""
options:
  openshell:
    description: The OpenShell CLI (the target contract's C(openshell.bin)).
    type: str
    default: openshell
  environment:
    description: Environment for the CLI (the target contract's C(openshell.environment)); nothing secret belongs here.
    type: dict
    default: {}
"""
