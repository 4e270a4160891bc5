"""JT/T 808 (2011/2013/2019) codec: frames and the messages of a position gateway.

Pure functions of bytes (no sockets): :mod:`.frame` (delimiters, escaping,
check code, headers, a streaming splitter), :mod:`.messages` (bodies),
:mod:`.reassembly` (sub-packaged messages). Every decoding problem raises
:class:`Jt808Error` (a ``UserError`` and ``ValueError``) with a short ``reason``.
The TCP server is :mod:`haulwatch.api.gateway`.
"""

from haulwatch.ingest.jt808.frame import (
    Frame,
    FrameSplitter,
    Header,
    Jt808Error,
    bcd_decode,
    bcd_encode,
    check_code,
    decode_frame,
    encode_frame,
    escape,
    split_body,
    unescape,
)
from haulwatch.ingest.jt808.messages import (
    MSG,
    REGISTER_RESULT,
    RESULT,
    Authenticate,
    Batch,
    GeneralResponse,
    Location,
    Register,
    RegisterResponse,
    decode_authenticate,
    decode_batch,
    decode_general_response,
    decode_location,
    decode_register,
    decode_register_response,
    encode_authenticate,
    encode_batch,
    encode_general_response,
    encode_location,
    encode_register,
    encode_register_response,
)
from haulwatch.ingest.jt808.reassembly import Reassembler

__all__ = [
    "MSG", "REGISTER_RESULT", "RESULT", "Authenticate", "Batch", "Frame", "FrameSplitter",
    "GeneralResponse", "Header", "Jt808Error", "Location", "Reassembler", "Register",
    "RegisterResponse", "bcd_decode", "bcd_encode", "check_code", "decode_authenticate",
    "decode_batch", "decode_frame", "decode_general_response", "decode_location",
    "decode_register", "decode_register_response", "encode_authenticate", "encode_batch",
    "encode_frame", "encode_general_response", "encode_location", "encode_register",
    "encode_register_response", "escape", "split_body", "unescape",
]
