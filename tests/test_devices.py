"""Device strings checked against the devices present."""

from __future__ import annotations

import pytest

from pipeline.errors import DeviceError
from pipeline.models.devices import plan_device

HERE = ["CPU"]
RICH = ["CPU", "GPU.0", "GPU.1"]


@pytest.mark.parametrize(
    ("requested", "available", "device", "hint", "absent"),
    [
        ("CPU", HERE, "CPU", "THROUGHPUT", ()),
        ("cpu", HERE, "CPU", "THROUGHPUT", ()),
        ("AUTO", HERE, "AUTO", "THROUGHPUT", ()),
        ("MULTI:GPU,CPU", HERE, "MULTI:CPU", "THROUGHPUT", ("GPU",)),
        ("AUTO:GPU,CPU", HERE, "AUTO:CPU", "THROUGHPUT", ("GPU",)),
        ("MULTI:GPU,CPU", RICH, "MULTI:GPU,CPU", "CUMULATIVE_THROUGHPUT", ()),
        ("AUTO:GPU.1,CPU", RICH, "AUTO:GPU.1,CPU", "CUMULATIVE_THROUGHPUT", ()),
        ("HETERO:GPU,CPU", RICH, "HETERO:GPU,CPU", "THROUGHPUT", ()),
        ("GPU", RICH, "GPU", "THROUGHPUT", ()),
    ],
)
def test_plan_device_keeps_present_devices_and_picks_the_hint(
    requested, available, device, hint, absent
):
    plan = plan_device(requested, available)
    assert (plan.device, plan.hint, plan.absent) == (device, hint, absent)


@pytest.mark.parametrize("requested", ["GPU", "NPU", "MULTI:GPU,NPU", "FOO", "BOGUS:CPU", ""])
def test_plan_device_without_any_present_device_lists_those_that_exist(requested):
    with pytest.raises(DeviceError, match="devices here: CPU"):
        plan_device(requested, HERE)
