"""`factorlab watch ID`: re-run the check whenever a file in the folder is saved."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from .. import catalogue as cat
from ..files import snapshot
from . import exercise_folder, ready_exercise
from .check import check

DEBOUNCE = 0.3


class PollingWatcher:
    """Notice changes by comparing snapshots: works on every file system."""

    def __init__(self, folder: Path, interval: float):
        self.folder, self.interval = folder, interval
        self.last = snapshot(folder)

    def wait(self) -> None:
        while True:
            time.sleep(self.interval)
            now = snapshot(self.folder)
            if now != self.last:
                self.last = now
                return

    def close(self) -> None:
        pass


class EventWatcher:
    """Notice changes from file-system events (inotify and friends) through watchdog."""

    def __init__(self, folder: Path):
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        self.changed = threading.Event()
        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):
                if "__pycache__" not in str(event.src_path) and event.event_type != "opened" \
                        and event.event_type != "closed_no_write":
                    watcher.changed.set()

        self.observer = Observer()
        self.observer.schedule(Handler(), str(folder), recursive=True)
        self.observer.start()

    def wait(self) -> None:
        self.changed.wait()
        time.sleep(DEBOUNCE)  # an editor's save is often several events
        self.changed.clear()

    def close(self) -> None:
        self.observer.stop()
        self.observer.join(5)


def make_watcher(folder: Path, poll: bool, interval: float):
    if not poll:
        try:
            return EventWatcher(folder)
        except Exception as exc:  # no inotify, too many watches, no watchdog: poll instead
            print(f"(file events unavailable: {type(exc).__name__}; polling every {interval:g} s instead)")
    return PollingWatcher(folder, interval)


def run(args) -> int:
    catalogue = cat.load()
    exercise = ready_exercise(catalogue, args.id)
    folder = exercise_folder(catalogue, exercise, args.path)
    watcher = make_watcher(folder, args.poll, args.interval)
    mode = "polling" if isinstance(watcher, PollingWatcher) else "file events"
    print(f"Watching {folder.name} ({mode}); press Ctrl-C to stop.", flush=True)
    runs = 0
    try:
        while True:
            report = check(catalogue, exercise.id, str(folder))
            print(report.to_text(), flush=True)
            runs += 1
            if args.max_runs and runs >= args.max_runs:
                return report.exit_code
            print("--- waiting for a change ---", flush=True)
            watcher.wait()
    except KeyboardInterrupt:
        print("Stopped watching.")
        return 0
    finally:
        watcher.close()
