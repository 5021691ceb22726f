#!/usr/bin/env python3
"""Build the stand-in "release assets" of OpenShell 0.0.116 / 0.1.x the roles install from (served on loopback):

  OUTDIR/v<version>/openshell_<version>-1_amd64.deb        dpkg-deb --build --root-owner-group, like
                                                           tasks/scripts/package-deb.sh @111 L99-166
  OUTDIR/v<version>/openshell.rb                           the Homebrew formula (shape of tasks/scripts/release.py @111
                                                           L238-404 render_homebrew_formula; 0.1.x: + prover
                                                           resource, schema v2 seed, release_formula_test.py 0.1.5)
  OUTDIR/v<version>/openshell-aarch64-apple-darwin.tar.gz, openshell-gateway-aarch64-apple-darwin.tar.gz,
  openshell-driver-vm-aarch64-apple-darwin.tar.gz (+ openshell-prover-... for 0.1.x)
  OUTDIR/v<version>/openshell-checksums-sha256.txt (+ openshell-gateway-/openshell-prover-checksums-sha256.txt)
                                                           `<sha256>  <file>` lines (install.sh @111 L616-630)

The payload is the stand-in tree of this directory's parent (cli/, gateway/, lib/, supervisor-*/) plus, imported
unmodified at build time, the lab's v0.0.26 proxy (roles/lab/files/openshell/supervisor/proxy.py) and the
collection's seccomp_launcher.py. The formula carries a `# agentsec-standin:` JSON line that the Homebrew stand-in
(tests/standins/homebrew/bin/brew) executes; the Ruby around it is never run. Reproducible (fixed mtimes).
Usage: build.py OUTDIR --version 0.0.116 [--version 0.1.5]
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent  # roles/lab/files/openshell-host
COLLECTION = ROOT.parents[3]
LAB_PROXY = COLLECTION / "roles/lab/files/openshell/supervisor/proxy.py"
LAUNCHER = COLLECTION / "plugins/module_utils/seccomp_launcher.py"
MTIME = 1_780_000_000
LIB_FILES = ("osh_standin.py", "gateway_config.py", "policy_model.py", "docker_driver.py")
SUPERVISOR_EXTRA = {"supervisor-0.0": (LAB_PROXY, LAUNCHER), "supervisor-0.1": (LAUNCHER,)}

UNIT_V0 = """[Unit]
Description=OpenShell Gateway
Documentation=https://github.com/NVIDIA/OpenShell
After=default.target

[Service]
Type=simple
StateDirectory=openshell/gateway
Environment=OPENSHELL_LOCAL_TLS_DIR=%h/.local/state/openshell/tls
EnvironmentFile=-%E/openshell/gateway.env
ExecStartPre=/usr/bin/openshell-gateway generate-certs --output-dir ${OPENSHELL_LOCAL_TLS_DIR} --server-san host.openshell.internal
ExecStart=/usr/bin/openshell-gateway
Restart=on-failure
RestartSec=5s
PrivateTmp=true
UMask=0077

