"""Where downloaded target parts live (kernel images): one cache directory per user.

`CONFORMANCE_CACHE` overrides the default `~/.cache/conformance`. Kernels unpacked by
`conformance setup --vm` go to `<cache>/kernels/<debian-arch>/`, holding `vmlinuz` and a
`VERSION` file (package name and version), so VM target configs can name them.
"""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache directory (not created here)."""
    override = os.environ.get("CONFORMANCE_CACHE")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "conformance"


def kernel_dir(debian_arch: str) -> Path:
    """Where the Debian kernel for `debian_arch` (arm64, amd64) is unpacked."""
    return cache_dir() / "kernels" / debian_arch
