"""Shortly's worker process, the Procfile's `worker` line: it takes jobs (link previews to fetch) off the queue
in the Redis at REDIS_URL and runs them, one at a time, in the foreground, until it is stopped."""
import sys


def main():
    # TODO: import shortly (its code and config, read once, before the first job) and run an rq.Worker on its
    #       queue until stopped: Worker([shortly.jobs], connection=shortly.jobs.connection).work(). Without
    #       REDIS_URL there is no queue: say so and exit 1.
    print("shortly worker: there is no worker yet", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
