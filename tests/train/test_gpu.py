"""The GPU probe's pure parts: which devices it samples, NVML's numbering, a CPU answer."""

from damtui.train import gpu


def test_cuda_index_reads_the_device_string():
    assert gpu.cuda_index("cuda:1 (NVIDIA H200)") == 1
    assert gpu.cuda_index("cuda") == 0
    assert gpu.cuda_index("cpu (x86_64, 1 threads)") is None and gpu.cuda_index("") is None


def test_nvml_index_follows_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    assert gpu.nvml_index(0) == 3 and gpu.nvml_index(1) == 1
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert gpu.nvml_index(2) == 2


def test_probe_answers_none_for_a_cpu_run():
    assert gpu.probe("cpu (x86_64, 1 threads)") is None


def test_sample_describes_memory_and_utilisation():
    s = gpu.GpuSample(0, 3 * gpu.GIB, 80 * gpu.GIB, gpu.GIB // 2, None)
    assert s.describe() == "GPU 0  memory 3.0/80.0 GiB (this run 0.5 GiB)"
    assert "utilisation 40%" in gpu.GpuSample(0, 0, gpu.GIB, 0, 40).describe()
