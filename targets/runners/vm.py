"""A kernel under qemu-system: the batch ELF boots as /init and reports on the serial console.

What a VM target is lives in a TOML config (targets/vm/*.toml, or a user's own file, see
docs/targets.md): the ISA's ABI table, the kernel image, the boot medium (an initramfs written
here, or the user's own disk-image builder command), the QEMU command line and the console
texts that mean the kernel died. The VM itself is the sandbox: no signal leaves it.

A run ends when QEMU exits (the driver powers off; `-no-reboot` turns a panic's reboot into an
exit too), when the console stays silent too long, or at the outer deadline. Whatever ended
it is named in `RunResult.incident`; records printed before it are kept.
"""
from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from targets.cache import cache_dir
from targets.runners import initramfs
from targets.runners.base import Runner, TargetError
from targets.runners.qemu_user import command_version
from targets.runners.sandbox import RunResult, spawned

VM_DIR = Path(__file__).resolve().parent.parent / "vm"
BOOT_MEDIA = ("initramfs", "command")
_REQUIRED = ("name", "abi", "kernel", "qemu")


class ConfigError(ValueError):
    """A target config file is missing, malformed or names something that does not exist."""


@dataclass(frozen=True)
class VmConfig:
    """One VM target as its TOML file describes it (paths already expanded)."""

    path: Path
    name: str
    abi: str
    kernel: str
    qemu: tuple[str, ...]
    description: str = ""
    boot: str = "initramfs"
    boot_command: tuple[str, ...] = ()
    ending: str = "poweroff"
    panic: tuple[str, ...] = ("Kernel panic",)
    end_marker: str = ""          # console text that means the run is over (if QEMU stays up)
    boot_seconds: float = 120.0
    silence_seconds: float = 30.0
    batch_size: int = 100
    # One lane. On wall-clock time, programs sharing one emulated vCPU stall past the timing
    # margins (5000 generated programs, seed 10: 5000 agree with 1 lane, 2 timing-sensitive
    # with 4, 6 with 8); on virtual time (-icount) a wait costs nothing, so more lanes only
    # interleave the same work (docs/scale.md). A config may ask for more.
    lanes: int = 1
    # Batches in flight; 0: one per core, as a VM on virtual time keeps its core busy.
    jobs: int = 0
    enable: str = ""
    version_file: str = ""
    tested: bool = True


_COUNTS = ("batch_size", "lanes", "jobs")
_SECONDS = ("boot_seconds", "silence_seconds")


def _expand(text: str, config_dir: Path) -> str:
    return text.replace("{cache}", str(cache_dir())).replace("{config_dir}", str(config_dir))


def load_config(path: Path) -> VmConfig:
    """Read and check one target config; ConfigError lists every problem."""
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    problems = [f"missing key {key!r}" for key in _REQUIRED if key not in raw]
    known = set(VmConfig.__dataclass_fields__) - {"path"}
    problems += [f"unknown key {key!r}" for key in raw if key not in known]
    if raw.get("boot", "initramfs") not in BOOT_MEDIA:
        problems.append(f"boot must be one of {', '.join(BOOT_MEDIA)}, not {raw['boot']!r}")
    if raw.get("boot") == "command" and not raw.get("boot_command"):
        problems.append("boot = 'command' needs boot_command = [...] (with {elf} and {image})")
    if not isinstance(raw.get("qemu", []), list) or not raw.get("qemu"):
        problems.append("qemu must be a non-empty list of arguments")
    for key in _COUNTS:
        value = raw.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"{key} must be a whole number of at least 1, not {value!r}")
    for key in _SECONDS:
        value = raw.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            problems.append(f"{key} must be a number of seconds above 0, not {value!r}")
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    here = path.resolve().parent
    values = {k: v for k, v in raw.items() if k in known}
    for key in ("kernel", "version_file", "enable", "end_marker"):
        if key in values:
            values[key] = _expand(values[key], here)
    for key in ("qemu", "boot_command", "panic"):
        if key in values:
            values[key] = tuple(_expand(str(v), here) for v in values[key])
    return VmConfig(path=path, **values)


def shipped_configs() -> list[VmConfig]:
    """The VM targets that come with the suite (targets/vm/*.toml)."""
    return [load_config(p) for p in sorted(VM_DIR.glob("*.toml"))]


