"""The checked monkeypatch of tests/conftest.py: a patch of a re-exported name that nothing reads is refused."""

import importlib

import pytest

from tests.conftest import unread_reexport

# (by import_module: ``import sf2t.ops.fragment_pack as m`` gives the op, which sf2t.ops names the same)
fragment_pack = importlib.import_module("sf2t.ops.fragment_pack")
pack_triton = importlib.import_module("sf2t.ops._pack_triton")


def test_a_patch_of_a_name_only_re_exported_is_refused(monkeypatch):
    # fragment_pack re-exports _triton_kernel; the kernel choice reads it in _pack_triton
    assert "_triton_kernel" in vars(fragment_pack)
    why = unread_reexport(fragment_pack, "_triton_kernel")
    assert why is not None and "sf2t.ops._pack_triton" in why
    with pytest.raises(AssertionError, match="only re-exports _triton_kernel"):
        monkeypatch.setattr(fragment_pack, "_triton_kernel", lambda *a: None)
    with pytest.raises(AssertionError, match="only re-exports _triton_kernel"):
        monkeypatch.setattr("sf2t.ops.fragment_pack._triton_kernel", lambda *a: None)
    assert fragment_pack._triton_kernel is pack_triton._triton_kernel  # nothing was patched


def test_a_patch_where_the_name_is_read_goes_through(monkeypatch):
    def fake(*a):
        return "fake"

    monkeypatch.setattr(pack_triton, "_triton_kernel", fake)  # defined and read there
    assert pack_triton._triton_kernel is fake
    monkeypatch.setattr("sf2t.ops._pack_triton._triton_kernel", fake)
    assert unread_reexport(pack_triton, "_triton_kernel") is None
