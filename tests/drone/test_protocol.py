"""The mission transfer state machines, with scripted messages and a fake clock."""

from __future__ import annotations

import pytest
from pymavlink.dialects.v20 import ardupilotmega as m

from haulwatch.drone.mission import MissionItem
from haulwatch.drone.protocol import (
    MissionDownload,
    MissionTimeout,
    MissionUpload,
    MissionUploadError,
    compare_items,
    decode_item,
    encode_item,
    mission_result_name,
    stored_param,
)

HOME = MissionItem(
    m.MAV_CMD_NAV_WAYPOINT, m.MAV_FRAME_GLOBAL, lat_deg=30.7, lon_deg=121.02, alt_m=4.0
)
ITEMS = [
    HOME,
    MissionItem(m.MAV_CMD_NAV_TAKEOFF, m.MAV_FRAME_GLOBAL_RELATIVE_ALT, alt_m=30.0),
    MissionItem(
        m.MAV_CMD_NAV_WAYPOINT,
        m.MAV_FRAME_GLOBAL_RELATIVE_ALT,
        lat_deg=30.7012345,
        lon_deg=121.0298765,
        alt_m=60.0,
    ),
    MissionItem(m.MAV_CMD_DO_SET_CAM_TRIGG_DIST, m.MAV_FRAME_MISSION, param1=15.0),
    MissionItem(m.MAV_CMD_NAV_RETURN_TO_LAUNCH, m.MAV_FRAME_MISSION),
]


def req(seq: int, *, kind: str = "MISSION_REQUEST") -> object:
    cls = (
        m.MAVLink_mission_request_message
        if kind == "MISSION_REQUEST"
        else m.MAVLink_mission_request_int_message
    )
    return cls(255, 190, seq, 0)


def ack(result: int) -> object:
    return m.MAVLink_mission_ack_message(255, 190, result, 0)


def new_upload(**kw) -> MissionUpload:
    return MissionUpload(ITEMS, target_system=1, target_component=1, **kw)


def sent_seqs(step) -> list[int]:
    return [msg.seq for msg in step.messages if msg.get_type() == "MISSION_ITEM_INT"]


