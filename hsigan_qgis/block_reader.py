"""Reading a raster for dense classification with every block decoded once.

The raster is walked in the file's own block order: horizontal strips whose height is a whole number of
block rows, each strip read left to right in chunks a whole number of blocks wide (a strip-organised or
band-sequential file such as ENVI BSQ: one full-width chunk per strip, which GDAL reads band by band).
The classifier needs a halo of r pixels around each output pixel, so outputs lag the reads by r: after
reading rows [.., R) the outputs up to row R - r are computable. The 2r rows (and, within a strip, 2r
columns) that the next outputs need from data already read are carried over from one chunk to the next
instead of being read again; only raster edges are filled, by the reflection rule of raster.read_window.
Every output pixel hence sees exactly the neighbourhood read_window(.., halo=r) would give it.

Chunks are read, validated and normalised by `threads` threads ahead of the consumer (each with its own
GDAL handle, decoding straight into the chunk's halo'd buffer; GDAL_NUM_THREADS decodes the blocks of one
read in parallel). For a GPU each thread sends its chunk there itself, as stored where the file allows
(device_normalise: the GPU judges and normalises it) and as normalised float32 otherwise; per-thread
CUDA streams made no difference beyond the noise (bench/RESULTS-cuda.md, run 10). The carried halo and
the reflected edges are filled in the consumer's thread, in order (on the GPU for a GPU). Memory: `depth`
chunks in flight (in_flight()) plus 2r full-width rows of carry.
"""
import collections
import contextlib
import itertools
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from .raster import open_raster, read_window, reflect_pad

CHUNK_BYTES = {"cpu": 128 << 20, "cuda": 256 << 20}  # float32 bytes of one read chunk, all bands
# side of the computed tiles when TILE_SIZE is 0 (automatic). 256 on CUDA too: more, smaller chunks keep
# the reading threads and the GPU busy together (512 was no faster on a 2048^2 raster, slower on 1024^2: run 15)
TILE = {"cpu": 256, "cuda": 256}
OPEN_HANDLES_FIRST = True  # the reading threads' handles opened before they start (False: each its own; run 16)
MIN_ROWS = 16


@dataclass(frozen=True)
class Plan:
    """strip_rows x chunk_cols: what one read covers; tile_cols: widest tile computed at once."""
    strip_rows: int
    chunk_cols: int
    tile_cols: int


def _multiple(target, step, limit):
    """target rounded to a whole number of `step`s (at least one), at most `limit`."""
    return min(limit, max(step, int(round(target / step)) * step))


def plan(height, width, block, bands, tile_size=0, device_type="cpu"):
    """Read geometry. tile_size > 0 (the user's TILE_SIZE): tiles and reads of that side. 0: tiles of
    TILE[device] rounded to the file's blocks; a file whose blocks span its width (strips, ENVI BSQ) is
    read in full-width strips as tall as CHUNK_BYTES allows (at most TILE[device], at least MIN_ROWS
    rows; wider files in square chunks) and computed in tiles TILE[device] wide on a CPU, whole strips
    on a GPU."""
    if tile_size:
        return Plan(min(tile_size, height), min(tile_size, width), tile_size)
    side = TILE.get(device_type, TILE["cpu"])
    block_rows, block_cols = max(1, min(block[0], height)), max(1, min(block[1], width))
    row_bytes = 4 * bands
    budget = CHUNK_BYTES.get(device_type, CHUNK_BYTES["cpu"])
    if block_cols >= width and budget // (row_bytes * width) >= MIN_ROWS:  # strips: full-width reads, band after band
        rows = budget // (row_bytes * width)
        rows = _multiple(min(rows, side), block_rows, height) if block_rows <= rows else min(rows, height)
        return Plan(rows, width, width if device_type == "cuda" else side)
    if block_cols >= width:  # strips too wide for the budget: square chunks (each line is read in pieces)
        return Plan(min(side, height), min(side, width), side)
    cols = _multiple(side, block_cols, width)
    rows = _multiple(side, block_rows, height) if block_rows <= 2 * side else min(side, height)
    while rows > max(block_rows, MIN_ROWS) and rows * cols * row_bytes > budget:
        rows = max(block_rows, rows - block_rows) if block_rows < rows else rows // 2
    return Plan(rows, cols, cols)


