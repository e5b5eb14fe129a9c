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
GDAL handle; GDAL_NUM_THREADS decodes the blocks of one read in parallel); the carries are put together in
the consumer's thread, in order. Memory: `depth` chunks in flight plus 2r full-width rows of carry.
"""
import collections
import contextlib
import itertools
import threading
import time
from dataclasses import dataclass

import numpy as np

from .raster import open_raster, read_window

CHUNK_BYTES = {"cpu": 128 << 20, "cuda": 256 << 20}  # float32 bytes of one read chunk, all bands
TILE = {"cpu": 256, "cuda": 512}  # side of the computed tiles when TILE_SIZE is 0 (automatic)
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
    read in full-width strips as tall as CHUNK_BYTES allows (at least MIN_ROWS rows) and computed in
    tiles TILE[device] wide."""
    if tile_size:
        return Plan(min(tile_size, height), min(tile_size, width), tile_size)
    side = TILE.get(device_type, TILE["cpu"])
    block_rows, block_cols = max(1, min(block[0], height)), max(1, min(block[1], width))
    row_bytes = 4 * bands
    if block_cols >= width:  # strips: full-width reads, band after band
        rows = max(MIN_ROWS, CHUNK_BYTES.get(device_type, CHUNK_BYTES["cpu"]) // (row_bytes * width))
        rows = _multiple(min(rows, side), block_rows, height) if block_rows <= rows else min(rows, height)
        return Plan(rows, width, side)
    cols = _multiple(side, block_cols, width)
    rows = _multiple(side, block_rows, height) if block_rows <= 2 * side else min(side, height)
    while rows > max(block_rows, MIN_ROWS) and rows * cols * row_bytes > CHUNK_BYTES.get(device_type, CHUNK_BYTES["cpu"]):
        rows = max(block_rows, rows - block_rows) if block_rows < rows else rows // 2
    return Plan(rows, cols, cols)


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


def _pad(array, pads):
    """array padded by reflection about its edge pixel (numpy 'reflect'; 'edge' for a one-pixel side),
    as raster.read_window pads; pads = ((top, bottom), (left, right)) on the last two axes."""
    if not any(p for pair in pads for p in pair):
        return array
    lead = ((0, 0),) * (array.ndim - 2)
    return np.pad(array, lead + tuple(pads), mode="reflect" if min(array.shape[-2:]) > 1 else "edge")


def _read_ahead(path, reads, skip_bands, norm, stats, threads, depth, gdal_threads):
    """(read, data, valid) of each read in order, normalised, read ahead by `threads` threads with their
    own handles, at most `depth` reads in flight. Stops reading when the consumer stops."""
    from concurrent.futures import ThreadPoolExecutor

    import rasterio

    local, handles, lock = threading.local(), [], threading.Lock()

    def load(read):
        if not hasattr(local, "dataset"):
            local.dataset = open_raster(path)
            with lock:
                handles.append(local.dataset)
        started = time.perf_counter()
        row, col, h, w = read
        with rasterio.Env(GDAL_NUM_THREADS=gdal_threads) if gdal_threads else contextlib.nullcontext():
            data, valid = read_window(local.dataset, row, col, h, w, 0, skip_bands=skip_bands)
        if norm is not None:
            norm.apply(data, valid)
        return read, data, valid, time.perf_counter() - started

    reads, pending = iter(reads), collections.deque()
    try:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hsigan-read") as pool:
            try:
                pending.extend(pool.submit(load, read) for read in itertools.islice(reads, depth))
                while pending:
                    read, data, valid, seconds = pending.popleft().result()
                    stats["read_seconds"] = stats.get("read_seconds", 0.0) + seconds
                    pending.extend(pool.submit(load, following) for following in itertools.islice(reads, 1))
                    yield read, data, valid
            finally:  # cancelled, failed or done: drop what is queued; the pool waits for running reads
                for future in pending:
                    future.cancel()
    finally:
        for handle in handles:
            handle.close()


def read_tiles(path, height, width, plan_, halo, norm, stats, threads=1, depth=2, gdal_threads=None):
    """Iterate ((row, col, h, w), data, valid): the output window of each tile, its bands with a halo of
    `halo` pixels ((bands, h + 2 halo, w + 2 halo) float32, normalised) and validity, in block order.
    Equal to read_window(dataset, row, col, h, w, halo) normalised, with every block read once."""
    reads = chunks(height, width, plan_)
    carry = carry_valid = next_carry = next_valid = None  # rows [top, strip start) of the whole width
    col_carry = None
    stats.setdefault("read_seconds", 0.0)
    skip = norm.bad_bands if norm is not None else None
    for (row, col, h, w), new, new_valid in _read_ahead(path, reads, skip, norm, stats, threads, depth,
                                                         gdal_threads):
        end_row, end_col = row + h, col + w
        top, left = max(row - 2 * halo, 0), max(col - 2 * halo, 0)
        out_top = 0 if row == 0 else row - halo
        out_bottom = height if end_row == height else end_row - halo
        out_left = 0 if col == 0 else col - halo
        out_right = width if end_col == width else end_col - halo
        if col == 0:  # a new strip: the rows carried from the last one, and a fresh carry to fill
            carry, carry_valid = next_carry, next_valid
            keep = min(2 * halo, end_row)
            next_carry = np.empty((new.shape[0], keep, width), dtype=np.float32)
            next_valid = np.empty((keep, width), dtype=bool)
            col_carry = None
        region = np.empty((new.shape[0], end_row - top, end_col - left), dtype=np.float32)
        region_valid = np.empty(region.shape[1:], dtype=bool)
        above = row - top
        if above:
            region[:, :above, col - left:] = carry[:, carry.shape[1] - above:, col:end_col]
            region_valid[:above, col - left:] = carry_valid[carry_valid.shape[0] - above:, col:end_col]
        region[:, above:, col - left:] = new
        region_valid[above:, col - left:] = new_valid
        if col > left:
            region[:, :, :col - left] = col_carry[0][:, :, col_carry[0].shape[2] - (col - left):]
            region_valid[:, :col - left] = col_carry[1][:, col_carry[1].shape[1] - (col - left):]
        keep = next_carry.shape[1]
        next_carry[:, :, col:end_col] = region[:, region.shape[1] - keep:, col - left:]
        next_valid[:, col:end_col] = region_valid[region_valid.shape[0] - keep:, col - left:]
        side = min(2 * halo, end_col - left)
        col_carry = (region[:, :, region.shape[2] - side:], region_valid[:, region_valid.shape[1] - side:])
        pads = ((top - (out_top - halo), out_bottom + halo - end_row), (left - (out_left - halo),
                                                                        out_right + halo - end_col))
        data, valid = _pad(region, pads), _pad(region_valid, pads)
        for start in range(out_left, out_right, plan_.tile_cols):
            stop = min(start + plan_.tile_cols, out_right)
            a, b = start - out_left, stop - out_left + 2 * halo
            yield (out_top, start, out_bottom - out_top, stop - start), data[:, :, a:b], valid[:, a:b]
