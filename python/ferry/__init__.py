"""Python binding of libferry (include/ferry/ferry.h) for asyncio, over ctypes.

    import asyncio, ferry

    async def main():
        result = await ferry.copy("a.img", "ram:1G", progress=print)
        print(result.bytes_done, result.mechanism)

    asyncio.run(main())

Copies run on the library's own reactor thread; the context's eventfd is registered with
the running loop (loop.add_reader), so many copies share one loop without threads of
Python's. Cancelling the task that awaits a copy cancels the copy: the task ends with
CancelledError once the library has stopped it. Errors raise FerryError (an OSError whose
errno is the library's and whose strerror is its message).

The library is found through $FERRY_LIBRARY (a path), else as libferry.so.1.
"""

import asyncio
import ctypes
import ctypes.util
import dataclasses
import os

__all__ = [
    "Context", "Device", "CopyResult", "Progress", "FerryError", "copy", "default_context",
    "NO_FALLBACK", "FUA", "RDONLY", "DIRECT",
]

RDONLY = 1 << 0
DIRECT = 1 << 1
NO_FALLBACK = 1 << 0
FUA = 1 << 1


class _CtxOpts(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("chunk_bytes", ctypes.c_uint64),
                ("queue_depth", ctypes.c_uint32), ("throttle_bytes_per_sec", ctypes.c_uint64)]


class _Range(ctypes.Structure):
    _fields_ = [("src_off", ctypes.c_uint64), ("dst_off", ctypes.c_uint64),
                ("len", ctypes.c_uint64)]


class _Progress(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("bytes_total", ctypes.c_uint64),
                ("bytes_done", ctypes.c_uint64), ("bytes_offloaded", ctypes.c_uint64),
                ("bytes_emulated", ctypes.c_uint64), ("mechanism", ctypes.c_char * 24)]


class _Completion(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("cookie", ctypes.c_uint64),
                ("user_data", ctypes.c_void_p), ("result", ctypes.c_int),
                ("bytes_total", ctypes.c_uint64), ("bytes_done", ctypes.c_uint64),
                ("bytes_offloaded", ctypes.c_uint64), ("bytes_emulated", ctypes.c_uint64),
                ("mechanism", ctypes.c_char * 24)]


