"""The Python example of docs/clients.md, run end to end by internal/server/callers_test.go.

    PYTHONPATH=api/gen/python KEYSERVICE_ADDR=127.0.0.1:9090 KEYSERVICE_ADMIN_TOKEN=... \
        /usr/bin/python3 test/python/keyservice_e2e.py

Uses Debian's python3-grpcio and python3-protobuf, and the stubs generated
by Debian's protoc into api/gen/python.
"""
import json
import os

import grpc

from keyservice.v1 import keyservice_pb2 as ks
from keyservice.v1 import keyservice_pb2_grpc as ks_grpc

# --- docs/clients.md: Python ---
channel = grpc.insecure_channel(os.environ["KEYSERVICE_ADDR"])
client = ks_grpc.KeyServiceStub(channel)
admin = [("authorization", "Bearer " + os.environ["KEYSERVICE_ADMIN_TOKEN"])]


def is_valid(key):
    """True for a usable key; a wrong key is an answer, not an error."""
    try:
        return client.Validate(ks.ValidateRequest(key=key), timeout=5).valid
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.UNAVAILABLE:
            return False  # the service could not decide: refuse (fail closed)
        raise


created = client.CreateKey(ks.CreateKeyRequest(name="py", owner="acme", scopes=["read"]), metadata=admin)
print(is_valid(created.secret))  # True
client.RevokeKey(ks.RevokeKeyRequest(id=created.key.id), metadata=admin)
print(is_valid(created.secret))  # False
# --- end ---

after = client.Validate(ks.ValidateRequest(key=created.secret))
print(json.dumps({"ok": after.code == ks.CODE_REVOKED, "id": created.key.id}))
