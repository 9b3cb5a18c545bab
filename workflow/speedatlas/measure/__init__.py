"""The measure side: runs inside every torch environment (standard library, torch, torchvision,
numpy and pyarrow only). Entry points of the jobs at the top (supervisor: a cell; dtype_probe: a
probe; cellio: the cell file), then one sub-package per job: process, hardware, models, protocol."""
