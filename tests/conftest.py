"""Install ansible-core's collection loader before any test imports the collection, as ansible-test does,
so modules, module_utils and plugins load through `ansible_collections.agentsec.nemoclaw` exactly as in a run."""
import pathlib

from ansible.plugins.loader import init_plugin_loader

COLLECTIONS = pathlib.Path(__file__).resolve().parents[1] / ".build" / "collections"
init_plugin_loader([str(COLLECTIONS)])
