"""Tests of the asyncio binding (python/ferry) against the built libferry.

Plain unittest (pytest runs them too). CTest sets FERRY_LIBRARY and PYTHONPATH."""

import asyncio
import errno
import os
import random
import shutil
import tempfile
import unittest

import ferry


class FerryTest(unittest.IsolatedAsyncioTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ferry_py_test.")
        self.ctx = ferry.Context()

    def tearDown(self):
        self.ctx.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def random_file(self, name, size, seed):
        data = random.Random(seed).randbytes(size)
        with open(self.path(name), "wb") as f:
            f.write(data)
        return data

    def zero_file(self, name, size):
        with open(self.path(name), "wb") as f:
            f.truncate(size)

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    async def test_random_ranges_file_to_ram_to_file(self):
        size = 1 << 20
        rng = random.Random(5)
        data = self.random_file("src", size, 1)
        self.zero_file("dst", size)
        # 4 KiB pieces in a random order: a permutation of the source into the RAM device
        pieces = list(range(size // 4096))
        rng.shuffle(pieces)
        ranges = [(p * 4096, i * 4096, 4096) for i, p in enumerate(pieces)]
        ram = self.ctx.open("ram:1M")
        seen = []
        res = await ferry.copy(self.path("src"), ram, ranges=ranges, ctx=self.ctx,
                               progress=seen.append, progress_interval=0.001)
        self.assertEqual(res.bytes_done, size)
        self.assertEqual(res.bytes_offloaded + res.bytes_emulated, res.bytes_done)
        for p in seen:
            self.assertLessEqual(p.bytes_done, p.bytes_total)
        await ferry.copy(ram, "file:" + self.path("dst"), ctx=self.ctx, fua=True)
        expected = bytearray(size)
        for s, d, n in ranges:
            expected[d:d + n] = data[s:s + n]
        self.assertEqual(self.read("dst"), bytes(expected))

    async def test_parallel_copies_on_one_loop(self):
        size = 2 << 20
        sources = [self.random_file(f"s{i}", size, i) for i in range(4)]
        for i in range(4):
            self.zero_file(f"d{i}", size)
        results = await asyncio.gather(*[
            ferry.copy(self.path(f"s{i}"), self.path(f"d{i}"), ctx=self.ctx) for i in range(4)])
        self.assertEqual(len({r.cookie for r in results}), 4)
        for i in range(4):
            self.assertEqual(self.read(f"d{i}"), sources[i])

    async def test_cancel_by_cancelling_the_task(self):
        self.ctx.close()
        self.ctx = ferry.Context(throttle_bytes_per_sec=32 << 20)
        size = 64 << 20
        self.zero_file("big", size)  # sparse
        src = self.ctx.open(self.path("big"), readonly=True)
        dst = self.ctx.open("ram:64M")
        started = asyncio.Event()

        def on_progress(p):
            if p.bytes_done > 0:
                started.set()

        task = asyncio.ensure_future(self.ctx.copy(src, dst, progress=on_progress,
                                                   progress_interval=0.005))
        await asyncio.wait_for(started.wait(), 30)
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
        dst.close()  # not busy any more: the copy has ended in the library
        src.close()

    async def test_errors(self):
        with self.assertRaises(ferry.FerryError) as e:
            await ferry.copy(self.path("missing"), "ram:1M", ctx=self.ctx)
        self.assertEqual(e.exception.errno, errno.ENOENT)
        self.assertIn("missing", e.exception.strerror)
        with self.assertRaises(ferry.FerryError) as e:
            self.ctx.open("bogus://x")
        self.assertEqual(e.exception.errno, errno.EINVAL)
        self.assertIn("bogus://x", e.exception.strerror)
        with self.assertRaises(ferry.FerryError) as e:
            await ferry.copy("ram:1M", "ram:64K", ctx=self.ctx)
        self.assertEqual(e.exception.errno, errno.ENOSPC)
        self.assertIn("too short", e.exception.strerror)


if __name__ == "__main__":
    unittest.main()
