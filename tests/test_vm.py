"""VM targets: the initramfs, target configs, the poweroff driver, and real boots of both
Debian kernels (a smoke batch, the job-control programs, a kernel panic, a VM that never powers
off, garbage on the console)."""
from __future__ import annotations

import dataclasses
import os
import textwrap

import pytest

from conformance.batch import build
from conformance.check import check
from conformance.compare import AGREES
from conformance.lower import Faults
from oracle import predict
from targets.runners import ConfigError, add_config, get, initramfs
from targets.runners.vm import VmRunner, load_config, shipped_configs
from targets.tables import load
from e2e import disagreements, runner_or_skip

VMS = ("x86_64-linux-vm", "aarch64-linux-vm")


# --- initramfs -------------------------------------------------------------------------------

def test_initramfs_holds_console_and_init():
    archive = initramfs.for_init(b"\x7fELF-batch")
    members = initramfs.members(archive)
    assert set(members) == {"dev", "dev/console", "init"}
    assert members["dev/console"].rdev == (5, 1)
    assert members["dev/console"].mode & initramfs.S_IFMT == initramfs.S_IFCHR
    assert members["init"].data == b"\x7fELF-batch"
    assert members["init"].mode == initramfs.S_IFREG | 0o755
    assert len(archive) % 4 == 0


def test_initramfs_pads_names_and_data_to_four_bytes():
    entries = [initramfs.Entry("a" * n, initramfs.S_IFREG | 0o644, b"x" * n) for n in range(1, 9)]
    members = initramfs.members(initramfs.newc(entries))
    assert [m.data for m in members.values()] == [b"x" * n for n in range(1, 9)]


# --- configs ---------------------------------------------------------------------------------

def test_shipped_configs_name_both_linux_vms():
    names = {c.name for c in shipped_configs()}
    assert set(VMS) <= names
    for config in shipped_configs():
        assert config.abi in ("linux-x86_64", "linux-aarch64", "breenix-legacy-x86_64",
                              "breenix-legacy-aarch64")


def _write(tmp_path, text: str):
    path = tmp_path / "target.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_config_lists_every_problem(tmp_path):
    path = _write(tmp_path, """
        name = "mine"
        boot = "floppy"
        colour = "blue"
    """)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    for part in ("missing key 'abi'", "missing key 'kernel'", "missing key 'qemu'",
                 "unknown key 'colour'", "boot must be one of"):
        assert part in message


def test_config_counts_and_timeouts_must_be_positive(tmp_path):
    path = _write(tmp_path, """
        name = "mine"
        abi = "linux-x86_64"
        kernel = "/k"
        qemu = ["qemu-system-x86_64"]
        lanes = 0
        jobs = 1.5
        batch_size = "many"
        boot_seconds = -1
    """)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    for part in ("lanes must be a whole number of at least 1, not 0",
                 "jobs must be a whole number of at least 1, not 1.5",
                 "batch_size must be a whole number of at least 1, not 'many'",
                 "boot_seconds must be a number of seconds above 0, not -1"):
        assert part in message
    assert "silence_seconds" not in message


def test_config_jobs_default_to_one_batch_in_flight_per_core(tmp_path):
    text = """
        name = "mine"
        abi = "linux-x86_64"
        kernel = "/k"
        qemu = ["qemu-system-x86_64"]
    """
    assert VmRunner.from_config(load_config(_write(tmp_path, text))).jobs == os.cpu_count()
    assert VmRunner.from_config(load_config(_write(tmp_path, text + "jobs = 3\n"))).jobs == 3


