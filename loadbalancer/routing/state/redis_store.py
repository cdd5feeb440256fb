"""Redis backend: one truth across instances, a local copy on the read path, fail-open.

The read path (`snapshot`) never talks to Redis: it returns the local copy. One background
thread per process (a greenlet under gevent) keeps the copy fresh: every change PUBLISHes
its version on `{P}:changed`, the thread re-reads the state hash when a message comes
(messages that arrive together are coalesced), and checks the version key every
SAFETY_POLL_SECONDS in case a message was lost.

Writes (failure, success after failures, trial claim/release, rate limit) are one EVALSHA
each. While Redis is unreachable or slow (`RedisLink`), the store serves and writes on local
state: the last shared copy merged with what this process learned since, per-process rate
windows, one trial per process, and every process may probe.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from dataclasses import replace

import redis

from loadbalancer.routing.state import redis_scripts as scripts
from loadbalancer.routing.state.records import (FailurePolicy, LoadEntry, ProviderShared, RateDecision,
                                                StoreStatus)
from loadbalancer.routing.state.redis_link import (REQUEST_TIMEOUT, RETRY_SECONDS, ClientFactory, RedisDown,
                                                   RedisLink)
from loadbalancer.routing.state.store import LOAD_STALE_SECONDS, StoreBase, Update, log
from loadbalancer.routing.state.transitions import (WindowCounts, after_claim_trial, after_failure,
                                                    after_release_trial, after_success, clip, decide_rate)

SUBSCRIBER_TICK_SECONDS = 0.05  # how long the subscriber waits for a message before its chores
SAFETY_POLL_SECONDS = 1.0  # version check in case a pub/sub message was lost
STATE_TTL_MS = 7 * 24 * 3600 * 1000
LOAD_TTL_MS = 60 * 1000
PROBES_TTL_MS = 24 * 3600 * 1000
SCRIPT_NAMES = ("FAILURE", "SUCCESS", "CLAIM_TRIAL", "RELEASE_TRIAL", "RATE_LIMIT", "CLAIM_PROBER",
                "RELEASE_PROBER", "PUBLISH_LOAD")


class RedisStore(StoreBase):
    """Provider state in Redis under `prefix`, with a local copy per process."""

    maintain_seconds = SUBSCRIBER_TICK_SECONDS

    def __init__(self, factory: ClientFactory, prefix: str, *, where: str = "redis",
                 request_timeout: float = REQUEST_TIMEOUT, **kwargs) -> None:
        super().__init__(**kwargs)
        tag = "{" + prefix + "}"
        self.state_key, self.load_key = f"{tag}:state", f"{tag}:load"
        self.prober_key, self.probes_key, self.channel = f"{tag}:prober", f"{tag}:probes", f"{tag}:changed"
        self._rate_prefix = f"{tag}:rl:"
        self.link = RedisLink(factory, where, request_timeout=request_timeout)
        self.link.on_recovery = self._on_recovery
        self.link.background_running = lambda: self._thread is not None and self._thread.is_alive()
        self._scripts: dict[str, redis.commands.core.Script] = {}
        self._remote_version: object = None
        self._remote: dict[str, ProviderShared] = {}
        self._local: dict[str, ProviderShared] = {}  # written while Redis was down
        self._local_generation = 0
        self._local_rates: dict[str, WindowCounts] = {}
        self._local_probes: bytes | None = None
        self._refresh_lock = threading.Lock()  # one re-read at a time
        self._copy_lock = threading.Lock()  # held only to swap the copy: never across a call
        self._own_write_count = 0
        self._stale_marks = itertools.count()
        self._own_writes: dict[str, int] = {}  # provider -> the own-write count when we wrote it

    # -- connection ------------------------------------------------------------------------
    def _open(self) -> None:
        self._refresh_lock, self._copy_lock = threading.Lock(), threading.Lock()  # fresh ones in a forked child
        self.link.open()
        # Registered once; each call names the client (request path or background) it runs on.
        self._scripts = {name: self.link.client.register_script(getattr(scripts, name)) for name in SCRIPT_NAMES}
        self._remote_version, self._remote = None, {}
        try:
            self.link.call(self.link.sync_clock, background=True)
            self.link.call(self._refresh, background=True)
        except RedisDown:
            pass  # start on local state; the thread reconnects

    def _close_handles(self) -> None:
        self.link.close()

    def _on_recovery(self) -> None:
        with self._copy_lock:
            self._remote_version = None  # force a full re-read
            self._own_writes = {}  # what Redis holds now is the truth, whatever we wrote before

    @property
    def is_down(self) -> bool:
        """Whether Redis is currently marked down (local state in use)."""
        return self.link.is_down

    def status(self) -> StoreStatus:
        """See `ProviderStateStore.status`."""
        if self.link.is_down:
            since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.link.down_since))
            return StoreStatus("redis", "every instance", degraded=True,
                               detail=f"{self.link.where} unreachable since {since}; "
                                      "serving on this process's own state")
        return StoreStatus("redis", "every instance", detail=self.link.where)

    def _script(self, name: str, keys: list[str], args: list, *, background: bool = False) -> object:
        return self.link.call(lambda client: self._scripts[name](keys=keys, args=args, client=client),
                              background=background)

    # -- the local copy ---------------------------------------------------------------------
    def _read_version(self) -> object:
        return self._remote_version, self._local_generation

    def _read_states(self) -> tuple[object, dict[str, ProviderShared]]:
        version = (self._remote_version, self._local_generation)
        merged = dict(self._remote)
        for name, state in self._local.items():
            merged[name] = _merge(merged.get(name), state)
        return version, merged

    def _fetch_version(self, client: redis.Redis) -> object:
        raw = client.hget(self.state_key, "v")
        return None if raw is None else int(raw)

    def _refresh(self, client: redis.Redis) -> None:
        """Re-read the whole state hash into the local copy.

        Requests do not wait for the read, so one may write meanwhile. What this process wrote
        after the read began is kept over the read's older copy, and the copy is marked stale
        so the next check re-reads. Otherwise a re-read racing a write would drop that write,
        and if Redis went away just then the process would forget its own cooldown until Redis
        came back.
        """
        with self._refresh_lock:
            started = self._own_write_count
            raw = client.hgetall(self.state_key)
            self._take_read(raw, started)

    def _take_read(self, raw: dict[bytes, bytes], started: int) -> None:
        version = int(raw[b"v"]) if b"v" in raw else None
        states = {key[2:].decode(): self._from_remote(value)
                  for key, value in raw.items() if key.startswith(b"p:")}
        with self._copy_lock:
            newer = {name: self._remote[name] for name, count in self._own_writes.items()
                     if count > started and name in self._remote}
            states.update(newer)
            self._own_writes = {name: count for name, count in self._own_writes.items() if count > started}
            self._remote = states
            self._remote_version = self._stale(version) if newer else version

    def _from_remote(self, encoded: bytes) -> ProviderShared:
        """A state JSON from Redis, its times moved from the server's clock to ours."""
        payload = json.loads(encoded)
        offset = self.link.offset
        return ProviderShared(
            cooldown_until=_shift(payload["cooldown_until"], offset),
            cooldown_reason=payload["cooldown_reason"],
            consecutive_failures=int(payload["consecutive_failures"]),
            circuit_tripped=bool(payload["circuit_tripped"]), trial_owner=payload["trial_owner"],
            trial_until=_shift(payload["trial_until"], offset),
            last_error_at=_shift(payload["last_error_at"], offset))

    def _apply_own_write(self, name: str, version: int, encoded: bytes) -> None:
        """Read-your-writes: put our own change into the copy without a re-read."""
        state = self._from_remote(encoded)
        with self._copy_lock:
            self._own_write_count += 1
            self._own_writes[name] = self._own_write_count
            self._remote = {**self._remote, name: state}
            if isinstance(self._remote_version, int) and version == self._remote_version + 1:
                self._remote_version = version  # nobody else wrote in between
            else:
                self._remote_version = self._stale(version)  # the thread's next check re-reads

    def _stale(self, version: int | None) -> tuple:
        """A version for a copy Redis does not hold as it is: never equal to Redis's own, nor to an
        earlier stale one, so the snapshot is rebuilt and the thread's next check re-reads."""
        return ("stale", version, next(self._stale_marks))

    def _set_local(self, name: str, state: ProviderShared) -> None:
        local = dict(self._local)
        local[name] = state
        self._local = local
        self._local_generation += 1

    def _forget_expired_local(self) -> None:
        """Once Redis is back, local cooldowns count only until they end."""
        now = self._clock()
        if not self.is_down and any(state.cooldown_until <= now for state in self._local.values()):
            self._local = {name: state for name, state in self._local.items() if state.cooldown_until > now}
            self._local_generation += 1

    def _local_or_known(self, name: str) -> ProviderShared:
        return self._local.get(name) or self._remote.get(name) or ProviderShared()

    # -- writes -----------------------------------------------------------------------------
    def _update_provider(self, name: str, update: Update) -> object:  # local fallback only
        result, new = update(self._local_or_known(name))
        if new is not None:
            self._set_local(name, new)
        return result

    def record_success(self, name: str) -> None:
        """See `ProviderStateStore.record_success`."""
        if after_success(self.snapshot().get(name).shared) is None:
            return
        if name in self._local:
            self._update_provider(name, lambda state: (None, after_success(state)))
        try:
            reply = self._script("SUCCESS", [self.state_key], [name, STATE_TTL_MS, self.channel])
        except RedisDown:
            return
        if reply:
            self._apply_own_write(name, int(reply[0]), reply[1])

    def record_failure(self, name: str, reason: str, *, retry_after: float | None = None,
                       policy: FailurePolicy = FailurePolicy()) -> ProviderShared:
        """See `ProviderStateStore.record_failure`."""
        self._ensure_process()
        jitter = self._jitter()
        reason = clip(reason)
        try:
            version, encoded = self._script("FAILURE", [self.state_key], [
                name, reason, "" if retry_after is None else retry_after, policy.cooldown_seconds,
                policy.max_cooldown_seconds, policy.failure_threshold, jitter, STATE_TTL_MS, self.channel])
        except RedisDown:
            new = after_failure(self._local_or_known(name), now=self._clock(), reason=reason,
                                retry_after=retry_after, policy=policy, jitter=jitter)
            self._set_local(name, new)
            return new
        self._apply_own_write(name, int(version), encoded)
        return self._remote[name]

    def claim_trial(self, name: str, owner: str, lease_seconds: float) -> bool:
        """See `ProviderStateStore.claim_trial` (while Redis is down: one trial per process)."""
        self._ensure_process()
        owner = clip(owner, 40)
        try:
            reply = self._script("CLAIM_TRIAL", [self.state_key],
                                 [name, owner, lease_seconds, STATE_TTL_MS, self.channel])
        except RedisDown:
            now = self._clock()
            return bool(self._update_provider(name, lambda state: after_claim_trial(
                state, now=now, owner=owner, lease_seconds=lease_seconds)))
        if len(reply) == 3:
            self._apply_own_write(name, int(reply[1]), reply[2])
        return bool(reply[0])

    def release_trial(self, name: str, owner: str) -> None:
        """See `ProviderStateStore.release_trial`."""
        self._ensure_process()
        owner = clip(owner, 40)
        if name in self._local:
            self._update_provider(name, lambda state: (None, after_release_trial(state, owner=owner)))
        try:
            reply = self._script("RELEASE_TRIAL", [self.state_key], [name, owner, STATE_TTL_MS, self.channel])
        except RedisDown:
            return
        if reply:
            self._apply_own_write(name, int(reply[0]), reply[1])

    def hit_rate_limit(self, client_key: str, limit_per_minute: int) -> RateDecision:
        """See `ProviderStateStore.hit_rate_limit` (while Redis is down: counted per process)."""
        self._ensure_process()
        digest = hashlib.sha256(client_key.encode()).hexdigest()[:32]
        try:
            allowed, retry_after = self._script("RATE_LIMIT", [self._rate_prefix + digest], [limit_per_minute])
            return RateDecision(bool(allowed), int(retry_after))
        except RedisDown:
            decision, counts = decide_rate(self._local_rates.get(digest), self._clock(), limit_per_minute)
            if decision.allowed:
                self._local_rates[digest] = counts
            return decision

    # -- the prober -------------------------------------------------------------------------
    def claim_prober(self, owner: str, lease_seconds: float) -> bool:
        """See `ProviderStateStore.claim_prober` (while Redis is down: every process probes)."""
        self._ensure_process()
        try:
            return bool(self._script("CLAIM_PROBER", [self.prober_key],
                                     [clip(owner, 40), int(lease_seconds * 1000)], background=True))
        except RedisDown:
            return True

    def release_prober(self, owner: str) -> None:
        """See `ProviderStateStore.release_prober`."""
        self._ensure_process()
        try:
            self._script("RELEASE_PROBER", [self.prober_key], [clip(owner, 40)], background=True)
        except RedisDown:
            pass  # the lease lapses by itself

    def publish_probe_results(self, payload: bytes) -> None:
        """See `ProviderStateStore.publish_probe_results`."""
        self._ensure_process()
        self._local_probes = payload
        try:
            self.link.call(lambda client: client.set(self.probes_key, payload, px=PROBES_TTL_MS),
                           background=True)
        except RedisDown:
            pass

    def read_probe_results(self) -> bytes | None:
        """See `ProviderStateStore.read_probe_results` (while Redis is down: our own last results)."""
        self._ensure_process()
        try:
            shared = self.link.call(lambda client: client.get(self.probes_key), background=True)
        except RedisDown:
            return self._local_probes
        return shared if shared is not None else self._local_probes

    # -- load -------------------------------------------------------------------------------
    def _publish_load(self, entries: dict[str, LoadEntry], now: float) -> None:
        payload = json.dumps({name: [entry.in_flight, entry.latency_ms] for name, entry in entries.items()})
        try:
            self._script("PUBLISH_LOAD", [self.load_key],
                         [self.reporter, payload, LOAD_STALE_SECONDS, LOAD_TTL_MS], background=True)
        except RedisDown:
            pass

    def _collect_load(self, now: float) -> dict[str, dict[str, LoadEntry]]:
        try:
            raw = self.link.call(lambda client: client.hgetall(self.load_key), background=True)
        except RedisDown:
            return {}
        server_now = now + self.link.offset
        reports = {}
        for reporter, value in raw.items():
            report = json.loads(value)
            if report["t"] >= server_now - LOAD_STALE_SECONDS:
                reports[reporter.decode()] = {name: LoadEntry(*entry) for name, entry in report["e"].items()}
        return reports

    # -- the background thread --------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pubsub = self.link.call(self._subscribe, background=True)
            except RedisDown:  # refused at once until RETRY_SECONDS have passed
                self._stop.wait(SUBSCRIBER_TICK_SECONDS)
                self._chores()
                continue
            try:
                self._listen(pubsub)
            except (ValueError, KeyError, redis.RedisError) as err:  # a foreign value under our keys
                log.error("provider state subscriber: %s", type(err).__name__)
                self._stop.wait(RETRY_SECONDS)
            finally:
                pubsub.close()

    def _subscribe(self, client: redis.Redis) -> redis.client.PubSub:
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(self.channel)
        self._refresh(client)  # after subscribing: anything later arrives as a message
        self.link.sync_clock(client)
        return pubsub

    def _listen(self, pubsub: redis.client.PubSub) -> None:
        call = self.link.call
        last_check = time.monotonic()
        while not self._stop.is_set():
            try:
                message = call(lambda _: pubsub.get_message(timeout=SUBSCRIBER_TICK_SECONDS), background=True)
                if message is not None:
                    while call(lambda _: pubsub.get_message(timeout=0), background=True) is not None:
                        pass  # coalesce a burst into one re-read
                    call(self._refresh, background=True)
                    last_check = time.monotonic()
                elif time.monotonic() - last_check >= SAFETY_POLL_SECONDS:
                    last_check = time.monotonic()
                    if call(self._fetch_version, background=True) != self._remote_version:
                        call(self._refresh, background=True)
            except RedisDown:
                return
            self._chores()

    def _chores(self) -> None:
        """Load publishing, the reconnect attempt while down, and expiry of local cooldowns."""
        try:
            if self.is_down:
                self.link.call(lambda client: client.ping(), background=True)
            self.maintain()
            self._forget_expired_local()
        except RedisDown:
            pass
        except (OSError, redis.RedisError) as err:
            log.error("provider state maintenance: %s", type(err).__name__)


def _shift(value: float, offset: float) -> float:
    return value - offset if value else 0.0


def _merge(remote: ProviderShared | None, local: ProviderShared) -> ProviderShared:
    """Local state learned while Redis was down, combined with the last shared state."""
    if remote is None:
        return local
    later = local if local.last_error_at >= remote.last_error_at else remote
    return replace(remote, cooldown_until=max(remote.cooldown_until, local.cooldown_until),
                   cooldown_reason=later.cooldown_reason,
                   consecutive_failures=max(remote.consecutive_failures, local.consecutive_failures),
                   circuit_tripped=remote.circuit_tripped or local.circuit_tripped,
                   last_error_at=later.last_error_at)


__all__ = ["RETRY_SECONDS", "RedisDown", "RedisStore"]
