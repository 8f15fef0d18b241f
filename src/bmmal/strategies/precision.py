"""Pool factors stored in a chosen precision, multiplied by one row with float32 accumulation and output.

A selection pass reads every stored factor once, so its cost is the factor's bytes: bf16 and fp16
halve them. `fp32` keeps the caller's tensor as it is (float32 or float64: no copy). `bf16`/`fp16`
store each row as a unit vector in that type plus its norm in float32 (so fp16's narrow range cannot
overflow or flush small rows, such as the residuals of confident predictions, to zero). Whatever the
storage, products are accumulated in float32:
- CUDA: `torch.mm(..., out_dtype=torch.float32)` (float32 output);
- CPU bf16: Intel MKL's `cblas_gemm_bf16bf16f32` (exported by the MKL that torch links on x86; float32 output);
- otherwise (CPU fp16, or no MKL): torch's product in the storage type, whose float32 sum is rounded to
  that type (unit rows keep it within [-1, 1]: a relative error of about 1e-3 (bf16) or 5e-4 (fp16)).
`StoredFactor.dot_output` says which path a factor takes, `StoredFactor.dot_error` how far a product may be
from the exact one. `dots(..., rows=)` multiplies only some rows, gathered a block at a time into a buffer
that stays in cache between the copy and the product (a selection skips the rows it can prove unchanged).
"""

from __future__ import annotations

import ctypes
import functools
import os
from dataclasses import dataclass

import torch

from bmmal.errors import BmmalError

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
BLOCK_ROWS = 512  # rows per block when rounding a factor (larger blocks leave the cache: several times slower)
GATHER_ROWS = 128  # rows per gathered block on CPU: 128 x 2,816 fp32 is 1.4 MB, within a core's L2 cache


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise BmmalError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def float64_norms(rows: torch.Tensor, work: torch.Tensor) -> torch.Tensor:
    """float64 norms of `rows` ([k, d], any float type), copied into the float64 buffer `work` ([>= k, >= d]).
    One buffer for a whole pool: a fresh float64 block per call (8 MB for 512 x 2,048) let glibc's heap grow by
    up to 400 MB above the inputs at N = 60,000 (its mmap threshold rises after the first free)."""
    return torch.linalg.vector_norm(work[:len(rows), :rows.shape[1]].copy_(rows), dim=1)


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


_ROW_MAJOR, _NO_TRANS = 101, 111


@dataclass(frozen=True)
class FactorRow:
    """One row of a stored factor: `values` (as stored) times `scale`."""

    values: torch.Tensor
    scale: float = 1.0


