"""RecoveryProgress: the periodic log line of a table reader catching up (records, rate, estimate)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("pygoka.recovery")

#: INTERVAL is the seconds between two progress lines of one reader.
INTERVAL = 10.0


@dataclass
class RecoveryProgress:
    """RecoveryProgress logs, at most every interval seconds while partitions are catching up, how many records
    were read, at what rate since the last line, and an estimate of the time left (offsets left / rate)."""

    name: str
    interval: float = INTERVAL
    clock: Callable[[], float] = time.monotonic
    _last_time: float | None = field(default=None, init=False)
    _last_records: int = field(default=0, init=False)

    def update(self, partitions: int, records: int, remaining: int) -> str | None:
        """update takes the catching-up partitions' counts and returns (and logs) the line when one is due.

        records are those the reader read so far (all partitions), remaining the offsets between the catching-up
        partitions' positions and their targets (an upper bound of the records left: compaction and transaction
        markers leave gaps).
        """
        now = self.clock()
        if partitions == 0:
            self._last_time = None
            return None
        if self._last_time is None:
            self._last_time, self._last_records = now, records
            return None
        elapsed = now - self._last_time
        if elapsed < self.interval:
            return None
        rate = max(records - self._last_records, 0) / elapsed
        self._last_time, self._last_records = now, records
        estimate = f"about {remaining / rate:.0f} s left" if rate > 0 else "no progress"
        line = (f"{self.name}: recovering {partitions} partition{'s' if partitions != 1 else ''}: "
                f"{records} records read, {rate:.0f} records/s, {remaining} offsets to go, {estimate}")
        log.info(line, extra={"reader": self.name, "partitions": partitions, "records": records,
                              "records_per_second": round(rate, 1), "remaining_offsets": remaining})
        return line