def test_config_that_is_not_toml(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "name = \n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_user_config_becomes_a_target_that_says_what_is_missing(tmp_path):
    path = _write(tmp_path, """
        name = "my-kernel-test"
        abi = "linux-aarch64"
        kernel = "{config_dir}/Image"
        qemu = ["qemu-system-aarch64", "-kernel", "{kernel}", "-initrd", "{initrd}"]
        enable = "make -C my-kernel Image"
    """)
    runner = add_config(path)
    assert get("my-kernel-test") is runner
    assert runner.unavailable() in (f"kernel image {tmp_path}/Image not found",
                                    "qemu-system-aarch64 is not on PATH")
    with pytest.raises(ConfigError, match="already taken"):
        add_config(path)


# --- the driver a VM boots -------------------------------------------------------------------

@pytest.mark.parametrize("abi_name", ["linux-x86_64", "linux-aarch64"])
def test_poweroff_driver_forks_the_driver_and_powers_off(abi_name):
    from conformance.lower import Label, Syscall, lower_driver
    abi = load(abi_name)

    def calls(micro):
        return [m.nr for m in micro if isinstance(m, Syscall)]

    plain = lower_driver(1, abi, 2000)
    vm = lower_driver(1, abi, 2000, ending="poweroff")
    assert abi.nr("reboot") not in calls(plain)
    assert calls(vm).count(abi.nr("reboot")) == 1
    for ending, command in (("poweroff", 0x4321FEDC), ("restart", 0x01234567)):
        reboot, = [m for m in lower_driver(1, abi, 2000, ending=ending)
                   if isinstance(m, Syscall) and m.nr == abi.nr("reboot")]
        assert reboot.args[2].value == command
    labels = [m.name for m in vm if isinstance(m, Label)]
    # pid 1 forks first; the driver proper starts after init's reap-and-power-off loop
    assert labels[:3] == ["_start", "init_reap", "drv_start"]
    assert calls(vm).index(abi.nr("reboot")) < calls(vm).index(abi.nr("getpid"))


def test_unknown_ending_is_refused(parse):
    with pytest.raises(ValueError, match="unknown batch ending"):
        build([parse("getpid()\n")], load("linux-x86_64"), ending="halt")


# --- real boots ------------------------------------------------------------------------------

def _corpus(name: str, pick=None):
    from conformance.cli import load_corpus
    programs = load_corpus(name)
    return [p for p in programs if pick is None or p.name in pick]


JOB_CONTROL = {"128-sigtstp-default-stop", "129-sigttin-sigttou-default-stop",
               "22-pipe-capacity", "40-sigaltstack-handler-on-stack"}


@pytest.mark.parametrize("target", VMS)
def test_vm_runs_a_smoke_batch_including_job_control(target):
    runner = runner_or_skip(target)
    programs = _corpus("signals", JOB_CONTROL) + _corpus("basic")[:20]
    report = check(programs, [predict(p) for p in programs], runner, jobs=1)
    assert disagreements(report) == []
    assert report.runs == 1 and report.boot_seconds > 0


@pytest.mark.parametrize("target", VMS)
def test_kernel_panic_mid_batch_loses_no_result(target):
    runner = runner_or_skip(target)
    programs = _corpus("basic")[:12]
    faults = Faults(die_after=programs[4].name)
    report = check(programs, [predict(p) for p in programs], runner, faults=faults, jobs=1)
    assert [v.status for v in report.verdicts] == [AGREES] * len(programs)
    assert report.runs == 2
    assert any("Kernel panic" in n and "7 programs that had not started" in n
               for n in report.notes), report.notes


def test_vm_that_never_powers_off_is_cut_short_with_results_kept():
    runner = runner_or_skip("aarch64-linux-vm")
    impatient = dataclasses.replace(runner.config, silence_seconds=5.0)
    runner = VmRunner.from_config(impatient)
    programs = _corpus("basic")[:5]
    report = check(programs, [predict(p) for p in programs], runner,
                   faults=Faults(never_end=True))
    assert [v.status for v in report.verdicts] == [AGREES] * len(programs)
    assert any("did not power off; every program had finished" in n for n in report.notes)
    result = runner.run(build(programs, runner.abi, ending="poweroff",
                              faults=Faults(never_end=True)).elf, 60)
    assert result.timed_out and "printed nothing for 5 s and did not power off" in result.incident


def test_a_console_end_marker_ends_a_vm_that_stays_up_without_an_incident():
    runner = runner_or_skip("x86_64-linux-vm")
    # booted with acpi=off, the PC cannot power off: the kernel halts, says so, and QEMU stays
    halts = dataclasses.replace(runner.config, ending="poweroff", silence_seconds=20.0,
                                end_marker="reboot: System halted")
    assert "acpi=off" in " ".join(halts.qemu)
    runner = VmRunner.from_config(halts)
    programs = _corpus("basic")[:5]
    result = runner.run(build(programs, runner.abi, ending="poweroff").elf, 60)
    assert not result.incident and not result.timed_out  # not the silence watchdog
    report = check(programs, [predict(p) for p in programs], runner, jobs=1)
    assert [v.status for v in report.verdicts] == [AGREES] * len(programs)
    assert report.notes == []


def test_garbage_on_the_console_is_reported_and_results_kept():
    runner = runner_or_skip("x86_64-linux-vm")
    programs = _corpus("basic")[:5]
    report = check(programs, [predict(p) for p in programs], runner,
                   faults=Faults(console_garbage=True))
    assert [v.status for v in report.verdicts] == [AGREES] * len(programs)
    assert sum("malformed record" in n for n in report.notes) == 2 * len(programs)
