"""Shortly's worker process, the Procfile's `worker` line: it takes jobs (link previews to fetch) off the queue
in the Redis at REDIS_URL and runs them, one at a time, in the foreground, until it is stopped.

Run as many workers as the queue needs, on one box or several: every job goes to exactly one of them. The
web process only queues jobs (shortly.preview_later), so it answers at once however slow a page is.
"""
import sys

from rq import Worker

import shortly  # the app's code and config, read once, before the first job (each job runs in a fork of this)


def main():
    if shortly.jobs is None:
        print("shortly worker: REDIS_URL is not set: there is no queue to take jobs from", file=sys.stderr)
        return 1
    worker = Worker([shortly.jobs], connection=shortly.jobs.connection)
    worker.work(with_scheduler=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
