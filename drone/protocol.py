"""The MAVLink mission transfer protocol as pure state machines.

No sockets, no wall clock: each machine takes inbound messages and ``now`` (any
monotonic clock in seconds, e.g. vehicle time) and returns the messages to send
and the events that happened (:class:`Step`). Retries and re-requests live in
one periodic method, :meth:`MissionUpload.poll` / :meth:`MissionDownload.poll`;
inbound messages go through one dispatch point, ``handle``.

Upload (GCS → vehicle), as ArduPilot implements it
(``libraries/GCS_MAVLink/MissionItemProtocol.cpp``):

1. we send ``MISSION_COUNT`` (count includes home at seq 0);
2. the vehicle asks for each item with ``MISSION_REQUEST`` (id 40; other
   autopilots use ``MISSION_REQUEST_INT``, id 51) — we answer both with
   ``MISSION_ITEM_INT``, re-sending on duplicate or re-ordered requests;
3. the vehicle ends with ``MISSION_ACK``: ``MAV_MISSION_ACCEPTED`` or an error
   code, reported by name. ArduPilot answers an item it did not ask for with
   ``MAV_MISSION_INVALID_SEQUENCE`` and carries on, so that code is not fatal.

If nothing arrives for ``item_timeout_s`` we re-send ``MISSION_COUNT`` (no
request seen yet) or the last requested item, ``max_retries`` times, then fail
with :class:`MissionTimeout`.

Download (read-back): ``MISSION_REQUEST_LIST`` → ``MISSION_COUNT`` → one
``MISSION_REQUEST_INT`` per item → ``MISSION_ACK``. :func:`compare_items` then
checks what the vehicle stored against what was sent.

The items themselves (``MISSION_ITEM_INT`` encoding and decoding, what ArduPilot
stores of each parameter, the read-back comparison) are in
:mod:`haulwatch.drone.wire`; their names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from haulwatch.drone.mission import MissionItem
from haulwatch.drone.wire import (  # the item codec, re-exported: one import for the protocol
    MAV_MISSION_TYPE_MISSION,
    compare_items,
    decode_item,
    encode_item,
    enum_name,
    stored_param,
)
from haulwatch.errors import HaulwatchError

__all__ = [
    "MissionDownload",
    "MissionProtocolError",
    "MissionTimeout",
    "MissionUpload",
    "MissionUploadError",
    "MissionVerifyError",
    "ProtocolEvent",
    "Step",
    "compare_items",
    "decode_item",
    "encode_item",
    "mission_result_name",
    "stored_param",
]

_ACCEPTED = mavlink2.MAV_MISSION_ACCEPTED
_INVALID_SEQUENCE = mavlink2.MAV_MISSION_INVALID_SEQUENCE
_ERROR = mavlink2.MAV_MISSION_ERROR


class MissionProtocolError(HaulwatchError, RuntimeError):
    """Base class of mission transfer failures."""


class MissionUploadError(MissionProtocolError):
    """The vehicle refused the mission (``MISSION_ACK`` with an error code).

    Attributes
    ----------
    result : int
        The ``MAV_MISSION_RESULT`` code.
    result_name : str
        Its name, e.g. ``MAV_MISSION_UNSUPPORTED_FRAME``.
    """

    def __init__(self, message: str, *, result: int = -1) -> None:
        super().__init__(message)
        self.result = result
        self.result_name = mission_result_name(result) if result >= 0 else ""


class MissionVerifyError(MissionProtocolError):
    """The mission read back from the vehicle differs from what was sent."""


class MissionTimeout(HaulwatchError, TimeoutError):  # noqa: N818 (name fixed by the design)
    """The vehicle stopped answering during a mission transfer."""


def mission_result_name(result: int) -> str:
    """Name of a ``MAV_MISSION_RESULT`` code.

    Parameters
    ----------
    result : int
        The code from ``MISSION_ACK.type``.

    Returns
    -------
    str
        e.g. ``"MAV_MISSION_UNSUPPORTED_FRAME"``; ``"MAV_MISSION_RESULT_<n>"``
        for a code this MAVLink dialect does not know.
    """
    return enum_name("MAV_MISSION_RESULT", result)


@dataclass(frozen=True)
class ProtocolEvent:
    """Something that happened during a transfer.

    Parameters
    ----------
    kind : str
        ``count_sent``, ``item_sent``, ``retry``, ``ignored``, ``item_received``,
        ``done`` or ``failed``.
    detail : str
        Human-readable description.
    seq : int or None
        The item sequence number concerned, if any.
    """

    kind: str
    detail: str
    seq: int | None = None


@dataclass
class Step:
    """What one call of a protocol machine produced.

    Attributes
    ----------
    messages : list
        pymavlink message objects to send, in order.
    events : list of ProtocolEvent
        What happened.
    """

    messages: list[Any] = field(default_factory=list)
    events: list[ProtocolEvent] = field(default_factory=list)


class _Machine:
    """Shared retry bookkeeping."""

    def __init__(
        self,
        *,
        target_system: int,
        target_component: int,
        item_timeout_s: float,
        max_retries: int,
        mission_type: int,
    ) -> None:
        if not (isinstance(item_timeout_s, (int, float)) and item_timeout_s > 0):
            raise ValueError(f"item_timeout_s must be a positive number, got {item_timeout_s!r}")
        if not (isinstance(max_retries, int) and max_retries >= 0):
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        self.target_system = int(target_system)
        self.target_component = int(target_component)
        self.item_timeout_s = float(item_timeout_s)
        self.max_retries = max_retries
        self.mission_type = int(mission_type)
        self.state = "idle"
        self.error: BaseException | None = None
        self.retries_used = 0
        self._retries = 0
        self._last_activity = 0.0

    @property
    def finished(self) -> bool:
        """True once the transfer succeeded or failed."""
        return self.state in ("done", "failed")

    @property
    def done(self) -> bool:
        """True once the transfer succeeded."""
        return self.state == "done"

    def _progress(self, now: float) -> None:
        self._last_activity = now
        self._retries = 0

    def _fail(self, step: Step, error: BaseException) -> Step:
        self.state = "failed"
        self.error = error
        step.events.append(ProtocolEvent("failed", str(error)))
        return step

    def _ours(self, msg: Any) -> bool:
        return int(getattr(msg, "mission_type", 0) or 0) == self.mission_type


class MissionUpload(_Machine):
    """Upload a mission: ``MISSION_COUNT``, answer requests, wait for the ACK.

    Parameters
    ----------
    items : sequence of MissionItem
        The wire items, home at index 0 (``Mission.wire_items()``).
    target_system, target_component : int
        The vehicle's ids.
    item_timeout_s : float, default 2.0
        Silence after which we re-send (vehicle-clock seconds).
    max_retries : int, default 5
        Re-sends without progress before :class:`MissionTimeout`.
    mission_type : int, default 0
        ``MAV_MISSION_TYPE`` (0: the mission).

    Attributes
    ----------
    state : str
        ``idle``, ``sending``, ``done`` or ``failed``.
    error : Exception or None
        :class:`MissionUploadError` or :class:`MissionTimeout` when failed.
    """

    def __init__(
        self,
        items: Sequence[MissionItem],
        *,
        target_system: int,
        target_component: int,
        item_timeout_s: float = 2.0,
        max_retries: int = 5,
        mission_type: int = MAV_MISSION_TYPE_MISSION,
    ) -> None:
        super().__init__(
            target_system=target_system,
            target_component=target_component,
            item_timeout_s=item_timeout_s,
            max_retries=max_retries,
            mission_type=mission_type,
        )
        self.items = list(items)
        if not self.items:
            raise ValueError("items must hold at least home (seq 0), got an empty sequence")
        self._last_requested: int | None = None
        self._max_requested = -1
        self._resent_final = False
        self.unconfirmed = False

    def start(self, now: float) -> Step:
        """Begin the upload: send ``MISSION_COUNT``."""
        if self.state != "idle":
            raise RuntimeError(f"upload already started (state {self.state!r})")
        self.state = "sending"
        self._progress(now)
        return Step(
            [self._count_msg()],
            [ProtocolEvent("count_sent", f"MISSION_COUNT {len(self.items)}")],
        )

    def _count_msg(self) -> Any:
        return mavlink2.MAVLink_mission_count_message(
            self.target_system, self.target_component, len(self.items), self.mission_type
        )

    def _item_msg(self, seq: int) -> Any:
        return encode_item(
            self.items[seq],
            seq,
            target_system=self.target_system,
            target_component=self.target_component,
            mission_type=self.mission_type,
        )

    def handle(self, msg: Any, now: float) -> Step:
        """Feed one inbound message; return what to send and what happened."""
        step = Step()
        if self.state != "sending" or not self._ours(msg):
            return step
        kind = msg.get_type()
        if kind in ("MISSION_REQUEST", "MISSION_REQUEST_INT"):
            seq = int(msg.seq)
            if not 0 <= seq < len(self.items):
                step.events.append(
                    ProtocolEvent(
                        "ignored", f"{kind} for seq {seq} outside 0..{len(self.items) - 1}", seq
                    )
                )
                return step
            again = seq <= self._max_requested
            self._last_requested = seq
            self._max_requested = max(self._max_requested, seq)
            self._progress(now)
            step.messages.append(self._item_msg(seq))
            detail = f"item {seq} sent" + (" again (repeated request)" if again else "")
            step.events.append(ProtocolEvent("item_sent", detail, seq))
        elif kind == "MISSION_ACK":
            result = int(msg.type)
            if result == _ACCEPTED:
                if self._max_requested == len(self.items) - 1 or len(self.items) == 1:
                    self.state = "done"
                    step.events.append(ProtocolEvent("done", f"{len(self.items)} items accepted"))
                else:
                    step.events.append(
                        ProtocolEvent(
                            "ignored", "MISSION_ACK ACCEPTED before every item was requested"
                        )
                    )
            elif result == _ERROR and self._resent_final:
                # We re-sent the last item because its ACK was lost; ArduPilot
                # answers an item outside an upload with MAV_MISSION_ERROR. The
                # upload itself completed: the read-back must confirm it.
                self.state = "done"
                self.unconfirmed = True
                step.events.append(
                    ProtocolEvent(
                        "done", "final ACK lost; completion unconfirmed (verify by read-back)"
                    )
                )
            elif result == _INVALID_SEQUENCE:
                # ArduPilot's answer to an item it did not ask for: not fatal.
                step.events.append(
                    ProtocolEvent("ignored", "MISSION_ACK MAV_MISSION_INVALID_SEQUENCE")
                )
            else:
                name = mission_result_name(result)
                where = (
                    f" after item {self._last_requested}"
                    if self._last_requested is not None
                    else ""
                )
                self._fail(
                    step,
                    MissionUploadError(
                        f"vehicle refused the mission{where}: {name}", result=result
                    ),
                )
        return step

    def poll(self, now: float) -> Step:
        """Periodic step: re-send after ``item_timeout_s`` of silence, or time out."""
        step = Step()
        if self.state != "sending" or now - self._last_activity < self.item_timeout_s:
            return step
        if self._retries >= self.max_retries:
            waiting = (
                "the first MISSION_REQUEST"
                if self._last_requested is None
                else f"a request after item {self._last_requested}"
            )
            return self._fail(
                step,
                MissionTimeout(
                    f"mission upload timed out waiting for {waiting} "
                    f"({self.max_retries} retries of {self.item_timeout_s:g} s)"
                ),
            )
        self._retries += 1
        self.retries_used += 1
        self._last_activity = now
        if self._last_requested is None:
            step.messages.append(self._count_msg())
            step.events.append(
                ProtocolEvent("retry", f"MISSION_COUNT re-sent (retry {self._retries})")
            )
        else:
            seq = self._last_requested
            self._resent_final = self._resent_final or seq == len(self.items) - 1
            step.messages.append(self._item_msg(seq))
            step.events.append(
                ProtocolEvent("retry", f"item {seq} re-sent (retry {self._retries})", seq)
            )
        return step


class MissionDownload(_Machine):
    """Read the mission back: ``MISSION_REQUEST_LIST`` then each item.

    Parameters
    ----------
    target_system, target_component : int
        The vehicle's ids.
    item_timeout_s : float, default 2.0
        Silence after which we ask again (vehicle-clock seconds).
    max_retries : int, default 5
        Re-asks without progress before :class:`MissionTimeout`.
    mission_type : int, default 0
        ``MAV_MISSION_TYPE``.

    Attributes
    ----------
    items : list of MissionItem
        Every item read, home at index 0 (valid once :attr:`done`).
    """

    def __init__(
        self,
        *,
        target_system: int,
        target_component: int,
        item_timeout_s: float = 2.0,
        max_retries: int = 5,
        mission_type: int = MAV_MISSION_TYPE_MISSION,
    ) -> None:
        super().__init__(
            target_system=target_system,
            target_component=target_component,
            item_timeout_s=item_timeout_s,
            max_retries=max_retries,
            mission_type=mission_type,
        )
        self.count: int | None = None
        self.items: list[MissionItem] = []
        self.last_nack = ""

    def start(self, now: float) -> Step:
        """Begin the download: send ``MISSION_REQUEST_LIST``."""
        if self.state != "idle":
            raise RuntimeError(f"download already started (state {self.state!r})")
        self.state = "listing"
        self._progress(now)
        return Step([self._list_msg()], [ProtocolEvent("count_sent", "MISSION_REQUEST_LIST")])

    def _list_msg(self) -> Any:
        return mavlink2.MAVLink_mission_request_list_message(
            self.target_system, self.target_component, self.mission_type
        )

    def _request_msg(self, seq: int) -> Any:
        return mavlink2.MAVLink_mission_request_int_message(
            self.target_system, self.target_component, seq, self.mission_type
        )

    def _ack_msg(self) -> Any:
        return mavlink2.MAVLink_mission_ack_message(
            self.target_system, self.target_component, _ACCEPTED, self.mission_type
        )

    def handle(self, msg: Any, now: float) -> Step:
        """Feed one inbound message; return what to send and what happened."""
        step = Step()
        if self.state not in ("listing", "reading") or not self._ours(msg):
            return step
        kind = msg.get_type()
        if kind == "MISSION_COUNT" and self.state == "listing":
            self.count = int(msg.count)
            self._progress(now)
            if self.count == 0:
                self.state = "done"
                step.messages.append(self._ack_msg())
                step.events.append(ProtocolEvent("done", "vehicle holds no mission"))
                return step
            self.state = "reading"
            step.messages.append(self._request_msg(0))
        elif kind in ("MISSION_ITEM_INT", "MISSION_ITEM") and self.state == "reading":
            seq = int(msg.seq)
            if seq != len(self.items):
                step.events.append(ProtocolEvent("ignored", f"unexpected item {seq}", seq))
                return step
            self.items.append(decode_item(msg))
            self._progress(now)
            step.events.append(ProtocolEvent("item_received", f"item {seq}", seq))
            if len(self.items) == self.count:
                self.state = "done"
                step.messages.append(self._ack_msg())
                step.events.append(ProtocolEvent("done", f"{self.count} items read"))
            else:
                step.messages.append(self._request_msg(len(self.items)))
        elif kind == "MISSION_ACK" and int(msg.type) in (_ERROR, _INVALID_SEQUENCE):
            # may answer a stale message (e.g. an upload item re-sent late):
            # keep asking; a persistent error ends in MissionTimeout naming it
            self.last_nack = mission_result_name(int(msg.type))
            step.events.append(ProtocolEvent("ignored", f"MISSION_ACK {self.last_nack}"))
        elif kind == "MISSION_ACK" and int(msg.type) != _ACCEPTED:
            name = mission_result_name(int(msg.type))
            self._fail(
                step,
                MissionUploadError(f"vehicle refused the read-back: {name}", result=int(msg.type)),
            )
        return step

    def poll(self, now: float) -> Step:
        """Periodic step: ask again after ``item_timeout_s`` of silence, or time out."""
        step = Step()
        if (
            self.state not in ("listing", "reading")
            or now - self._last_activity < self.item_timeout_s
        ):
            return step
        if self._retries >= self.max_retries:
            what = "MISSION_COUNT" if self.state == "listing" else f"item {len(self.items)}"
            if self.last_nack:
                what += f" (last answer {self.last_nack})"
            return self._fail(
                step,
                MissionTimeout(
                    f"mission read-back timed out waiting for {what} "
                    f"({self.max_retries} retries of {self.item_timeout_s:g} s)"
                ),
            )
        self._retries += 1
        self.retries_used += 1
        self._last_activity = now
        if self.state == "listing":
            step.messages.append(self._list_msg())
        else:
            step.messages.append(self._request_msg(len(self.items)))
        step.events.append(ProtocolEvent("retry", f"asked again (retry {self._retries})"))
        return step