[Install]
WantedBy=default.target
"""  # deploy/deb/openshell-gateway.service @111, byte for byte in content


def unit_for(version: str) -> str:
    if not is_v01(version):
        return UNIT_V0
    # 0.1.5 wheel release_formula_test.py L188-249: preflight before generate-certs, no --config / --db-url
    return UNIT_V0.replace("ExecStartPre=/usr/bin/openshell-gateway generate-certs",
                           "ExecStartPre=/usr/bin/openshell-gateway config preflight\n"
                           "ExecStartPre=/usr/bin/openshell-gateway generate-certs")


def is_v01(version: str) -> bool:
    return tuple(int(x) for x in version.split(".")[:3]) >= (0, 1, 0)


def lib_tree(version: str, platform: str) -> dict[str, tuple[bytes, int]]:
    """relative path under lib/openshell-standin -> (bytes, mode)."""
    out = {f: ((ROOT / "lib" / f).read_bytes(), 0o644) for f in LIB_FILES}
    out["VERSION"] = (f"{version}\n".encode(), 0o644)
    out["PLATFORM"] = (f"{platform}\n".encode(), 0o644)
    for sup in ("supervisor-0.0", "supervisor-0.1"):
        for path in sorted((ROOT / sup).iterdir()):
            if path.is_file() and not path.name.endswith(".pyc"):
                out[f"{sup}/{path.name}"] = (path.read_bytes(), 0o755)
        for extra in SUPERVISOR_EXTRA[sup]:
            out[f"{sup}/{extra.name}"] = (extra.read_bytes(), 0o755)
    return out


def write_tree(base: Path, files: dict[str, tuple[bytes, int]]):
    for rel, (data, mode) in files.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, mode)
        os.utime(path, (MTIME, MTIME))


def build_deb(version: str, out: Path) -> Path:
    debver = f"{version}-1"
    with tempfile.TemporaryDirectory() as tmp:
        pkg = Path(tmp) / "pkg"
        files = {f"usr/lib/openshell-standin/{k}": v for k, v in lib_tree(version, "linux").items()}
        files["usr/bin/openshell"] = ((ROOT / "cli/openshell").read_bytes(), 0o755)
        files["usr/bin/openshell-gateway"] = ((ROOT / "gateway/openshell-gateway").read_bytes(), 0o755)
        files["usr/lib/systemd/user/openshell-gateway.service"] = (unit_for(version).encode(), 0o644)
        files["DEBIAN/control"] = ((
            f"Package: openshell\nVersion: {debver}\nArchitecture: amd64\n"
            "Maintainer: agentsec stand-ins <standins@agentsec.invalid>\nSection: utils\nPriority: optional\n"
            "Depends: python3, python3-yaml, python3-cryptography\nHomepage: https://github.com/NVIDIA/OpenShell\n"
            "Description: Stand-in of the OpenShell package (agentsec.nemoclaw tests)\n"
            " openshell CLI, openshell-gateway daemon and the per-user systemd unit, played by Python stand-ins.\n"
        ).encode(), 0o644)
        # deploy/deb/postinst.sh @111: only a daemon-reload of running managers; the user unit is enabled per user
        files["DEBIAN/postinst"] = (b"#!/bin/sh\nset -e\nif [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; "
                                    b"then systemctl daemon-reload >/dev/null 2>&1 || true; fi\nexit 0\n", 0o755)
        write_tree(pkg, files)
        path = out / f"openshell_{debver}_amd64.deb"
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(MTIME)}
        subprocess.run(["dpkg-deb", "--build", "--root-owner-group", "-Zgzip", str(pkg), str(path)], check=True,
                       capture_output=True, env=env)
    return path


def tarball(path: Path, files: dict[str, tuple[bytes, int]]):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(files):
            data, mode = files[rel]
            info = tarfile.TarInfo(rel)
            info.size, info.mode, info.mtime, info.uname, info.gname = len(data), mode, MTIME, "root", "root"
            tar.addfile(info, io.BytesIO(data))
    with open(path, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
        gz.write(buf.getvalue())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def formula(version: str, sums: dict[str, str], base_url: str) -> str:
    """The formula text. The JSON directive tells the Homebrew stand-in what the Ruby below it does."""
    v01 = is_v01(version)
    resources = {"openshell-gateway": "openshell-gateway-aarch64-apple-darwin.tar.gz",
                 "openshell-driver-vm": "openshell-driver-vm-aarch64-apple-darwin.tar.gz"}
    if v01:
        resources["openshell-prover"] = "openshell-prover-aarch64-apple-darwin.tar.gz"
    seed = "[openshell]\nversion = 2\n\n[openshell.gateway]\n" if v01 else "[openshell]\nversion = 1\n\n[openshell.gateway]\n"
    legacy = ["[openshell]\nversion = 1\n\n[openshell.gateway]\nbind_address = \"[::1]:17670\"\n"]
    if v01:
        legacy.insert(0, "[openshell]\nversion = 1\n\n[openshell.gateway]\n")
    directive = {"name": "openshell", "version": version,
                 "url": f"{base_url}/openshell-aarch64-apple-darwin.tar.gz", "sha256": sums["openshell-aarch64-apple-darwin.tar.gz"],
                 "resources": {k: {"url": f"{base_url}/{v}", "sha256": sums[v]} for k, v in resources.items()},
                 "bin": ["openshell", "openshell-gateway"] + (["openshell-prover"] if v01 else []),
                 "libexec": ["openshell-driver-vm"], "lib": "lib/openshell-standin",
                 "post_install": {"generate_certs": "var/openshell/tls", "gateway_config": "var/openshell/gateway.toml",
                                  "gateway_config_contents": seed, "legacy_contents": legacy,
                                  "mkpath": ["var/openshell/gateway", "var/openshell/vm-driver", "var/log/openshell"]},
                 "service": {"run": "opt/libexec/openshell-gateway-homebrew-service", "keep_alive": {"SuccessfulExit": False},
                             "log_path": "var/log/openshell/openshell-gateway.out.log",
                             "error_log_path": "var/log/openshell/openshell-gateway.err.log"}}
    ruby_resources = "".join(f'\n  resource "{k}" do\n    url "{base_url}/{v}"\n    sha256 "{sums[v]}"\n  end\n'
                             for k, v in resources.items())
    return f"""# SPDX-License-Identifier: Apache-2.0
