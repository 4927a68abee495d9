"""Generated protobuf modules for the wire protocol (PROTOCOL.md).

Do not edit the *_pb2 files: run ``python scripts/gen_proto.py``.
"""
