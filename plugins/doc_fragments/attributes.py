# Copyright: (c) 2026, agentsec.nemoclaw contributors
# Apache License 2.0 (see LICENSE)
"""Shared `attributes` documentation for the collection's modules."""

from __future__ import annotations


class ModuleDocFragment:
    # Use with: extends_documentation_fragment: [agentsec.nemoclaw.attributes, agentsec.nemoclaw.attributes.<kind>]
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
  action_group:
    description: Use C(group/agentsec.nemoclaw.nemoclaw) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - agentsec.nemoclaw.nemoclaw
"""

    # Modules that only read state (for example the verifier).
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    support: full
"""
