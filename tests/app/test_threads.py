"""The forward's thread count: the setting when given, else the CPUs the process may really use less one."""
from __future__ import annotations

from pathlib import Path

import torch

from app import threads

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_an_explicit_setting_wins_on_any_device():
    assert threads.intra_op_threads(3, CPU, cpus=16) == 3
    assert threads.intra_op_threads(3, CUDA, cpus=16) == 3


def test_auto_leaves_one_cpu_to_the_rest_of_the_service_and_keeps_torch_default_on_a_gpu():
    assert threads.intra_op_threads(0, CPU, cpus=16) == 15
    assert threads.intra_op_threads(0, CPU, cpus=2) == 1
    assert threads.intra_op_threads(0, CPU, cpus=1) == 1
    assert threads.intra_op_threads(0, CUDA, cpus=16) is None


def test_cgroup_quota_is_read_from_v2_or_v1_files(tmp_path: Path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert threads.cgroup_cpu_limit(v2) == 1.5
    (v2 / "cpu.max").write_text("max 100000\n")
    assert threads.cgroup_cpu_limit(v2) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("400000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.cgroup_cpu_limit(v1) == 4.0
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert threads.cgroup_cpu_limit(v1) is None
    assert threads.cgroup_cpu_limit(tmp_path / "absent") is None


def test_a_quota_below_the_visible_cpus_caps_them(tmp_path: Path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads.usable_cpus(tmp_path) == 1  # 1.5 CPUs of quota: one whole CPU


def test_configure_then_restore_leaves_the_process_as_it_was():
    before = torch.get_num_threads()
    previous = threads.configure(1, CPU)
    try:
        assert previous == before and torch.get_num_threads() == 1
    finally:
        threads.restore(previous)
    assert torch.get_num_threads() == before
