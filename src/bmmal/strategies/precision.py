"""Pool factors stored in a chosen precision, multiplied by one row with float32 accumulation and output.

A selection pass reads every stored factor once, so its cost is the factor's bytes: bf16 and fp16
halve them. `fp32` keeps the caller's tensor as it is (float32 or float64: no copy); `bf16`/`fp16`
store a rounded copy (unless the input already has that type). Whatever the storage, the products
are accumulated in float32 and returned as float32:
- CUDA: `torch.mm(..., out_dtype=torch.float32)`;
- CPU bf16: Intel MKL's `cblas_gemm_bf16bf16f32` (exported by the MKL that torch links on x86);
- CPU fp16: FBGEMM's fp16 linear (packed fp16 weights, float32 activations and output).
Where none of these exists, the product runs in the storage type and is rounded to it (about 3 decimal
digits for bf16) before it is widened; `dot_output` says which path a factor takes.
"""

from __future__ import annotations

import ctypes
import functools
import os

import torch

from bmmal.errors import BmmalError

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise BmmalError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


@functools.cache
def _mkl_bf16_gemm():
    """MKL's bf16 x bf16 -> fp32 GEMM from torch's own library, or None where torch has no MKL."""
    try:
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        gemm = lib.cblas_gemm_bf16bf16f32
    except (OSError, AttributeError):
        return None
    i, p = ctypes.c_int, ctypes.c_void_p
    gemm.restype = None
    gemm.argtypes = [i, i, i, i, i, i, ctypes.c_float, p, i, p, i, ctypes.c_float, p, i]
    return gemm


def _fbgemm_available() -> bool:
    return "fbgemm" in torch.backends.quantized.supported_engines


_ROW_MAJOR, _NO_TRANS = 101, 111


class StoredFactor:
    """An [N, d] factor in its storage precision; `dots(v)` is the float32 [N] vector of row . v."""

    def __init__(self, values: torch.Tensor, precision: str = "fp32"):
        dtype = PRECISIONS[check_precision(precision)]
        if precision == "fp32" and values.dtype in (torch.float32, torch.float64):
            dtype = values.dtype  # as given: float64 pools stay exact
        self.dtype = dtype
        self.device = values.device
        self.shape = tuple(values.shape)
        self.dot_output = self._choose_path(dtype, values.device)
        if self.dot_output == "fbgemm":  # packed for FBGEMM; rows are read back from the source
            self._source = values
            self._packed = torch.ops.quantized.linear_prepack_fp16(values.float().contiguous(), None)
            self.values = None
        else:
            self.values = values.to(dtype).contiguous()

    @staticmethod
    def _choose_path(dtype, device) -> str:
        if dtype in (torch.float32, torch.float64):
            return "native"
        if device.type == "cuda":
            return "cuda_fp32_out"
        if dtype == torch.bfloat16 and _mkl_bf16_gemm() is not None:
            return "mkl"
        if dtype == torch.float16 and _fbgemm_available():
            return "fbgemm"
        return "rounded"

    def __len__(self) -> int:
        return self.shape[0]

    def row(self, i: int) -> torch.Tensor:
        """Row i as stored (rounded to the storage precision)."""
        if self.values is None:
            return self._source[i].to(self.dtype)
        return self.values[i].clone()

    def rows(self, start: int, stop: int) -> torch.Tensor:
        """Rows [start, stop) as stored, in float64 (for exact squared norms and blocked distances)."""
        if self.values is None:
            return self._source[start:stop].to(self.dtype).double()
        return self.values[start:stop].double()

    def dots(self, v: torch.Tensor) -> torch.Tensor:
        """[N] row . v, accumulated in float32 or better (float64 for float64 factors)."""
        if self.dot_output == "native":
            return torch.mv(self.values, v.to(self.dtype))
        if self.dot_output == "cuda_fp32_out":
            return torch.mm(self.values, v.to(self.dtype)[:, None], out_dtype=torch.float32)[:, 0]
        if self.dot_output == "fbgemm":
            return torch.ops.quantized.linear_dynamic_fp16(v.float()[None], self._packed)[0]
        if self.dot_output == "mkl":
            n, d = self.shape
            out = torch.empty(n, dtype=torch.float32)
            vector = v.to(torch.bfloat16).contiguous()
            if n and d:
                _mkl_bf16_gemm()(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, n, 1, d, 1.0, self.values.data_ptr(), d,
                                 vector.data_ptr(), 1, 0.0, out.data_ptr(), 1)
            else:
                out.zero_()
            return out
        return torch.mv(self.values, v.to(self.dtype)).float()

    def nbytes(self) -> int:
        n, d = self.shape
        return n * d * self.dtype.itemsize
