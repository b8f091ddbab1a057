"""Shortly's worker process, the Procfile's `worker` line: it takes jobs (link previews to fetch) off the queue
in the Redis at REDIS_URL and runs them, one at a time, in the foreground, until it is stopped.

Run as many workers as the queue needs, on one box or several: every job goes to exactly one of them. The
web process only queues jobs (shortly.preview_later), so it answers at once however slow a page is.

A worker is disposable. Told to stop (SIGTERM, sent to all its processes at once, as systemd, honcho and a
container's init do), it finishes the job in hand, then exits 0. Killed outright (kill -9, a crash, the box
gone), it cannot say anything: the job it held stays "started" in Redis. So a worker that starts first puts
back on the queue every started job whose worker is no longer connected to Redis. The job runs again, from
the start: fetch_preview stores the same title however often it runs.
"""
import signal
import sys

from rq import Worker
from rq.executions import Execution

import shortly  # the app's code and config, read once, before the first job (each job runs in a fork of this)


class ShortlyWorker(Worker):
    def setup_work_horse_signals(self):
        """The fork that runs a job ignores SIGTERM: the worker's own process got it too, and waits for the job
        to end before it exits (RQ's "warm shutdown"). Left to RQ, the fork would die of it mid-job."""
        super().setup_work_horse_signals()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def requeue_abandoned(queue):
    """Put back on queue the jobs that workers which are gone had started: their Redis connection, named after
    the worker, has closed. RQ would notice them itself only a minute or more after the worker's last sign of
    life, and then only mark them failed. Returns how many went back."""
    connection = queue.connection
    alive = {client.get("name") for client in connection.client_list()}
    started = queue.started_job_registry
    back = 0
    for entry in connection.zrange(started.key, 0, -1):
        job_id = entry.decode().split(":", 1)[0]
        # The entry (job:execution) and its execution, which names the worker, are written together as a worker
        # takes the job; the job's own worker_name only later, by the process that runs it: until then it is
        # empty, or the worker's that had the job before. So the execution says whose the job is.
        owner = connection.hget(Execution.from_composite_key(entry.decode(), connection).key, "worker_name")
        if owner is not None and owner.decode() in alive:
            continue  # a live worker is on it
        job = queue.fetch_job(job_id)
        if not connection.zrem(started.key, entry):
            continue  # another worker starting at the same moment took it back first
        if job is not None:
            queue.enqueue_job(job, at_front=True)
            back += 1
    return back


def main():
    if shortly.jobs is None:
        print("shortly worker: REDIS_URL is not set: there is no queue to take jobs from", file=sys.stderr)
        return 1
    back = requeue_abandoned(shortly.jobs)
    if back:
        print(f"shortly worker: {back} job(s) of workers that died mid-job are back on the queue", file=sys.stderr)
    worker = ShortlyWorker([shortly.jobs], connection=shortly.jobs.connection)
    worker.work(with_scheduler=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
