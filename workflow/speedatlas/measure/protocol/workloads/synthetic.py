"""The synthetic workload: one seeded batch resident on the device, stepped over and over.

What the speed-up tables compare: the device's compute for a model, free of input pipelines.
"""

from __future__ import annotations

import time
from typing import Any

from speedatlas.measure.protocol import compute_dtype, hostshare, timing
from speedatlas.measure.hardware import devices, energy
from speedatlas.measure.models import zoo
from speedatlas.measure.protocol import steps
from speedatlas.measure.protocol import rows
from speedatlas.measure.protocol.workloads import CellStart, for_variant


def measure(spec: dict[str, Any], base: dict[str, Any], start: CellStart) -> list[dict[str, Any]]:
    """Untimed first step and warm-up, then `repeats` timed blocks; one row per block."""
    other = for_variant(spec["variant"])  # an MLX variant: MLX's own workload times it
    if other is not None:
        return other.measure(spec, base, start)
    device = spec["device"]
    meter = None
    dev = devices.get(device)
    checked: dict[str, Any] = {}  # compute_dtype, once the first step ran
    warned = compute_dtype.capture()  # the cell's warnings: autocast fallback, mps CPU fallback
    try:
        import torchvision

        base["torchvision_version"] = torchvision.__version__
        loss_fn = None
        probe = dev.memory_probe()
        if spec.get("model_source"):  # a factory or a built-in transformer
            from speedatlas.measure.models import custom as custom_models

            flops, model, images, labels, loss_fn = custom_models.prepare(spec, device)
        else:
            flops = zoo.count_flops(
                spec["model"], spec["num_classes"], spec["batch"], spec["input_size"], spec["mode"]
            )
            model = zoo.build_model(spec["model"], spec["num_classes"], spec["seed"]).to(device)
            images, labels = zoo.synthetic_batch(
                spec["batch"], spec["input_size"], spec["num_classes"], spec["seed"]
            )
            images, labels = images.to(device), labels.to(device)
        eager = model
        model, images = steps.apply_variant(model, images, spec["variant"], device)
        step = steps.make_step(model, images, labels, spec["mode"], device, spec["dtype"], loss_fn)
        after_first = compute_dtype.first_step_check(
            eager, images, spec, steps.autocast_context(device, spec["dtype"]), warned, checked
        )
        setup_s = time.perf_counter() - start.process_t0 - start.lock_wait_s
        # idle power before the warm-up, not between warm-up and timing: a pause there would
        # let the clocks drop and slow the first timed block
        meter = energy.open_meter(device, spec.get("energy"))
        meter.idle(lambda: devices.synchronize(device))
        result = timing.run(
            step,
            dev.synchronize,
            spec["warmup"],
            spec["repeats"],
            spec["steps_per_repeat"],
            meter,
            after_first=after_first,
            warmup_seconds=spec.get("warmup_seconds", 0.0),
            gc_off=spec.get("gc_off", True),
        )
        meter.close()
        memory = probe.columns()
        # after the timed blocks, so the samples are untouched (issue 14)
        host_columns = hostshare.columns(device, step, dev.synchronize)
    except Exception as exc:  # noqa: BLE001 - every failure is a recorded result
        if meter is not None:
            meter.close()
        warned.stop()
        return rows.failed_rows({**base, **checked, "cpu_fallback_ops": warned.fallback_ops_json()}, exc, device)
    warned.stop()

    samples = result.samples_s
    given = (spec.get("model_source") or {}).get("input", {})
    tokens = given.get("length") if given.get("kind") == "tokens" else None  # tokens per sequence
    cell = {
        **rows.ok_columns({**base, **memory, **checked}, samples, setup_s=setup_s, lock_wait_s=start.lock_wait_s,
                          launcher=start.launcher, flops=flops, mode=spec["mode"], final_value=result.last_value,
                          compile_time_s=result.first_step_s if spec["variant"] == "compile" else None,
                          cpu_fallback_ops=warned.fallback_ops_json()),
        **host_columns,
        "warmup_steps_run": result.warmup_steps_run,
        "gc_disabled": result.gc_disabled,
        "cudnn_benchmark": devices.cudnn_benchmark(device),
        "started_at": result.started_at,
        "finished_at": result.finished_at,
    }
    return [
        {**cell, "repeat": index, "step_time_s": seconds, "items_per_s": spec["batch"] / seconds,
         "tokens_per_s": spec["batch"] * tokens / seconds if tokens else None, **meter.columns(index)}
        for index, seconds in enumerate(samples)
    ]
