#!/usr/bin/env python3
"""Build the "release assets" the fleet roles download (README.md, "Release assets") into OUTDIR.

    build_artifacts.py OUTDIR [--node-tarball PATH]

Every archive is byte-for-byte reproducible (fixed mtimes/owners, gzip mtime 0) and the NemoClaw git repository is
committed and tagged with a fixed identity and date, so checksums and the tag SHA are the same on every run.
Tools inside release archives are self-contained copies (_standin.py embedded, see _standin.bundle) because the
roles unpack them anywhere; the NemoClaw repository gets a copy of _standin.py in bin/ (next to bin/nemoclaw.js).
Prints the JSON index (also written to OUTDIR/index.json)."""
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
DEFAULT_OPENSHELL_CLI = HERE.parents[1] / "roles/lab/files/openshell/cli/openshell"
sys.path.insert(0, str(HERE))
import _standin as S  # noqa: E402

OPENSHELL_VERSIONS = ("0.0.25", "0.0.26", "0.0.37")
NEMOCLAW_VERSION = "0.0.21"  # the NemoClaw release the stand-in repository models (tag v0.0.21 = commit db3453b5)
OPENSHELL_TARGETS = ("x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl", "aarch64-apple-darwin")
OLLAMA_VERSION = "0.20.5"
DOCKER_DESKTOP_VERSION = "4.68.0"
HOMEBREW_VERSION = "4.6.0"
NODE_VERSION = "22.22.0"
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "agentsec stand-ins", "GIT_AUTHOR_EMAIL": "standins@agentsec.invalid",
                "GIT_AUTHOR_DATE": "2026-04-09T12:00:00+00:00", "GIT_COMMITTER_NAME": "agentsec stand-ins",
                "GIT_COMMITTER_EMAIL": "standins@agentsec.invalid", "GIT_COMMITTER_DATE": "2026-04-09T12:00:00+00:00"}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_tgz(dest: Path, members) -> None:
    """members: (name, bytes, mode); directories are implied. Fixed metadata -> reproducible bytes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = len(data), mode, 0, 0, 0, "", ""
            tar.addfile(info, io.BytesIO(data))
    with dest.open("wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
        gz.write(buf.getvalue())


def checksums(out: Path, files, listing: str, prefix: str = "") -> dict:
    """Write `<sha256>  <prefix><name>` lines for files (all in one directory) and return {relpath: sha256}."""
    sums = {f: sha256(f) for f in files}
    (files[0].parent / listing).write_text("".join(f"{h}  {prefix}{f.name}\n" for f, h in sums.items()))
    return {str(f.relative_to(out)): h for f, h in sums.items()}


def build_openshell(out: Path, cli: Path | None) -> dict:
    """openshell-<target>.tar.gz as install.sh @v0.0.26 unpacks them: the binary `openshell` at the top. The binary is
    the lab's OpenShell CLI stand-in (roles/lab/files/openshell/cli/openshell, stdlib only, real sandboxes through
    Docker); it reads its version from the .openshell-version file next to it."""
    index = {}
    script = cli.read_bytes() if cli else b""
    for version in OPENSHELL_VERSIONS:
        files = []
        for target in OPENSHELL_TARGETS:
            dest = out / "openshell" / f"v{version}" / f"openshell-{target}.tar.gz"
            if cli is None:  # --legacy-openshell: the state-only stand-in (tests/standins/bin/openshell), self-contained
                legacy = S.bundle(S.BIN / "openshell", {"openshell_version": version, "target": target}).encode()
                write_tgz(dest, [("openshell", legacy, 0o755), (".openshell-version", f"{version}\n".encode(), 0o644)])
                files.append(dest)
                continue
            # one binary per target, as in a real release (the target triple is stamped into the script)
            binary = script.replace(b'STAMPED_VERSION = "0.0.26"', f'STAMPED_VERSION = "{version}"'.encode(), 1)
            if f'STAMPED_VERSION = "{version}"'.encode() not in binary:
                raise SystemExit(f"{cli}: no STAMPED_VERSION line to stamp {version} into")
            binary += f"\n# release target: {target}\n".encode()
            write_tgz(dest, [("openshell", binary, 0o755), (".openshell-version", f"{version}\n".encode(), 0o644)])
            files.append(dest)
        index.update(checksums(out, files, "openshell-checksums-sha256.txt"))
    return index


def build_ollama(out: Path) -> dict:
    files = []
    for arch in ("amd64", "arm64"):
        script = S.bundle(S.BIN / "ollama", {"target": f"linux-{arch}"}).encode()
        dest = out / "ollama" / f"v{OLLAMA_VERSION}" / f"ollama-linux-{arch}.tgz"
        write_tgz(dest, [("bin/ollama", script, 0o755)])
        files.append(dest)
    return checksums(out, files, "sha256sum.txt", prefix="./")


def build_json_asset(out: Path, rel: str, product: str, version: str) -> dict:
    dest = out / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps({"product": product, "version": version}, sort_keys=True) + "\n")
    return checksums(out, [dest], f"{dest.name}.sha256")


def build_node(out: Path, tarball: Path) -> dict:
    dest = out / "node" / f"v{NODE_VERSION}" / f"node-v{NODE_VERSION}-linux-x64.tar.xz"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tarball, dest)
    return checksums(out, [dest], "SHASUMS256.txt")


def git(*args, cwd: Path, env: dict) -> str:
    res = subprocess.run(["git", *args], cwd=cwd, env=env, text=True, capture_output=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"build_artifacts.py: git {' '.join(args)} failed: {res.stderr.strip()}")
    return res.stdout.strip()


def build_nemoclaw(out: Path) -> dict:
    """nemoclaw-repo/ as a bare repository tagged v0.0.21. The tag carries the release: like NemoClaw at v0.0.21
    (package.json says 0.1.0 @db3453b5) the CLI takes its version from `git describe --tags` (src/lib/version.ts)."""
    source = HERE / "nemoclaw-repo"
    version = NEMOCLAW_VERSION
    bare = out / "nemoclaw.git"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "nemoclaw"
        shutil.copytree(source, work, ignore=shutil.ignore_patterns("node_modules", "dist", "__pycache__", ".version"))
        shutil.copyfile(HERE / "_standin.py", work / "bin" / "_standin.py")
        # A hermetic git: no user/system config (signing, hooks, autocrlf), fixed identity and dates.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C", **GIT_IDENTITY}
        git("init", "-q", "-b", "main", cwd=work, env=env)
        git("add", "-A", cwd=work, env=env)
        git("commit", "-q", "-m", f"NemoClaw {version} (agentsec stand-in)", cwd=work, env=env)
        git("tag", "-a", f"v{version}", "-m", f"NemoClaw v{version} (agentsec stand-in)", cwd=work, env=env)
        shutil.rmtree(bare, ignore_errors=True)
        git("clone", "-q", "--bare", str(work), str(bare), cwd=Path(tmp), env=env)
        git("remote", "remove", "origin", cwd=bare, env=env)
        git("update-server-info", cwd=bare, env=env)  # lets a plain static HTTP server serve it (dumb protocol)
        return {"repo": "nemoclaw.git", "version": version, "tag": f"v{version}",
                "tag_object": git("rev-parse", f"v{version}", cwd=bare, env=env),
                "commit": git("rev-parse", f"v{version}^{{commit}}", cwd=bare, env=env)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="build_artifacts.py", description=__doc__.splitlines()[0])
    p.add_argument("outdir", type=Path)
    p.add_argument("--node-tarball", type=Path, help="a Node.js tree tarball made by scripts/node_tarball.sh")
    p.add_argument("--openshell-cli", type=Path, default=DEFAULT_OPENSHELL_CLI,
                   help="the OpenShell CLI stand-in to package (default: the lab's, in the checkout)")
    p.add_argument("--legacy-openshell", action="store_true",
                   help="package the state-only OpenShell stand-in (tests/standins/bin/openshell) instead; only for the "
                        "tests not converted to the lab's real-sandbox CLI yet (test_secret_leak.py)")
    args = p.parse_args(argv)
    if shutil.which("git") is None:
        p.error("git is required to build nemoclaw.git")
    if args.node_tarball and not args.node_tarball.is_file():
        p.error(f"--node-tarball {args.node_tarball}: no such file")
    out = args.outdir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not args.openshell_cli.is_file():
        p.error(f"--openshell-cli {args.openshell_cli}: no such file")
    index = {"openshell": build_openshell(out, None if args.legacy_openshell else args.openshell_cli), "ollama": build_ollama(out),
             "docker": build_json_asset(out, f"docker/{DOCKER_DESKTOP_VERSION}/Docker.dmg", "Docker Desktop",
                                        DOCKER_DESKTOP_VERSION),
             "homebrew": build_json_asset(out, f"homebrew/{HOMEBREW_VERSION}/Homebrew-{HOMEBREW_VERSION}.pkg", "Homebrew",
                                          HOMEBREW_VERSION),
             "nemoclaw": build_nemoclaw(out)}
    if args.node_tarball:
        index["node"] = build_node(out, args.node_tarball)
    text = json.dumps(index, indent=2, sort_keys=True)
    (out / "index.json").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
