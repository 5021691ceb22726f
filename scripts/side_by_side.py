"""Print the before/after verification tables of `make lab` side by side, like the paper's Tables 3 and 4."""
import json
import sys

LAYERS = [("L1", "Filesystem"), ("L2", "Seccomp"), ("L3", "Network"), ("L4", "Policy (L4)"), ("L5", "TLS (L7)"), ("L6", "Inference")]


def cell(host, layer):
    if host is None or host.get("state") != "OK":
        return (host or {}).get("state", "missing")
    s = host["layers"].get(layer)
    return f"{s['result']} ({s['passed']}/{s['total']})" if s else "-"


def main(before_path, after_path):
    with open(before_path, encoding="utf-8") as fh:
        before = json.load(fh)["hosts"]
    with open(after_path, encoding="utf-8") as fh:
        after = json.load(fh)["hosts"]
    ok = True
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name), after.get(name)
        print(f"\nSandbox {name}")
        print(f"  {'Layer':<16} {'before (v0.0.26 profile)':<26} {'after hardening':<20}")
        for layer, title in LAYERS:
            print(f"  {layer + ': ' + title:<16} {cell(b, layer):<26} {cell(a, layer):<20}")
            ok = ok and cell(a, layer).startswith("PASS")
        if a and a.get("failed_checks"):
            print(f"  still failing after hardening: {', '.join(a['failed_checks'])}")
    print("\nall six layers pass after hardening" if ok else "\nNOT every layer passes after hardening")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
