"""Shared test setup: thread counts, the GPU marker, and the require-CUDA switch.

GPU tests are marked ``@pytest.mark.gpu``: on a machine without CUDA they skip, unless
``SF2T_REQUIRE_CUDA=1`` is set, in which case they fail (a skipped GPU test is not a passed one).
"""

import os

import pytest
import torch

# 2-core CI machines: one process, at most 2 intra-op threads (two processes x 2 threads went ~20x slower).
torch.set_num_threads(min(2, os.cpu_count() or 1))

REQUIRE_CUDA = os.environ.get("SF2T_REQUIRE_CUDA", "") in ("1", "true", "yes")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    for item in items:
        if "gpu" in item.keywords and not REQUIRE_CUDA:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device (set SF2T_REQUIRE_CUDA=1 to fail instead)"))


@pytest.fixture(autouse=True)
def _fail_gpu_tests_without_cuda(request):
    if REQUIRE_CUDA and "gpu" in request.keywords and not torch.cuda.is_available():
        pytest.fail("SF2T_REQUIRE_CUDA=1 but torch.cuda.is_available() is False")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tests with 1 torch thread (many tiny ops: threading costs more than it gives)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def tiny_qwen2_vl(tmp_path_factory):
    """One tiny Qwen2-VL checkpoint (seed 0) for the whole session; tests must not write into it."""
    pytest.importorskip("transformers")
    from sf2t.models import build_tiny_qwen2_vl

    return build_tiny_qwen2_vl(tmp_path_factory.mktemp("tiny") / "qwen2vl-tiny", seed=0)


@pytest.fixture
def interrupt_after(monkeypatch):
    """``interrupt_after(module, name, n)``: ``module.name`` runs ``n`` times, then raises KeyboardInterrupt (a Ctrl-C
    half way through work); returns the list that counts the calls."""

    def arm(module, name: str, n: int) -> list:
        real, calls = getattr(module, name), []

        def stop(*a, **k):
            calls.append(1)
            if len(calls) > n:
                raise KeyboardInterrupt
            return real(*a, **k)

        monkeypatch.setattr(module, name, stop)
        return calls

    return arm
