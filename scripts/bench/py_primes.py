#!/usr/bin/env python3
"""TASKS x count_primes(LIMIT) on WORKERS Python processes, through concurrent.futures.ProcessPoolExecutor
(`executor`, the default) or multiprocessing.Pool(WORKERS).map(..., chunksize=1) (`pool`).
Usage: python3 py_primes.py WORKERS TASKS LIMIT [executor|pool] [start-method]
Same trial-division algorithm as troop's @primes kernel and src/primes.c."""
import concurrent.futures as cf, multiprocessing as mp, sys


def count_primes(limit):
    c = 0
    for n in range(2, limit):
        d = 2
        p = True
        while d * d <= n:
            if n % d == 0:
                p = False
                break
            d += 1
        if p:
            c += 1
    return c


def main():
    workers, tasks, limit = (int(x) for x in sys.argv[1:4])
    api = sys.argv[4] if len(sys.argv) > 4 else "executor"
    ctx = mp.get_context(sys.argv[5]) if len(sys.argv) > 5 else mp.get_context()
    if api == "pool":
        with ctx.Pool(workers) as pool:
            for r in pool.map(count_primes, [limit] * tasks, chunksize=1):
                print(r)
    elif api == "executor":
        with cf.ProcessPoolExecutor(workers, mp_context=ctx) as ex:
            for r in ex.map(count_primes, [limit] * tasks):
                print(r)
    else:
        sys.exit(f"unknown API {api!r}: executor or pool")


if __name__ == "__main__":
    main()
