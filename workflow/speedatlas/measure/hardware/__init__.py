"""Facts of the machine and its devices: what each device is and how it synchronises, the Mac's
state (sysctl, pmset, ioreg), energy counters, the software environment, and what an exception
raised on a device means (the cell's status)."""
