"""The media cache's naming, path containment and size trimming (downloads are tested end to end)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grok2api.api import CacheSettings, MediaCache, Settings, cache_name


@pytest.fixture
def cache(tmp_path: Path) -> MediaCache:
    settings = Settings(data_dir=tmp_path, cache=CacheSettings(limit_mb=1))
    return MediaCache(settings, client=None)  # type: ignore[arg-type]


def put(cache: MediaCache, kind: str, name: str, size: int, mtime: float) -> Path:
    path = cache.directory(kind) / name  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (mtime, mtime))
    return path


def test_cache_names_follow_the_original() -> None:
    assert cache_name("/users/u/generated/i/image.jpg") == "users-u-generated-i-image.jpg"
    assert cache_name("users/u/generated/i/image.jpg") == "users-u-generated-i-image.jpg"
    assert cache_name("https://assets.grok.com/users/u/x/image.png?a=1") == "users-u-x-image.png"


def test_resolve_never_leaves_the_cache(cache: MediaCache, tmp_path: Path) -> None:
    good = put(cache, "image", "users-u-a-image.jpg", 10, 1)
    (tmp_path / "secret.txt").write_text("no")
    (tmp_path / "tmp" / "image" / ".hidden.part").write_text("partial")
    assert cache.resolve("image", "users-u-a-image.jpg") == good.resolve()
    assert cache.resolve("image", "users/u/a/image.jpg") == good.resolve()
    for name in ("../../secret.txt", "..\\..\\secret.txt", "..", ".", "", ".hidden.part", "%2e%2e/secret.txt",
                 "nope.jpg", "/etc/passwd", "a\x00b"):
        assert cache.resolve("image", name) is None, name
    assert cache.resolve("video", "users-u-a-image.jpg") is None


def test_trim_removes_oldest_files_down_to_80_percent(cache: MediaCache) -> None:
    kib = 1024
    paths = [put(cache, "image" if i % 2 else "video", f"f{i}.jpg", 200 * kib, 1000 + i) for i in range(6)]
    assert cache.trim() == 2  # 1200 KiB > 1024 KiB: drop the oldest until ≤ 819.2 KiB
    assert [p.exists() for p in paths] == [False, False, True, True, True, True]
    assert cache.trim() == 0


async def test_a_pass_runs_only_when_the_cache_may_be_over_its_limit(cache: MediaCache) -> None:
    kib = 1024
    put(cache, "image", "a.jpg", 600 * kib, 1000)
    cache.schedule_trim(600 * kib)  # never scanned: a first pass learns the total
    await cache.wait_for_trim()
    put(cache, "image", "b.jpg", 300 * kib, 1001)
    cache.schedule_trim(300 * kib)  # 900 KiB by the estimate: no pass, nothing listed
    assert cache.trim_running is False
    put(cache, "image", "c.jpg", 300 * kib, 1002)
    cache.schedule_trim(300 * kib)  # 1200 KiB: a pass trims to 80 %
    await cache.wait_for_trim()
    assert sorted(p.name for p in cache.directory("image").iterdir()) == ["b.jpg", "c.jpg"]
