"""The POSIX oracle: a kernel model with a syscall interface, and a predictor that drives it.

`predict(program, profile)` returns every outcome a program may have; `Kernel` is the same
model at syscall level, for reference machines that run real code against it.
"""
from __future__ import annotations

from oracle.kernel import BLOCKED, GONE, Blocked, Done, Frame, Gone, Kernel, Stack
from oracle.predict import predict
from oracle.profile import LINUX, POSIX, PROFILES, Profile
from oracle.signals import Action, SigInfo

__all__ = ["BLOCKED", "GONE", "Action", "Blocked", "Done", "Frame", "Gone", "Kernel", "LINUX",
           "POSIX", "PROFILES", "Profile", "SigInfo", "Stack", "predict"]