def _load():
    path = os.environ.get("FERRY_LIBRARY") or ctypes.util.find_library("ferry") or "libferry.so.1"
    lib = ctypes.CDLL(path)
    P, i, sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    u32, u64 = ctypes.c_uint32, ctypes.c_uint64
    sigs = {
        "ferry_errmsg": (ctypes.c_char_p, []),
        "ferry_version": (ctypes.c_char_p, []),
        "ferry_ctx_new": (i, [ctypes.POINTER(_CtxOpts), ctypes.POINTER(P)]),
        "ferry_ctx_free": (None, [P]),
        "ferry_ctx_fd": (i, [P]),
        "ferry_dev_open": (i, [P, ctypes.c_char_p, u32, ctypes.POINTER(P)]),
        "ferry_dev_close": (i, [P]),
        "ferry_dev_size": (ctypes.c_int64, [P]),
        "ferry_dev_block_size": (i, [P]),
        "ferry_dev_flush": (i, [P]),
        "ferry_copy_submit": (i, [P, P, P, ctypes.POINTER(_Range), sz, u32, P,
                                  ctypes.POINTER(u64)]),
        "ferry_copy_progress": (i, [P, u64, ctypes.POINTER(_Progress)]),
        "ferry_copy_cancel": (i, [P, u64]),
        "ferry_reap": (i, [P, ctypes.POINTER(_Completion), sz, sz, i]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


_lib = None


def _L():
    global _lib
    if _lib is None:
        _lib = _load()
    return _lib


class FerryError(OSError):
    """A libferry call failed: errno is the library's, strerror its message."""


def _check(rc, what):
    if rc < 0:
        msg = _L().ferry_errmsg().decode(errors="replace") or os.strerror(-rc)
        raise FerryError(-rc, msg, what)
    return rc


@dataclasses.dataclass
class Progress:
    bytes_total: int
    bytes_done: int
    bytes_offloaded: int
    bytes_emulated: int
    mechanism: str


@dataclasses.dataclass
class CopyResult(Progress):
    cookie: int = 0


class Device:
    """A device opened by URI in a Context (file path, file:, ram:SIZE, iscsi://...)."""

    def __init__(self, ctx, uri, handle):
        self.ctx, self.uri, self._h = ctx, uri, handle

    @property
    def size(self):
        return _check(_L().ferry_dev_size(self._handle()), self.uri)

    @property
    def block_size(self):
        return _check(_L().ferry_dev_block_size(self._handle()), self.uri)

    def flush(self):
        """Blocks until every completed write is durable."""
        _check(_L().ferry_dev_flush(self._handle()), self.uri)

    def close(self):
        if self._h is not None:
            _check(_L().ferry_dev_close(self._h), self.uri)
            self._h = None

    def _handle(self):
        if self._h is None:
            raise ValueError(f"device {self.uri!r} is closed")
        return self._h

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Context:
    """A libferry context: its reactor thread, devices and copies. Use from one asyncio loop
    at a time (the one that runs its copies)."""

    def __init__(self, chunk_bytes=0, queue_depth=0, throttle_bytes_per_sec=0):
        opts = _CtxOpts(ctypes.sizeof(_CtxOpts), chunk_bytes, queue_depth, throttle_bytes_per_sec)
        h = ctypes.c_void_p()
        _check(_L().ferry_ctx_new(ctypes.byref(opts), ctypes.byref(h)), "ferry_ctx_new")
        self._h = h
        self._fd = _L().ferry_ctx_fd(h)
        self._loop = None
        self._waiters = {}  # cookie -> future of the completion

    def open(self, uri, readonly=False, direct=False):
        """Opens a device; blocks while it opens (use open_async from a loop)."""
        flags = (RDONLY if readonly else 0) | (DIRECT if direct else 0)
        dev = ctypes.c_void_p()
        _check(_L().ferry_dev_open(self._h, os.fsencode(uri), flags, ctypes.byref(dev)), uri)
        return Device(self, uri, dev)

    async def open_async(self, uri, readonly=False, direct=False):
        return await asyncio.to_thread(self.open, uri, readonly, direct)

    def close(self):
        """Cancels copies in flight, closes the devices still open, stops the thread."""
        if self._h is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._fd)
            _L().ferry_ctx_free(self._h)
            self._h = None
            for fut in self._waiters.values():
                if not fut.done():
                    fut.cancel()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_h", None) is not None:
            try:
                self.close()
            except Exception:  # interpreter shutdown: the loop or the library may be gone
                pass

    def progress(self, cookie):
        p = _Progress(size=ctypes.sizeof(_Progress))
        _check(_L().ferry_copy_progress(self._h, cookie, ctypes.byref(p)), "progress")
        return Progress(p.bytes_total, p.bytes_done, p.bytes_offloaded, p.bytes_emulated,
                        p.mechanism.decode())

    async def copy(self, src, dst, ranges=None, progress=None, no_fallback=False, fua=False,
                   progress_interval=0.2):
        """Copies `ranges` ((src_off, dst_off, len) tuples; default: all of src to the start
        of dst) between two Devices of this context and returns a CopyResult.
        `progress(Progress)` is called every `progress_interval` seconds while it runs."""
        if ranges is None:
            ranges = [(0, 0, src.size)]
        arr = (_Range * max(len(ranges), 1))(*[_Range(*r) for r in ranges])
        flags = (NO_FALLBACK if no_fallback else 0) | (FUA if fua else 0)
        self._attach(asyncio.get_running_loop())
        cookie = ctypes.c_uint64()
        _check(_L().ferry_copy_submit(self._h, src._handle(), dst._handle(), arr, len(ranges),
                                      flags, None, ctypes.byref(cookie)), "copy")
        fut = self._loop.create_future()
        self._waiters[cookie.value] = fut
        ticker = None
        if progress is not None:
            ticker = asyncio.ensure_future(self._tick(cookie.value, fut, progress,
                                                      progress_interval))
        try:
            c = await asyncio.shield(fut)
        except asyncio.CancelledError:
            if fut.done():
                raise
            _L().ferry_copy_cancel(self._h, cookie.value)
            try:
                await fut  # the library reports the end; the devices are free after it
            except asyncio.CancelledError:
                pass
            raise
        finally:
            if ticker is not None:
                ticker.cancel()
        res = CopyResult(c.bytes_total, c.bytes_done, c.bytes_offloaded, c.bytes_emulated,
                         c.mechanism.decode(), c.cookie)
        if c.result != 0:
            err = FerryError(-c.result, f"copy {src.uri} -> {dst.uri}: {os.strerror(-c.result)}"
                             f" after {c.bytes_done} of {c.bytes_total} bytes")
            err.result = res
            raise err
        return res

    async def _tick(self, cookie, fut, progress, interval):
        while not fut.done():
            try:
                progress(self.progress(cookie))
            except FerryError:
                return
            await asyncio.sleep(interval)

    def _attach(self, loop):
        if self._loop is loop:
            return
        if self._loop is not None and self._waiters:
            raise RuntimeError("a ferry.Context serves one event loop at a time")
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._fd)
        self._loop = loop
        loop.add_reader(self._fd, self._on_readable)

    def _on_readable(self):
        out = (_Completion * 32)()
        out[0].size = ctypes.sizeof(_Completion)
        while True:
            n = _L().ferry_reap(self._h, out, 0, 32, 0)
            for c in out[:max(n, 0)]:
                fut = self._waiters.pop(c.cookie, None)
                if fut is not None and not fut.done():
                    fut.set_result(_Completion.from_buffer_copy(c))
            if n < 32:
                return


_default = None


def default_context():
    """The module's shared context (created on first use)."""
    global _default
    if _default is None:
        _default = Context()
    return _default


async def copy(src, dst, ranges=None, progress=None, no_fallback=False, fua=False, ctx=None,
               progress_interval=0.2):
    """Copies between two devices given as URIs or paths (opened and closed here) or as
    Devices, in `ctx` or the default context; see Context.copy."""
    ctx = ctx or default_context()
    opened = []
    try:
        if isinstance(src, (str, bytes, os.PathLike)):
            src = await ctx.open_async(os.fsdecode(src), readonly=True)
            opened.append(src)
        if isinstance(dst, (str, bytes, os.PathLike)):
            dst = await ctx.open_async(os.fsdecode(dst))
            opened.append(dst)
        return await ctx.copy(src, dst, ranges=ranges, progress=progress,
                              no_fallback=no_fallback, fua=fua,
                              progress_interval=progress_interval)
    finally:
        for d in opened:
            d.close()
