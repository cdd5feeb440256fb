"""Embedded backend (the default): one mmap'd file of fixed-size records, a seqlock, flock for writes.

Shared by every worker of one instance through the state directory. Chosen by measurement over
SQLite in WAL mode and JSON files (bench/RESULTS.md): the read path is a memory read, and no
call blocks the gevent hub for long. Layout of `<dir>/state-v2.mmap` (little-endian, zero
bytes mean empty; the layout version is in the name, so two versions of the service running
side by side during a reload never read each other's records):

    header    64 B   magic, layout, seq (u64), provider slots used (u32)
    prober    64 B   owner, lease until
    providers MAX_PROVIDERS x PROVIDER_SIZE
    load      MAX_REPORTERS x (reporter, updated_at, MAX_PROVIDERS x (in_flight, latency_ms))
    rate      RATE_SLOTS x (client digest, window, current, previous), open addressing

Readers compare `seq` with the value they saw last (a memory read, no system call); only
when it moved do they copy the provider region and check `seq` again (seqlock: an odd or
changed value means a writer was busy, so they retry, then fall back to a shared flock).
Writers hold an exclusive flock on `providers.lock` (`rate.lock`, `load.lock` for the other
regions, so rate-limit traffic does not queue behind provider writes). Lock files are opened
per process: an flock fd inherited across fork is the same lock in parent and child.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import mmap
import os
import struct
from pathlib import Path

from loadbalancer.routing.state.records import LoadEntry, ProviderShared, RateDecision, StoreStatus
from loadbalancer.routing.state.store import LOAD_STALE_SECONDS, StoreBase, Update
from loadbalancer.routing.state.transitions import WindowCounts, clip, decide_rate

log = logging.getLogger("loadbalancer.state")

MAGIC = b"LBS2"
LAYOUT = 2
STATE_FILE = f"state-v{LAYOUT}.mmap"
PROBE_RESULTS_FILE = "probe-results.json"
MAX_PROVIDERS = 64
MAX_REPORTERS = 64
RATE_SLOTS = 4096
RATE_PROBES = 64  # linear-probe distance before a client is let through uncounted
NAME_MAX_BYTES = 64

HEADER = struct.Struct("<4sIQI")  # magic, layout, seq, slots used
SEQ_OFFSET = 8
USED_OFFSET = 16
PROBER = struct.Struct("<40sd")
# name, cooldown_until, trial_until, last_error_at, consecutive_failures, circuit_tripped,
# trial_owner, cooldown_reason
PROVIDER = struct.Struct("<64s3dIB40s120s")
PROVIDER_SIZE = 256
LOAD_HEAD = struct.Struct("<40sd")
LOAD_ENTRY = struct.Struct("<id")  # in_flight, latency_ms (negative: none)
LOAD_SIZE = LOAD_HEAD.size + MAX_PROVIDERS * LOAD_ENTRY.size
RATE = struct.Struct("<16sqII")

PROBER_OFFSET = 64
PROVIDERS_OFFSET = 128
LOAD_OFFSET = PROVIDERS_OFFSET + MAX_PROVIDERS * PROVIDER_SIZE
RATE_OFFSET = LOAD_OFFSET + MAX_REPORTERS * LOAD_SIZE
FILE_SIZE = RATE_OFFSET + RATE_SLOTS * RATE.size
SEQLOCK_TRIES = 3

assert PROVIDER.size <= PROVIDER_SIZE


class EmbeddedStore(StoreBase):
    """Shared state of one instance's workers in one mmap'd file under `directory`."""

    def __init__(self, directory: Path | str, **kwargs) -> None:
        super().__init__(**kwargs)
        self._directory = Path(directory)
        self._mm: mmap.mmap | None = None
        self._locks: dict[str, int] = {}
        self._rate_full_logged = False

    # -- handles ------------------------------------------------------------------------
    def _open(self) -> None:
        self._close_handles()
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._locks = {name: os.open(self._directory / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
                       for name in ("providers", "load", "rate")}
        with self._locked("providers"):
            descriptor = os.open(self._directory / STATE_FILE, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                if os.fstat(descriptor).st_size < FILE_SIZE:
                    os.ftruncate(descriptor, FILE_SIZE)
                self._mm = mmap.mmap(descriptor, FILE_SIZE, mmap.MAP_SHARED)
            finally:
                os.close(descriptor)  # the mapping stays valid
            magic, layout, _, _ = HEADER.unpack_from(self._mm, 0)
            if (magic, layout) != (MAGIC, LAYOUT):
                if magic != bytes(4):
                    log.warning("%s held an unknown layout; starting it afresh", self._directory / STATE_FILE)
                self._mm[:] = bytes(FILE_SIZE)
                HEADER.pack_into(self._mm, 0, MAGIC, LAYOUT, 0, 0)

    def _close_handles(self) -> None:
        for descriptor in self._locks.values():
            os.close(descriptor)
        self._locks = {}
        if self._mm is not None:
            self._mm.close()
            self._mm = None

    def _locked(self, name: str, mode: int = fcntl.LOCK_EX) -> "_Flock":
        return _Flock(self._io_lock, self._locks[name], mode)

    def status(self) -> StoreStatus:
        """See `ProviderStateStore.status`."""
        return StoreStatus("embedded", "the workers of this instance", detail=str(self._directory))

    # -- providers ----------------------------------------------------------------------
    def _read_version(self) -> object:
        return struct.unpack_from("<Q", self._mm, SEQ_OFFSET)[0]

    def _read_states(self) -> tuple[object, dict[str, ProviderShared]]:
        mm = self._mm
        for _ in range(SEQLOCK_TRIES):
            before = struct.unpack_from("<Q", mm, SEQ_OFFSET)[0]
            if before % 2:
                continue  # a writer is mid-update
            used = struct.unpack_from("<I", mm, USED_OFFSET)[0]
            region = mm[PROVIDERS_OFFSET:PROVIDERS_OFFSET + used * PROVIDER_SIZE]
            if struct.unpack_from("<Q", mm, SEQ_OFFSET)[0] == before:
                return before, _parse_providers(region, used)
        with self._locked("providers", fcntl.LOCK_SH):  # writers keep bumping: wait for them
            seq = struct.unpack_from("<Q", mm, SEQ_OFFSET)[0]
            used = struct.unpack_from("<I", mm, USED_OFFSET)[0]
            region = mm[PROVIDERS_OFFSET:PROVIDERS_OFFSET + used * PROVIDER_SIZE]
            return seq, _parse_providers(region, used)

    def _update_provider(self, name: str, update: Update) -> object:
        self._ensure_process()
        with self._locked("providers"):
            slot = self._slot_for(name)
            offset = PROVIDERS_OFFSET + slot * PROVIDER_SIZE
            current = _unpack_provider(self._mm, offset)[1]
            result, new = update(current)
            if new is not None:
                self._begin_write()
                _pack_provider(self._mm, offset, name, new)
                self._end_write()
            return result

    def _slot_for(self, name: str) -> int:
        """The slot of `name`, claimed if new (caller holds the providers lock)."""
        used = struct.unpack_from("<I", self._mm, USED_OFFSET)[0]
        encoded = name.encode()
        if len(encoded) > NAME_MAX_BYTES:
            raise ValueError(f"provider name longer than {NAME_MAX_BYTES} bytes: {name[:20]!r}...")
        stored = [self._mm[start:start + NAME_MAX_BYTES].rstrip(b"\0")
                  for start in range(PROVIDERS_OFFSET, PROVIDERS_OFFSET + used * PROVIDER_SIZE, PROVIDER_SIZE)]
        if encoded in stored:
            return stored.index(encoded)
        slot = used
        if used >= MAX_PROVIDERS:
            # Full of names a config reload removed: reuse the slot of one nobody configures now.
            slot = next((index for index, old in enumerate(stored)
                         if old.decode(errors="replace") not in self._retained), None)
            if slot is None:
                raise ValueError(f"more than {MAX_PROVIDERS} providers cannot share the embedded state")
        self._begin_write()
        _pack_provider(self._mm, PROVIDERS_OFFSET + slot * PROVIDER_SIZE, name, ProviderShared())
        struct.pack_into("<I", self._mm, USED_OFFSET, max(used, slot + 1))
        self._end_write()
        return slot

    def _begin_write(self) -> None:
        seq = struct.unpack_from("<Q", self._mm, SEQ_OFFSET)[0]
        struct.pack_into("<Q", self._mm, SEQ_OFFSET, seq + 1 if seq % 2 == 0 else seq + 2)

    def _end_write(self) -> None:
        seq = struct.unpack_from("<Q", self._mm, SEQ_OFFSET)[0]
        struct.pack_into("<Q", self._mm, SEQ_OFFSET, seq + 1)

    # -- the prober ---------------------------------------------------------------------
    def claim_prober(self, owner: str, lease_seconds: float) -> bool:
        """See `ProviderStateStore.claim_prober`."""
        self._ensure_process()
        now = self._clock()
        encoded = clip(owner, 40).encode()
        with self._locked("providers"):
            holder, until = PROBER.unpack_from(self._mm, PROBER_OFFSET)
            if holder.rstrip(b"\0") not in (b"", encoded) and until > now:
                return False
            PROBER.pack_into(self._mm, PROBER_OFFSET, encoded, now + lease_seconds)
            return True

    def release_prober(self, owner: str) -> None:
        """See `ProviderStateStore.release_prober`."""
        self._ensure_process()
        with self._locked("providers"):
            holder, _ = PROBER.unpack_from(self._mm, PROBER_OFFSET)
            if holder.rstrip(b"\0") == clip(owner, 40).encode():
                PROBER.pack_into(self._mm, PROBER_OFFSET, b"", 0.0)

    def publish_probe_results(self, payload: bytes) -> None:
        """See `ProviderStateStore.publish_probe_results`: a file replaced whole, never half written."""
        path = self._directory / PROBE_RESULTS_FILE
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(descriptor, payload)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)

    def read_probe_results(self) -> bytes | None:
        """See `ProviderStateStore.read_probe_results`."""
        try:
            return (self._directory / PROBE_RESULTS_FILE).read_bytes()
        except FileNotFoundError:
            return None

    # -- rate limits --------------------------------------------------------------------
    def hit_rate_limit(self, client_key: str, limit_per_minute: int) -> RateDecision:
        """See `ProviderStateStore.hit_rate_limit`."""
        self._ensure_process()
        digest = hashlib.sha256(client_key.encode()).digest()[:16]
        now = self._clock()
        with self._locked("rate"):
            offset, counts = self._rate_slot(digest, int(now // 60))
            if offset is None:
                if not self._rate_full_logged:
                    log.error("rate-limit table full: a client is let through uncounted")
                    self._rate_full_logged = True
                return RateDecision(True, 0)
            decision, counts = decide_rate(counts, now, limit_per_minute)
            if decision.allowed:
                RATE.pack_into(self._mm, offset, digest, counts.window, counts.current, counts.previous)
            return decision

    def _rate_slot(self, digest: bytes, window_now: int) -> tuple[int | None, WindowCounts | None]:
        """(offset, stored counts) of the client's slot, or of a free or stale one to take."""
        start = int.from_bytes(digest[:4], "little") % RATE_SLOTS
        free = None
        for step in range(RATE_PROBES):
            offset = RATE_OFFSET + ((start + step) % RATE_SLOTS) * RATE.size
            stored, window, current, previous = RATE.unpack_from(self._mm, offset)
            if stored == digest:
                return offset, WindowCounts(window, current, previous)
            if free is None and (stored == bytes(16) or window < window_now - 1):
                free = offset
        return free, None

    # -- load ---------------------------------------------------------------------------
    def _publish_load(self, entries: dict[str, LoadEntry], now: float) -> None:
        slots = self._slot_map()
        if any(name not in slots for name in entries):
            for name in entries:  # make sure every provider has a slot (rare: first use)
                self._update_provider(name, lambda state: (None, None))
            slots = self._slot_map()
        me = self.reporter.encode()
        with self._locked("load"):
            offset = self._reporter_offset(me, now)
            if offset is None:
                return
            row = bytearray(LOAD_SIZE)  # the whole row: a slot reused for another name starts at 0
            LOAD_HEAD.pack_into(row, 0, me, now)
            for name, entry in entries.items():
                slot = slots.get(name)
                if slot is not None:
                    latency = -1.0 if entry.latency_ms is None else entry.latency_ms
                    LOAD_ENTRY.pack_into(row, LOAD_HEAD.size + slot * LOAD_ENTRY.size, entry.in_flight, latency)
            self._mm[offset:offset + LOAD_SIZE] = row

    def _reporter_offset(self, me: bytes, now: float) -> int | None:
        free = None
        for index in range(MAX_REPORTERS):
            offset = LOAD_OFFSET + index * LOAD_SIZE
            reporter, updated = LOAD_HEAD.unpack_from(self._mm, offset)
            if reporter.rstrip(b"\0") == me:
                return offset
            if free is None and (reporter[:1] == b"\0" or updated < now - LOAD_STALE_SECONDS):
                free = offset
        return free

    def _collect_load(self, now: float) -> dict[str, dict[str, LoadEntry]]:
        names = {slot: name for name, slot in self._slot_map().items()}
        reports = {}
        with self._locked("load", fcntl.LOCK_SH):
            for index in range(MAX_REPORTERS):
                offset = LOAD_OFFSET + index * LOAD_SIZE
                reporter, updated = LOAD_HEAD.unpack_from(self._mm, offset)
                if reporter[:1] == b"\0" or updated < now - LOAD_STALE_SECONDS:
                    continue
                report = {}
                for slot, name in names.items():
                    in_flight, latency = LOAD_ENTRY.unpack_from(
                        self._mm, offset + LOAD_HEAD.size + slot * LOAD_ENTRY.size)
                    if in_flight or latency >= 0:
                        report[name] = LoadEntry(in_flight, None if latency < 0 else latency)
                reports[_text(reporter)] = report
        return reports

    def _slot_map(self) -> dict[str, int]:
        used = struct.unpack_from("<I", self._mm, USED_OFFSET)[0]
        return {_unpack_provider(self._mm, PROVIDERS_OFFSET + slot * PROVIDER_SIZE)[0]: slot
                for slot in range(used)}