IN_FLIGHT_BYTES = {"cpu": 512 << 20, "cuda": 4 << 30}  # all chunks read ahead together, at most (host / GPU memory)


def in_flight(plan_, bands, threads, device_type="cpu", free_bytes=None):
    """Chunks read ahead: one per reading thread and one more, as far as IN_FLIGHT_BYTES allows (two at
    least). free_bytes: the GPU's free memory, a quarter of which the chunks may take (on a GPU they are
    held in its memory, and a laptop's 4 GB card has no 4 GiB to spare). Two per thread on CUDA made no
    difference beyond the noise (bench/RESULTS-cuda.md, run 11)."""
    chunk = plan_.strip_rows * plan_.chunk_cols * bands * 4
    budget = IN_FLIGHT_BYTES.get(device_type, IN_FLIGHT_BYTES["cpu"])
    if free_bytes is not None:
        budget = min(budget, free_bytes // 4)
    return max(2, min(threads + 1, budget // max(chunk, 1)))


def chunks(height, width, plan_):
    """(row, col, h, w) of the reads in block order: strip by strip, left to right."""
    for row in range(0, height, plan_.strip_rows):
        for col in range(0, width, plan_.chunk_cols):
            yield row, col, min(plan_.strip_rows, height - row), min(plan_.chunk_cols, width - col)


def count_tiles(height, width, plan_, halo):
    """How many tiles read_tiles yields (for progress)."""
    strips = len(range(0, height, plan_.strip_rows))
    total = 0
    for col in range(0, width, plan_.chunk_cols):
        end = min(col + plan_.chunk_cols, width)
        start = 0 if col == 0 else col - halo
        stop = width if end == width else end - halo
        total += -(-(stop - start) // plan_.tile_cols)
    return strips * total


def _is_numpy(array):
    return isinstance(array, np.ndarray)


def _flip(array, axis):
    if _is_numpy(array):
        return np.flip(array, axis)
    import torch
    return torch.flip(array, [axis])


def _empty(like, shape, dtype):
    """An empty array of `shape` (dtype 'float32' or 'bool') of the kind and on the device of `like`."""
    if _is_numpy(like):
        return np.empty(shape, dtype=dtype)
    import torch
    return torch.empty(shape, dtype=getattr(torch, dtype), device=like.device)


def _copy(array):
    return array.copy() if _is_numpy(array) else array.clone()


def _reflect_in_place(array, pads):
    """Fill the pads of `array` (interior filled) as raster.reflect_pad would, without copying the interior.
    `array`: numpy, or a torch tensor (on the GPU when the reading threads copied the chunks there)."""
    (top, bottom), (left, right) = pads
    rows, cols = array.shape[-2] - top - bottom, array.shape[-1] - left - right
    if max(top, bottom) >= rows or max(left, right) >= cols or min(rows, cols) <= 1:  # tiny: numpy's rule
        interior = array[..., top:top + rows, left:left + cols]
        if _is_numpy(array):
            array[...] = reflect_pad(interior.copy(), pads)
        else:
            import torch
            array.copy_(torch.from_numpy(reflect_pad(interior.cpu().numpy().copy(), pads)))
        return
    inner = slice(left, left + cols)
    if top:
        array[..., :top, inner] = _flip(array[..., top + 1:2 * top + 1, inner], -2)
    if bottom:
        end = top + rows
        array[..., end:, inner] = _flip(array[..., end - 1 - bottom:end - 1, inner], -2)
    if left:
        array[..., :left] = _flip(array[..., left + 1:2 * left + 1], -1)
    if right:
        end = left + cols
        array[..., end:] = _flip(array[..., end - 1 - right:end - 1], -1)


@dataclass(frozen=True)
class _Piece:
    """Where the read of rows [row, end_row) x cols [col, end_col) goes: it completes the output window
    rows [out_top, out_bottom) x cols [out_left, out_right), whose halo'd data covers the raster's rows
    [top, end_row) x cols [left, end_col) plus `pads` of reflection at the raster's edges."""
    row: int
    col: int
    end_row: int
    end_col: int
    top: int
    left: int
    out_top: int
    out_bottom: int
    out_left: int
    out_right: int
    pads: tuple


def _piece(read, height, width, halo):
    row, col, h, w = read
    end_row, end_col = row + h, col + w
    out_top, out_left = (0 if row == 0 else row - halo), (0 if col == 0 else col - halo)
    out_bottom = height if end_row == height else end_row - halo
    out_right = width if end_col == width else end_col - halo
    top, left = max(out_top - halo, 0), max(out_left - halo, 0)
    pads = ((top - (out_top - halo), out_bottom + halo - end_row), (left - (out_left - halo), out_right + halo - end_col))
    return _Piece(row, col, end_row, end_col, top, left, out_top, out_bottom, out_left, out_right, pads)


def _read_ahead(path, reads, load_one, stats, threads, depth, gdal_threads):
    """load_one(dataset, read) of each read in order, run ahead by `threads` threads, each with its own
    handle (opened here), at most `depth` reads in flight. Stops reading when the consumer stops."""
    from concurrent.futures import ThreadPoolExecutor

    import rasterio

    local, free, handles = threading.local(), queue.SimpleQueue(), []

    def load(read):
        if not hasattr(local, "dataset"):
            if OPEN_HANDLES_FIRST:
                local.dataset = free.get_nowait()
            else:
                local.dataset = open_raster(path)
                handles.append(local.dataset)
        started = time.perf_counter()
        with rasterio.Env(GDAL_NUM_THREADS=gdal_threads) if gdal_threads else contextlib.nullcontext():
            result = load_one(local.dataset, read)
        return result, time.perf_counter() - started

    reads, pending = iter(reads), collections.deque()
    try:
        # one handle per thread, all opened here, one after another: opened in a new thread, a georeferenced GeoTIFF
        # first sets up that thread's PROJ context (~10-25 ms, holding the GIL), so 16 threads took turns for 0.3 s
        # and stalled the reads already running (bench/RESULTS-cuda.md, run 16)
        for _ in range(threads if OPEN_HANDLES_FIRST else 0):
            handles.append(open_raster(path))
            free.put(handles[-1])
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hsigan-read") as pool:
            try:
                pending.extend(pool.submit(load, read) for read in itertools.islice(reads, depth))
                while pending:
                    result, seconds = pending.popleft().result()
                    stats["read_seconds"] = stats.get("read_seconds", 0.0) + seconds
                    pending.extend(pool.submit(load, following) for following in itertools.islice(reads, 1))
                    yield result
            finally:  # cancelled, failed or done: drop what is queued; the pool waits for running reads
                for future in pending:
                    future.cancel()
    finally:
        for handle in handles:
            handle.close()


def read_tiles(path, height, width, plan_, halo, norm, stats, threads=1, depth=2, gdal_threads=None, device=None,
               normalise_on_device=True):
    """Iterate ((row, col, h, w), data, valid): the output window of each tile, its bands with a halo of
    `halo` pixels ((bands, h + 2 halo, w + 2 halo) float32, normalised) and validity, in block order.
    Equal to read_window(dataset, row, col, h, w, halo) normalised, with every block read once. The
    reading threads write the new pixels into each chunk's halo'd buffer, this thread only the carried
    halo and the edges. device: a torch device (a GPU) to which the reading threads copy each chunk, each
    thread its own (parallel copies, none on this thread); the halo is then carried on that device and the
    tiles are torch tensors there. None: numpy arrays. With a device and normalise_on_device, chunks go
    there in the file's own type and are judged and normalised there (device_normalise), where the file
    allows."""
    skip = norm.bad_bands if norm is not None else None
    on_device = None
    if device is not None and normalise_on_device:
        from .device_normalise import DeviceNormalisation
        with open_raster(path) as dataset:
            on_device = DeviceNormalisation.for_raster(dataset, norm, device)

    def load_one(dataset, read):
        piece = _piece(read, height, width, halo)
        (pt, pb), (pl, pr) = piece.pads
        shape = (piece.end_row - piece.top + pt + pb, piece.end_col - piece.left + pl + pr)
        r0, c0 = pt + piece.row - piece.top, pl + piece.col - piece.left
        if on_device is not None:  # stored values to the device, judged and normalised there
            import torch
            raw = on_device.read(dataset, *read)
            data = torch.empty((dataset.count,) + shape, dtype=torch.float32, device=device)
            valid = torch.empty(shape, dtype=torch.bool, device=device)
            on_device.into(raw, data[:, r0:r0 + read[2], c0:c0 + read[3]], valid[r0:r0 + read[2], c0:c0 + read[3]])
            return piece, data, valid
        data, valid = np.empty((dataset.count,) + shape, dtype=np.float32), np.empty(shape, dtype=bool)
        new = data[:, r0:r0 + read[2], c0:c0 + read[3]]  # GDAL decodes straight into the chunk's buffer
        new, new_valid = read_window(dataset, read[0], read[1], read[2], read[3], 0, skip_bands=skip, out=new)
        if norm is not None:
            norm.apply(new, new_valid)
        valid[r0:r0 + read[2], c0:c0 + read[3]] = new_valid
        if device is not None:
            import torch
            data, valid = torch.from_numpy(data).to(device), torch.from_numpy(valid).to(device)
        return piece, data, valid

    reads = chunks(height, width, plan_)
    carry = next_carry = None  # (data, valid) of rows [top, strip start) of the whole width
    col_carry = None  # (data, valid) of the last chunk's columns the next one needs, rows [top, strip end)
    stats.setdefault("read_seconds", 0.0)
    for piece, data, valid in _read_ahead(path, reads, load_one, stats, threads, depth, gdal_threads):
        (pt, pb), (pl, pr) = piece.pads
        above, beside = piece.row - piece.top, piece.col - piece.left
        rows = slice(pt, pt + piece.end_row - piece.top)  # the raster's rows [top, end_row) in data
        if piece.col == 0:  # a new strip: the rows carried from the last one, and a fresh carry to fill
            carry = next_carry
            keep = min(2 * halo, piece.end_row)
            next_carry = (_empty(data, (data.shape[0], keep, width), "float32"), _empty(valid, (keep, width), "bool"))
            col_carry = None
        if above:
            cols = slice(pl + beside, pl + beside + piece.end_col - piece.col)
            data[:, pt:pt + above, cols] = carry[0][:, carry[0].shape[1] - above:, piece.col:piece.end_col]
            valid[pt:pt + above, cols] = carry[1][carry[1].shape[0] - above:, piece.col:piece.end_col]
        if beside:
            data[:, rows, pl:pl + beside] = col_carry[0][:, :, col_carry[0].shape[2] - beside:]
            valid[rows, pl:pl + beside] = col_carry[1][:, col_carry[1].shape[1] - beside:]
        keep = next_carry[1].shape[0]
        new_cols = slice(pl + beside, pl + beside + piece.end_col - piece.col)
        next_carry[0][:, :, piece.col:piece.end_col] = data[:, rows.stop - keep:rows.stop, new_cols]
        next_carry[1][:, piece.col:piece.end_col] = valid[rows.stop - keep:rows.stop, new_cols]
        side = min(2 * halo, piece.end_col - piece.left)
        end = pl + piece.end_col - piece.left
        col_carry = (_copy(data[:, rows, end - side:end]), _copy(valid[rows, end - side:end]))
        _reflect_in_place(data, piece.pads)
        _reflect_in_place(valid, piece.pads)
        for start in range(piece.out_left, piece.out_right, plan_.tile_cols):
            stop = min(start + plan_.tile_cols, piece.out_right)
            a, b = start - piece.out_left, stop - piece.out_left + 2 * halo
            yield (piece.out_top, start, piece.out_bottom - piece.out_top, stop - start), \
                data[:, :, a:b], valid[:, a:b]
