"""A cell's process: the runner (one process per cell or per timed process of a cell), the fork
server it may be forked from, the machine lock and GPU slots it holds, the terminal notice."""
