"""`conformance setup`: apt and dpkg are replaced by a fake `run`, so no test touches the machine."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conformance import setup as setup_mod
from targets.cache import kernel_dir

DEPENDS = {
    "arm64": "linux-image-cloud-arm64:arm64\n  Depends: linux-image-6.1.0-56-cloud-arm64:arm64\n",
    "amd64": "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-56-cloud-amd64\n",
}
POLICY = "{name}:\n  Installed: (none)\n  Candidate: {version}\n  Version table:\n"
MUTATING = {("apt-get", "update"), ("apt-get", "install"), ("apt-get", "download"),
            ("dpkg", "--add-architecture"), ("dpkg-deb", "-x")}


class FakeApt:
    """Answers the commands setup runs as an amd64 Debian host would, and records them."""

    def __init__(self, installed=("qemu-user",), foreign=("arm64",), versions=None):
        self.installed, self.foreign = set(installed), list(foreign)
        self.versions = versions or {"arm64": "6.1.192-2", "amd64": "6.1.192-2"}
        self.calls: list[list[str]] = []

    def __call__(self, cmd, *, out=print, cwd=None):
        out("$ " + " ".join(cmd))
        self.calls.append(list(cmd))
        ok = lambda text="": subprocess.CompletedProcess(cmd, 0, text, "")
        match cmd:
            case ["dpkg-query", "-W", _, pkg]:
                if pkg in self.installed:
                    return ok("install ok installed")
                return subprocess.CompletedProcess(cmd, 1, "", f"no packages found matching {pkg}")
            case ["dpkg", "--print-architecture"]:
                return ok("amd64\n")
            case ["dpkg", "--print-foreign-architectures"]:
                return ok("".join(a + "\n" for a in self.foreign))
            case ["apt-cache", "depends", meta]:
                return ok(DEPENDS[meta.split(":")[1]])
            case ["apt-cache", "policy", name]:
                return ok(POLICY.format(name=name, version=self.versions[name.split(":")[1]]))
            case ["apt-get", "download", name]:
                package, arch = name.split(":")
                Path(cwd, f"{package}_{self.versions[arch]}_{arch}.deb").write_text("deb")
                return ok()
            case ["dpkg-deb", "-x", deb, tree]:
                boot = Path(tree, "boot")
                boot.mkdir(parents=True)
                (boot / "vmlinuz-6.1.0-56-cloud").write_text(f"kernel from {Path(deb).name}")
                (boot / "config-6.1.0-56-cloud").write_text("CONFIG_X=y")
                return ok()
            case ["apt-get", "install", *_] | ["apt-get", "update"] | ["dpkg", "--add-architecture", _]:
                return ok()
        raise AssertionError(f"unexpected command {cmd}")

    def mutating(self):
        return [c for c in self.calls if tuple(c[:2]) in MUTATING]


@pytest.fixture
def fake(monkeypatch, tmp_path):
    monkeypatch.setenv("CONFORMANCE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(setup_mod.shutil, "which", lambda name: f"/usr/bin/{name}")
    apt = FakeApt()
    monkeypatch.setattr(setup_mod, "run", apt)
    return apt


def setup(vm=True, dry_run=False):
    lines: list[str] = []
    status = setup_mod.main_setup(vm=vm, dry_run=dry_run, out=lines.append)
    return status, "\n".join(lines)


def test_parse_depends_strips_the_arch_suffix_and_reads_the_abi():
    assert setup_mod.parse_depends(DEPENDS["arm64"]) == "linux-image-6.1.0-56-cloud-arm64"
    assert setup_mod.parse_depends(DEPENDS["amd64"]) == "linux-image-6.1.0-56-cloud-amd64"
    assert setup_mod.kernel_abi("linux-image-6.1.0-56-cloud-arm64") == "6.1.0-56"
    assert setup_mod.parse_candidate(POLICY.format(name="x", version="6.1.192-2")) == "6.1.192-2"
    assert setup_mod.parse_candidate(POLICY.format(name="x", version="(none)")) is None
    with pytest.raises(setup_mod.SetupError, match="no linux-image dependency"):
        setup_mod.parse_depends("linux-image-cloud-arm64:arm64\n")


def test_installs_both_kernels_with_version_files(fake):
    status, out = setup()
    assert status == 0, out
    for arch in ("arm64", "amd64"):
        d = kernel_dir(arch)
        assert (d / "VERSION").read_text() == f"linux-image-6.1.0-56-cloud-{arch} 6.1.192-2\n"
        assert (d / "vmlinuz").read_text() == f"kernel from linux-image-6.1.0-56-cloud-{arch}_6.1.192-2_{arch}.deb"
        assert (d / "config").read_text() == "CONFIG_X=y"
    assert ["apt-get", "update"] in fake.calls
    assert ["apt-get", "install", "-y", "--no-install-recommends", "qemu-system-arm", "qemu-system-x86"] in fake.calls
    assert "qemu-user: already present" in out and "qemu-system-arm: installed" in out
    assert "kernel arm64: installed linux-image-6.1.0-56-cloud-arm64 6.1.192-2" in out


def test_differing_kernel_versions_are_refused_naming_both(fake):
    fake.versions["amd64"] = "6.1.190-1"
    status, out = setup()
    assert status == 3
    assert "linux-image-6.1.0-56-cloud-arm64 6.1.192-2 (arm64)" in out
    assert "linux-image-6.1.0-56-cloud-amd64 6.1.190-1 (amd64)" in out
    assert not any(c[:2] == ["apt-get", "download"] for c in fake.calls)
    assert not kernel_dir("arm64").exists()


def test_second_run_downloads_nothing(fake):
    assert setup()[0] == 0
    fake.calls.clear()
    fake.installed |= {"qemu-system-arm", "qemu-system-x86"}
    status, out = setup()
    assert status == 0, out
    assert fake.mutating() == []
    assert f"kernel arm64: linux-image-6.1.0-56-cloud-arm64 6.1.192-2 already in {kernel_dir('arm64')}" in out
    assert "kernel amd64: already present" in out


def test_a_new_kernel_version_replaces_the_cached_one(fake):
    assert setup()[0] == 0
    fake.versions = {"arm64": "6.1.200-1", "amd64": "6.1.200-1"}
    assert setup()[0] == 0
    assert (kernel_dir("amd64") / "VERSION").read_text() == "linux-image-6.1.0-56-cloud-amd64 6.1.200-1\n"


def test_dry_run_changes_nothing_but_prints_the_commands(fake):
    fake.foreign = []
    status, out = setup(dry_run=True)
    assert status == 0, out
    assert fake.mutating() == []
    assert "$ dpkg --add-architecture arm64    # dry run: not run" in out
    assert "$ apt-get install -y --no-install-recommends qemu-system-arm qemu-system-x86    # dry run" in out
    assert "qemu-system-x86: would install" in out
    assert not kernel_dir("arm64").exists()


def test_dry_run_with_known_arches_names_the_kernel_it_would_fetch(fake):
    status, out = setup(dry_run=True)
    assert status == 0 and fake.mutating() == []
    assert "$ apt-get download linux-image-6.1.0-56-cloud-arm64:arm64    # dry run: not run" in out
    assert "kernel arm64: would install linux-image-6.1.0-56-cloud-arm64 6.1.192-2" in out


def test_not_root_prints_the_sudo_commands_and_returns_3(fake, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    fake.foreign = []
    status, out = setup()
    assert status == 3
    assert fake.mutating() == []
    assert ("  sudo dpkg --add-architecture arm64\n  sudo apt-get update\n"
            "  sudo apt-get install -y --no-install-recommends qemu-system-arm qemu-system-x86") in out
    assert "qemu-system-arm: FAILED: installing packages needs root" in out


def test_without_vm_only_qemu_user_is_checked(fake):
    status, out = setup(vm=False)
    assert status == 0
    assert fake.calls == [["dpkg-query", "-W", "-f=${Status}", "qemu-user"]]
    assert out.endswith("summary:\n  qemu-user: already present")


def test_a_failing_install_is_reported_with_apts_message(fake, monkeypatch):
    def failing(cmd, *, out=print, cwd=None):
        if cmd[:2] == ["apt-get", "install"]:
            return subprocess.CompletedProcess(cmd, 100, "", "E: Unable to locate package qemu-system-arm")
        return fake(cmd, out=out, cwd=cwd)
    monkeypatch.setattr(setup_mod, "run", failing)
    status, out = setup()
    assert status == 3
    assert "qemu-system-arm: FAILED: `apt-get install" in out and "Unable to locate package" in out


def test_without_apt_nothing_is_run_and_status_is_3(fake, monkeypatch):
    monkeypatch.setattr(setup_mod.shutil, "which", lambda name: None)
    status, out = setup()
    assert status == 3 and fake.calls == []
    assert out.startswith("error: conformance setup needs apt-get and dpkg")


def test_on_a_fresh_machine_one_update_follows_the_new_architecture(fake):
    fake.installed, fake.foreign = set(), []
    status, out = setup()
    assert status == 0, out
    order = [c[:2] for c in fake.mutating()]
    assert order[:3] == [["dpkg", "--add-architecture"], ["apt-get", "update"], ["apt-get", "install"]]
    assert order.count(["apt-get", "update"]) == 1
    assert order.count(["apt-get", "download"]) == 2
