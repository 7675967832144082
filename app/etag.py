"""ETag and If-Match handling for versioned resources (optimistic concurrency)."""

from __future__ import annotations

from app.errors import PreconditionFailed


def etag(version: int) -> str:
    return f'"{version}"'


def check_if_match(if_match: str | None, current_version: int) -> None:
    """Raise 412 unless ``If-Match`` is absent, ``*`` or names the current version."""
    if if_match is None or if_match.strip() == "*":
        return
    wanted = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if etag(current_version) not in wanted:
        raise PreconditionFailed(
            f"If-Match {if_match!r} does not match the current version {etag(current_version)}; "
            "read the resource again and retry.",
            extra={"current_etag": etag(current_version)},
        )
