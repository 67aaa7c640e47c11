"""The media cache: generated images and videos kept on disk and served under ``/v1/files/``."""
