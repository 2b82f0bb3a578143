"""Stop a run cleanly on SIGINT or SIGTERM: the current chunk finishes, then the loop saves
and stops. A second SIGINT stops at once."""

import signal
import threading


class TrainingInterrupted(KeyboardInterrupt):
    """Raised after an interrupted run has saved; `results` holds what was done."""

    def __init__(self, message: str, results):
        super().__init__(message)
        self.results = results


class StopRequests:
    """Context manager: while inside, SIGINT/SIGTERM set `self.received` instead of killing."""

    def __init__(self):
        self.received: str | None = None
        self._previous = {}

    def _handle(self, signum, frame):
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False
