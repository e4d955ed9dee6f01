"""keyservice-client: verify API keys with keyservice from Python.

    from keyservice_client import verify_key
    result = verify_key(presented_key)   # KEYSERVICE_ADDR, KEYSERVICE_TOKEN
    if not result.valid: ...             # result.code says why

See Client for a configured connection, WSGIMiddleware and ASGIMiddleware for web
applications, and `pb` (the generated messages) with `Client.stub` for admin calls
(`pb_grpc` is the generated service module, for a stub of your own).
"""

from ._client import (
    Client,
    CreditsInfo,
    KeyInfo,
    KeyserviceError,
    RateLimitInfo,
    VerifyResult,
    verify_key,
)
from ._gen import keyservice_pb2 as pb
from ._gen import keyservice_pb2_grpc as pb_grpc
from .middleware import ASGIMiddleware, WSGIMiddleware

__version__ = "0.1.0"

__all__ = [
    "ASGIMiddleware",
    "Client",
    "CreditsInfo",
    "KeyInfo",
    "KeyserviceError",
    "RateLimitInfo",
    "VerifyResult",
    "WSGIMiddleware",
    "pb",
    "pb_grpc",
    "verify_key",
]