@dataclass(frozen=True)
class VmRunner(Runner):
    """Boots the config's kernel with the batch ELF as /init, one VM per batch."""

    config: VmConfig | None = None
    contained: bool = True

    @classmethod
    def from_config(cls, config: VmConfig) -> "VmRunner":
        """The runner a config describes."""
        return cls(config.name, config.abi, enable=config.enable, config=config,
                   batch_ending=config.ending, batch_size=config.batch_size, lanes=config.lanes,
                   jobs=config.jobs or os.cpu_count() or 1)

    def unavailable(self) -> str | None:
        qemu = self.config.qemu[0]
        if shutil.which(qemu) is None:
            return f"{qemu} is not on PATH"
        if not Path(self.config.kernel).is_file():
            return f"kernel image {self.config.kernel} not found"
        if self.config.boot == "command" and shutil.which(self.config.boot_command[0]) is None:
            return f"boot medium builder {self.config.boot_command[0]} is not on PATH"
        return None

    def version(self) -> str:
        kernel = Path(self.config.kernel).name
        if self.config.version_file and Path(self.config.version_file).is_file():
            kernel = Path(self.config.version_file).read_text().strip()
        return f"{kernel} under {command_version(shutil.which(self.config.qemu[0]) or self.config.qemu[0])}"

    def argv(self) -> list[str]:
        return list(self.config.qemu)

    def run(self, elf: bytes, timeout: float) -> RunResult:
        """Boot a VM whose /init is `elf`; its console output is the result."""
        reason = self.unavailable()
        if reason:
            raise TargetError(f"target {self.name} is not available: {reason}"
                              + (f" (enable: {self.enable})" if self.enable else ""))
        self.check(elf)
        with tempfile.TemporaryDirectory(prefix="conformance-vm-") as tmp:
            argv = self._command(elf, Path(tmp))
            return _boot(argv, timeout + self.config.boot_seconds, self.config)

    def _command(self, elf: bytes, tmp: Path) -> list[str]:
        """Write the boot medium into `tmp` and return the QEMU command line."""
        elf_path, image = tmp / "init", tmp / "boot.img"
        elf_path.write_bytes(elf)
        elf_path.chmod(0o755)
        if self.config.boot == "initramfs":
            image = tmp / "initramfs.cpio"
            image.write_bytes(initramfs.for_init(elf))
        else:
            cmd = [a.replace("{elf}", str(elf_path)).replace("{image}", str(image))
                   for a in self.config.boot_command]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            if done.returncode != 0 or not image.exists():
                raise TargetError(f"target {self.name}: boot medium builder failed "
                                  f"(status {done.returncode}): {done.stderr.strip()[-300:]}")
        subst = {"{kernel}": self.config.kernel, "{initrd}": str(image), "{image}": str(image),
                 "{elf}": str(elf_path)}
        out = []
        for arg in self.config.qemu:
            for key, value in subst.items():
                arg = arg.replace(key, value)
            out.append(arg)
        out[0] = shutil.which(out[0]) or out[0]
        return out


def _boot(argv: list[str], deadline_s: float, config: VmConfig) -> RunResult:
    """Run QEMU, reading the console as it comes, until it exits, stalls or hits the deadline."""
    start = time.monotonic()
    with spawned(argv) as proc:
        return _watch(proc, start, deadline_s, config)


def _watch(proc: subprocess.Popen, start: float, deadline_s: float,
           config: VmConfig) -> RunResult:
    """Read a booted VM's console until QEMU exits, stalls or hits the deadline."""
    out = bytearray()
    first_record = None
    last_output = start
    incident = ""
    marked_end = False  # the console said the run is over: QEMU is stopped, not failed
    err = bytearray()
    streams = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    while streams:
        now = time.monotonic()
        silence_limit = config.boot_seconds if first_record is None else config.silence_seconds
        if now - start > deadline_s:
            incident = f"the VM did not power off within {deadline_s:.0f} s"
            break
        if now - last_output > silence_limit:
            incident = (f"the VM printed nothing for {silence_limit:.0f} s "
                        + ("before any result" if first_record is None else "and did not power off"))
            break
        ready, _, _ = select.select(list(streams), [], [], 0.5)
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                del streams[fd]
                continue
            streams[fd] += chunk
            if fd == proc.stdout.fileno():
                last_output = time.monotonic()
                if first_record is None and b"@@cf:" in out:
                    first_record = last_output - start
                if config.end_marker and config.end_marker.encode() in out:
                    marked_end = True
                    streams.clear()  # the kernel said the run is over: stop QEMU
                    break
    if proc.poll() is None and not incident:
        os.killpg(proc.pid, signal.SIGKILL)
    timed_out = bool(incident)
    if timed_out:
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        rest, rest_err = proc.communicate(timeout=10)
        out += rest or b""
        err += rest_err or b""
    except (subprocess.TimeoutExpired, ValueError):
        proc.kill()
        proc.wait()
    stderr = bytes(err)
    text = bytes(out)
    if not incident:
        incident = _panic(text, config.panic)
    if not incident and not marked_end and proc.returncode not in (0, None):
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:]
        incident = f"qemu exited with status {proc.returncode}" + (f": {tail[0]}" if tail else "")
    status = None if marked_end else proc.returncode  # (stopped by us once the run was over)
    return RunResult(text, stderr.decode(errors="replace"), status, timed_out,
                     time.monotonic() - start, True, boot_seconds=first_record, incident=incident)


def _panic(output: bytes, markers: tuple[str, ...]) -> str:
    """The first console line that says the kernel died, as an incident; '' if none."""
    for line in output.decode(errors="replace").splitlines():
        for marker in markers:
            if marker in line:
                text = line.split("]", 1)[-1].strip() if line.lstrip().startswith("[") else line.strip()
                return f"the kernel died: {text[:160]}"
    return ""