class _Flock:
    """`with _Flock(lock, fd, mode):` holds the process lock, then an flock on an open fd."""

    __slots__ = ("_lock", "_descriptor", "_mode")

    def __init__(self, lock, descriptor: int, mode: int) -> None:
        self._lock, self._descriptor, self._mode = lock, descriptor, mode

    def __enter__(self) -> None:
        self._lock.acquire()
        try:
            fcntl.flock(self._descriptor, self._mode)
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, *exc_info) -> None:
        try:
            fcntl.flock(self._descriptor, fcntl.LOCK_UN)
        finally:
            self._lock.release()


def _parse_providers(region: bytes, used: int) -> dict[str, ProviderShared]:
    return dict(_unpack_provider(region, slot * PROVIDER_SIZE) for slot in range(used))


def _unpack_provider(buffer, offset: int) -> tuple[str, ProviderShared]:
    (name, cooldown_until, trial_until, last_error_at, consecutive, tripped, owner,
     reason) = PROVIDER.unpack_from(buffer, offset)
    return _text(name), ProviderShared(
        cooldown_until=cooldown_until, cooldown_reason=_text(reason), consecutive_failures=consecutive,
        circuit_tripped=bool(tripped), trial_owner=_text(owner), trial_until=trial_until,
        last_error_at=last_error_at)


def _pack_provider(buffer, offset: int, name: str, state: ProviderShared) -> None:
    PROVIDER.pack_into(
        buffer, offset, name.encode(), state.cooldown_until, state.trial_until, state.last_error_at,
        min(state.consecutive_failures, 2**32 - 1), int(state.circuit_tripped),
        clip(state.trial_owner, 40).encode(), clip(state.cooldown_reason).encode())


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\0").decode(errors="replace")