class StoredFactor:
    """An [N, d] factor in its storage precision; `dots(row)` is the float32 [N] vector of row_i . row."""

    def __init__(self, values: torch.Tensor, precision: str = "fp32"):
        dtype = PRECISIONS[check_precision(precision)]
        self.device = values.device
        self.shape = tuple(values.shape)
        if precision == "fp32" and values.dtype in (torch.float32, torch.float64):
            self.dtype, self.values, self.scale = values.dtype, values.contiguous(), None  # float64 stays exact
        else:
            self.dtype = dtype
            self.values = torch.empty(self.shape, dtype=dtype, device=self.device)
            self.scale = torch.empty(self.shape[0], dtype=torch.float32, device=self.device)
            for start in range(0, self.shape[0], BLOCK_ROWS):  # a block at a time: no float32 copy of the factor
                block = values[start:start + BLOCK_ROWS].double()
                norm = torch.linalg.vector_norm(block, dim=1).float()
                self.values[start:start + BLOCK_ROWS] = (block / norm.double().clamp_min(1e-300)[:, None]).to(dtype)
                self.scale[start:start + BLOCK_ROWS] = norm
        self.copied = self.values.data_ptr() != values.data_ptr() or values.numel() == 0
        self.dot_output = self._choose_path(self.dtype, self.device)
        self._gather: torch.Tensor | None = None

    @staticmethod
    def _choose_path(dtype, device) -> str:
        if dtype in (torch.float32, torch.float64):
            return "native"
        if device.type == "cuda":
            return "cuda_fp32_out"
        if dtype == torch.bfloat16 and _mkl_bf16_gemm() is not None:
            return "mkl_fp32_out"
        return "rounded"

    def __len__(self) -> int:
        return self.shape[0]

    def row(self, i: int) -> FactorRow:
        """Row i as stored."""
        return FactorRow(self.values[i].clone(), 1.0 if self.scale is None else float(self.scale[i]))

    def norms(self, start: int, stop: int, work: torch.Tensor) -> torch.Tensor:
        """float64 norms of rows [start, stop) as stored (see `float64_norms` for `work`)."""
        norms = float64_norms(self.values[start:stop], work)
        return norms if self.scale is None else norms * self.scale[start:stop].double()

    def rows(self, start: int, stop: int) -> torch.Tensor:
        """Rows [start, stop) as stored, in float64 (for exact squared norms and blocked distances)."""
        rows = self.values[start:stop].double()
        return rows if self.scale is None else rows * self.scale[start:stop, None].double()

    def _product(self, matrix: torch.Tensor, v: torch.Tensor, out: torch.Tensor | None) -> torch.Tensor:
        """matrix @ v by this factor's path; `matrix` holds stored rows (all of them, or a gathered block)."""
        if self.dot_output == "native":
            return torch.mv(matrix, v.to(self.dtype), out=out)
        if self.dot_output == "cuda_fp32_out":
            result = torch.mm(matrix, v.to(self.dtype)[:, None], out_dtype=torch.float32)[:, 0]
            return result if out is None else out.copy_(result)
        if self.dot_output == "mkl_fp32_out":
            n, d = matrix.shape
            out = torch.zeros(n, dtype=torch.float32) if out is None else out
            vector = v.to(torch.bfloat16).contiguous()
            if n and d:
                _mkl_bf16_gemm()(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, n, 1, d, 1.0, matrix.data_ptr(), d,
                                 vector.data_ptr(), 1, 0.0, out.data_ptr(), 1)
            return out
        result = torch.mv(matrix, v.to(self.dtype))
        return result.float() if out is None else out.copy_(result)

    def _gathered_product(self, rows: torch.Tensor, v: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """(values[rows] @ v) into out[:len(rows)], without a [len(rows), d] copy on CPU."""
        out = out[:len(rows)]
        if self.device.type != "cpu":
            return self._product(self.values.index_select(0, rows), v, out)
        if self._gather is None:
            self._gather = torch.empty(GATHER_ROWS, self.shape[1], dtype=self.dtype)
        for start in range(0, len(rows), GATHER_ROWS):
            block = rows[start:start + GATHER_ROWS]
            self._product(torch.index_select(self.values, 0, block, out=self._gather[:len(block)]), v,
                          out[start:start + len(block)])
        return out

    @property
    def dot_dtype(self) -> torch.dtype:
        """The dtype of `dots`: float64 for float64 factors, float32 otherwise."""
        return torch.float64 if self.dtype == torch.float64 else torch.float32

    @property
    def dot_error(self) -> float:
        """A bound on |computed - exact| of `dots`, relative to |stored row_i| |row|: float32 (float64) accumulation
        over d terms, the output rounding of the `rounded` path, TF32 where CUDA may use it for float32."""
        unit = 2.0 ** -53 if self.dtype == torch.float64 else 2.0 ** -24
        error = (self.shape[1] + 4) * unit
        if self.dot_output == "rounded":
            error += torch.finfo(self.dtype).eps
        if self.device.type == "cuda" and self.dtype == torch.float32:
            error += 2.0 ** -10
        return error

    def dots(self, row: FactorRow, out: torch.Tensor | None = None, rows: torch.Tensor | None = None
             ) -> torch.Tensor:
        """[N] row_i . row, accumulated in float32 or better (float64 for float64 factors); with `rows` (positions),
        only those rows: [len(rows)], in out[:len(rows)].

        out: an [N] buffer of `dot_dtype` that receives the result (a selection reuses one per pick: a
        fresh [N] tensor per pick costs page faults worth about a tenth of the pass on CPU)."""
        if rows is None:
            out = self._product(self.values, row.values, out)
            if self.scale is not None:
                out.mul_(self.scale)
        else:
            out = self._gathered_product(rows, row.values, torch.empty(len(rows), dtype=self.dot_dtype,
                                                                        device=self.device) if out is None else out)
            if self.scale is not None:
                out.mul_(self.scale[rows])
        return out if self.scale is None else out.mul_(row.scale)

    def nbytes(self) -> int:
        """Bytes this factor allocated (0 when it reads the caller's tensor as it is)."""
        if not self.copied:
            return 0
        n, d = self.shape
        return n * d * self.dtype.itemsize + (0 if self.scale is None else 4 * n)
