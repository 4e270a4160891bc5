"""Tests for haulwatch.ingest.tracks."""

import io
import itertools

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from haulwatch.ingest import tables as tables_mod
from haulwatch.ingest.rejects import SchemaError, concat_rejects
from haulwatch.ingest.tracks import TRACK_COLUMNS, parse_times, read_tracks, tracks_from_table

HEADER = "vehicle_id,time,lon,lat,speed_kmh,heading_deg,load,lift\n"


def write(tmp_path, body, header=HEADER, name="tracks.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes((header + body).encode(encoding))
    return path


def utc(text):
    return pd.Timestamp(text, tz="UTC")


def check_invariant(res):
    dropped = int((res.rejects["action"] == "row_dropped").sum())
    assert res.rows_dropped == dropped
    assert res.rows_read == len(res.tracks) + dropped + res.duplicates_dropped
    # one row_dropped reject per dropped row
    assert res.rejects.loc[res.rejects["action"] == "row_dropped", "row"].is_unique


class TestTimes:
    def test_naive_times_are_local_to_the_dataset_zone(self, tmp_path):
        path = write(tmp_path, "A1,2024-05-01T08:00:00,121.0,31.0,,,,\n")
        res = read_tracks(path)                                       # Asia/Shanghai
        assert res.tracks["time"].iloc[0] == utc("2024-05-01T00:00:00")
        res = read_tracks(path, timezone="UTC")
        assert res.tracks["time"].iloc[0] == utc("2024-05-01T08:00:00")
        assert str(res.tracks["time"].dtype) == "datetime64[ns, UTC]"

    def test_offsets_z_epoch_and_fractions_in_one_file(self, tmp_path):
        body = (
            "A1,2024-05-01T08:00:00+08:00,121.0,31.0,,,,\n"
            "A1,2024-05-01T00:00:01Z,121.0,31.0,,,,\n"
            "A1,1714521602,121.0,31.0,,,,\n"               # epoch seconds
            "A1,1714521603000,121.0,31.0,,,,\n"            # epoch milliseconds
            "A1,2024-05-01 08:00:04.250,121.0,31.0,,,,\n"  # space, fraction, naive
            "A1,2024-05-01T02:00:05+0200,121.0,31.0,,,,\n"
            "A1, 2024-05-01T08:00:06 ,121.0,31.0,,,,\n"    # stray spaces
        )
        res = read_tracks(write(tmp_path, body))
        want = [utc("2024-05-01T00:00:00"), utc("2024-05-01T00:00:01"),
                utc("2024-05-01T00:00:02"), utc("2024-05-01T00:00:03"),
                utc("2024-05-01T00:00:04.250"), utc("2024-05-01T00:00:05"),
                utc("2024-05-01T00:00:06")]
        assert res.tracks["time"].tolist() == want
        assert len(res.rejects) == 0

    def test_dst_zone_is_not_a_constant_offset(self, tmp_path):
        body = (
            "A1,2024-01-15T12:00:00,-74.0,40.7,,,,\n"   # EST  (UTC-5)
            "A1,2024-07-15T12:00:00,-74.0,40.7,,,,\n"   # EDT  (UTC-4)
            "A1,2024-03-10T02:30:00,-74.0,40.7,,,,\n"   # does not exist: shifted forward
            "A1,2024-11-03T01:30:00,-74.0,40.7,,,,\n"   # happens twice: first (EDT)
        )
        res = read_tracks(write(tmp_path, body), timezone="America/New_York")
        times = sorted(res.tracks["time"].tolist())
        assert times == [utc("2024-01-15T17:00:00"), utc("2024-03-10T07:00:00"),
                         utc("2024-07-15T16:00:00"), utc("2024-11-03T05:30:00")]
        assert len(res.rejects) == 0

    def test_impossible_dates_are_not_rolled_over(self):
        _, status = parse_times(pd.Series(["2024-02-30 08:00:00", "2023-02-29T08:00:00",
                                           "2024-02-29T08:00:00", "2024-04-31T01:00:00+08:00"]),
                                "Asia/Shanghai")
        assert status.tolist() == [2, 2, 0, 2]

    def test_year_first_slash_form(self):
        ns, status = parse_times(pd.Series(["2024/5/1 8:00:00"]), "Asia/Shanghai")
        assert status.tolist() == [0]
        assert ns[0] == utc("2024-05-01T00:00:00").value

    def test_parse_times_status(self):
        ns, status = parse_times(
            pd.Series(["2024-05-01T08:00:00", None, "yesterday", "0", "2024-13-01T00:00:00"]),
            "Asia/Shanghai")
        assert status.tolist() == [0, 1, 2, 3, 2]
        assert ns[0] == utc("2024-05-01T00:00:00").value


class TestSortingAndDuplicates:
    BODY = (
        "B2,2024-05-01T08:00:10,121.0,31.0,,,,\n"     # row 1
        "浙F·A1234,2024-05-01T08:00:05,121.0,31.0,,,,\n"  # row 2
        "浙FA1234,2024-05-01T08:00:00,121.0,31.0,,,,\n"   # row 3
        "浙f a1234,2024-05-01T08:00:05,121.1,31.1,,,,\n"  # row 4: duplicate of row 2
        "B2,2024-05-01T08:00:00,121.0,31.0,,,,\n"     # row 5
        "B2,2024-05-01T08:00:10,121.0,31.0,,,,\n"     # row 6: duplicate of row 1
    )

    def test_sorted_by_key_then_time(self, tmp_path):
        res = read_tracks(write(tmp_path, self.BODY))
        t = res.tracks
        assert t["src_row"].tolist() == [5, 1, 3, 2]
        assert t["vehicle_key"].astype(str).tolist() == ["B2", "B2", "浙FA1234", "浙FA1234"]
        # ids are kept as the tracks write them
        assert t["vehicle_id"].astype(str).tolist()[2:] == ["浙FA1234", "浙F·A1234"]
        assert isinstance(t.index, pd.RangeIndex)

    def test_duplicates_counted_not_rejected_first_kept(self, tmp_path):
        res = read_tracks(write(tmp_path, self.BODY))
        assert res.duplicates_dropped == 2
        assert len(res.rejects) == 0
        assert 4 not in res.tracks["src_row"].tolist()   # the later copy goes
        assert res.tracks.loc[res.tracks["src_row"] == 2, "lon"].item() == 121.0
        check_invariant(res)


class TestBadRows:
    BODY = (
        "A1,2024-05-01T08:00:00,121.0,31.0,10,90,full,0\n"   # 1 ok
        ",2024-05-01T08:00:01,121.0,31.0,,,,\n"             # 2 missing vehicle
        "A1,,121.0,31.0,,,,\n"                               # 3 missing time
        "A1,not a time,121.0,31.0,,,,\n"                     # 4 unparseable time
        "A1,2024-05-01T08:00:04,east,31.0,,,,\n"             # 5 lon not a number
        "A1,2024-05-01T08:00:05,121.0,91.5,,,,\n"            # 6 lat out of range
        "A1,2024-05-01T08:00:06,0,0,,,,\n"                   # 7 null island
        "A1,2024-05-01T08:00:07,nan,31.0,,,,\n"              # 8 NaN lon
        "A1,2024-05-01T08:00:08,181,31.0,,,,\n"              # 9 lon out of range
        "A1,2024-05-01T08:00:09,121.0,,,,,\n"                # 10 missing lat
        "A1,2024-05-01T08:00:10,121.0,31.0,fast,-1,loaded?,2\n"  # 11 optional values bad
        "A1,1970-01-01T00:00:00Z,121.0,31.0,,,,\n"           # 12 epoch zero
        "·-,2024-05-01T08:00:12,121.0,31.0,,,,\n"            # 13 plate without characters
    )

    @pytest.fixture
    def res(self, tmp_path):
        return read_tracks(write(tmp_path, self.BODY))

    @pytest.mark.parametrize("row, field, reason", [
        (2, "vehicle_id", "missing vehicle_id"),
        (3, "time", "missing time"),
        (4, "time", "unparseable time"),
        (5, "lon", "not a number"),
        (6, "lat", "out of range"),
        (7, "lon,lat", "(0, 0)"),
        (8, "lon", "not a finite number"),
        (9, "lon", "out of range"),
        (10, "lat", "missing lat"),
        (12, "time", "outside 1990"),
        (13, "vehicle_id", "no letters or digits"),
    ])
    def test_dropped_row_named(self, res, row, field, reason):
        hit = res.rejects[(res.rejects["row"] == row) & (res.rejects["action"] == "row_dropped")]
        assert len(hit) == 1
        assert hit["field"].item() == field
        assert reason in hit["reason"].item()
        assert row not in res.tracks["src_row"].tolist()

    def test_values_are_reported_as_written(self, res):
        rej = res.rejects.set_index(["row", "field"])["value"]
        assert rej[(4, "time")] == "not a time"
        assert rej[(5, "lon")] == "east"
        assert rej[(6, "lat")] == "91.5"

    def test_optional_values_cleared_row_kept(self, res):
        cleared = res.rejects[res.rejects["action"] == "value_cleared"]
        assert sorted(cleared["field"]) == ["heading_deg", "lift", "load", "speed_kmh"]
        assert set(cleared["row"]) == {11}
        row = res.tracks[res.tracks["src_row"] == 11].iloc[0]
        assert np.isnan(row["speed_kmh"]) and np.isnan(row["heading_deg"])
        assert pd.isna(row["load"]) and np.isnan(row["lift"])

    def test_good_values_kept(self, res):
        row = res.tracks[res.tracks["src_row"] == 1].iloc[0]
        assert row["speed_kmh"] == 10 and row["heading_deg"] == 90
        assert row["load"] == "full" and row["lift"] == 0.0

    def test_counts_invariant(self, res):
        assert res.rows_read == 13
        assert len(res.tracks) == 2
        check_invariant(res)


class TestColumns:
    def test_optional_columns_absent(self, tmp_path):
        res = read_tracks(write(tmp_path, "A1,2024-05-01T08:00:00,121,31\n",
                                header="vehicle_id,time,lon,lat\n"))
        assert tuple(res.tracks.columns) == TRACK_COLUMNS
        assert res.tracks["speed_kmh"].isna().all()
        assert res.tracks["load"].isna().all()
        assert not res.has_load and not res.has_lift

    def test_header_case_and_order_free(self, tmp_path):
        res = read_tracks(write(tmp_path, "31,121,2024-05-01T08:00:00,A1,1\n",
                                header="LAT, Lon ,Time,Vehicle_ID,lift\n"))
        assert res.tracks["lon"].item() == 121 and res.tracks["lat"].item() == 31
        assert res.has_lift and not res.has_load

    def test_load_aliases(self, tmp_path):
        body = "".join(f"A1,2024-05-01T08:00:0{i},121,31,,,{v},\n"
                       for i, v in enumerate(["EMPTY", " half ", "满载", "Full"]))
        res = read_tracks(write(tmp_path, body))
        assert res.tracks["load"].astype(str).tolist() == ["empty", "half", "full", "full"]

    def test_missing_required_column(self, tmp_path):
        path = write(tmp_path, "A1,2024-05-01T08:00:00,121\n", header="vehicle_id,time,lon\n")
        with pytest.raises(SchemaError, match=r"tracks.csv: missing required column.*lat"):
            read_tracks(path)

    @pytest.mark.parametrize("header", ["vehicle_id,time,lon,lat,lon\n",
                                        "vehicle_id,time,lon,lat,Speed_KMH,speed_kmh\n"])
    def test_a_known_column_twice_is_refused(self, tmp_path, header):
        path = write(tmp_path, "A1,1714521600,121,31,1,2\n", header=header)
        with pytest.raises(SchemaError, match=r"tracks\.csv: column (lon|speed_kmh) appears "
                                              r"twice in the header \(columns \d and \d"):
            read_tracks(path)

    def test_unknown_columns_may_repeat(self, tmp_path):
        path = write(tmp_path, "A1,x,1714521600,y,121,31\n",
                     header="vehicle_id,note,time,note,lon,lat\n")
        res = read_tracks(path)
        assert len(res.tracks) == 1 and len(res.rejects) == 0

    def test_header_only_gives_empty_frame(self, tmp_path):
        res = read_tracks(write(tmp_path, ""))
        assert len(res.tracks) == 0 and res.rows_read == 0
        assert tuple(res.tracks.columns) == TRACK_COLUMNS
        assert str(res.tracks["time"].dtype) == "datetime64[ns, UTC]"

    def test_empty_file(self, tmp_path):
        path = tmp_path / "tracks.csv"
        path.write_text("")
        with pytest.raises(SchemaError, match=r"empty"):
            read_tracks(path)

    def test_unknown_timezone(self, tmp_path):
        path = write(tmp_path, "A1,2024-05-01T08:00:00,121,31\n", header="vehicle_id,time,lon,lat\n")
        with pytest.raises(SchemaError, match=r"timezone 'Asia/Shangai' is not a known"):
            read_tracks(path, timezone="Asia/Shangai")

    def test_missing_file(self, tmp_path):
        with pytest.raises(SchemaError, match=r"not found"):
            read_tracks(tmp_path / "tracks.csv")

    def test_utf16_is_refused_with_a_hint(self, tmp_path):
        path = write(tmp_path, "A1\t1714521600\t121\t31\n", header="vehicle_id\ttime\tlon\tlat\n",
                     encoding="utf-16")
        with pytest.raises(SchemaError, match=r"tracks\.csv: the file is UTF-16.*CSV UTF-8"):
            read_tracks(path)

    def test_gb18030_and_semicolons(self, tmp_path):
        path = write(tmp_path, "浙A00001;2024-05-01T08:00:00;121;31\n",
                     header="vehicle_id;time;lon;lat\n", encoding="gb18030")
        res = read_tracks(path)
        assert res.tracks["vehicle_id"].astype(str).item() == "浙A00001"


    def test_gb18030_found_late_in_the_file(self, tmp_path):
        # The first 64 KiB are plain ASCII; a GBK-encoded plate comes later.
        ascii_rows = "".join(f"A1,{1714521600 + i},121,31\n" for i in range(4000))
        path = write(tmp_path, ascii_rows + "浙A00001,1714521600,121,31\n",
                     header="vehicle_id,time,lon,lat\n", encoding="gb18030")
        res = read_tracks(path)
        assert "浙A00001" in res.tracks["vehicle_id"].astype(str).tolist()
        assert res.rows_read == 4001


class TestRaggedRows:
    def test_ragged_rows_rejected_and_numbering_kept(self, tmp_path, monkeypatch):
        monkeypatch.setattr(tables_mod, "_BLOCK_BYTES", 4096)   # several blocks
        lines = [f"A1,{1714521600 + i},121,31\n" for i in range(1000)]
        lines[10] = "A1,1714521610,121,31,oops\n"       # row 11: one field too many
        lines[700] = "A1,1714522300\n"                   # row 701: fields missing
        lines[900] = "A1,1714522500,121,abc\n"           # row 901: bad lat (parsed row)
        res = read_tracks(write(tmp_path, "".join(lines), header="vehicle_id,time,lon,lat\n"))
        rej = res.rejects.set_index("row")
        assert sorted(rej.index) == [11, 701, 901]
        assert rej.loc[11, "field"] == "row" and "expected 4 fields, got 5" in rej.loc[11, "reason"]
        assert rej.loc[701, "value"] == "A1,1714522300"
        assert rej.loc[901, "field"] == "lat"
        # rows after the skipped ones keep their numbers in the file
        assert res.tracks["src_row"].tolist() == [r for r in range(1, 1001)
                                                  if r not in (11, 701, 901)]
        assert res.rows_read == 1000
        check_invariant(res)


class TestQuotes:
    def test_unbalanced_quote_does_not_swallow_the_lines_after_it(self, tmp_path, monkeypatch):
        monkeypatch.setattr(tables_mod, "_BLOCK_BYTES", 4096)   # several blocks
        lines = [f"A1,{1714521600 + 60 * i},121.{i:04d},31\n" for i in range(400)]
        lines[5] = 'A1,1714521900,"121.0005,31\n'        # row 6: a quote never closed
        lines[300] = 'A1,1714539600,121.03"00,31\n'      # row 301: a quote inside a cell
        res = read_tracks(write(tmp_path, "".join(lines), header="vehicle_id,time,lon,lat\n"))
        assert res.rows_read == 400
        rej = res.rejects.set_index("row")
        assert sorted(rej.index) == [6, 301]
        # each line with an odd number of quotes is refused on its own, as written
        assert rej.loc[6, "field"] == "row"
        assert rej.loc[6, "value"] == 'A1,1714521900,"121.0005,31'
        assert rej.loc[6, "reason"].startswith("unbalanced quote")
        assert rej.loc[301, "field"] == "row"
        assert res.tracks["src_row"].tolist() == [r for r in range(1, 401) if r not in (6, 301)]
        check_invariant(res)

    def test_quoted_cells_still_read_when_a_quote_is_unbalanced(self, tmp_path):
        body = ('"浙A 00001","1714521600","121.5","31.5"\n'
                '浙A00001,1714521660,"121.5,31.5\n'
                '"浙A00001",1714521720,121.5,"31.5"\n')
        res = read_tracks(write(tmp_path, body, header="vehicle_id,time,lon,lat\n"))
        assert res.tracks["src_row"].tolist() == [1, 3]
        assert res.tracks["vehicle_id"].astype(str).tolist() == ["浙A 00001", "浙A00001"]
        assert res.tracks["lat"].tolist() == [31.5, 31.5]
        assert res.rejects[["row", "field"]].values.tolist() == [[2, "row"]]
        check_invariant(res)

    def test_quoted_commas_still_read_when_a_quote_is_unbalanced(self, tmp_path):
        body = ('A1,1714521600,121.5,31.5,"a, b"\r\n'
                'A1,1714521660,"121.5,31.5,x\r\n'
                'A1,1714521720,121.5,31.5,"c, d"\r\n')
        res = read_tracks(write(tmp_path, body, header="vehicle_id,time,lon,lat,note\r\n"))
        assert res.tracks["src_row"].tolist() == [1, 3]
        assert res.rejects[["row", "field", "value"]].values.tolist() == [
            [2, "row", 'A1,1714521660,"121.5,31.5,x']]

    def test_quoted_comma_in_a_number_is_one_bad_cell(self, tmp_path):
        body = 'A1,1714521600,"121,5",31\nA1,1714521660,121.5,31\n'
        res = read_tracks(write(tmp_path, body, header="vehicle_id,time,lon,lat\n"))
        assert res.rejects[["row", "field", "value"]].values.tolist() == [[1, "lon", "121,5"]]
        assert len(res.tracks) == 1


class TestFullWidthAndHuge:
    def test_full_width_digits_are_numbers(self, tmp_path):
        body = "浙Ａ１,１７１４５２１６００,１２１．５,－３１．５\n浙Ａ１,２０２４－０５－０１Ｔ０８：０１：００,121.5,-31.5\n"
        res = read_tracks(write(tmp_path, body, header="vehicle_id,time,lon,lat\n"))
        assert res.tracks["time"].tolist() == [utc("2024-05-01T00:00:00"),
                                               utc("2024-05-01T00:01:00")]
        assert res.tracks["lon"].tolist() == [121.5, 121.5]
        assert res.tracks["lat"].tolist() == [-31.5, -31.5]
        assert res.tracks["vehicle_key"].astype(str).unique().tolist() == ["浙A1"]

    @pytest.mark.parametrize("value", ["1e300", "-1e300", "99999999999999999999999", "-5"])
    def test_huge_epochs_are_out_of_range_not_unparseable(self, tmp_path, value):
        res = read_tracks(write(tmp_path, f"A1,{value},121,31\n",
                                header="vehicle_id,time,lon,lat\n"))
        assert res.rejects["reason"].iloc[0].startswith("time outside 1990-01-01..2100-01-01")

    @pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
    def test_non_finite_epochs_are_unparseable(self, tmp_path, value):
        res = read_tracks(write(tmp_path, f"A1,{value},121,31\n",
                                header="vehicle_id,time,lon,lat\n"))
        assert res.rejects["reason"].iloc[0].startswith("unparseable time")


class TestBatches:
    def test_row_numbers_across_many_batches(self, tmp_path, monkeypatch):
        monkeypatch.setattr(tables_mod, "_BLOCK_BYTES", 2048)
        lines = []
        for i in range(3000):
            t = pd.Timestamp("2024-05-01T08:00:00") + pd.Timedelta(seconds=i)
            lat = "x" if i % 997 == 0 else "31.0"
            lines.append(f"V{i % 3},{t.isoformat()},121.0,{lat},,,,\n")
        res = read_tracks(write(tmp_path, "".join(lines)))
        bad_rows = sorted(res.rejects["row"].tolist())
        assert bad_rows == [i + 1 for i in range(3000) if i % 997 == 0]
        assert len(res.tracks) == 3000 - len(bad_rows)
        assert res.tracks["vehicle_key"].astype(str).is_monotonic_increasing
        check_invariant(res)


class TestParquet:
    def frame(self):
        return {
            "vehicle_id": ["A1", "A1", "B2"],
            "lon": [121.0, 121.1, 121.2],
            "lat": [31.0, 31.1, 31.2],
        }

    def test_timestamp_tz_aware(self, tmp_path):
        data = self.frame()
        data["time"] = pd.to_datetime(["2024-05-01T00:00:00Z"] * 2 + ["2024-05-01T01:00:00Z"])
        data["time"] = data["time"] + pd.to_timedelta([0, 5, 0], unit="s")
        pq.write_table(pa.Table.from_pandas(pd.DataFrame(data)), tmp_path / "tracks.parquet")
        res = read_tracks(tmp_path / "tracks.parquet")
        assert res.tracks["time"].tolist() == [utc("2024-05-01T00:00:00"),
                                               utc("2024-05-01T00:00:05"),
                                               utc("2024-05-01T01:00:00")]

    def test_timestamp_naive_is_local(self, tmp_path):
        data = self.frame()
        data["time"] = pd.to_datetime(["2024-05-01T08:00:00", "2024-05-01T08:00:05",
                                       "2024-05-01T09:00:00"]).as_unit("us")
        pq.write_table(pa.Table.from_pandas(pd.DataFrame(data)), tmp_path / "tracks.parquet")
        res = read_tracks(tmp_path / "tracks.parquet")
        assert res.tracks["time"].iloc[0] == utc("2024-05-01T00:00:00")

    def test_integer_epoch_seconds_and_batches(self, tmp_path, monkeypatch):
        monkeypatch.setattr(tables_mod, "_BATCH_ROWS", 2)
        data = self.frame()
        data["time"] = np.array([1714521600, 1714521605, 1714525200], dtype="int64")
        data["load"] = ["full", "bogus", None]
        pq.write_table(pa.table(data), tmp_path / "tracks.parquet", row_group_size=2)
        res = read_tracks(tmp_path / "tracks.parquet")
        assert res.tracks["time"].tolist() == [utc("2024-05-01T00:00:00"),
                                               utc("2024-05-01T00:00:05"),
                                               utc("2024-05-01T01:00:00")]
        assert res.rejects[["row", "field", "action"]].values.tolist() == [
            [2, "load", "value_cleared"]]

    def test_missing_column(self, tmp_path):
        pq.write_table(pa.table(self.frame()), tmp_path / "tracks.parquet")
        with pytest.raises(SchemaError, match=r"missing required column.*time"):
            read_tracks(tmp_path / "tracks.parquet")


class TestParquetOddTypes:
    def write(self, tmp_path, **cols):
        base = {"vehicle_id": ["A1", "A1", "A1"], "time": [1714521600, 1714521660, 1714521720],
                "lon": [121.0, 121.1, 121.2], "lat": [31.0, 31.1, 31.2]}
        base.update(cols)
        pq.write_table(pa.table(base), tmp_path / "tracks.parquet")
        return tmp_path / "tracks.parquet"

    def test_binary_plates_in_gb18030(self, tmp_path):
        plates = pa.array(["浙A1".encode("gb18030"), "浙A1".encode("gb18030"), b"B2"],
                          pa.binary())
        res = read_tracks(self.write(tmp_path, vehicle_id=plates))
        assert sorted(res.tracks["vehicle_id"].astype(str)) == ["B2", "浙A1", "浙A1"]
        check_invariant(res)

    def test_nested_column_is_refused_with_its_type(self, tmp_path):
        path = self.write(tmp_path, lon=pa.array([[121.0]] * 3))
        with pytest.raises(SchemaError, match=r"tracks\.parquet: column 'lon' has the nested "
                                              r"type list"):
            read_tracks(path)

    def test_uint64_beyond_float_precision_is_out_of_range(self, tmp_path):
        times = pa.array([2**64 - 1, 1714521660, 1714521720], pa.uint64())
        res = read_tracks(self.write(tmp_path, time=times))
        assert res.rejects[["row", "field"]].values.tolist() == [[1, "time"]]
        assert res.rejects["reason"].iloc[0].startswith("time outside")
        check_invariant(res)


class TestTracksFromTable:
    """The in-memory entry point (live positions posted to the API use it)."""

    def test_typed_columns(self):
        cols = {
            "vehicle_id": pa.array(["A1", "A1", None]),
            "time": pa.array([1714521600, 1714521601, 1714521602]),
            "lon": pa.array([121.0, 121.0, 121.0]),
            "lat": pa.array([31.0, 31.0, 31.0]),
            "lift": pa.array([True, False, True]),
        }
        res = tracks_from_table(cols, 3, file="positions", timezone="UTC")
        assert res.tracks["time"].tolist() == [utc("2024-05-01T00:00:00"),
                                               utc("2024-05-01T00:00:01")]
        assert res.tracks["lift"].tolist() == [1.0, 0.0]
        assert res.has_lift and not res.has_load
        assert res.rejects[["row", "field"]].values.tolist() == [[3, "vehicle_id"]]

    def test_all_null_columns(self):
        cols = {"vehicle_id": pa.array(["A1"]), "time": pa.array([None], type=pa.string()),
                "lon": pa.nulls(1), "lat": pa.nulls(1)}
        res = tracks_from_table(cols, 1, file="positions", timezone="UTC")
        assert len(res.tracks) == 0
        assert res.rejects["reason"].tolist() == ["missing time"]

    def test_row_count_mismatch(self):
        cols = {"vehicle_id": pa.array(["A1"]), "time": pa.array(["x"]),
                "lon": pa.array([1.0]), "lat": pa.array([1.0])}
        with pytest.raises(ValueError, match="rows_read=2"):
            tracks_from_table(cols, 2, file="positions", timezone="UTC")


class TestParts:
    """A file read part by part (the Dask engine's read tasks) gives the whole-file result."""

    @staticmethod
    def _lines():
        lines = [f"浙A{i % 7:05d},{1714521600 + 60 * i},121.{i:04d},31,{i % 50},full\n"
                 for i in range(3000)]
        lines[40] = "浙A00005,1714524000,121.0040,31,oops,full,extra\n"  # ragged row
        lines[1500] = '浙A00002,"1714611600,121.1500,31,10,full\n'         # quote never closed
        lines[2600] = '浙A00003,1714677600,121.26"00,31,10,full\n'         # quote inside a cell
        lines[2700] = "浙A00004,1714683600,121.2700,95,10,full\n"           # lat out of range
        return lines

    @staticmethod
    def _read_by_parts(path, parts):
        res = [read_tracks(path, part=p) for p in parts]
        # the file's mode: GB18030 if a part needed it, quotes refused if a part met one
        enc = "gb18030" if any(r.encoding == "gb18030" for r in res) else None
        quoting = all(r.quoting for r in res)
        res = [r if (enc is None or r.encoding == enc) and r.quoting == quoting
               else read_tracks(path, part=p, encoding=enc, quoting=quoting)
               for r, p in zip(res, parts, strict=True)]
        offsets = np.cumsum([0] + [r.rows_read for r in res])[:-1]
        tracks = pd.concat([r.tracks.assign(src_row=r.tracks["src_row"] + o)
                            for r, o in zip(res, offsets, strict=True)], ignore_index=True)
        rejects = concat_rejects([r.rejects.assign(row=r.rejects["row"] + o)
                                  for r, o in zip(res, offsets, strict=True)])
        return res, tracks, rejects

    def test_parts_tile_the_file(self, tmp_path, monkeypatch):
        monkeypatch.setattr(tables_mod, "_MIN_PART_BYTES", 4096)
        path = write(tmp_path, "".join(self._lines()),
                     header="vehicle_id,time,lon,lat,speed_kmh,load\n", encoding="gb18030")
        parts, _ = tables_mod.plan_parts(path, 100)
        assert len(parts) > 5
        assert parts[0].start == 0 and parts[-1].end == -1
        assert all(a.end == b.start for a, b in itertools.pairwise(parts))
        data = path.read_bytes()
        assert all(data[p.start - 1:p.start] == b"\n" for p in parts[1:])  # at line starts

    @pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
    def test_parts_read_as_the_whole_file(self, tmp_path, monkeypatch, encoding):
        monkeypatch.setattr(tables_mod, "_MIN_PART_BYTES", 4096)
        path = write(tmp_path, "".join(self._lines()),
                     header="vehicle_id,time,lon,lat,speed_kmh,load\n", encoding=encoding)
        whole = read_tracks(path)
        assert not whole.quoting and whole.encoding == encoding
        assert sorted(whole.rejects["row"]) == [41, 1501, 2601, 2701]
        parts, _ = tables_mod.plan_parts(path, 100)
        res, tracks, rejects = self._read_by_parts(path, parts)
        assert sum(r.rows_read for r in res) == whole.rows_read == 3000
        pd.testing.assert_frame_equal(
            rejects.sort_values(["row", "action"], kind="stable").reset_index(drop=True),
            whole.rejects)
        tracks = tracks.sort_values(["vehicle_key", "time"], kind="stable").reset_index(drop=True)
        for col in ("vehicle_id", "vehicle_key", "load"):
            assert tracks[col].astype(str).tolist() == whole.tracks[col].astype(str).tolist()
        for col in ("time", "lon", "lat", "speed_kmh", "src_row"):
            assert tracks[col].tolist() == whole.tracks[col].tolist(), col
        assert "浙A00001" in set(whole.tracks["vehicle_id"].astype(str))

    @pytest.mark.parametrize("case", ["blank lines", "bom", "cr only", "crlf quote"])
    def test_line_ends_blank_lines_and_bom(self, tmp_path, monkeypatch, case):
        monkeypatch.setattr(tables_mod, "_MIN_PART_BYTES", 2048)
        lines = [f"A{i % 5},{1714521600 + 60 * i},121.{i:04d},31\n" for i in range(600)]
        header = "vehicle_id,time,lon,lat\n"
        if case == "blank lines":  # blank lines are not rows; the ragged row keeps its number
            lines[100], lines[300], lines[450] = "\n", "\n\n", "A1,1714550000,121\n"
        elif case == "bom":
            header = "\ufeff" + header
        text = header + "".join(lines)
        if case == "cr only":  # old Mac line ends: one part
            text = text.replace("\n", "\r")
        elif case == "crlf quote":
            lines[200] = 'A1,"1714533600,121.0200,31\n'
            text = (header + "".join(lines)).replace("\n", "\r\n")
        path = tmp_path / "tracks.csv"
        path.write_bytes(text.encode("utf-8"))
        whole = read_tracks(path)
        parts, _ = tables_mod.plan_parts(path, 10)
        assert len(parts) == (1 if case == "cr only" else 8)
        res, tracks, rejects = self._read_by_parts(path, parts)
        assert sum(r.rows_read for r in res) == whole.rows_read
        assert rejects["row"].tolist() == whole.rejects["row"].tolist()
        assert rejects["reason"].tolist() == whole.rejects["reason"].tolist()
        assert sorted(tracks["src_row"]) == sorted(whole.tracks["src_row"])
        expected = {"blank lines": [449], "bom": [], "cr only": [], "crlf quote": [201]}[case]
        assert whole.rejects["row"].tolist() == expected

    def test_parquet_row_groups(self, tmp_path):
        lines = [f"A{i % 3},{1714521600 + 60 * i},121.{i:04d},31\n" for i in range(500)]
        frame = pd.read_csv(io.StringIO("vehicle_id,time,lon,lat\n" + "".join(lines)))
        folder = tmp_path / "tracks.parquet"
        folder.mkdir()
        pq.write_table(pa.Table.from_pandas(frame.iloc[:300]), folder / "a.parquet",
                       row_group_size=70)
        pq.write_table(pa.Table.from_pandas(frame.iloc[300:]), folder / "b.parquet",
                       row_group_size=70)
        whole = read_tracks(folder)
        parts, rows = tables_mod.plan_parts(folder, 100)
        # a: groups of 70+70, 70+70, 20; b: 70+70, 60 (parts never span files)
        assert rows == 500 and len(parts) == 5
        _, tracks, _ = self._read_by_parts(folder, parts)
        tracks = tracks.sort_values(["vehicle_key", "time"], kind="stable").reset_index(drop=True)
        assert tracks["src_row"].tolist() == whole.tracks["src_row"].tolist()
        assert tracks["lon"].tolist() == whole.tracks["lon"].tolist()


class TestLimitsOfEveryEntryPoint:
    """Times beyond pandas' nanoseconds and over-long plates are rejected rows, never raised."""

    GOOD = "A1,2024-05-01T08:00:00,121.0,31.0\n"

    @pytest.mark.parametrize("value", [
        "9999-12-31T23:59:59", "0001-01-01", "0001-01-01T00:00:00", "2262-04-12T00:00:00",
        "9999-12-31T23:59:59+08:00", "9999-12-31T23:59:59.5", "0001-01-01T00:00:00Z",
        "-0001-01-01", "253402300799", "-62135596800", "2100-01-01T08:00:00",
        "1989-12-31T23:59:59Z"])
    def test_time_out_of_range_is_a_rejected_row(self, tmp_path, value):
        body = self.GOOD + f"A1,{value},121.0,31.0\n"
        res = read_tracks(write(tmp_path, body, header="vehicle_id,time,lon,lat\n"))
        assert len(res.tracks) == 1
        assert res.rejects[["row", "field", "value", "action"]].values.tolist() == [
            [2, "time", value, "row_dropped"]]
        assert res.rejects["reason"].iloc[0].startswith("time outside 1990-01-01..2100-01-01")
        check_invariant(res)

    def test_edges_of_the_range(self, tmp_path):
        body = ("A1,1990-01-01T00:00:00Z,121.0,31.0\n"            # first instant: kept
                "A1,2099-12-31T23:59:59.5Z,121.0,31.0\n"          # last second: kept
                "A1,2100-01-01T07:59:59,121.0,31.0\n"             # local = 2099-12-31T23:59:59Z
                "A1,2100-01-01T00:00:00Z,121.0,31.0\n")           # end: excluded
        res = read_tracks(write(tmp_path, body, header="vehicle_id,time,lon,lat\n"))
        assert res.tracks["time"].tolist() == [utc("1990-01-01T00:00:00"),
                                               utc("2099-12-31T23:59:59"),
                                               utc("2099-12-31T23:59:59.5")]
        assert res.rejects["row"].tolist() == [4]

    def test_a_zone_west_of_utc_does_not_overflow_near_2262(self, tmp_path):
        body = self.GOOD + "A1,2262-04-11T23:00:00,121.0,31.0\n"
        res = read_tracks(write(tmp_path, body, header="vehicle_id,time,lon,lat\n"),
                          timezone="America/Los_Angeles")
        assert res.rejects["row"].tolist() == [2]
        assert res.rejects["reason"].iloc[0].startswith("time outside")

    @pytest.mark.parametrize("unit", ["s", "ms", "us"])
    def test_parquet_timestamps_beyond_nanoseconds(self, tmp_path, unit):
        import datetime as dt
        for tz in (None, "UTC"):
            times = pa.array([dt.datetime(2024, 5, 1, 8), dt.datetime(9999, 12, 31, 23, 59, 59),
                              dt.datetime(1, 1, 1)], pa.timestamp(unit, tz=tz))
            pq.write_table(pa.table({"vehicle_id": ["A1"] * 3, "time": times,
                                     "lon": [121.0] * 3, "lat": [31.0] * 3}),
                           tmp_path / "tracks.parquet")
            res = read_tracks(tmp_path / "tracks.parquet")
            assert len(res.tracks) == 1
            assert res.rejects["row"].tolist() == [2, 3]
            assert res.rejects["reason"].str.startswith("time outside").all()

    def test_parquet_dates_and_integer_seconds_beyond_nanoseconds(self, tmp_path):
        import datetime as dt
        for times in (pa.array([dt.date(2024, 5, 1), dt.date(9999, 12, 31), dt.date(1, 1, 1)]),
                      pa.array([1714521600, 253402300799, -62135596800], pa.int64()),
                      pa.array([1714521600.0, 2.5e11 * 1000, -1e300], pa.float64())):
            pq.write_table(pa.table({"vehicle_id": ["A1"] * 3, "time": times,
                                     "lon": [121.0] * 3, "lat": [31.0] * 3}),
                           tmp_path / "tracks.parquet")
            res = read_tracks(tmp_path / "tracks.parquet")
            assert len(res.tracks) == 1, times.type
            assert res.rejects["row"].tolist() == [2, 3]
            assert res.rejects["reason"].str.startswith("time outside").all()

    def test_plate_over_the_limit_is_a_rejected_row(self, tmp_path):
        vin = "LSVAU2180N2183294"                     # 17 characters: a VIN is a plate
        long_plate = "浙D" + "1" * 19                  # 21 characters
        body = (f"{vin},2024-05-01T08:00:00,121.0,31.0\n"
                f"{long_plate},2024-05-01T08:00:00,121.0,31.0\n"
                "浙D12345,2024-05-01T08:00:00,121.0,31.0\n"
                f"{long_plate},2024-05-01T08:00:05,121.0,31.0\n"
                "A\x01B,2024-05-01T08:00:00,121.0,31.0\n")
        res = read_tracks(write(tmp_path, body, header="vehicle_id,time,lon,lat\n"))
        assert sorted(res.tracks["vehicle_id"].astype(str)) == sorted([vin, "浙D12345"])
        rej = res.rejects
        assert rej["row"].tolist() == [2, 4, 5]
        assert (rej["field"] == "vehicle_id").all()
        assert rej["value"].tolist()[:2] == [long_plate, long_plate]
        assert rej["reason"].iloc[0] == ("too long for a plate: 21 characters in "
                                         f"'{long_plate}', at most 20 allowed")
        assert "control character" in rej["reason"].iloc[2]
        check_invariant(res)

    def test_parquet_plate_over_the_limit(self, tmp_path):
        pq.write_table(pa.table({"vehicle_id": ["A1", "B" * 500], "time": [1714521600] * 2,
                                 "lon": [121.0] * 2, "lat": [31.0] * 2}),
                       tmp_path / "tracks.parquet")
        res = read_tracks(tmp_path / "tracks.parquet")
        assert res.tracks["vehicle_id"].astype(str).tolist() == ["A1"]
        assert res.rejects[["row", "field"]].values.tolist() == [[2, "vehicle_id"]]
        assert len(res.rejects["value"].iloc[0]) <= 200            # the rejects cut values