# Stand-in of the OpenShell {version} Homebrew formula (shape: tasks/scripts/release.py @v0.0.111
# render_homebrew_formula; 0.1.x: release_formula_test.py in the 0.1.5 wheel). Never run by Ruby here.
# agentsec-standin: {json.dumps(directive, sort_keys=True)}

class Openshell < Formula
  desc "Safe, private runtime for autonomous AI agents"
  homepage "https://github.com/NVIDIA/OpenShell"
  url "{directive['url']}"
  sha256 "{directive['sha256']}"
  version "{version}"
  license "Apache-2.0"

  depends_on macos: :big_sur
  depends_on arch: :arm64
{ruby_resources}
  def install
    bin.install "openshell"
    resource("openshell-gateway").stage do
      bin.install "openshell-gateway"
    end
{'    resource("openshell-prover").stage do' + chr(10) + '      bin.install "openshell-prover"' + chr(10) + '    end' + chr(10) if v01 else ''}  end

  def post_install
    gateway_config = var/"openshell/gateway.toml"
    gateway_config_contents = <<~TOML
{''.join('      ' + line + chr(10) for line in seed.splitlines())}    TOML
    unless gateway_config.exist?
      gateway_config.write gateway_config_contents
    end
    entitlements = var/"openshell/openshell-driver-vm.entitlements.plist"
    entitlements.write <<~XML
      <plist version="1.0"><dict><key>com.apple.security.hypervisor</key><true/></dict></plist>
    XML
  end

  service do
    run opt_libexec/"openshell-gateway-homebrew-service"
    keep_alive successful_exit: false
    log_path var/"log/openshell/openshell-gateway.out.log"
    error_log_path var/"log/openshell/openshell-gateway.err.log"
  end

  def caveats
    <<~EOS
      Start or restart the local gateway with:
        brew services restart openshell

      Register it with the OpenShell CLI:
        openshell gateway add https://localhost:17670 --local --name openshell
    EOS
  end
end
"""


def build_macos(version: str, out: Path, base_url: str) -> None:
    lib = {f"lib/openshell-standin/{k}": v for k, v in lib_tree(version, "darwin").items()}
    cli = {"openshell": ((ROOT / "cli/openshell").read_bytes(), 0o755), **lib}
    gateway = {"openshell-gateway": ((ROOT / "gateway/openshell-gateway").read_bytes(), 0o755)}
    vm = {"openshell-driver-vm": (b"#!/bin/sh\necho 'openshell-driver-vm stand-in: the VM driver is not emulated' >&2\nexit 1\n",
                                  0o755)}
    bundles = {"openshell-aarch64-apple-darwin.tar.gz": cli, "openshell-gateway-aarch64-apple-darwin.tar.gz": gateway,
               "openshell-driver-vm-aarch64-apple-darwin.tar.gz": vm}
    if is_v01(version):
        bundles["openshell-prover-aarch64-apple-darwin.tar.gz"] = {
            "openshell-prover": (f"#!/bin/sh\necho 'openshell-prover {version}'\n".encode(), 0o755)}
    sums = {}
    for name, files in bundles.items():
        tarball(out / name, files)
        sums[name] = sha256(out / name)
    (out / "openshell.rb").write_text(formula(version, sums, base_url))
    sums["openshell.rb"] = sha256(out / "openshell.rb")
    main = [n for n in sums if not n.startswith(("openshell-gateway-", "openshell-prover-"))]
    with open(out / "openshell-checksums-sha256.txt", "a", encoding="ascii") as fh:
        fh.writelines(f"{sums[n]}  {n}\n" for n in sorted(main))
    for product in ("gateway", "prover"):
        names = [n for n in sums if n.startswith(f"openshell-{product}-")]
        if names:
            (out / f"openshell-{product}-checksums-sha256.txt").write_text("".join(f"{sums[n]}  {n}\n" for n in sorted(names)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="build.py")
    p.add_argument("outdir")
    p.add_argument("--version", action="append", required=True)
    p.add_argument("--base-url", default="http://127.0.0.1:8765/openshell",
                   help="where the release directories will be served (the formula's resource URLs)")
    args = p.parse_args(argv)
    index = {}
    for version in args.version:
        out = Path(args.outdir) / f"v{version}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        deb = build_deb(version, out)
        (out / "openshell-checksums-sha256.txt").write_text(f"{sha256(deb)}  {deb.name}\n")
        build_macos(version, out, f"{args.base_url}/v{version}")
        index[version] = {f.name: sha256(f) for f in sorted(out.iterdir())}
    (Path(args.outdir) / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True))
    json.dump(index, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
