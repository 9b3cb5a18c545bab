"""Host share: issue time / synchronised step time, with a fake clock and a fake device."""

import pytest

from speedatlas.measure.protocol import hostshare


class FakeDevice:
    """An asynchronous device on a fake clock: step() costs the host `issue` seconds and queues
    `work` seconds of device time; synchronize() waits until the queue drains."""

    def __init__(self, issue, work):
        self.now = 0.0
        self.busy_until = 0.0
        self.issue, self.work = issue, work

    def clock(self):
        return self.now

    def step(self):
        self.now += self.issue  # the host issues the kernels...
        self.busy_until = max(self.busy_until, self.now - self.issue) + self.work  # ...the device runs them

    def synchronize(self):
        self.now = max(self.now, self.busy_until)

    def events(self):
        device = self

        class Event:
            def record(self):
                # recorded when the queue reaches it: after the work queued so far
                self.at = device.busy_until if device.busy_until > device.now else device.now

            def elapsed_time(self, end):
                return (end.at - self.at) * 1000.0  # milliseconds, like torch

        return Event()


@pytest.mark.parametrize(
    "issue, work, share",
    [(0.001, 0.010, 0.1), (0.009, 0.010, 0.9), (0.020, 0.010, 1.0)],
)
def test_host_share_is_issue_time_over_the_synchronised_step(issue, work, share):
    device = FakeDevice(issue, work)
    result = hostshare.measure(device.step, device.synchronize, steps=3, clock=device.clock)
    assert result.host_share == pytest.approx(share)
    assert result.issue_s == pytest.approx(issue)
    assert result.step_s == pytest.approx(max(issue, work))
    assert result.device_step_time_s is None


def test_device_time_comes_from_events_start_to_end_in_seconds():
    device = FakeDevice(0.001, 0.010)
    result = hostshare.measure(device.step, device.synchronize, steps=4, events=device.events, clock=device.clock)
    assert result.device_step_time_s == pytest.approx(0.010)


def test_cpu_cells_get_no_host_share():
    calls = []
    assert hostshare.columns("cpu", lambda: calls.append(1), lambda: None) == {
        "host_share": None, "device_step_time_s": None}
    assert calls == []  # not even an extra step


def test_a_real_cpu_step_has_a_host_share_of_one():
    """Synchronous work (the CPU): the host is busy for the whole step."""
    import torch

    x = torch.randn(256, 256)
    result = hostshare.measure(lambda: x @ x, lambda: None, steps=3)
    assert result.host_share > 0.95
    assert hostshare.event_factory("cpu") is None


def test_a_clock_going_backwards_is_an_error():
    ticks = iter([1.0, 0.5, 0.4])
    with pytest.raises(ValueError):
        hostshare.measure(lambda: None, lambda: None, steps=1, clock=lambda: next(ticks))
