"""Why a test that runs the base image the tests build cannot run here (helper, no tests here): no docker CLI, no
engine answering, or the image missing - each with the command that fixes it. None when it can run."""
from __future__ import annotations

import os
import shutil
import subprocess

BASE_IMAGE = os.environ.get("AGENTSEC_BASE_IMAGE", "debian:bookworm-slim")


def base_image_problem(image: str = BASE_IMAGE) -> str | None:
    if not shutil.which("docker"):
        return "docker CLI not installed"
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode:
        return "no Docker engine answers (scripts/test.sh starts one: source scripts/lib.sh; ensure_docker)"
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False).returncode:
        return f"{image} missing (source scripts/lib.sh; ensure_base_image)"
    return None