class TestUpload:
    def test_happy_path_with_both_request_kinds(self):
        up = new_upload()
        first = up.start(0.0)
        assert [msg.get_type() for msg in first.messages] == ["MISSION_COUNT"]
        assert first.messages[0].count == 5 and first.messages[0].mission_type == 0
        out = []
        for seq in range(5):
            kind = "MISSION_REQUEST" if seq % 2 == 0 else "MISSION_REQUEST_INT"
            out += sent_seqs(up.handle(req(seq, kind=kind), 0.1 * seq))
        assert out == [0, 1, 2, 3, 4]
        assert not up.finished
        step = up.handle(ack(m.MAV_MISSION_ACCEPTED), 1.0)
        assert up.done and up.error is None
        assert step.events[-1].kind == "done"

    def test_items_carry_e7_coordinates(self):
        up = new_upload()
        up.start(0.0)
        for seq in range(2):
            up.handle(req(seq), 0.0)
        msg = up.handle(req(2), 0.0).messages[0]
        assert (msg.x, msg.y) == (307012345, 1210298765)
        assert msg.frame == m.MAV_FRAME_GLOBAL_RELATIVE_ALT and msg.z == pytest.approx(60.0)

    def test_duplicate_and_reordered_requests_are_answered(self):
        up = new_upload()
        up.start(0.0)
        assert sent_seqs(up.handle(req(0), 0.1)) == [0]
        assert sent_seqs(up.handle(req(1), 0.2)) == [1]
        assert sent_seqs(up.handle(req(1), 0.3)) == [1]  # duplicate
        assert sent_seqs(up.handle(req(0), 0.4)) == [0]  # reordered (late)
        assert "again" in up.handle(req(1), 0.5).events[0].detail

    def test_lost_request_is_retried_with_last_item(self):
        up = new_upload(item_timeout_s=1.0, max_retries=3)
        up.start(0.0)
        up.handle(req(0), 0.1)
        up.handle(req(1), 0.2)
        assert up.poll(1.0).messages == []  # not yet silent for 1 s
        step = up.poll(1.3)
        assert sent_seqs(step) == [1] and step.events[0].kind == "retry"
        # the vehicle then asks for the next item: progress resets the retry budget
        assert sent_seqs(up.handle(req(2), 1.5)) == [2]
        assert up.retries_used == 1

    def test_lost_count_is_resent(self):
        up = new_upload(item_timeout_s=1.0)
        up.start(0.0)
        step = up.poll(1.1)
        assert [msg.get_type() for msg in step.messages] == ["MISSION_COUNT"]

    def test_timeout_after_retries(self):
        up = new_upload(item_timeout_s=1.0, max_retries=2)
        up.start(0.0)
        up.handle(req(0), 0.0)
        assert sent_seqs(up.poll(1.0)) == [0]
        assert sent_seqs(up.poll(2.0)) == [0]
        up.poll(3.0)
        assert up.state == "failed"
        assert isinstance(up.error, MissionTimeout)
        assert "after item 0" in str(up.error)

    def test_nack_reported_by_name(self):
        up = new_upload()
        up.start(0.0)
        up.handle(req(0), 0.0)
        up.handle(req(1), 0.0)
        up.handle(ack(m.MAV_MISSION_UNSUPPORTED_FRAME), 0.1)
        assert isinstance(up.error, MissionUploadError)
        assert up.error.result_name == "MAV_MISSION_UNSUPPORTED_FRAME"
        assert "MAV_MISSION_UNSUPPORTED_FRAME" in str(up.error)

    def test_vehicle_cancel_is_fatal(self):
        up = new_upload()
        up.start(0.0)
        up.handle(ack(m.MAV_MISSION_OPERATION_CANCELLED), 9.0)
        assert "MAV_MISSION_OPERATION_CANCELLED" in str(up.error)

    def test_invalid_sequence_ack_is_not_fatal(self):
        up = new_upload()
        up.start(0.0)
        up.handle(req(0), 0.0)
        up.handle(ack(m.MAV_MISSION_INVALID_SEQUENCE), 0.1)
        assert up.state == "sending"

    def test_lost_final_ack_then_error_counts_as_unconfirmed_done(self):
        up = new_upload(item_timeout_s=1.0)
        up.start(0.0)
        for seq in range(5):
            up.handle(req(seq), 0.1)
        assert sent_seqs(up.poll(1.5)) == [4]  # the final ACK never came: re-send the last item
        up.handle(ack(m.MAV_MISSION_ERROR), 1.6)  # ArduPilot: "not receiving"
        assert up.done and up.unconfirmed

    def test_error_without_resend_is_fatal(self):
        up = new_upload()
        up.start(0.0)
        for seq in range(5):
            up.handle(req(seq), 0.1)
        up.handle(ack(m.MAV_MISSION_ERROR), 0.2)
        assert up.state == "failed" and "MAV_MISSION_ERROR" in str(up.error)

    def test_premature_accept_is_ignored(self):
        up = new_upload()
        up.start(0.0)
        up.handle(req(0), 0.0)
        up.handle(ack(m.MAV_MISSION_ACCEPTED), 0.1)
        assert up.state == "sending"

    def test_other_mission_type_ignored(self):
        up = new_upload()
        up.start(0.0)
        fence_req = m.MAVLink_mission_request_message(255, 190, 0, m.MAV_MISSION_TYPE_FENCE)
        assert up.handle(fence_req, 0.0).messages == []

    def test_bad_parameters(self):
        with pytest.raises(ValueError, match="item_timeout_s"):
            new_upload(item_timeout_s=0)
        with pytest.raises(ValueError, match="max_retries"):
            new_upload(max_retries=-1)
        with pytest.raises(ValueError, match="at least home"):
            MissionUpload([], target_system=1, target_component=1)

    def test_items_not_mutated(self):
        items = list(ITEMS)
        up = MissionUpload(items, target_system=1, target_component=1)
        up.start(0.0)
        up.handle(req(0), 0.0)
        assert items == ITEMS


