"""Save images of this machine's Docker into one `docker load` archive under the names a registry would serve them as.

    registry_archive.py OUT IMAGE[=ALIAS[,ALIAS...]] ...

A fleet scenario's machine has no registry: the OpenShell CLI stand-in "pulls" a missing cluster image by loading the
machine's image archive (its `image_archive` setting, roles/lab/files/openshell/cli/openshell ensure_image). A real
`openshell gateway start` pulls ghcr.io/nvidia/openshell/cluster:<version> and runs it under that name, which the
openshell_cluster role then compares with its pin (`Config.Image`); so the stand-in cluster image is put into the
archive under that name too (ALIAS), without tagging anything in this machine's Docker. The archive is the format
`docker save` writes (manifest.json `RepoTags`, the legacy `repositories` file); only those two members change.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path


def parse(specs: list[str]) -> dict[str, list[str]]:
    out = {}
    for spec in specs:
        image, _sep, aliases = spec.partition("=")
        out[image] = [a for a in aliases.split(",") if a]
    return out


def retag(manifest: list, repositories: dict, aliases: dict[str, list[str]]) -> None:
    for entry in manifest:
        for tag in list(entry.get("RepoTags") or []):
            for alias in aliases.get(tag, []):
                if alias not in entry["RepoTags"]:
                    entry["RepoTags"].append(alias)
                repo, _sep, version = alias.rpartition(":")
                source_repo, _sep, source_version = tag.rpartition(":")
                layer = repositories.get(source_repo, {}).get(source_version)
                if layer:
                    repositories.setdefault(repo, {})[version] = layer


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.splitlines()[2].strip(), file=sys.stderr)
        return 2
    out, aliases = Path(argv[0]), parse(argv[1:])
    with tempfile.TemporaryDirectory(prefix="registry-archive-", dir=out.parent) as tmp:
        saved = Path(tmp) / "saved.tar"
        res = subprocess.run(["docker", "save", "-o", str(saved), *aliases], capture_output=True, text=True, check=False)
        if res.returncode:
            print(f"docker save {' '.join(aliases)}: {res.stderr.strip()}", file=sys.stderr)
            return 1
        with tarfile.open(saved) as src:
            manifest = json.load(src.extractfile("manifest.json"))
            try:
                repositories = json.load(src.extractfile("repositories"))
            except KeyError:
                repositories = {}
            retag(manifest, repositories, aliases)
            replaced = {"manifest.json": json.dumps(manifest).encode(), "repositories": json.dumps(repositories).encode()}
            partial = out.with_suffix(out.suffix + ".partial")
            with tarfile.open(partial, "w") as dst:
                for member in src:
                    if member.name in replaced:
                        member.size = len(replaced[member.name])
                        dst.addfile(member, io.BytesIO(replaced.pop(member.name)))
                    else:
                        dst.addfile(member, src.extractfile(member) if member.isfile() else None)
            partial.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
