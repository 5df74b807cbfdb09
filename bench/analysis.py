"""Analysis benchmark: the 90-day hotspot computation beside the bare ``ST_ClusterDBSCAN`` query,
measured in the same run on the same database.

    .venv/bin/python bench/analysis.py [--quick] [--database-url postgres://...]

Uses the scale data set (``manage.py seed --buildings 50000 --incidents 200000``: 200,000
incidents over a year, ~49,000 of them in the last 90 days) in its own database next to the
app's, ``<name>_bench`` (the first run loads it, a few minutes; later runs reuse it).
``--quick`` uses that database when it is loaded, else a smaller one (``<name>_bench_quick``,
20,000 incidents, loaded in well under a minute), and takes fewer samples.

Measured, alternately, median of the samples, each in its own transaction:

- GridCommand: ``command.analysis.hotspots.hotspots_compute()``, the hotspots layer's own SQL
  for the default windows (3 x 30 days): DBSCAN per category and window, hulls, counts,
  first/last, the previous window's count (trend), the streak (recurrence), the cell, read
  into Python;
- bare: ``ST_ClusterDBSCAN`` alone over the same 90 days of incidents (the same rows: the
  windows end at the end of today, as the layer's), partitioned by category and window with
  the same per-category distance and minimum count, counting the clustered rows.

The last line is the ratio of the medians and of the best samples (goal: <= 1.2x, and seconds,
not minutes), and the ratio of the two queries' CPU time in the database backend (run serially,
without parallel workers, so that all of it is the backend's; when the server runs on this
machine; in nanoseconds from /proc/<pid>/schedstat, else in the 10 ms ticks of
/proc/<pid>/stat). On a shared, loaded machine the wall-time medians swing by a third between
runs and the best samples by more; the CPU times swing less, but still by +-15 % (1.30x to
1.52x in three runs of the same code), so compare runs, not one figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR / "bench"))
sys.path.insert(0, str(BASE_DIR))

from benchlib import bench_database_url, database_ensure, psycopg_conninfo  # noqa: E402

FULL = (50000, 200000)
QUICK = (5000, 20000)

BARE_SQL = """
WITH span AS (SELECT %(end)s::timestamptz AS hs_end, make_interval(days => %(days)s) AS hs_len),
param AS (
  SELECT c.id AS category_id, COALESCE(p.radius, %(radius)s) AS radius, COALESCE(p.min_count, %(min)s) AS min_count
  FROM command_category c
  LEFT JOIN unnest(%(codes)s::text[], %(radii)s::float8[], %(mins)s::int[]) AS p(code, radius, min_count)
    ON p.code = c.code
),
pts AS (
  SELECT i.location, i.category_id,
         floor(extract(epoch FROM s.hs_end - i.opened_at) / extract(epoch FROM s.hs_len))::int AS win
  FROM command_incident i CROSS JOIN span s
  WHERE i.opened_at < s.hs_end AND i.opened_at >= s.hs_end - s.hs_len * %(windows)s
)
SELECT count(c.cluster) FROM (
  SELECT ST_ClusterDBSCAN(ST_Transform(p.location, 3857), eps := m.radius / %(k)s, minpoints := m.min_count)
           OVER (PARTITION BY p.category_id, p.win) AS cluster
  FROM pts p JOIN param m ON m.category_id = p.category_id
) c
"""


def loaded(url: str) -> int:
    import psycopg

    try:
        with psycopg.connect(psycopg_conninfo(url)) as conn:
            row = conn.execute("SELECT to_regclass('command_incident') IS NOT NULL").fetchone()
            if not row or not row[0]:
                return 0
            count = conn.execute("SELECT count(*) FROM command_incident").fetchone()
            return int(count[0]) if count else 0
    except psycopg.OperationalError:
        return 0


def ensure(url: str, buildings: int, incidents: int) -> None:
    """Create and load the database when it does not hold the data set; migrate it either way."""
    database_ensure(url)
    env = {**os.environ, "DATABASE_URL": url, "GRIDCOMMAND_TESTING": "1", "DJANGO_SECURE": "0"}
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=BASE_DIR, env=env, check=True)
    if loaded(url) < incidents:
        print(f"bench: loading {incidents:,} incidents, {buildings:,} buildings (one-time)", flush=True)
        subprocess.run(
            [*manage, "seed", "--buildings", str(buildings), "--incidents", str(incidents)],
            cwd=BASE_DIR,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        import psycopg

        with psycopg.connect(psycopg_conninfo(url), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE command_incident")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer samples; a smaller data set if the full one is not loaded"
    )
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # the second stage
    args = parser.parse_args()
    os.environ.setdefault("GRIDCOMMAND_TESTING", "1")  # benchmark settings: no production secret key needed
    os.environ.setdefault("DJANGO_SECURE", "0")
    if args.measure:
        measure(quick=args.quick)
        return
    url = args.database_url or bench_database_url("bench")
    size = FULL
    if args.quick and not args.database_url and loaded(url) < FULL[1]:
        url, size = bench_database_url("bench_quick"), QUICK
    ensure(url, *size)
    # measure in a fresh process whose settings read the bench database (this one's are loaded)
    env = {**os.environ, "DATABASE_URL": url, "DB_POOL_MAX": "0", "DJANGO_SETTINGS_MODULE": "command.settings"}
    argv = [sys.executable, __file__, "--measure", *(["--quick"] if args.quick else [])]
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)  # noqa: S606 - this script again, fixed arguments


def measure(*, quick: bool) -> None:
    import django

    django.setup()
    from django.db import connection, transaction

    from command.analysis.hotspots import hotspots_compute
    from command.analysis.params import hotspot_params
    from command.layer_queries import today_end_sql

    hp = hotspot_params()
    # the same rows as the layer's default: the windows end at the end of today (TIME_ZONE)
    window: dict[str, Any] = {}
    end_sql = today_end_sql(window)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), cos(radians(avg(ST_Y(location)))) FROM command_incident "
            f"WHERE opened_at < {end_sql} AND opened_at >= {end_sql} - make_interval(days => %(days)s)",
            {**window, "days": hp.window_days * hp.windows},
        )
        rows_90, k = cursor.fetchone() or (0, 1.0)
    codes = sorted(hp.per_category)
    bare_params = {
        "end": window["today_end"],
        "days": hp.window_days,
        "windows": hp.windows,
        "radius": hp.radius_m,
        "min": hp.min_count,
        "codes": codes,
        "radii": [hp.per_category[c][0] for c in codes],
        "mins": [hp.per_category[c][1] for c in codes],
        "k": k,
    }

    def gridcommand() -> int:
        with transaction.atomic():
            return len(hotspots_compute())

    def bare() -> int:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(BARE_SQL, bare_params)
            row = cursor.fetchone()
            return int(row[0]) if row else 0

    samples = 3 if quick else 15
    print(
        f"bench: {rows_90:,} incidents in the last {hp.window_days * hp.windows} days "
        f"({hp.windows} windows of {hp.window_days} days), {samples} samples each",
        flush=True,
    )
    ours_t: list[float] = []
    bare_t: list[float] = []
    hotspots = clustered = 0
    gridcommand(), bare()  # warm the caches: both read the same rows
    for _ in range(samples):
        t0 = time.perf_counter()
        hotspots = gridcommand()
        ours_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        clustered = bare()
        bare_t.append(time.perf_counter() - t0)
    ours, base = statistics.median(ours_t), statistics.median(bare_t)
    print(f"hotspots (GridCommand): {hotspots} hotspots, median {ours * 1000:.0f} ms (min {min(ours_t) * 1000:.0f})")
    print(
        f"bare ST_ClusterDBSCAN:  {clustered:,} rows in clusters, "
        f"median {base * 1000:.0f} ms (min {min(bare_t) * 1000:.0f})"
    )
    cpu = backend_cpu_ratio(connection, gridcommand, bare, samples)
    best = min(ours_t) / min(bare_t)
    print(
        f"90-day hotspots vs bare ST_ClusterDBSCAN: {ours / base:.2f}x "
        f"(median {ours * 1000:.0f} / {base * 1000:.0f} ms), "
        f"{best:.2f}x best of {samples} ({min(ours_t) * 1000:.0f} / {min(bare_t) * 1000:.0f} ms){cpu} (goal <= 1.2x)"
    )


def backend_cpu_ratio(connection: Any, ours: Callable[[], int], bare: Callable[[], int], samples: int) -> str:
    """The two queries' CPU time in the database backend, without parallel workers (their CPU
    is not the backend's), alternated, medians: steadier than wall time on a loaded machine.
    Only when the server runs here (its process is readable under /proc); else ""."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        row = cursor.fetchone()
    proc = Path(f"/proc/{row[0] if row else 0}")
    if not (proc / "stat").exists():
        return ""
    schedstat = proc / "schedstat"

    def cpu_s() -> float:
        if schedstat.exists():  # nanoseconds on the CPU (the clock ticks of /proc/<pid>/stat are 10 ms)
            return int(schedstat.read_text().split()[0]) / 1e9
        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()  # utime + stime, fields 14 and 15
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    times: dict[str, list[float]] = {"ours": [], "bare": []}
    with connection.cursor() as cursor:
        cursor.execute("SET max_parallel_workers_per_gather = 0")
    try:
        for _ in range(samples):
            for name, run in (("ours", ours), ("bare", bare)):
                c0 = cpu_s()
                run()
                times[name].append(cpu_s() - c0)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET max_parallel_workers_per_gather")
    o, b = statistics.median(times["ours"]), statistics.median(times["bare"])
    print(f"database backend CPU, serial (median of {samples}): {o * 1000:.0f} / {b * 1000:.0f} ms", flush=True)
    return f", CPU {o / b:.2f}x ({o * 1000:.0f} / {b * 1000:.0f} ms serial)" if b > 0 else ""


if __name__ == "__main__":
    main()
