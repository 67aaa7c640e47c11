"""A fake Grok web upstream for tests and offline runs (see ``docs/upstream.md``)."""

from grok2api.testing.fake_grok.accounts import Account, Bucket
from grok2api.testing.fake_grok.faults import Endpoint, Fault, FaultKind
from grok2api.testing.fake_grok.replies import StoredAsset, answer_text
from grok2api.testing.fake_grok.server import FakeGrok, RecordedRequest

__all__ = ["Account", "Bucket", "Endpoint", "FakeGrok", "Fault", "FaultKind", "RecordedRequest",
           "StoredAsset", "answer_text"]
