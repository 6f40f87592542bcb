"""`conformance setup`: install what the targets need on a Debian machine, idempotently.

Without `--vm` that is qemu-user; with `--vm` also qemu-system for both ISAs and one Debian
cloud kernel per ISA, unpacked into `targets.cache.kernel_dir(arch)`. Both kernels must be the
same version, so that a divergence between the VM targets is never a kernel difference.
Every external command goes through `run` (tests replace it); `--dry-run` runs only read-only
queries and prints the commands that would change the machine.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from targets.cache import kernel_dir

EXIT_OK, EXIT_CANNOT_INSTALL = 0, 3
USER_PACKAGES = ("qemu-user",)
VM_PACKAGES = ("qemu-system-arm", "qemu-system-x86")
KERNEL_ARCHES = ("arm64", "amd64")
APT_INSTALL = ("apt-get", "install", "-y", "--no-install-recommends")


class SetupError(Exception):
    """Something could not be installed; the message says what and why."""


def run(cmd: list[str], *, out=print, cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run one external command, echoing it as `$ cmd`; a missing program is status 127."""
    out("$ " + shlex.join(cmd))
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        return subprocess.CompletedProcess(cmd, 127, "", f"{cmd[0]}: command not found")


class Setup:
    """One setup run: the dry-run switch, where output goes, and the summary so far."""

    def __init__(self, dry_run: bool, out=print):
        self.dry_run, self.out = dry_run, out
        self.summary: list[tuple[str, str]] = []
        self.updated = False
        self.root_arches: list[str] = []  # what a root user must do, when this process is not root
        self.root_packages: list[str] = []

    def query(self, *cmd: str) -> subprocess.CompletedProcess:
        """Run a read-only command (also in a dry run)."""
        return run(list(cmd), out=self.out)

    def change(self, *cmd: str, cwd: str | None = None) -> None:
        """Run a command that changes the machine, or only print it in a dry run."""
        if self.dry_run:
            self.out(f"$ {shlex.join(cmd)}    # dry run: not run")
            return
        result = run(list(cmd), out=self.out, cwd=cwd)
        if result.returncode:
            detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise SetupError(f"`{shlex.join(cmd)}` failed with status {result.returncode}: {detail}")

    def root_commands(self) -> list[str]:
        """The commands, in order, that a root user must run for what this run could not do."""
        commands = [f"sudo dpkg --add-architecture {a}" for a in self.root_arches]
        if self.root_arches or self.root_packages:
            commands.append("sudo apt-get update")
        if self.root_packages:
            commands.append("sudo " + shlex.join(APT_INSTALL + tuple(self.root_packages)))
        return commands

    def apt_update(self) -> None:
        """`apt-get update`, at most once per run."""
        if not self.updated:
            self.change("apt-get", "update")
            self.updated = True


def root_missing() -> str | None:
    """Why this process cannot change installed packages, or None if it can."""
    return None if os.geteuid() == 0 else "installing packages needs root"


def installed(setup: Setup, package: str) -> bool:
    """Whether dpkg reports `package` as installed."""
    result = setup.query("dpkg-query", "-W", "-f=${Status}", package)
    return result.returncode == 0 and result.stdout.strip() == "install ok installed"


def parse_depends(text: str) -> str:
    """The linux-image-<abi>-... package that `apt-cache depends` says a metapackage needs."""
    for line in text.splitlines():
        match = re.match(r"\s*Depends:\s*(linux-image-\S+)", line)
        if match:
            return match.group(1).split(":")[0]  # the native arch prints no `:arch` suffix
    raise SetupError(f"no linux-image dependency in apt-cache output: {text.strip()!r}")


def kernel_abi(package: str) -> str:
    """The ABI part of a kernel package name: linux-image-6.1.0-56-cloud-arm64 -> 6.1.0-56."""
    match = re.match(r"linux-image-(\d+\.\d+\.\d+-\d+)-", package)
    if not match:
        raise SetupError(f"cannot read a kernel ABI from package name {package!r}")
    return match.group(1)


def parse_candidate(text: str) -> str | None:
    """The Candidate version in `apt-cache policy` output, or None if there is none."""
    match = re.search(r"^\s*Candidate:\s*(\S+)", text, re.M)
    return match.group(1) if match and match.group(1) != "(none)" else None


def resolve_kernels(setup: Setup) -> dict[str, tuple[str, str]]:
    """Package name and version of the cloud kernel per arch; refuses differing versions."""
    found = {}
    for arch in KERNEL_ARCHES:
        meta = f"linux-image-cloud-{arch}:{arch}"
        result = setup.query("apt-cache", "depends", meta)
        if result.returncode:
            raise SetupError(f"apt-cache knows no {meta} (is {arch} a dpkg architecture?)")
        package = parse_depends(result.stdout)
        version = parse_candidate(setup.query("apt-cache", "policy", f"{package}:{arch}").stdout)
        if version is None:
            raise SetupError(f"no installable version of {package}:{arch}")
        found[arch] = (package, version)
    keys = {(kernel_abi(p), v) for p, v in found.values()}
    if len(keys) > 1:
        both = " and ".join(f"{p} {v} ({a})" for a, (p, v) in found.items())
        raise SetupError(f"kernel versions differ between arches: {both}; the suite needs "
                         "the same kernel on both (wait for the mirror to catch up)")
    return found