def item_msg(item: MissionItem, seq: int, *, frame: int | None = None):
    msg = encode_item(item, seq, target_system=255, target_component=190)
    if frame is not None:
        msg.frame = frame
    return msg


class TestDownload:
    def test_reads_every_item_and_acks(self):
        dl = MissionDownload(target_system=1, target_component=1)
        assert dl.start(0.0).messages[0].get_type() == "MISSION_REQUEST_LIST"
        step = dl.handle(m.MAVLink_mission_count_message(255, 190, 3, 0), 0.1)
        assert [(x.get_type(), x.seq) for x in step.messages] == [("MISSION_REQUEST_INT", 0)]
        dl.handle(item_msg(ITEMS[0], 0), 0.2)
        step = dl.handle(item_msg(ITEMS[1], 1), 0.3)
        assert step.messages[0].seq == 2
        step = dl.handle(item_msg(ITEMS[2], 2), 0.4)
        assert dl.done
        assert step.messages[-1].get_type() == "MISSION_ACK"
        assert dl.items[2].lat_deg == pytest.approx(30.7012345, abs=1e-9)

    def test_lost_item_asked_again_then_timeout(self):
        dl = MissionDownload(target_system=1, target_component=1, item_timeout_s=0.5, max_retries=1)
        dl.start(0.0)
        dl.handle(m.MAVLink_mission_count_message(255, 190, 2, 0), 0.0)
        step = dl.poll(0.6)
        assert [(x.get_type(), x.seq) for x in step.messages] == [("MISSION_REQUEST_INT", 0)]
        dl.poll(1.2)
        assert isinstance(dl.error, MissionTimeout)

    def test_out_of_order_item_ignored(self):
        dl = MissionDownload(target_system=1, target_component=1)
        dl.start(0.0)
        dl.handle(m.MAVLink_mission_count_message(255, 190, 2, 0), 0.0)
        step = dl.handle(item_msg(ITEMS[1], 1), 0.1)
        assert step.events[0].kind == "ignored" and dl.items == []

    def test_stale_error_ack_is_ignored_then_named_on_timeout(self):
        dl = MissionDownload(target_system=1, target_component=1, item_timeout_s=0.5, max_retries=1)
        dl.start(0.0)
        step = dl.handle(ack(m.MAV_MISSION_ERROR), 0.1)
        assert dl.state == "listing" and step.events[0].kind == "ignored"
        dl.poll(0.7)
        dl.poll(1.3)
        assert isinstance(dl.error, MissionTimeout)
        assert "MAV_MISSION_ERROR" in str(dl.error)

    def test_denied_read_back_is_fatal(self):
        dl = MissionDownload(target_system=1, target_component=1)
        dl.start(0.0)
        dl.handle(ack(m.MAV_MISSION_DENIED), 0.1)
        assert isinstance(dl.error, MissionUploadError)
        assert "MAV_MISSION_DENIED" in str(dl.error)

    def test_float_mission_item_decoded(self):
        msg = m.MAVLink_mission_item_message(
            255, 190, 2, 3, m.MAV_CMD_NAV_WAYPOINT, 0, 1, 0, 0, 0, 0, 30.5, 121.25, 50.0, 0
        )
        item = decode_item(msg)
        assert (item.lat_deg, item.lon_deg, item.alt_m) == (30.5, 121.25, 50.0)


