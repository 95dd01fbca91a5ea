"""The Redis session store against a real Redis server (``.ci/run`` starts one on loopback).

Set ``LLMVOICE_REDIS_URL`` to run these; ``.ci/run`` also sets ``LLMVOICE_REQUIRE_REDIS=1`` so a
missing server fails the run instead of skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from store_checks import kill_mid_save, make_state, race

from llmvoice.errors import StoreConflictError, StoreError
from llmvoice.store import RedisStore, Stored

pytestmark = pytest.mark.redis
URL = os.environ.get("LLMVOICE_REDIS_URL", "")


@pytest.fixture
def store() -> Iterator[RedisStore]:
    if not URL:
        if os.environ.get("LLMVOICE_REQUIRE_REDIS") == "1":
            pytest.fail("LLMVOICE_REDIS_URL is not set but a Redis server is required")
        pytest.skip("no Redis server (set LLMVOICE_REDIS_URL)")
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("LLMVOICE_REQUIRE_REDIS") == "1":
            pytest.fail(f"the Redis server at {URL} does not answer: {exc}")
        pytest.skip(f"the Redis server at {URL} does not answer")
    client.flushdb()
    store = RedisStore(client, prefix="test:")
    yield store
    client.flushdb()
    store.close()


_state = make_state


def test_round_trip(store: RedisStore) -> None:
    """A saved state loads back equal, at version 1 then 2."""
    state = _state()
    assert store.save(state, expected_version=None) == 1
    assert store.load("call-1") == Stored(state, 1)
    assert store.save(_state(turns=3), expected_version=1) == 2
    assert store.load("nope") is None


def test_stale_writer_conflicts(store: RedisStore) -> None:
    """A save based on version 1 after another writer made version 2 raises and writes nothing."""
    store.save(_state(turns=1), expected_version=None)
    store.save(_state(turns=2), expected_version=1)
    with pytest.raises(StoreConflictError) as info:
        store.save(_state(turns=5), expected_version=1)
    loaded = store.load("call-1")
    assert (info.value.actual, loaded is not None and len(loaded.state.committed)) == (2, 4)


def test_concurrent_writers_never_lose_an_update(store: RedisStore) -> None:
    """Eight threads race from one version: exactly one save wins."""
    store.save(_state(turns=1), expected_version=None)
    assert race(lambda: store) == ([2], 7)


@pytest.mark.parametrize("bad", ["a:*", "x y", "../k", "*", ""])
def test_hostile_ids_are_refused(store: RedisStore, bad: str) -> None:
    """Ids that could reach other keys (wildcards, separators, '..') are refused."""
    with pytest.raises(StoreError, match="invalid"):
        store.load(bad)


def test_ttl_is_the_key_expiry(store: RedisStore) -> None:
    """With ttl_s the key expires after its last save."""
    expiring = RedisStore(store.client, prefix="test:", ttl_s=100)
    expiring.save(_state("t-1"), expected_version=None)
    assert 0 < store.client.pttl("test:session:t-1") <= 100_000


def test_ids_and_delete(store: RedisStore) -> None:
    """ids() lists this prefix's sessions in order; delete() says whether one was there."""
    for name in ("b-2", "a-1", "b-1"):
        store.save(_state(name), expected_version=None)
    assert (store.ids(), store.ids("b-"), store.delete("a-1"), store.delete("a-1")) == (
        ["a-1", "b-1", "b-2"],
        ["b-1", "b-2"],
        True,
        False,
    )


def test_memory_is_per_user_and_skill(store: RedisStore) -> None:
    """Rolling memory in Redis: per (user, skill), isolated, ids checked."""
    from llmvoice.store import remember

    remember(store, "u1", "support", "Order late.")
    remember(store, "u1", "support", "Call before 11.")
    remember(store, "u2", "support", "Tents.")
    assert (store.load_memory("u1", "support"), store.load_memory("u2", "support"), store.load_memory("u1", "x")) == (
        "Order late. Call before 11.",
        "Tents.",
        None,
    )
    with pytest.raises(StoreError, match="invalid user id"):
        store.load_memory("u1:*", "support")


def test_kill_during_saves_leaves_a_readable_state(store: RedisStore) -> None:
    """A writer killed with SIGKILL mid-loop leaves the last saved state whole (the script is atomic)."""
    kill_mid_save(f"from llmvoice.store import RedisStore; store = RedisStore({URL!r}, prefix='test:')")
    loaded = store.load("crash")
    assert loaded is not None and len(loaded.state.committed) == 2 * loaded.version
