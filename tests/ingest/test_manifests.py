"""Tests for haulwatch.ingest.manifests."""

import pandas as pd
import pytest

from haulwatch.ingest.manifests import MANIFEST_COLUMNS, read_manifests
from haulwatch.ingest.rejects import SchemaError

HEADER = ("manifest_id,vehicle_id,origin_site_id,disposal_site_id,route_id,"
          "valid_from,valid_to,waste_type,volume_m3\n")


def write(tmp_path, body, header=HEADER):
    path = tmp_path / "manifests.csv"
    path.write_text(header + body, encoding="utf-8")
    return path


class TestReadManifests:
    BODY = (
        "M1,浙F·A1234,O1,D1,R1,2024-05-01T07:00:00,2024-05-01T18:00:00,muck,20\n"   # 1 ok
        "M2,浙FA1234,O1,D9,,2024-05-01T07:00:00,2024-05-01T18:00:00,muck,20\n"      # 2 bad D
        "M3,浙FA1234,O9,D1,,2024-05-01T07:00:00,2024-05-01T18:00:00,,\n"            # 3 bad O
        "M4,浙FA1234,O1,D1,,2024-05-01T18:00:00,2024-05-01T07:00:00,,\n"            # 4 inverted
        "M5,浙FA1234,O1,D1,,tomorrow,2024-05-01T07:00:00,,\n"                       # 5 bad time
        "M1,浙FA1234,O1,D1,,2024-05-01T07:00:00,2024-05-01T18:00:00,,\n"            # 6 dup id
        ",浙FA1234,O1,D1,,2024-05-01T07:00:00,2024-05-01T18:00:00,,\n"              # 7 no id
        "M8,,O1,D1,,2024-05-01T07:00:00,2024-05-01T18:00:00,,\n"                    # 8 no truck
        "M9,苏E0001,O1,D1,R9,2024-05-01T07:00:00Z,2024-05-01T18:00:00Z,soil,-3\n"  # 9 cleared x2
        "M10,苏E0001,O1,D1,,2024-05-01T07:00:00,,,\n"                               # 10 no end
    )

    @pytest.fixture
    def res(self, tmp_path):
        return read_manifests(write(tmp_path, self.BODY), site_ids=["O1", "D1"],
                              route_ids=["R1"])

    def test_kept_rows_and_columns(self, res):
        m = res.manifests
        assert tuple(m.columns) == MANIFEST_COLUMNS
        assert sorted(m["manifest_id"]) == ["M1", "M9"]
        row = m.set_index("manifest_id").loc["M1"]
        assert row["vehicle_key"] == "浙FA1234"
        assert row["vehicle_id"] == "浙F·A1234"
        assert row["valid_from"] == pd.Timestamp("2024-04-30T23:00:00Z")   # local → UTC
        assert str(m["valid_from"].dtype) == "datetime64[ns, UTC]"

    @pytest.mark.parametrize("row, field, reason", [
        (2, "disposal_site_id", "not found in sites.geojson"),
        (3, "origin_site_id", "not found in sites.geojson"),
        (4, "valid_to", "valid_to before valid_from"),
        (5, "valid_from", "unparseable valid_from"),
        (6, "manifest_id", "duplicate manifest_id (first at row 1)"),
        (7, "manifest_id", "missing manifest_id"),
        (8, "vehicle_id", "missing vehicle_id"),
        (10, "valid_to", "missing valid_to"),
    ])
    def test_rejected_rows(self, res, row, field, reason):
        hit = res.rejects[res.rejects["row"] == row]
        assert len(hit) == 1
        assert hit["field"].item() == field
        assert reason in hit["reason"].item()
        assert hit["action"].item() == "row_dropped"

    def test_unknown_route_and_bad_volume_only_cleared(self, res):
        m9 = res.manifests.set_index("manifest_id").loc["M9"]
        assert m9["route_id"] is None
        assert pd.isna(m9["volume_m3"])
        assert m9["valid_from"] == pd.Timestamp("2024-05-01T07:00:00Z")
        cleared = res.rejects[res.rejects["action"] == "value_cleared"]
        assert sorted(cleared["field"]) == ["route_id", "volume_m3"]
        assert set(cleared["row"]) == {9}

    def test_counts(self, res):
        dropped = (res.rejects["action"] == "row_dropped").sum()
        assert res.rows_read == len(res.manifests) + dropped == 10

    def test_ragged_row(self, tmp_path):
        body = ("M1,A1,O1,D1,,2024-05-01T07:00:00,2024-05-01T18:00:00,,\n"
                "M2,A1,O1\n"
                "M3,A1,O1,D1,,2024-05-01T07:00:00,,,\n")
        res = read_manifests(write(tmp_path, body))
        assert res.rows_read == 3
        assert res.rejects[["row", "field"]].values.tolist() == [[2, "row"], [3, "valid_to"]]
        assert res.manifests["src_row"].tolist() == [1]

    def test_optional_columns_absent(self, tmp_path):
        path = write(tmp_path, "M1,A1,O1,D1,1714521600,1714525200\n",
                     header="manifest_id,vehicle_id,origin_site_id,disposal_site_id,"
                            "valid_from,valid_to\n")
        m = read_manifests(path).manifests
        assert m["route_id"].tolist() == [None]
        assert m["valid_to"].item() == pd.Timestamp("2024-05-01T01:00:00Z")

    def test_missing_column(self, tmp_path):
        path = write(tmp_path, "M1,A1,O1,D1\n",
                     header="manifest_id,vehicle_id,origin_site_id,disposal_site_id\n")
        with pytest.raises(SchemaError, match=r"manifests.csv: missing required column.*valid_from"):
            read_manifests(path)


