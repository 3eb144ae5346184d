#!/usr/bin/env python3
"""Makes the NumPy fixtures that tests/test_npy.cpp reads.

The .npy/.npz files are committed, so CI needs no NumPy; rerun this only to
change them:  python3 tests/data/make_fixtures.py
(Debian: apt-get install python3-numpy; the files were made with NumPy 1.24.)

  make_fixtures.py verify DIR   loads the files the C++ test writes when
                                NNC_NPY_EXPORT_DIR=DIR is set, checks that
                                numpy.load reads them with the expected values
                                and that `unzip -t` accepts the archives.
"""
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def save(name, arr):
    np.save(os.path.join(HERE, name), arr, allow_pickle=False)


def make():
    save("f4.npy", np.array([[0.1, -2.5, 3e38], [0.0, -0.0, 1.0 / 3.0]], dtype="<f4"))
    save("f8.npy", np.array([[0.1, 1e-3], [1.5, -7.0]], dtype="<f8"))
    save("i4.npy", np.array([-2147483648, -1, 0, 7, 2147483647], dtype="<i4"))
    save("i8.npy", np.array([[1, -2], [3, 2**31 - 1]], dtype="<i8"))
    save("i8_too_big.npy", np.array([5, 2**31], dtype="<i8"))
    save("u1.npy", np.array([0, 1, 128, 255], dtype="|u1"))
    save("b1.npy", np.array([True, False, True], dtype="|b1"))
    save("scalar_f4.npy", np.array(3.5, dtype="<f4"))
    save("empty_0x3.npy", np.zeros((0, 3), dtype="<f4"))
    save("fortran.npy", np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)))
    save("big_endian.npy", np.array([1.0, 2.0], dtype=">f4"))
    save("complex.npy", np.array([1 + 2j], dtype="<c8"))
    for version in [(2, 0), (3, 0)]:
        with open(os.path.join(HERE, "v%d.npy" % version[0]), "wb") as f:
            np.lib.format.write_array(f, np.arange(4, dtype="<i4").reshape(2, 2), version=version)

    # Byte-for-byte references for serializeNpy.
    save("numpy_known_f4.npy", np.array([[1.5, -2.0, 0.25], [3.0, 4.0, 5.0]], dtype="<f4"))
    save("numpy_known_i4.npy", np.array([-3, 0, 42, 2147483647], dtype="<i4"))
    save("numpy_known_scalar.npy", np.array(-1.25, dtype="<f4"))

    a = np.arange(6, dtype="<f4").reshape(2, 3) / 4
    b = np.array([-1, 2, 3], dtype="<i4")
    c = np.array(7.5, dtype="<f8")
    np.savez(os.path.join(HERE, "stored.npz"), a=a, b=b, c=c)
    np.savez_compressed(os.path.join(HERE, "compressed.npz"), a=a, b=b, c=c)


def verify(d):
    expected = {
        "rt_f4.npy": np.array([[1.5, -2.0, 0.25], [3.0, 4.0, 5.0]], dtype="<f4"),
        "rt_i4.npy": np.array([-3, 0, 42, 2147483647], dtype="<i4"),
        "rt_scalar.npy": np.array(-1.25, dtype="<f4"),
        "rt_empty.npy": np.zeros((0, 3), dtype="<f4"),
    }
    for name, want in expected.items():
        got = np.load(os.path.join(d, name))
        assert got.dtype == want.dtype and got.shape == want.shape, (name, got.dtype, got.shape)
        assert np.array_equal(got, want), name
        print("ok", name, got.dtype, got.shape)
    path = os.path.join(d, "rt.npz")
    subprocess.run(["unzip", "-t", path], check=True)
    with np.load(path) as z:
        assert sorted(z.files) == ["a", "b", "c"], z.files
        assert np.array_equal(z["a"], np.arange(6, dtype="<f4").reshape(2, 3) / 4)
        assert np.array_equal(z["b"], np.array([-1, 2, 3], dtype="<i4"))
        assert z["c"].shape == () and z["c"] == 7.5
    print("ok rt.npz")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "verify":
        verify(sys.argv[2])
    else:
        make()
