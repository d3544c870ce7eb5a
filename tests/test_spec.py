"""Source specs on the command line: names, NAME=PATH, uniqueness."""

from __future__ import annotations

from sources import mask_credentials, sources_from_specs, split_spec, unique_names


def test_split_spec_reads_name_equals_path():
    assert split_spec("front=/videos/a.mp4") == ("front", "/videos/a.mp4")
    assert split_spec("/videos/a.mp4") == (None, "/videos/a.mp4")
    assert split_spec("rtsp://cam/stream?a=b") == (None, "rtsp://cam/stream?a=b")


def test_unique_names_number_repeats_in_order():
    assert unique_names(["car", "car", "bottle", "car"]) == ["car", "car-2", "bottle", "car-3"]


def test_sources_are_named_after_the_file_stem_and_made_unique():
    sources = sources_from_specs(["a/car.mp4", "b/car.mp4", "cam=c/car.mp4", "car.mp4"])
    assert [s.name for s in sources] == ["car", "car-2", "cam", "car-3"]


def test_mask_credentials_hides_user_and_password():
    assert mask_credentials("rtsp://admin:secret@10.0.0.5/live") == "rtsp://***@10.0.0.5/live"
    assert mask_credentials("/plain/path.mp4") == "/plain/path.mp4"


def test_unique_names_never_hand_out_a_name_twice_even_one_taken_as_wanted():
    assert unique_names(["x", "x-2", "x"]) == ["x", "x-2", "x-3"]
    assert unique_names(["x", "x", "x-2"]) == ["x", "x-2", "x-2-2"]