class TestDateOnlyWindows:
    def test_date_only_valid_to_covers_the_whole_local_day(self, tmp_path):
        body = ("M1,A1,O1,D1,,2024-05-01,2024-05-01,,\n"
                "M2,A1,O1,D1,,2024/05/02 07:00:00,2024/05/03,,\n"
                "M3,A1,O1,D1,,2024-03-31,2024-03-31,,\n")
        res = read_manifests(write(tmp_path, body), timezone="Europe/Berlin")
        m = res.manifests.set_index("manifest_id")
        # Berlin is UTC+2 in May: the day is 2024-04-30T22:00Z .. 2024-05-01T22:00Z
        assert m.loc["M1", "valid_from"] == pd.Timestamp("2024-04-30T22:00:00Z")
        assert m.loc["M1", "valid_to"] == pd.Timestamp("2024-05-01T22:00:00Z")
        assert m.loc["M2", "valid_to"] == pd.Timestamp("2024-05-03T22:00:00Z")
        # 31 March 2024 switches to summer time at 02:00: the day is 23 h long
        assert m.loc["M3", "valid_to"] - m.loc["M3", "valid_from"] == pd.Timedelta(hours=23)
        assert len(res.rejects) == 0

    def test_impossible_date_only_still_refused(self, tmp_path):
        res = read_manifests(write(tmp_path, "M1,A1,O1,D1,,2024-02-01,2024-02-30,,\n"))
        assert res.rejects[["row", "field"]].values.tolist() == [[1, "valid_to"]]


class TestLimitsOfEveryEntryPoint:
    """Out-of-range windows, over-long plates and ids are rejected rows with a reason."""

    def test_windows_beyond_pandas_nanoseconds(self, tmp_path):
        body = ("M1,A1,O1,D1,,2024-05-01T07:00:00,2024-05-01T18:00:00,,\n"    # 1 kept
                "M2,A1,O1,D1,,9999-12-31T23:59:59,2024-05-01T18:00:00,,\n"    # 2 from
                "M3,A1,O1,D1,,2024-05-01T07:00:00,9999-12-31,,\n"             # 3 date-only to
                "M4,A1,O1,D1,,0001-01-01,2024-05-01T18:00:00,,\n"             # 4 from
                "M5,A1,O1,D1,,2024-05-01T07:00:00,9999-12-31T23:59:59+08:00,,\n"  # 5 to
                "M6,A1,O1,D1,,2024-05-01T07:00:00,253402300799,,\n"           # 6 epoch to
                "M7,A1,O1,D1,,2024-05-01T07:00:00,2099-12-31,,\n")            # 7 kept
        res = read_manifests(write(tmp_path, body))
        assert res.manifests["manifest_id"].tolist() == ["M1", "M7"]
        # 2099-12-31 covers the local day: it ends at 2100-01-01T00:00+08:00, inside the range
        assert res.manifests["valid_to"].iloc[1] == pd.Timestamp("2099-12-31T16:00:00Z")
        rej = res.rejects
        assert rej[["row", "field", "action"]].values.tolist() == [
            [2, "valid_from", "row_dropped"], [3, "valid_to", "row_dropped"],
            [4, "valid_from", "row_dropped"], [5, "valid_to", "row_dropped"],
            [6, "valid_to", "row_dropped"]]
        assert rej["reason"].str.contains("outside 1990-01-01..2100-01-01").all()

    def test_plates_and_ids_over_the_limits(self, tmp_path):
        vin = "LSVAU2180N2183294"
        body = (f"M1,{vin},O1,D1,,2024-05-01T07:00:00,2024-05-01T18:00:00,,\n"      # 1 kept
                f"M2,浙D{'1' * 19},O1,D1,,2024-05-01T07:00:00,2024-05-01T18:00:00,,\n"  # 2 plate
                f"{'M' * 65},A1,O1,D1,,2024-05-01T07:00:00,2024-05-01T18:00:00,,\n"   # 3 id
                f"M4,A1,{'O' * 65},D1,,2024-05-01T07:00:00,2024-05-01T18:00:00,,\n")  # 4 site
        res = read_manifests(write(tmp_path, body))
        assert res.manifests["vehicle_id"].tolist() == [vin]
        rej = res.rejects
        assert rej[["row", "field"]].values.tolist() == [
            [2, "vehicle_id"], [3, "manifest_id"], [4, "origin_site_id"]]
        assert rej["reason"].iloc[0] == (f"too long for a plate: 21 characters in "
                                         f"'浙D{'1' * 19}', at most 20 allowed")
        assert rej["reason"].iloc[1] == "too long: 65 characters, at most 64 allowed"
