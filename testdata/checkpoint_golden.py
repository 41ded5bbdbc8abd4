#!/usr/bin/python3
"""A safetensors file written with numpy from the format's specification,
for github.com/marginloss/marginloss/checkpoint.

    /usr/bin/python3 testdata/checkpoint_golden.py            # writes testdata/golden_checkpoint.safetensors
    /usr/bin/python3 testdata/checkpoint_golden.py --check F  # reads F, exits non-zero unless it holds TENSORS

The format (huggingface/safetensors, "Format"): 8 bytes, the header's length
N as a little-endian u64; N bytes of JSON, {"NAME": {"dtype": ..., "shape":
[...], "data_offsets": [BEGIN, END]}, ..., "__metadata__": {str: str}},
starting with '{' and padded with spaces; then the byte buffer, each
tensor's elements little-endian and row-major, offsets relative to the
buffer's start, the buffer covered without holes.

The writer here is written from that text alone, in the canonical form the Go
package documents (tensors in name order, keys sorted, compact separators,
non-ASCII kept as UTF-8, the header padded to a multiple of 8 bytes), so the
Go test can compare its own output with this file byte for byte. The reader
(used by --check and on the golden itself) parses the header with json and
the tensors with numpy.frombuffer, and validates coverage of the buffer.
"""

import json
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DTYPES = {"F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8", "U64": "<u8"}


def tensors():
    """The golden content; checkpoint_test.go builds the same from the same
    formulas."""
    w = (np.arange(12, dtype=np.float32) * np.float32(0.375) - np.float32(2)).reshape(3, 4)
    w[0, 0] = np.float32(-0.0)
    w[2, 3] = np.float32(1e-45)  # the smallest float32 subnormal
    return {
        "w": w,
        "calls": np.array(2**63 + 5, dtype=np.uint64),  # a scalar: shape []
        "labels": np.array([-3, 0, 7, 2**31 - 1, -2**31], dtype=np.int32),
        "moments": np.array([[1 / 3, -2.5], [1e300, 5e-324]], dtype=np.float64),
        "step": np.array([-(2**40)], dtype=np.int64),
        "empty": np.zeros((0, 3), dtype=np.float32),
    }


METADATA = {"format": "marginloss", "note": "ü \"quoted\" \\ tab\t"}


def dtype_name(a):
    for k, v in DTYPES.items():
        if np.dtype(v) == a.dtype.newbyteorder("<"):
            return k
    raise ValueError(a.dtype)


def write(path, ts, metadata):
    header, chunks, off = {}, [], 0
    for name in sorted(ts):
        a = np.asarray(ts[name]).astype(DTYPES[dtype_name(ts[name])], order="C")  # (ascontiguousarray would make a scalar 1-D)
        raw = a.tobytes(order="C")
        header[name] = {"dtype": dtype_name(a), "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)


def read(path):
    b = open(path, "rb").read()
    (n,) = struct.unpack("<Q", b[:8])
    h = b[8:8 + n]
    assert h[:1] == b"{", "header must start with {"
    header = json.loads(h.decode("utf-8"))
    buf = b[8 + n:]
    out, spans = {}, []
    meta = header.pop("__metadata__", {})
    for name, e in header.items():
        lo, hi = e["data_offsets"]
        dt = np.dtype(DTYPES[e["dtype"]])
        count = int(np.prod(e["shape"], dtype=np.int64))
        assert hi - lo == count * dt.itemsize, (name, e)
        out[name] = np.frombuffer(buf[lo:hi], dtype=dt).reshape(tuple(e["shape"]))
        spans.append((lo, hi))
    end = 0
    for lo, hi in sorted(spans):
        assert lo == end, "hole or overlap in the byte buffer"
        end = hi
    assert end == len(buf), "trailing bytes after the tensors"
    return out, meta


def check(path):
    got, meta = read(path)
    want = tensors()
    assert sorted(got) == sorted(want), (sorted(got), sorted(want))
    for k, v in want.items():
        g = got[k]
        assert g.dtype == v.dtype.newbyteorder("<") and g.shape == v.shape, (k, g.dtype, g.shape, v.dtype, v.shape)
        assert g.tobytes() == v.tobytes(), (k, g, v)  # bitwise: -0.0 and subnormals included
    assert meta == METADATA, meta


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
        print(f"{sys.argv[2]}: ok")
        return
    path = os.path.join(HERE, "golden_checkpoint.safetensors")
    write(path, tensors(), METADATA)
    check(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
