"""Shortly's worker process, the Procfile's `worker` line: it takes jobs (link previews to fetch) off the queue
in the Redis at REDIS_URL and runs them, one at a time, in the foreground, until it is stopped.

Run as many workers as the queue needs, on one box or several: every job goes to exactly one of them. The
web process only queues jobs (shortly.preview_later), so it answers at once however slow a page is.
"""
import sys

from rq import Worker

import shortly  # the app's code and config, read once, before the first job (each job runs in a fork of this)


# TODO: a worker must be safe to stop, and to kill, at any moment. SIGTERM reaches every process of the worker,
#   also the fork in which RQ runs the job, and that fork dies of it mid-job: the job is marked failed and never
#   done. Let the fork ignore SIGTERM, so that the worker finishes the job in hand before it exits. A worker
#   killed outright (kill -9, a crash) leaves its job "started" in Redis, and RQ notices only a minute or more
#   later: when a worker starts, put back on the queue the started jobs whose worker is gone.


def main():
    if shortly.jobs is None:
        print("shortly worker: REDIS_URL is not set: there is no queue to take jobs from", file=sys.stderr)
        return 1
    worker = Worker([shortly.jobs], connection=shortly.jobs.connection)
    worker.work(with_scheduler=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
