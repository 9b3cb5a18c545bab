"""The synthetic workload of an MLX cell (variant mlx or mlx_compile): same interface as
speedatlas.measure.protocol.workloads (`measure(spec, base, start) -> rows`), so the supervisor's
fresh processes, the rows and the tables apply unchanged.

    1. import MLX; map the study device to an MLX device (`unavailable` with the reason if MLX
       cannot use it here);
    2. build the torch cell's model and batch (seeded, CPU), copy the weights into the MLX port;
    3. parity: both forwards on the same input, torch on the cell's device in the cell's dtype
       (speedatlas.measure.mlx.parity); outside the tolerance the cell is `error` with the figure,
       and nothing is timed;
    4. time the MLX step with the torch cells' protocol (speedatlas.measure.protocol.timing: the
       first step and warm-up untimed, `repeats` blocks of `steps_per_repeat` steps, each step
       evaluated, each block closed by mx.synchronize()), energy where a meter exists.

Recorded beside the usual columns: parity_max_rel_err, parity_tolerance, mlx_version,
mlx_device, compute_dtype (what MLX's Linear/Conv layers produced). Not measured: host_share (MLX
has no event timer that separates the host's issue time from the device's run time), CPU
fallbacks (MLX has none to report).
"""

from __future__ import annotations

import time
from typing import Any

from speedatlas.measure.hardware import energy
from speedatlas.measure.mlx import backend
from speedatlas.measure.protocol import compute_dtype, rows, timing
from speedatlas.measure.protocol.workloads import CellStart


def finite(value: Any, what: str) -> float:
    """timing.check_finite for an mx.array: read back (untimed), NonFiniteError if not finite."""
    import math

    import mlx.core as mx

    number = float(mx.abs(value.astype(mx.float32)).mean().item()) if value.ndim else float(value.item())
    if not math.isfinite(number):
        raise timing.NonFiniteError(f"{what} is not finite ({number})")
    return number


def torch_reference(side, spec: dict[str, Any]):
    """torch's output (numpy float32) on the cell's device and dtype, inference forward."""
    import torch

    from speedatlas.measure.hardware import devices
    from speedatlas.measure.mlx import parity
    from speedatlas.measure.protocol import steps

    device = spec["device"]
    model = side.model.to(device).eval()
    try:
        with parity.full_float32(torch, device), torch.inference_mode(), steps.autocast_context(device, spec["dtype"])():
            output = model(side.inputs.to(device))
        return output.float().cpu().numpy()
    finally:
        side.model.to("cpu")
        devices.get(device).release_memory()


def measure(spec: dict[str, Any], base: dict[str, Any], start: CellStart) -> list[dict[str, Any]]:
    """One row per timed block, or one row with the status of a cell that cannot run."""
    import torchvision

    base = {**base, "torchvision_version": torchvision.__version__, "cpu_fallback_ops": "[]"}
    try:
        import mlx.core as mx
    except (ImportError, OSError) as error:  # OSError: a CUDA library MLX links against is missing
        return [{**base, "status": "unavailable", "error": backend.import_reason(error)}]
    base["mlx_version"] = mx.__version__
    target, label, reason = backend.resolve(spec["device"], mx)
    if reason is not None:
        return [{**base, "status": "unavailable", "error": reason}]
    mx.set_default_device(target)
    base["mlx_device"] = backend.device_label(mx, target, label)

    checked: dict[str, Any] = {}
    meter = None
    try:
        from speedatlas.measure.mlx import dtype_check, parity, ports, steps

        checked["parity_tolerance"] = parity.tolerance(spec["dtype"], spec["device"])
        side = ports.torch_side(spec)
        mx.reset_peak_memory()
        port = ports.port_of(spec, side)
        inputs, targets = ports.mlx_batch(side, spec["dtype"])
        reference = torch_reference(side, spec)
        port.eval()
        output = port(inputs)
        mx.eval(output)
        try:
            checked["parity_max_rel_err"] = parity.check(output.astype(mx.float32), reference, spec["dtype"], spec["device"])
        except parity.ParityError as error:
            checked["parity_max_rel_err"] = error.max_rel_err
            raise
        del output, reference
        side.model = None  # torch's copy is not needed any more
        step = steps.make_step(port, inputs, targets, spec["mode"], spec["variant"] == "mlx_compile", side.language_model)

        def after_first() -> None:
            checked["compute_dtype"] = dtype_check.compute_dtype(port, lambda: port(inputs))
            compute_dtype.check(spec["dtype"], checked["compute_dtype"], [])

        setup_s = time.perf_counter() - start.process_t0 - start.lock_wait_s
        meter = energy.open_meter(spec["device"], spec.get("energy"))
        meter.idle(mx.synchronize)
        result = timing.run(step, mx.synchronize, spec["warmup"], spec["repeats"], spec["steps_per_repeat"], meter,
                            after_first=after_first, finite=finite)
        meter.close()
        peak = int(mx.get_peak_memory())
    except Exception as exc:  # noqa: BLE001 - every failure is a recorded result
        if meter is not None:
            meter.close()
        status = "nonfinite" if isinstance(exc, timing.NonFiniteError) else backend.status_of(exc)
        return [{**base, **checked, "status": status, "error": rows.error_text(exc)}]

    samples = result.samples_s
    given = (spec.get("model_source") or {}).get("input", {})
    tokens = given.get("length") if given.get("kind") == "tokens" else None
    cell = {
        **rows.ok_columns({**base, **checked, "peak_memory_bytes": peak}, samples, setup_s=setup_s,
                          lock_wait_s=start.lock_wait_s, launcher=start.launcher, flops=side.flops, mode=spec["mode"],
                          final_value=result.last_value,
                          compile_time_s=result.first_step_s if spec["variant"] == "mlx_compile" else None,
                          cpu_fallback_ops="[]"),
        "started_at": result.started_at,
        "finished_at": result.finished_at,
    }
    return [
        {**cell, "repeat": index, "step_time_s": seconds, "items_per_s": spec["batch"] / seconds,
         "tokens_per_s": spec["batch"] * tokens / seconds if tokens else None, **meter.columns(index)}
        for index, seconds in enumerate(samples)
    ]
