"""Secrets never reach a log sink."""

from grok2api.logs.logger import logger, mask_text


def test_mask_text_hides_every_kind_of_secret() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzZXNzaW9uX2lkIjoiYWJjIn0.c2lnbmF0dXJlc2lnbmF0dXJl"
    text = (f"Cookie: sso={jwt}; sso-rw={jwt};cf_clearance=abcdefghijklmnop "
            "Authorization: Bearer sk-abcdefghijklmnopqrstuvwx proxy socks5://user:hunter22@10.0.0.1:1080 "
            'password="correct horse" api_key=plainsecretvalue')
    masked = mask_text(text)
    for secret in (jwt, "abcdefghijklmnop", "sk-abcdefghijklmnopqrstuvwx", "hunter22", "plainsecretvalue"):
        assert secret not in masked
    assert "socks5://user:" in masked


def test_logger_masks_messages(capsys) -> None:
    from grok2api.logs.logger import setup_logging

    setup_logging("INFO", log_dir=None)
    logger.info("upstream said {}", "sso=eyJabcdefghijk.lmnopqrstuvwxyz0123")
    assert "lmnopqrstuvwxyz0123" not in capsys.readouterr().err


def test_records_carry_the_request_id_being_served() -> None:
    from grok2api.logs.logger import REQUEST_ID, setup_logging

    setup_logging("INFO", log_dir=None)
    seen: list[dict[str, object]] = []
    sink = logger.add(lambda message: seen.append(dict(message.record["extra"])), level="INFO")
    try:
        context = REQUEST_ID.set("req-1")
        logger.info("inside")
        REQUEST_ID.reset(context)
        logger.info("outside")
    finally:
        logger.remove(sink)
    assert seen == [{"request_id": "req-1"}, {}]
