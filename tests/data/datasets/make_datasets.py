#!/usr/bin/env python3
"""Makes the dataset fixtures that tests/test_data.cpp reads.

The files are committed, so CI needs no Python; rerun this only to change
them:  /usr/bin/python3 tests/data/datasets/make_datasets.py
(Debian: apt-get install python3-numpy; only numpy, zlib and struct are used.)
PNGs are written by hand here, one file per row filter type, so the decoder
is checked against filters no single encoder would choose.
"""
import os
import struct
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

# 2 rows x 3 columns of RGB: values that make every filter wrap around.
RGB = [[(10, 20, 30), (200, 100, 50), (255, 0, 128)],
       [(5, 250, 60), (128, 128, 128), (0, 255, 1)]]


def path(*parts):
    p = os.path.join(HERE, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xffffffff)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def filter_row(f, row, prev, bpp):
    out = bytearray([f])
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][f]
        out.append((x - pred) & 0xff)
    return out


def png(rows, width, depth, color, filt=0, interlace=0, palette=None, idat_parts=1):
    """rows: list of packed scanline byte strings (no filter byte)."""
    samples = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    bpp = max(1, samples * depth // 8)
    raw, prev = bytearray(), bytes(len(rows[0]))
    for r in rows:
        raw += filter_row(filt, r, prev, bpp)
        prev = r
    z = zlib.compress(bytes(raw), 9)
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", width, len(rows), depth, color, 0, 0, interlace))
    out += chunk(b"tEXt", b"Comment\x00an ancillary chunk the decoder skips")
    if palette:
        out += chunk(b"PLTE", bytes(v for rgb in palette for v in rgb))
    step = (len(z) + idat_parts - 1) // idat_parts
    for i in range(0, len(z), step):
        out += chunk(b"IDAT", z[i:i + step])
    return out + chunk(b"IEND", b"")


def write(name, data):
    with open(path(*name.split("/")), "wb") as f:
        f.write(data)


def pack_bits(values, depth):
    out, acc, n = bytearray(), 0, 0
    for v in values:
        acc = (acc << depth) | v
        n += depth
        if n == 8:
            out.append(acc)
            acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


def pngs():
    rgb_rows = [bytes(v for px in r for v in px) for r in RGB]
    for f in range(5):
        write(f"png/rgb_filter{f}.png", png(rgb_rows, 3, 8, 2, filt=f))
    write("png/rgb_two_idat.png", png(rgb_rows, 3, 8, 2, filt=4, idat_parts=2))
    rgba = [bytes(v for px in r for v in px + (77,)) for r in RGB]
    write("png/rgba.png", png(rgba, 3, 8, 6, filt=3))
    gray = [bytes([0, 127, 255]), bytes([1, 2, 3])]
    write("png/gray.png", png(gray, 3, 8, 0, filt=1))
    ga = [bytes([10, 255, 20, 0, 30, 128]), bytes([40, 1, 50, 2, 60, 3])]
    write("png/gray_alpha.png", png(ga, 3, 8, 4, filt=2))
    pal = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    write("png/palette.png", png([bytes([0, 1, 2]), bytes([2, 2, 0])], 3, 8, 3, filt=4, palette=pal))
    # 2-bit palette, 5 wide: a row ends mid-byte.
    idx2 = [[0, 1, 2, 1, 0], [2, 0, 0, 1, 2]]
    write("png/palette2.png", png([pack_bits(r, 2) for r in idx2], 5, 2, 3, filt=0, palette=pal))
    # 1-bit gray, 10 wide: 0 -> 0, 1 -> 255.
    bits = [[1, 0, 1, 1, 0, 0, 0, 1, 1, 0], [0, 1, 0, 0, 1, 1, 1, 0, 0, 1]]
    write("png/gray1.png", png([pack_bits(r, 1) for r in bits], 10, 1, 0, filt=1))
    g16 = [0, 100 * 257, 65535, 128, 129, 40000]
    write("png/gray16.png", png([struct.pack(">3H", *g16[:3]), struct.pack(">3H", *g16[3:])], 3, 16, 0, filt=4))
    write("png/interlaced.png", png(rgb_rows, 3, 8, 2, interlace=1))
    write("png/palette_bad_index.png", png([bytes([0, 1, 3]), bytes([0, 0, 0])], 3, 8, 3, palette=pal))


def pnms():
    g = np.array([[0, 64, 255], [1, 2, 3]], np.uint8)
    write("pnm/gray.pgm", b"P5\n# a comment\n3 2\n255\n" + g.tobytes())
    write("pnm/gray_ascii.pgm", b"P2\n3 2 # size\n15\n0 5 15\n1 2 3\n")
    rgb = np.array(RGB, np.uint8)
    write("pnm/rgb.ppm", b"P6 3 2 255\n" + rgb.tobytes())
    write("pnm/truncated.ppm", b"P6 3 2 255\n" + rgb.tobytes()[:10])


def csvs():
    write("csv/known.csv", b"a,b,label,c\r\n1.5,2,0,-3\r\n4,5.25,2,6\r\n\r\n7,8,1,9e1\r\n")
    write("csv/known_test.csv", b"a, b ,label,c\n0,0,1,0.5\n")
    write("csv/many.csv", b"id,label\n" + b"".join(b"%d,%d\n" % (i, i % 3) for i in range(20)))
    write("csv/regress.csv", b"x1,x2,y\n1,2,0.5\n3,4,-1.25\n5,6,2\n")


def npzs():
    x_train = np.array([[[0, 51], [102, 255]], [[1, 2], [3, 4]], [[10, 20], [30, 40]]], np.uint8)
    y_train = np.array([0, 2, 1], np.int64)
    x_test = np.array([[[255, 0], [0, 255]], [[5, 6], [7, 8]]], np.uint8)
    y_test = np.array([1, 1], np.uint8)
    np.savez(path("npz", "known.npz"), x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    xr = np.array([[0.5, 1, 2], [3, 4, 5], [-1, -2, -3], [6, 7, 8]], np.float32)
    yr = np.array([[1, 2], [3, 4], [5, 6], [7, 8]], np.float32)
    np.savez_compressed(path("npz", "regress.npz"), x_train=xr, y_train=yr, x_test=xr[:2], y_test=yr[:2])
    np.savez(path("npz", "float_labels.npz"), x_train=xr, y_train=np.array([1.0, 0.0, 2.0, 1.0], np.float32),
             x_test=xr[:1], y_test=np.array([2.0], np.float32))
    np.savez(path("npz", "missing_key.npz"), x_train=x_train, y_train=y_train, x_test=x_test)
    np.savez(path("npz", "count_mismatch.npz"), x_train=x_train, y_train=y_train[:2], x_test=x_test, y_test=y_test)
    np.savez(path("npz", "negative_label.npz"), x_train=x_train, y_train=np.array([0, -1, 1]), x_test=x_test,
             y_test=y_test)
    np.savez(path("npz", "fraction_label.npz"), x_train=xr, y_train=np.array([1.0, 0.5, 2.0, 1.0], np.float32),
             x_test=xr[:1], y_test=np.array([2.0], np.float32))
    np.savez(path("npz", "size_mismatch.npz"), x_train=xr, y_train=np.array([0, 1, 0, 1]), x_test=xr[:, :2],
             y_test=np.array([0, 1, 0, 1]))
    # The .npy folder: NCHW float features.
    x4 = np.arange(2 * 1 * 2 * 2, dtype=np.float32).reshape(2, 1, 2, 2) / 8
    np.save(path("npy", "x_train.npy"), x4)
    np.save(path("npy", "y_train.npy"), np.array([3, 0], np.int32))
    np.save(path("npy", "x_test.npy"), x4[:1] + 1)
    np.save(path("npy", "y_test.npy"), np.array([1], np.int32))


def idx(name, data, dims):
    write(name, struct.pack(">BBBB", 0, 0, 8, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + data)


def idxs():
    idx("idx/train-images-idx3-ubyte", bytes([0, 255, 51, 102, 1, 2, 3, 4]), [2, 2, 2])
    idx("idx/train-labels-idx1-ubyte", bytes([4, 0]), [2])
    idx("idx/t10k-images-idx3-ubyte", bytes([255, 255, 0, 0]), [1, 2, 2])
    idx("idx/t10k-labels-idx1-ubyte", bytes([1]), [1])


def folders():
    # Class folders: cat (RGB PNG and PPM), dog (gray PNG and PGM), 2x3 each.
    rgb_rows = [bytes(v for px in r for v in px) for r in RGB]
    write("images/train/cat/a.png", png(rgb_rows, 3, 8, 2, filt=2))
    write("images/train/cat/b.ppm", b"P6 3 2 255\n" + bytes(255 - v for r in rgb_rows for v in r))
    write("images/train/dog/c.pgm", b"P5 3 2 255\n" + bytes([0, 30, 60, 90, 120, 150]))
    write("images/train/dog/d.png", png([bytes([9, 8, 7]), bytes([6, 5, 4])], 3, 8, 0, filt=3))
    write("images/train/dog/notes.txt", b"not an image: skipped\n")
    write("images/test/dog/e.pgm", b"P2 3 2 255 1 2 3 4 5 6\n")
    # A folder whose images disagree in size (2x3 and 4x6).
    write("images/mixed/a/small.pgm", b"P5 3 2 255\n" + bytes([0, 30, 60, 90, 120, 150]))
    write("images/mixed/b/large.pgm", b"P5 6 4 255\n" + bytes(range(0, 240, 10)))


if __name__ == "__main__":
    pngs()
    pnms()
    csvs()
    npzs()
    idxs()
    folders()