def install_kernel(setup: Setup, arch: str, package: str, version: str) -> str:
    """Download and unpack one kernel into kernel_dir(arch) unless already there; the status."""
    dest = kernel_dir(arch)
    stamp = f"{package} {version}"
    version_file = dest / "VERSION"
    if (version_file.is_file() and version_file.read_text().strip() == stamp
            and (dest / "vmlinuz").is_file() and (dest / "config").is_file()):
        setup.out(f"kernel {arch}: {stamp} already in {dest}")
        return "already present"
    if setup.dry_run:
        setup.change("apt-get", "download", f"{package}:{arch}")
        setup.change("dpkg-deb", "-x", f"{package}_{version}_{arch}.deb", "<tmp>")
        setup.out(f"# would copy boot/vmlinuz-* and boot/config-* to {dest}")
        return f"would install {stamp}"
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o777)  # apt-get download runs as _apt and warns if it cannot write here
        setup.change("apt-get", "download", f"{package}:{arch}", cwd=tmp)
        debs = sorted(Path(tmp).glob("*.deb"))
        if len(debs) != 1:
            raise SetupError(f"apt-get download {package}:{arch} left {len(debs)} .deb files")
        tree = Path(tmp) / "tree"
        setup.change("dpkg-deb", "-x", str(debs[0]), str(tree))
        dest.mkdir(parents=True, exist_ok=True)
        for kind in ("vmlinuz", "config"):
            files = sorted((tree / "boot").glob(f"{kind}-*"))
            if len(files) != 1:
                raise SetupError(f"{debs[0].name} holds {len(files)} boot/{kind}-* files, not 1")
            shutil.copyfile(files[0], dest / kind)
        version_file.write_text(stamp + "\n")  # last, so an interrupted copy is redone
    setup.out(f"kernel {arch}: {stamp} installed in {dest}")
    return f"installed {stamp}"


def add_architectures(setup: Setup) -> str | None:
    """Make dpkg know both kernel arches; a kernel status if they cannot be resolved yet."""
    host = setup.query("dpkg", "--print-architecture").stdout.strip()
    foreign = setup.query("dpkg", "--print-foreign-architectures").stdout.split()
    absent = [a for a in KERNEL_ARCHES if a != host and a not in foreign]
    if absent and root_missing():
        setup.root_arches += absent
        return f"FAILED: {root_missing()} to add dpkg architecture {', '.join(absent)}"
    for arch in absent:
        setup.change("dpkg", "--add-architecture", arch)
    if absent:
        setup.apt_update()  # the new arch's package lists are needed to resolve its kernel
    return "would install (resolved after apt-get update)" if absent and setup.dry_run else None


def install_packages(setup: Setup, packages: tuple[str, ...]) -> None:
    """Install the packages that dpkg does not report as installed."""
    missing = [p for p in packages if not installed(setup, p)]
    setup.summary += [(p, "already present") for p in packages if p not in missing]
    if missing and root_missing():
        setup.root_packages += missing
        setup.summary += [(p, f"FAILED: {root_missing()}") for p in missing]
    elif missing:
        try:
            setup.apt_update()
            setup.change(*APT_INSTALL, *missing)
            setup.summary += [(p, "would install" if setup.dry_run else "installed") for p in missing]
        except SetupError as exc:
            setup.summary += [(p, f"FAILED: {exc}") for p in missing]


def install_kernels(setup: Setup, status: str | None) -> None:
    """Resolve the cloud kernel of both arches and unpack each into the cache, unless `status`."""
    try:
        if status is None:
            for arch, (package, version) in resolve_kernels(setup).items():
                setup.summary.append((f"kernel {arch}", install_kernel(setup, arch, package, version)))
            return
    except SetupError as exc:
        status = f"FAILED: {exc}"
    done = {item for item, _ in setup.summary}
    setup.summary += [(f"kernel {a}", status) for a in KERNEL_ARCHES if f"kernel {a}" not in done]


def main_setup(vm: bool, dry_run: bool, out=print) -> int:
    """Install qemu (and with `vm` the system emulators and kernels); 0 ok, 3 could not."""
    if not (shutil.which("apt-get") and shutil.which("dpkg")):
        out("error: conformance setup needs apt-get and dpkg (Debian); this machine lacks them")
        return EXIT_CANNOT_INSTALL
    setup = Setup(dry_run, out)
    arch_status = None
    if vm:  # before the packages, so that one apt-get update serves both
        try:
            arch_status = add_architectures(setup)
        except SetupError as exc:
            arch_status = f"FAILED: {exc}"
    install_packages(setup, USER_PACKAGES + (VM_PACKAGES if vm else ()))
    if vm:
        install_kernels(setup, arch_status)
    if setup.root_commands():
        out(f"{root_missing()}; run these, then `conformance setup{' --vm' if vm else ''}` again:")
        for cmd in setup.root_commands():
            out("  " + cmd)
    out("summary:")
    for item, status in setup.summary:
        out(f"  {item}: {status}")
    failed = any(status.startswith("FAILED") for _, status in setup.summary)
    return EXIT_CANNOT_INSTALL if failed else EXIT_OK