class TestCompare:
    def test_relative_int_frame_reads_back_as_relative(self):
        sent = [
            MissionItem(
                m.MAV_CMD_NAV_WAYPOINT,
                m.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
                lat_deg=30.1,
                lon_deg=121.2,
                alt_m=50.0,
            )
        ]
        read = [
            MissionItem(
                m.MAV_CMD_NAV_WAYPOINT,
                m.MAV_FRAME_GLOBAL_RELATIVE_ALT,
                lat_deg=30.1,
                lon_deg=121.2,
                alt_m=50.0,
            )
        ]
        assert compare_items(sent, read) == []

    def test_differences_are_named(self):
        sent = ITEMS[1:]
        read = list(ITEMS[1:])
        read[1] = MissionItem(
            m.MAV_CMD_NAV_WAYPOINT,
            m.MAV_FRAME_GLOBAL,
            lat_deg=30.70124,
            lon_deg=121.0298765,
            alt_m=60.0,
        )
        read[2] = MissionItem(m.MAV_CMD_DO_SET_CAM_TRIGG_DIST, m.MAV_FRAME_MISSION, param1=0.0)
        problems = compare_items(sent, read)
        assert any(p.startswith("seq 2: frame") for p in problems)
        assert any(p.startswith("seq 2: position") for p in problems)
        assert any(p.startswith("seq 3: param1") for p in problems)
        assert compare_items(sent, read[:-1])[0].startswith("count")

    def test_result_names(self):
        assert mission_result_name(m.MAV_MISSION_DENIED) == "MAV_MISSION_DENIED"
        assert mission_result_name(250) == "MAV_MISSION_RESULT_250"


class TestStoredParam:
    @pytest.mark.parametrize(
        ("command", "index", "sent", "kept"),
        [
            (m.MAV_CMD_NAV_LOITER_TURNS, 1, 1.5, 1.0),  # whole turns
            (m.MAV_CMD_NAV_LOITER_TURNS, 1, 300.0, 255.0),  # one byte
            (m.MAV_CMD_NAV_LOITER_TURNS, 3, 30.7, 30.0),  # radius byte, metres
            (m.MAV_CMD_NAV_LOITER_TURNS, 3, -30.7, -30.0),  # sign = counter-clockwise
            (m.MAV_CMD_NAV_LOITER_TURNS, 3, 307.0, 300.0),  # > 255 m: tens of metres
            (m.MAV_CMD_NAV_LOITER_TURNS, 3, 9000.0, 2550.0),
            (m.MAV_CMD_NAV_WAYPOINT, 1, 2.9, 2.0),  # hold, whole seconds
            (m.MAV_CMD_DO_SET_CAM_TRIGG_DIST, 1, 12.5, 12.5),
            (m.MAV_CMD_DO_SET_CAM_TRIGG_DIST, 3, 1.0, 1.0),
        ],
    )
    def test_what_ap_mission_keeps(self, command, index, sent, kept):
        assert stored_param(command, index, sent) == kept

    def test_parameters_not_kept(self):
        assert stored_param(m.MAV_CMD_NAV_WAYPOINT, 2, 5.0) is None  # Copter drops it
        assert stored_param(m.MAV_CMD_NAV_TAKEOFF, 4, 90.0) is None
        assert stored_param(m.MAV_CMD_NAV_LOITER_TURNS, 3, float("nan")) is None


class TestCompareStoredParams:
    def orbit(self, turns: float, radius_m: float, hold_s: float = 0.0) -> list[MissionItem]:
        return [
            MissionItem(
                m.MAV_CMD_NAV_WAYPOINT,
                m.MAV_FRAME_GLOBAL_RELATIVE_ALT,
                param1=hold_s,
                lat_deg=30.71,
                lon_deg=121.03,
                alt_m=40.0,
            ),
            MissionItem(
                m.MAV_CMD_NAV_LOITER_TURNS,
                m.MAV_FRAME_GLOBAL_RELATIVE_ALT,
                param1=turns,
                param3=radius_m,
                lat_deg=30.71,
                lon_deg=121.03,
                alt_m=40.0,
            ),
        ]

    def test_lossy_storage_is_not_a_difference(self):
        sent = self.orbit(2.5, 307.3, hold_s=3.6)
        read = self.orbit(2.0, 300.0, hold_s=3.0)  # what ArduCopter reads back
        assert compare_items(sent, read) == []

    def test_radius_and_direction_are_checked(self):
        sent = self.orbit(2, 50.0)
        problems = compare_items(sent, self.orbit(2, -50.0))
        assert problems == ["seq 2: param3 -50 != 50"]
        assert compare_items(sent, self.orbit(2, 80.0)) == ["seq 2: param3 80 != 50"]
        assert compare_items(sent, self.orbit(1, 50.0)) == ["seq 2: param1 1 != 2"]
