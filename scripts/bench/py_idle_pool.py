#!/usr/bin/env python3
"""Two ProcessPoolExecutor workers idle in time.sleep(3); prints their pids once both are sleeping.
Usage: python3 py_idle_pool.py spawn|fork|forkserver   (used by memory_driver.py)"""
import concurrent.futures as cf, multiprocessing as mp, sys, time


def idle(s):
    time.sleep(s)


if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    with cf.ProcessPoolExecutor(2, mp_context=ctx) as ex:
        fs = [ex.submit(idle, 3) for _ in range(2)]
        time.sleep(1.0)
        print(" ".join(map(str, sorted(ex._processes))), flush=True)
        for f in fs:
            f.result()
